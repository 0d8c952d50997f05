import { afterAll, beforeAll, bench, describe } from 'vitest';
import { GpuGraphPlan, type GpuResources } from '../runtime/backends/webgpu/executor.js';
import { importOnnx } from '../importers/onnx/import.js';
import { optimize, specialize } from '../runtime/ir/passes/index.js';
import { tensorFromNumbers, type HostTensor } from '../runtime/ir/tensor.js';
import { attr } from '../tests/helpers/ir-builder.js';
import { encodeModel } from '../tests/helpers/onnx-model.js';
import { Rng, randomTensor } from '../tests/helpers/random.js';
import { gpuForTests } from '../tests/helpers/webgpu-env.js';

/**
 * The fused attention kernel (docs/attention.md) against the unfused chain it replaces, on this machine's WebGPU
 * adapter (SwiftShader where there is no GPU): the torch-style chain MatMul(Q, K^T) -> Mul(scale) -> Add(causal
 * mask) -> Softmax -> MatMul(V) with H = 4 heads of 64, as a prefill (S = T = 512) and as a decode step (S = 1,
 * T = 1024), each planned with every fusion and with none:
 *
 *   npx vitest bench --run bench/attention.bench.ts
 *
 * Each run writes the inputs, encodes every dispatch into one submit and reads Y back. The plans' activation bytes
 * are printed first (the unfused prefill holds the [H, S, T] scores twice over).
 */

const H = 4;
const D = 64;
let res: GpuResources;
const plans: Record<string, GpuGraphPlan> = {};
const feeds: Record<string, Record<string, HostTensor>> = {};

function chain(s: number, t: number) {
  const rng = new Rng(s * 7 + t);
  const q = randomTensor(rng, 'float32', [1, H, s, D]);
  const k = randomTensor(rng, 'float32', [1, H, t, D]);
  const v = randomTensor(rng, 'float32', [1, H, t, D]);
  const mask = tensorFromNumbers('float32', [s, t], Array.from({ length: s * t }, (_, i) => (i % t <= Math.floor(i / t) + t - s ? 0 : -1e9)));
  const bytes = encodeModel({
    nodes: [
      { op: 'Transpose', inputs: ['k'], outputs: ['kt'], attrs: { perm: attr([0, 1, 3, 2]) } },
      { op: 'MatMul', inputs: ['q', 'kt'], outputs: ['scores'] },
      { op: 'Mul', inputs: ['scores', 'scale'], outputs: ['scaled'] },
      { op: 'Add', inputs: ['scaled', 'mask'], outputs: ['masked'] },
      { op: 'Softmax', inputs: ['masked'], outputs: ['p'], attrs: { axis: attr(-1) } },
      { op: 'MatMul', inputs: ['p', 'v'], outputs: ['y'] },
    ],
    inputs: { q, k, v, mask },
    initializers: { scale: tensorFromNumbers('float32', [], [1 / Math.sqrt(D)]) },
    outputs: ['y'],
  });
  return { bytes, feeds: { q, k, v, mask } };
}

beforeAll(async () => {
  res = await gpuForTests();
  for (const [name, s, t] of [['prefill S=T=512', 512, 512], ['decode S=1 T=1024', 1, 1024]] as const) {
    const c = chain(s, t);
    const shapes = Object.fromEntries(Object.entries(c.feeds).map(([k, x]) => [k, x.shape]));
    const g = specialize(optimize((await importOnnx(c.bytes)).graph).graph, shapes);
    plans[`${name} fused`] = await GpuGraphPlan.create(res, g);
    plans[`${name} unfused`] = await GpuGraphPlan.create(res, g, { fuse: false });
    feeds[`${name} fused`] = c.feeds;
    feeds[`${name} unfused`] = c.feeds;
  }
  for (const [k, p] of Object.entries(plans)) {
    await p.run(feeds[k]!);
    console.log(`${k}: ${p.report().dispatches} dispatches, activation arena ${p.report().arenaBytes} bytes`);
  }
});
afterAll(() => {
  for (const p of Object.values(plans)) p.dispose();
});

describe('attention: fused kernel vs the unfused chain', () => {
  for (const name of ['prefill S=T=512 fused', 'prefill S=T=512 unfused', 'decode S=1 T=1024 fused', 'decode S=1 T=1024 unfused']) {
    bench(name, async () => {
      await plans[name]!.run(feeds[name]!);
    }, { iterations: 5, warmupIterations: 1 });
  }
});
