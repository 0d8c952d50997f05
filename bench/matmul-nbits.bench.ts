import { afterAll, beforeAll, bench, describe } from 'vitest';
import { GpuGraphPlan, type GpuResources } from '../runtime/backends/webgpu/executor.js';
import { setNBitsForm, type NBitsForm } from '../runtime/backends/webgpu/kernels/matmul-nbits.js';
import { importOnnx } from '../importers/onnx/import.js';
import { optimize, specialize } from '../runtime/ir/passes/index.js';
import { tensorFromNumbers, type HostTensor } from '../runtime/ir/tensor.js';
import { int, model, vi } from '../tests/importer/model-builder.js';
import { tensorProto } from '../tests/helpers/ort-single-node.js';
import { Rng } from '../tests/helpers/random.js';
import { gpuForTests } from '../tests/helpers/webgpu-env.js';

/**
 * com.microsoft MatMulNBits (4 bits, block 32, packed zero points; runtime/backends/webgpu/kernels/matmul-nbits.ts)
 * against EdgeKit's float32 MatMul of the same shape, K = N = 2048 (an LLM projection), for a decode step (M = 1)
 * and a prefill (M = 128), warm runs of one specialized graph on this machine's WebGPU adapter (SwiftShader where
 * there is no GPU):
 *
 *   npx vitest bench --run bench/matmul-nbits.bench.ts
 *
 * MatMulNBits runs in its forms, forced with setNBitsForm: 'legacy' (the first kernel: one row and four columns per
 * invocation, no workgroup memory; the "before"), 'gemv' (M = 1 only) and 'tiled' (M = 128 only), the forms a GPU
 * adapter takes, and 'auto', the form the kernel picks on this adapter (the direct form on SwiftShader). Each plan
 * prints its first-run time, resident weight bytes and pipeline key. Each run writes A, encodes the one dispatch,
 * submits and reads Y back. EDGEKIT_NBITS_BENCH_K / _N / _M (comma-separated M values) change the shape. Results:
 * docs/quantization.md, "MatMulNBits kernels".
 */

const K = Number(process.env.EDGEKIT_NBITS_BENCH_K ?? 2048);
const N = Number(process.env.EDGEKIT_NBITS_BENCH_N ?? 2048);
const MS = (process.env.EDGEKIT_NBITS_BENCH_M ?? '1,128').split(',').map(Number);
const BLOCK = 32;

let res: GpuResources;
const plans: Record<string, GpuGraphPlan> = {};
const feeds: Record<number, Record<string, HostTensor>> = {};

function nbitsModel(rng: Rng): Uint8Array {
  const kBlocks = Math.ceil(K / BLOCK);
  const packed = new Uint8Array(N * kBlocks * (BLOCK / 2));
  for (let i = 0; i < packed.length; i++) packed[i] = rng.int(0, 255);
  const zp = new Uint8Array(N * Math.ceil(kBlocks / 2));
  for (let i = 0; i < zp.length; i++) zp[i] = rng.int(0, 255);
  const scales = Array.from({ length: N * kBlocks }, () => rng.uniform(0.005, 0.05));
  return model({
    opset: 21,
    extraOpsets: [{ domain: 'com.microsoft', version: 1 }],
    nodes: [{ op: 'MatMulNBits', domain: 'com.microsoft', inputs: ['A', 'B', 'scales', 'zp'], outputs: ['y'], attrs: [int('K', K), int('N', N), int('bits', 4), int('block_size', BLOCK)] }],
    inputs: [vi('A', 1, ['M', K])],
    initializers: [
      tensorProto('B', tensorFromNumbers('uint8', [N, kBlocks, BLOCK / 2], packed)),
      tensorProto('scales', tensorFromNumbers('float32', [N * kBlocks], scales)),
      tensorProto('zp', tensorFromNumbers('uint8', [zp.length], zp)),
    ],
    outputs: [vi('y', 1)],
  });
}

function floatModel(rng: Rng): Uint8Array {
  const w = new Float32Array(K * N);
  for (let i = 0; i < w.length; i++) w[i] = rng.uniform(-0.1, 0.1);
  return model({
    opset: 17,
    nodes: [{ op: 'MatMul', inputs: ['A', 'W'], outputs: ['y'] }],
    inputs: [vi('A', 1, ['M', K])],
    initializers: [tensorProto('W', tensorFromNumbers('float32', [K, N], w))],
    outputs: [vi('y', 1)],
  });
}

const variants = (m: number): string[] => ['nbits legacy (before)', ...(m <= 4 ? ['nbits gemv'] : ['nbits tiled']), 'nbits auto', 'float32 MatMul'];

beforeAll(async () => {
  res = await gpuForTests();
  const rng = new Rng(7);
  const nb = optimize((await importOnnx(nbitsModel(rng))).graph).graph;
  const fl = optimize((await importOnnx(floatModel(rng))).graph).graph;
  for (const m of MS) {
    feeds[m] = { A: tensorFromNumbers('float32', [m, K], Array.from({ length: m * K }, () => rng.uniform(-1, 1))) };
    for (const name of variants(m)) {
      const form = /nbits (gemv|tiled|direct|legacy)/.exec(name)?.[1] as NBitsForm | undefined;
      setNBitsForm(form);
      const g = specialize(name.startsWith('float') ? fl : nb, { A: [m, K] });
      const t0 = performance.now();
      const plan = await GpuGraphPlan.create(res, g);
      await plan.run(feeds[m]!);
      setNBitsForm(undefined);
      plans[`${name} M=${m}`] = plan;
      const r = plan.report();
      console.log(`M=${m} ${name}: plan + first run ${(performance.now() - t0).toFixed(0)} ms, resident weights ${r.weightBytes} bytes (float32 W: ${K * N * 4}), ${r.pipelines.join(', ')}`);
    }
  }
});
afterAll(() => {
  for (const p of Object.values(plans)) p.dispose();
});

for (const m of MS) {
  describe(`MatMulNBits 4-bit vs float32 MatMul, M=${m} K=${K} N=${N}`, () => {
    for (const name of variants(m)) {
      bench(name, async () => {
        await plans[`${name} M=${m}`]!.run(feeds[m]!);
      }, { iterations: m <= 4 ? 20 : 4, warmupIterations: 1, time: 0 });
    }
  });
}
