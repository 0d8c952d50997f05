import { beforeAll, describe, expect, it } from 'vitest';
import { GpuGraphPlan, type GpuResources } from '../../runtime/backends/webgpu/executor.js';
import { specializeTrain } from '../../runtime/backends/webgpu/trainer.js';
import type { Attr, Graph } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, tensorToNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { cloneGraph } from '../../runtime/ir/passes/index.js';
import { awayFrom0, checkGradients, n, randomTensor, Rng, type GradCase } from '../train/grad-check.js';
import { gpuForTests } from '../helpers/webgpu-env.js';

/**
 * Finite-difference gradient checks on WebGPU. tests/train/grad-check.ts builds the backward graph, checks the CPU
 * reference against central differences in float64, and returns those numeric gradients; here the same forward
 * and backward graphs run on the GPU (every training op through its WGSL kernel) and the GPU's gradients are held
 * to the numeric ones with the same rule, slightly widened for f32 accumulation order:
 * |gpu - numeric| <= 2e-3 |numeric| + 2e-4 max|numeric| + 1e-5.
 */
let res: GpuResources;
beforeAll(async () => {
  res = await gpuForTests();
});
const rng = new Rng(99);
const r = (shape: number[], lo = -1, hi = 1) => randomTensor(rng, 'float32', shape, { lo, hi });
const int = (value: number): Attr => ({ type: 'int', value });
const ints = (value: number[]): Attr => ({ type: 'ints', value });
const fl = (value: number): Attr => ({ type: 'float', value });
const str = (value: string): Attr => ({ type: 'string', value });

/** Runs `g` on the GPU; `params` become fed inputs (as GpuTrainer binds them), so no GPU work folds away on the host. */
async function runGpu(g: Graph, feeds: Record<string, HostTensor>, fetch: string[], params: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
  const shapes = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, t.shape]));
  const spec = specializeTrain(g, shapes, Object.keys(params));
  const plan = await GpuGraphPlan.create(res, spec);
  try {
    const all = { ...feeds, ...params };
    return await plan.run(Object.fromEntries(spec.inputs.map((i) => [i.name, all[i.name]!])), fetch);
  } finally {
    plan.dispose();
  }
}

async function gpuGradCheck(c: GradCase): Promise<void> {
  const { graphs, numeric } = checkGradients(c);
  const feeds = Object.fromEntries(Object.entries(c.inputs ?? {}).map(([k, [, t]]) => [k, t]));
  const params = c.params ?? {};
  const fwdOut = await runGpu(graphs.forward, feeds, graphs.forward.outputs.map((o) => o.name), params);
  // Saved values the specialized forward folded (shapes) are constants of the backward graph, as in GpuTrainer.
  const backward = cloneGraph(graphs.backward);
  const savedFeeds: Record<string, HostTensor> = {};
  for (const v of graphs.saved) {
    const t = fwdOut[v] ?? feeds[v]!;
    if (t.dtype === 'int64') {
      backward.inputs = backward.inputs.filter((i) => i.name !== v);
      backward.initializers[v] = t;
    } else savedFeeds[v] = t;
  }
  const wrt = Object.keys(numeric);
  const out = await runGpu(backward, savedFeeds, wrt.map((w) => graphs.grads[w]!), params);
  for (const w of wrt) {
    const num = numeric[w]!;
    const got = tensorToNumbers(out[graphs.grads[w]!]!);
    const scale = num.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    for (let j = 0; j < num.length; j++) {
      const tol = 2e-3 * Math.abs(num[j]!) + 2e-4 * scale + 1e-5;
      if (!(Math.abs(got[j]! - num[j]!) <= tol)) expect.fail(`GPU d loss / d ${w}[${j}]: ${got[j]} vs finite differences ${num[j]} (tol ${tol.toExponential(2)})`);
    }
  }
}

describe('gradients on WebGPU against finite differences', () => {
  it('Gelu (GeluGrad), exact and tanh', async () => {
    for (const approximate of ['none', 'tanh']) {
      await gpuGradCheck({ params: { x: awayFrom0(rng, [2, 3, 5], 0.05, 2) }, nodes: [n('Gelu', ['x'], ['y'], { approximate: str(approximate) })], output: 'y' });
    }
  });
  it('Clip (ReLU6): comparison, And and Where kernels', async () => {
    const x = tensorFromNumbers('float32', [2, 4], [-2.5, -0.7, 0.4, 1.9, 3.3, 5.2, 6.8, 9.1]);
    const consts = { lo: tensorFromNumbers('float32', [], [0]), hi: tensorFromNumbers('float32', [], [6]) };
    await gpuGradCheck({ params: { x }, consts, nodes: [n('Clip', ['x', 'lo', 'hi'], ['y'])], output: 'y' });
  });
  it('Softmax and LogSoftmax (SoftmaxGrad)', async () => {
    await gpuGradCheck({ params: { x: r([3, 7], -2, 2) }, nodes: [n('Softmax', ['x'], ['y'], { axis: int(1) })], output: 'y' });
    await gpuGradCheck({ params: { x: r([4, 3], -2, 2) }, nodes: [n('LogSoftmax', ['x'], ['y'], { axis: int(0) })], output: 'y' });
  });
  it('Conv: plain, strided with padding, grouped, depthwise, 1x1 (ConvGradInput, ConvGradWeight)', async () => {
    const cases: [number[], number[], Record<string, Attr>][] = [
      [[2, 3, 5, 5], [4, 3, 3, 3], {}],
      [[1, 2, 7, 6], [3, 2, 3, 2], { strides: ints([2, 2]), pads: ints([1, 0, 1, 1]), dilations: ints([1, 2]) }],
      [[2, 4, 4, 4], [4, 2, 3, 3], { group: int(2), pads: ints([1, 1, 1, 1]) }],
      [[2, 3, 5, 5], [3, 1, 3, 3], { group: int(3), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) }],
      [[2, 5, 3, 3], [2, 5, 1, 1], {}],
    ];
    for (const [x, w, attrs] of cases) {
      await gpuGradCheck({ inputs: { x: [x, r(x)] }, params: { w: r(w), b: r([w[0]!]) }, nodes: [n('Conv', ['x', 'w', 'b'], ['y'], attrs)], output: 'y' });
    }
  });
  it('BatchNormalization and LayerNormalization (BatchNormGrad, LayerNormGrad)', async () => {
    await gpuGradCheck({
      inputs: { x: [[2, 3, 2, 2], r([2, 3, 2, 2])] },
      params: { s: r([3]), b: r([3]) },
      consts: { m: r([3]), v: r([3], 0.5, 2) },
      nodes: [n('BatchNormalization', ['x', 's', 'b', 'm', 'v'], ['y'], { epsilon: fl(1e-3) })],
      output: 'y',
    });
    await gpuGradCheck({ inputs: { x: [[3, 5], r([3, 5], -2, 2)] }, params: { s: r([5]), b: r([5]) }, nodes: [n('LayerNormalization', ['x', 's', 'b'], ['y'])], output: 'y' });
    await gpuGradCheck({ inputs: { x: [[2, 3, 4], r([2, 3, 4], -2, 2)] }, params: { s: r([1, 4]) }, nodes: [n('LayerNormalization', ['x', 's'], ['y'], { axis: int(1), epsilon: fl(1e-4) })], output: 'y' });
  });
  it('MaxPool and AveragePool (MaxPoolGrad, AveragePoolGrad)', async () => {
    await gpuGradCheck({ inputs: { x: [[1, 2, 5, 5], r([1, 2, 5, 5])] }, nodes: [n('MaxPool', ['x'], ['y'], { kernel_shape: ints([2, 2]), strides: ints([2, 2]), ceil_mode: int(1) })], output: 'y' });
    await gpuGradCheck({ inputs: { x: [[2, 2, 5, 4], r([2, 2, 5, 4])] }, nodes: [n('AveragePool', ['x'], ['y'], { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]), strides: ints([2, 1]) })], output: 'y' });
  });
  it('broadcast with a symbolic dim (SumToShape)', async () => {
    await gpuGradCheck({ inputs: { x: [['a', 3], r([1, 3])], z: [['b', 3], r([2, 3])] }, nodes: [n('Mul', ['x', 'z'], ['y'])], output: 'y' });
  });
  it('losses: CrossEntropyLoss (indices, smoothing; probabilities) and BCEWithLogitsLoss', async () => {
    const i64 = (v: number[]) => tensorFromNumbers('int64', [v.length], v);
    const ce = (attrs: Record<string, Attr>, t: HostTensor, shape: number[]) =>
      gpuGradCheck({ params: { x: r(shape, -2, 2) }, consts: { t }, nodes: [n('CrossEntropyLoss', ['x', 't'], ['l'], attrs, 'edgekit.train')], output: 'l', lossIsOutput: true });
    await ce({ label_smoothing: fl(0.1) }, i64([2, 0, 1]), [3, 4]);
    await ce({ reduction: str('sum'), ignore_index: int(1) }, i64([2, 1, 3, 0]), [4, 5]);
    await ce({}, r([2, 3], 0, 1), [2, 3]);
    await gpuGradCheck({ params: { x: r([3, 4], -3, 3) }, consts: { t: r([3, 4], 0, 1) }, nodes: [n('BCEWithLogitsLoss', ['x', 't'], ['l'], {}, 'edgekit.train')], output: 'l', lossIsOutput: true });
  });
  it('Dropout in training mode (SeededDropout) through a small MLP', async () => {
    await gpuGradCheck({
      inputs: { x: [[4, 6], r([4, 6])], seed: [[], tensorFromNumbers('uint32', [], [17])] },
      params: { w: r([6, 5]), b: r([5]) },
      consts: { ratio: tensorFromNumbers('float32', [], [0.3]) },
      nodes: [
        n('Gemm', ['x', 'w', 'b'], ['h']),
        n('SeededDropout', ['h', 'ratio', 'seed'], ['y', 'mask'], { salt: int(1) }, 'edgekit.train'),
      ],
      output: 'y',
    });
  });
});
