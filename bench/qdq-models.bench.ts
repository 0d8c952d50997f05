import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { GpuGraphPlan, type GpuResources } from '../runtime/backends/webgpu/executor.js';
import { importOnnx } from '../importers/onnx/import.js';
import { optimize, specialize } from '../runtime/ir/passes/index.js';
import { hostTensor, type HostTensor } from '../runtime/ir/tensor.js';
import { setQuantDotPath } from '../runtime/backends/webgpu/kernels/quant-dot.js';
import { setQdqPacking } from '../runtime/backends/webgpu/qdq-layout.js';
import { gpuForTests } from '../tests/helpers/webgpu-env.js';

/**
 * Warm EdgeKit WebGPU runs of a float32 model against its int8 QDQ file (bench/quantize.mjs writes it), in one
 * process, alternating float32 and int8 so the shared machine's noise hits both alike; prints the medians and the
 * int8 / float32 ratio:
 *
 * (QDQ_DOT=packed|unpacked pins int8's dot-product path; QDQ_PROFILE=1 adds per-kernel GPU times; QDQ_GPU_KERNELS=1
 * plans both models with the kernels of a GPU adapter, cpuAdapter: false, workgroup-tiled, even on SwiftShader;
 * QDQ_PACK=0 plans int8 without the c4 layout pass, activations one code per word: qdq-layout.ts setQdqPacking):
 *
 *   QDQ_MODEL=mobilenet_v2 QDQ_RUNS=5 npx vitest bench --run bench/qdq-models.bench.ts
 */

const MODEL = process.env.QDQ_MODEL ?? 'mobilenet_v2';
const RUNS = Number(process.env.QDQ_RUNS ?? '5');
const DIMS = [1, 3, 224, 224];
let res: GpuResources;
const plans: Record<string, GpuGraphPlan> = {};
let feeds: Record<string, HostTensor>;

async function load(path: string): Promise<GpuGraphPlan> {
  const { graph } = await importOnnx(readFileSync(path));
  const name = graph.inputs[0]!.name;
  const cpuAdapter = process.env.QDQ_GPU_KERNELS ? false : undefined;
  return GpuGraphPlan.create(res, specialize(optimize(graph).graph, { [name]: DIMS }), { cpuAdapter });
}

beforeAll(async () => {
  res = await gpuForTests();
  plans.float32 = await load(`tests/fixtures/generated/${MODEL}.onnx`);
  if (process.env.QDQ_DOT) setQuantDotPath(process.env.QDQ_DOT as 'packed' | 'unpacked');
  setQdqPacking(process.env.QDQ_PACK !== '0');
  plans.int8 = await load(`tests/fixtures/generated/${MODEL}-int8.onnx`);
  setQuantDotPath(undefined);
  setQdqPacking(true);
  const data = new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i * 0.01));
  const { graph } = await importOnnx(readFileSync(`tests/fixtures/generated/${MODEL}.onnx`));
  feeds = { [graph.inputs[0]!.name]: hostTensor('float32', DIMS, data) };
  const times: Record<string, number[]> = { float32: [], int8: [] };
  for (const p of Object.values(plans)) await p.run(feeds);
  for (let i = 0; i < RUNS; i++) {
    for (const k of ['float32', 'int8']) {
      const t0 = performance.now();
      await plans[k]!.run(feeds);
      times[k]!.push(performance.now() - t0);
    }
  }
  const med = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
  const f = med(times.float32!), q = med(times.int8!);
  console.log(`${MODEL} warm median of ${RUNS}, alternating: float32 ${f.toFixed(0)} ms, int8 ${q.toFixed(0)} ms, int8/float32 ${(q / f).toFixed(2)}`);
  console.log(`  float32 ${times.float32!.map((t) => t.toFixed(0)).join(' ')} | int8 ${times.int8!.map((t) => t.toFixed(0)).join(' ')}`);
  if (process.env.QDQ_PROFILE) {
    for (const k of ['float32', 'int8']) {
      const by = new Map<string, [number, number]>();
      let total = 0;
      for (const d of await plans[k]!.profile(feeds)) {
        const name = d.kernel.split('|')[0]!;
        const [t, n] = by.get(name) ?? [0, 0];
        by.set(name, [t + d.ns / 1e6, n + 1]);
        total += d.ns / 1e6;
      }
      const rows = [...by].sort((a, b) => b[1][0] - a[1][0]);
      console.log(`${k} profile, ${total.toFixed(0)} ms GPU in ${rows.reduce((s, r) => s + r[1][1], 0)} dispatches (ms ×count by kernel): ` +
        rows.map(([n, [t, c]]) => `${n} ${t.toFixed(1)}×${c}`).join(', '));
    }
  }
}, 1_200_000);
afterAll(() => {
  for (const p of Object.values(plans)) p.dispose();
});

describe(`${MODEL} float32 vs int8`, () => {
  bench('int8 (one more warm run)', async () => {
    await plans.int8!.run(feeds);
  }, { iterations: 1, warmupIterations: 0, time: 0 });
});
