import { afterAll, beforeAll, bench, describe } from 'vitest';
import type { HostTensor } from '../runtime/ir/tensor.js';
import { InferenceSession, quantize, Tensor } from '../sdk/node.js';
import { fashion } from '../tests/quantize/fixtures.js';
import { gpuForTests } from '../tests/helpers/webgpu-env.js';

/**
 * The quantizer's int8-dynamic Fashion-MNIST CNN (DynamicQuantizeLinear -> ConvInteger -> Cast -> Mul -> Add, the
 * Gemm as MatMulInteger; tests/quantize/dynamic-conv.test.ts) against the float32 file on this machine's WebGPU
 * adapter (SwiftShader where there is no GPU), batch BATCH, warm: after one run each, RUNS runs alternating float32
 * and int8-dynamic, medians printed with their ratio and each session's resident weight bytes (report().weightBytes);
 * before them each model's cold time (create + first run) and after them GPU time per op and node (profile()):
 *
 *   npx vitest bench --run bench/int8-dynamic.bench.ts
 *
 * (BENCH_RUNS and BENCH_BATCH override the counts.) The vitest bench entries time the same runs again.
 */

const BATCH = Number(process.env.BENCH_BATCH ?? 50);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const sessions: Record<string, InferenceSession> = {};
let x: Tensor;

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function once(s: InferenceSession): Promise<number> {
  const t0 = performance.now();
  (await s.run({ input: x })).logits!.toHost();
  return performance.now() - t0;
}

beforeAll(async () => {
  await gpuForTests();
  const m = fashion();
  const q = await quantize(m.bytes, { mode: 'int8-dynamic', backend: 'cpu', calibration: m.calibration(20, 2) });
  const t: HostTensor = m.test;
  const per = 784;
  x = new Tensor('float32', (t.data as Float32Array).slice(0, BATCH * per), [BATCH, 1, 28, 28]);
  // Cold: create (plan, pipeline compiles) and the first run, each model once in this process.
  for (const [k, bytes] of [['float32', m.bytes], ['int8-dynamic', q.model]] as const) {
    const t0 = performance.now();
    sessions[k] = await InferenceSession.create(bytes, { backend: 'webgpu' });
    await once(sessions[k]!);
    console.log(`${k}: cold (create + first run) ${(performance.now() - t0).toFixed(0)} ms`);
  }
  const times: Record<string, number[]> = { float32: [], 'int8-dynamic': [] };
  for (let i = 0; i < RUNS; i++) for (const [k, s] of Object.entries(sessions)) times[k]!.push(await once(s));
  for (const [k, s] of Object.entries(sessions)) {
    const kernels = [...new Set(s.report().nodes.flatMap((n) => n.kernels ?? []).filter((q) => /integer|quant-(conv|matmul)/i.test(q)))];
    console.log(`${k}: warm median ${median(times[k]!).toFixed(0)} ms (${times[k]!.map((v) => v.toFixed(0)).join(', ')}), resident weights ${s.report().weightBytes} B${kernels.length ? `; ${kernels.join(' ')}` : ''}`);
  }
  for (const [k, s] of Object.entries(sessions)) {
    // GPU time per op (timestamp queries, one profiled run).
    const byOp = new Map<string, number>();
    const convs: string[] = [];
    for (const d of await s.profile({ input: x })) {
      byOp.set(d.op, (byOp.get(d.op) ?? 0) + d.ms);
      if (/^(Conv|ConvInteger|Gemm|MatMulInteger)$/.test(d.op)) convs.push(`${d.node} ${d.ms.toFixed(0)}`);
    }
    console.log(`${k} profile: ${[...byOp].sort((a, b) => b[1] - a[1]).map(([op, ms]) => `${op} ${ms.toFixed(0)} ms`).join(', ')}; ${convs.join(', ')} ms`);
  }
  console.log(`int8-dynamic / float32 warm: ${(median(times['int8-dynamic']!) / median(times.float32!)).toFixed(2)}x; resident ${(sessions['int8-dynamic']!.report().weightBytes / sessions.float32!.report().weightBytes).toFixed(3)}x`);
}, 1_800_000);

afterAll(async () => {
  for (const s of Object.values(sessions)) await s.release();
});

describe(`Fashion CNN, batch ${BATCH}, WebGPU warm`, () => {
  for (const k of ['float32', 'int8-dynamic']) bench(k, async () => void (await once(sessions[k]!)), { iterations: 2, time: 0, warmupIterations: 0 });
});
