import { afterAll, beforeAll, bench, describe } from 'vitest';
import { importOnnx } from '../importers/onnx/index.js';
import { GpuGraphPlan } from '../runtime/backends/webgpu/executor.js';
import { optimize, specialize } from '../runtime/ir/passes/index.js';
import type { HostTensor } from '../runtime/ir/tensor.js';
import { InferenceSession, quantize, Tensor } from '../sdk/node.js';
import { fashion } from '../tests/quantize/fixtures.js';
import { gpuForTests } from '../tests/helpers/webgpu-env.js';

/**
 * The quantizer's int8-dynamic Fashion-MNIST CNN (DynamicQuantizeLinear -> ConvInteger -> Cast -> Mul -> Add, the
 * Gemm as MatMulInteger; tests/quantize/dynamic-conv.test.ts) against the float32 file on this machine's WebGPU
 * adapter (SwiftShader where there is no GPU), batch BATCH, warm: after one run each, RUNS runs alternating float32
 * and int8-dynamic, medians printed with their ratio and each session's resident weight bytes (report().weightBytes);
 * before them each model's cold time (create + first run) and after them GPU time per op and node (profile()).
 * Alongside, the int8-dynamic file planned without the GPU fusions (GpuGraphPlan fuse: false; in that graph only
 * fuse-dynamic-int8.ts has anything to fuse, so this is its before): 'int8-dynamic unfused', timed and profiled in
 * the same alternation, so the fusion's effect is read on one machine state:
 *
 *   npx vitest bench --run bench/int8-dynamic.bench.ts
 *
 * (BENCH_RUNS, BENCH_PROFILES (profiled runs, default 1) and BENCH_BATCH override the counts.) The vitest bench
 * entries time the same runs again.
 */

const BATCH = Number(process.env.BENCH_BATCH ?? 50);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const PROFILES = Number(process.env.BENCH_PROFILES ?? 1);
const sessions: Record<string, InferenceSession> = {};
let unfused: GpuGraphPlan;
let x: Tensor;
let feeds: Record<string, HostTensor>;

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function once(s: InferenceSession): Promise<number> {
  const t0 = performance.now();
  (await s.run({ input: x })).logits!.toHost();
  return performance.now() - t0;
}

async function onceUnfused(): Promise<number> {
  const t0 = performance.now();
  await unfused.run(feeds);
  return performance.now() - t0;
}

beforeAll(async () => {
  const res = await gpuForTests();
  const m = fashion();
  const q = await quantize(m.bytes, { mode: 'int8-dynamic', backend: 'cpu', calibration: m.calibration(20, 2) });
  const t: HostTensor = m.test;
  const per = 784;
  x = new Tensor('float32', (t.data as Float32Array).slice(0, BATCH * per), [BATCH, 1, 28, 28]);
  feeds = { input: x.toHost() };
  // Cold: create (plan, pipeline compiles) and the first run, each model once in this process.
  for (const [k, bytes] of [['float32', m.bytes], ['int8-dynamic', q.model]] as const) {
    const t0 = performance.now();
    sessions[k] = await InferenceSession.create(bytes, { backend: 'webgpu' });
    await once(sessions[k]!);
    console.log(`${k}: cold (create + first run) ${(performance.now() - t0).toFixed(0)} ms`);
  }
  const { graph } = await importOnnx(q.model);
  unfused = await GpuGraphPlan.create(res, specialize(optimize(graph).graph, { input: [...x.dims] }), { fuse: false });
  await onceUnfused();
  const times: Record<string, number[]> = { float32: [], 'int8-dynamic': [], 'int8-dynamic unfused': [] };
  for (let i = 0; i < RUNS; i++) {
    for (const [k, s] of Object.entries(sessions)) times[k]!.push(await once(s));
    times['int8-dynamic unfused']!.push(await onceUnfused());
  }
  for (const [k, s] of Object.entries(sessions)) {
    const kernels = [...new Set(s.report().nodes.flatMap((n) => n.kernels ?? []).filter((q) => /integer|quant-(conv|matmul)/i.test(q)))];
    console.log(`${k}: warm median ${median(times[k]!).toFixed(0)} ms (${times[k]!.map((v) => v.toFixed(0)).join(', ')}), resident weights ${s.report().weightBytes} B${kernels.length ? `; ${kernels.join(' ')}` : ''}`);
  }
  console.log(`int8-dynamic unfused: warm median ${median(times['int8-dynamic unfused']!).toFixed(0)} ms (${times['int8-dynamic unfused']!.map((v) => v.toFixed(0)).join(', ')}), ${unfused.report().dispatches} dispatches against ${sessions['int8-dynamic']!.report().gpu!.dispatches} fused`);
  // GPU time per op and per integer-product node (timestamp queries): medians of PROFILES profiled runs, the
  // contenders alternating.
  type Row = { node: string; op: string; kernel: string; ms: number };
  const profilers: [string, () => Promise<Row[]>][] = [
    ...Object.entries(sessions).map(([k, s]) => [k, () => s.profile({ input: x })] as [string, () => Promise<Row[]>]),
    ['int8-dynamic unfused', async () => (await unfused.profile(feeds)).map((d) => ({ ...d, ms: d.ns / 1e6 }))],
  ];
  const sums: Record<string, Map<string, number[]>> = {};
  for (let r = 0; r < PROFILES; r++) {
    for (const [k, profile] of profilers) {
      const by = new Map<string, number>();
      const add = (key: string, ms: number) => by.set(key, (by.get(key) ?? 0) + ms);
      for (const d of await profile()) {
        add('total', d.ms);
        add(`op ${d.op}`, d.ms);
        // DynamicQuantizeLinear's two passes apart: the one-workgroup range reduction and the quantize.
        if (d.op === 'DynamicQuantizeLinear') add(`pass ${d.kernel.split('|')[0]}`, d.ms);
        if (/^(Conv|ConvInteger|Gemm|MatMulInteger|ConvIntegerToFloat|MatMulIntegerToFloat)$/.test(d.op)) add(`node ${d.node}`, d.ms);
      }
      const m = (sums[k] ??= new Map());
      for (const [key, ms] of by) m.set(key, [...(m.get(key) ?? []), ms]);
    }
  }
  for (const [k, m] of Object.entries(sums)) {
    const med = [...m].map(([key, v]) => [key, median(v)] as const);
    const list = (prefix: string, sort: boolean) => {
      const rows = med.filter(([key]) => key.startsWith(prefix)).map(([key, ms]) => [key.slice(prefix.length), ms] as const);
      return (sort ? rows.sort((a, b) => b[1] - a[1]) : rows).map(([key, ms]) => `${key} ${ms.toFixed(0)}`).join(', ');
    };
    const passes = list('pass ', false);
    console.log(`${k} GPU ms, median of ${PROFILES} profiled runs: total ${median(m.get('total')!).toFixed(0)}; ${list('op ', true)}${passes ? ` (${passes})` : ''}; ${list('node ', false)}`);
  }
  const ratio = (k: string) => (median(times[k]!) / median(times.float32!)).toFixed(2);
  console.log(`int8-dynamic / float32 warm: ${ratio('int8-dynamic')}x (unfused ${ratio('int8-dynamic unfused')}x); resident ${(sessions['int8-dynamic']!.report().weightBytes / sessions.float32!.report().weightBytes).toFixed(3)}x`);
}, 1_800_000);

afterAll(async () => {
  for (const s of Object.values(sessions)) await s.release();
  unfused.dispose();
});

describe(`Fashion CNN, batch ${BATCH}, WebGPU warm`, () => {
  for (const k of ['float32', 'int8-dynamic']) bench(k, async () => void (await once(sessions[k]!)), { iterations: 2, time: 0, warmupIterations: 0 });
});
