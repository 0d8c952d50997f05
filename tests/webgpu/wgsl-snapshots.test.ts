import { describe, expect, it } from 'vitest';
import { GPU_KERNELS } from '../../runtime/backends/webgpu/kernels/index.js';
import { EW_OPS } from '../../runtime/backends/webgpu/kernels/elementwise-ops.js';
import { generateSource } from '../../runtime/backends/webgpu/pipeline-cache.js';
import { fullKey, type GpuTensorInfo, type KernelEnv } from '../../runtime/backends/webgpu/program.js';
import { storageFor } from '../../runtime/backends/webgpu/storage.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Node } from '../../runtime/ir/graph.js';
import { OP_SCHEMAS } from '../../runtime/ir/ops/index.js';
import { tensorFromNumbers } from '../../runtime/ir/tensor.js';
import { SNAPSHOT_ENV } from '../helpers/snapshot-env.js';
import { attr, node } from '../helpers/ir-builder.js';

/**
 * The generated WGSL of each kernel key, snapshot-tested so a refactor shows its diff. Keys, not shapes, decide the
 * source: each case below is one representative shape of a key.
 */
const ENV = SNAPSHOT_ENV;

type Spec = [DType, number[], number[]?];

/** The WGSL (by full key) of every program the kernel plans for `n` on inputs of these dtypes and shapes. */
export function sourcesFor(n: Node, inputs: (Spec | undefined)[], env: KernelEnv = ENV): [string, string][] {
  const infos = inputs.map((s): GpuTensorInfo | undefined =>
    s && { dtype: s[0], shape: s[1], storage: storageFor(s[0], ENV.f16, true), ...(s[2] ? { value: tensorFromNumbers(s[0], s[1], s[2]) } : {}) });
  const outs = OP_SCHEMAS[n.op]!.infer({
    node: n,
    inputs: infos.map((i) => i && { dtype: i.dtype, shape: i.shape, value: i.value }),
    symbol: (h) => h,
  });
  const outputs = outs.map((o) => ({ dtype: o.dtype, shape: o.shape as number[], storage: storageFor(o.dtype, ENV.f16, false) }));
  const plan = GPU_KERNELS[n.op]!.plan(n, infos, outputs, env);
  return plan.calls.map((c) => [fullKey(c.program), generateSource(c.program, ENV.f16)]);
}

function snapshotAll(cases: [string, Node, (Spec | undefined)[]][], env: KernelEnv = ENV): void {
  for (const [title, n, inputs] of cases) {
    it(title, () => {
      for (const [key, src] of sourcesFor(n, inputs, env)) expect(src).toMatchSnapshot(key);
    });
  }
}

describe('elementwise WGSL', () => {
  const cases: [string, Node, (Spec | undefined)[]][] = [];
  for (const [op, def] of Object.entries(EW_OPS)) {
    const dtype: DType = def.kinds.includes('f') ? 'float32' : def.kinds.includes('i') ? 'int32' : def.kinds.includes('u') ? 'uint32' : 'bool';
    const n = Math.max(def.arity[0], Math.min(def.arity[1], 2));
    const ins: Spec[] = Array.from({ length: n }, (_, i) => [dtype, i === 0 ? [3, 8] : [8]]);
    if (def.condFirst) ins.splice(0, 1, ['bool', [3, 8]], ['float32', [8]]);
    if (op === 'Clip') ins.splice(1, 1, ['float32', []], ['float32', []]);
    const attrs: Record<string, ReturnType<typeof attr>> = op === 'Mod' ? { fmod: attr(1) } : op === 'BitShift' ? { direction: attr('LEFT') } : {};
    cases.push([`${op} (broadcast, vec4)`, node(op, ins.map((_, i) => `x${i}`), ['y'], attrs), ins]);
  }
  cases.push(
    ['Add flat vec4', node('Add', ['a', 'b'], ['y']), [['float32', [4, 8]], ['float32', [4, 8]]]],
    ['Add flat scalar', node('Add', ['a', 'b'], ['y']), [['float32', [5]], ['float32', [5]]]],
    ['Add rank-3 scalar broadcast', node('Add', ['a', 'b'], ['y']), [['float32', [2, 3, 5]], ['float32', [3, 1]]]],
    ['Add packed float16', node('Add', ['a', 'b'], ['y']), [['float16', [3, 8]], ['float16', [3, 8]]]],
    ['Add int32', node('Add', ['a', 'b'], ['y']), [['int32', [3, 5]], ['int32', [5]]]],
    ['Gelu tanh', node('Gelu', ['x'], ['y'], { approximate: attr('tanh') }), [['float32', [16]]]],
    ['Pow int32', node('Pow', ['a', 'b'], ['y']), [['int32', [16]], ['int32', [16]]]],
    ['Sum of 9 (chained)', node('Sum', Array.from({ length: 9 }, (_, i) => `x${i}`), ['y']), Array.from({ length: 9 }, (): Spec => ['float32', [4]])],
  );
  snapshotAll(cases);
});

describe('matrix WGSL', () => {
  const act = (op: string, extra: Record<string, ReturnType<typeof attr>> = {}) => ({ activation: attr(op), ...extra });
  snapshotAll([
    ['MatMul big tiles', node('MatMul', ['a', 'b'], ['y']), [['float32', [128, 64]], ['float32', [64, 96]]]],
    ['MatMul one row', node('MatMul', ['a', 'b'], ['y']), [['float32', [1, 64]], ['float32', [64, 96]]]],
    ['MatMul batched broadcast', node('MatMul', ['a', 'b'], ['y']), [['float32', [2, 1, 8, 5]], ['float32', [3, 5, 6]]]],
    ['MatMul int32', node('MatMul', ['a', 'b'], ['y']), [['int32', [8, 5]], ['int32', [5, 6]]]],
    ['Gemm transB with C and Relu', node('Gemm', ['a', 'b', 'c'], ['y'], { transB: attr(1), ...act('Relu') }), [['float32', [16, 32]], ['float32', [10, 32]], ['float32', [10]]]],
    ['Gemm packed float16', node('Gemm', ['a', 'b'], ['y']), [['float16', [16, 32]], ['float16', [32, 10]]]],
    ['Conv 3x3 (implicit GEMM) + bias + Clip', node('Conv', ['x', 'w', 'b'], ['y'], { pads: attr([1, 1, 1, 1]), ...act('Clip', { activation_min: attr(0, true), activation_max: attr(6, true) }) }), [['float32', [1, 8, 16, 16]], ['float32', [16, 8, 3, 3]], ['float32', [16]]]],
    ['Conv 1x1 (GEMM)', node('Conv', ['x', 'w'], ['y']), [['float32', [1, 16, 8, 8]], ['float32', [32, 16, 1, 1]]]],
    ['Conv depthwise + HardSwish', node('Conv', ['x', 'w', 'b'], ['y'], { group: attr(8), pads: attr([1, 1, 1, 1]), ...act('HardSwish') }), [['float32', [1, 8, 9, 9]], ['float32', [8, 1, 3, 3]], ['float32', [8]]]],
  ]);
  // The CPU-adapter kernels (GpuContext.cpuAdapter): direct, barrier-free products, with a fused residual.
  snapshotAll([
    ['Conv 1x1 direct (CPU adapter) + bias + residual + Relu', node('Conv', ['x', 'w', 'b', 'r'], ['y'], { residual: attr(1), ...act('Relu') }), [['float32', [1, 16, 8, 8]], ['float32', [32, 16, 1, 1]], ['float32', [32]], ['float32', [1, 32, 8, 8]]]],
    ['Conv 3x3 direct (CPU adapter, implicit GEMM)', node('Conv', ['x', 'w'], ['y'], { pads: attr([1, 1, 1, 1]) }), [['float32', [1, 3, 16, 16]], ['float32', [8, 3, 3, 3]]]],
  ], { ...ENV, cpuAdapter: true });
});

describe('pool, reduction and normalization WGSL', () => {
  const k = { kernel_shape: attr([3, 3]), pads: attr([1, 1, 1, 1]) };
  snapshotAll([
    ['MaxPool with indices', node('MaxPool', ['x'], ['y', 'i'], k), [['float32', [1, 2, 8, 8]]]],
    ['AveragePool count_include_pad', node('AveragePool', ['x'], ['y'], { ...k, count_include_pad: attr(1) }), [['float32', [1, 2, 8, 8]]]],
    ['LpPool p=2', node('LpPool', ['x'], ['y'], k), [['float32', [1, 2, 8, 8]]]],
    ['ReduceSum short rows', node('ReduceSum', ['x', 'axes'], ['y']), [['float32', [4, 5, 6]], ['int64', [1], [1]]]],
    ['ReduceMean long strided rows', node('ReduceMean', ['x', 'axes'], ['y']), [['float32', [40, 3, 8]], ['int64', [2], [0, 2]]]],
    ['ReduceLogSumExp long rows', node('ReduceLogSumExp', ['x', 'axes'], ['y']), [['float32', [2, 500]], ['int64', [1], [1]]]],
    ['ReduceMax int32', node('ReduceMax', ['x'], ['y']), [['int32', [3, 4]]]],
    ['ArgMax last index', node('ArgMax', ['x'], ['y'], { axis: attr(1), select_last_index: attr(1) }), [['float32', [3, 7]]]],
    ['CumSum exclusive reverse', node('CumSum', ['x', 'axis'], ['y'], { exclusive: attr(1), reverse: attr(1) }), [['float32', [3, 7]], ['int64', [], [1]]]],
    ['Softmax long rows', node('Softmax', ['x'], ['y']), [['float32', [2, 1000]]]],
    ['LogSoftmax middle axis', node('LogSoftmax', ['x'], ['y'], { axis: attr(1) }), [['float32', [2, 10, 3]]]],
    ['Hardmax', node('Hardmax', ['x'], ['y']), [['float32', [4, 10]]]],
    ['LayerNormalization with statistics', node('LayerNormalization', ['x', 's', 'b'], ['y', 'mean', 'inv_std']), [['float32', [8, 768]], ['float32', [768]], ['float32', [768]]]],
    ['InstanceNormalization', node('InstanceNormalization', ['x', 's', 'b'], ['y']), [['float32', [1, 4, 5, 5]], ['float32', [4]], ['float32', [4]]]],
    ['GroupNormalization', node('GroupNormalization', ['x', 's', 'b'], ['y'], { num_groups: attr(2) }), [['float32', [1, 4, 16, 16]], ['float32', [4]], ['float32', [4]]]],
    ['BatchNormalization', node('BatchNormalization', ['x', 's', 'b', 'm', 'v'], ['y']), [['float32', [1, 4, 5, 5]], ['float32', [4]], ['float32', [4]], ['float32', [4]], ['float32', [4]]]],
  ]);
});

describe('data movement WGSL', () => {
  snapshotAll([
    ['Reshape (flat copy)', node('Reshape', ['x', 's'], ['y']), [['float32', [2, 3, 4]], ['int64', [2], [4, 6]]]],
    ['Transpose', node('Transpose', ['x'], ['y'], { perm: attr([0, 2, 1]) }), [['float32', [2, 3, 4]]]],
    ['Concat (strided destination)', node('Concat', ['a', 'b'], ['y'], { axis: attr(1) }), [['float32', [2, 3]], ['float32', [2, 4]]]],
    ['Slice negative step', node('Slice', ['x', 's', 'e', 'a', 'p'], ['y']), [['float32', [6, 5]], ['int64', [1], [-1]], ['int64', [1], [-100]], ['int64', [1], [1]], ['int64', [1], [-2]]]],
    ['Gather', node('Gather', ['x', 'i'], ['y'], { axis: attr(1) }), [['float32', [3, 5]], ['int64', [2]]]],
    ['GatherElements', node('GatherElements', ['x', 'i'], ['y'], { axis: attr(0) }), [['float32', [3, 5]], ['int64', [2, 5]]]],
    ['Pad reflect', node('Pad', ['x', 'p'], ['y'], { mode: attr('reflect') }), [['float32', [4, 5]], ['int64', [4], [1, 2, 2, 1]]]],
    ['Pad constant', node('Pad', ['x', 'p'], ['y']), [['float32', [4, 5]], ['int64', [4], [1, 2, 2, 1]]]],
    ['Cast float32 -> float16 (rounded in f32)', node('Cast', ['x'], ['y'], { to: attr('float16') }), [['float32', [7]]]],
    ['Cast float32 -> uint8', node('Cast', ['x'], ['y'], { to: attr('uint8') }), [['float32', [7]]]],
  ]);
});

describe('resampling and selection WGSL', () => {
  snapshotAll([
    ['ConvTranspose + bias', node('ConvTranspose', ['x', 'w', 'b'], ['y'], { strides: attr([2, 2]) }), [['float32', [1, 4, 5, 5]], ['float32', [4, 2, 3, 3]], ['float32', [2]]]],
    ['Resize nearest', node('Resize', ['x', '', 's'], ['y']), [['float32', [1, 2, 4, 4]], undefined, ['float32', [4], [1, 1, 2, 2]]]],
    ['Resize linear', node('Resize', ['x', '', 's'], ['y'], { mode: attr('linear') }), [['float32', [1, 2, 4, 4]], undefined, ['float32', [4], [1, 1, 2, 2]]]],
    ['TopK largest', node('TopK', ['x', 'k'], ['v', 'i']), [['float32', [2, 10]], ['int64', [1], [3]]]],
  ]);
});

describe('recurrent WGSL', () => {
  // One step (T = 1), so each key appears once: projection GEMM, init, step(s), finish. W and R are values (the
  // kernel transposes them into plan-time tables).
  const strs = (v: string[]) => ({ type: 'strings' as const, value: v });
  const w = (shape: number[]): Spec => ['float32', shape, new Array<number>(shape.reduce((a, b) => a * b, 1)).fill(0.5)];
  snapshotAll([
    ['RNN forward', node('RNN', ['x', 'w', 'r'], ['y', 'yh'], { hidden_size: attr(4) }), [['float32', [1, 2, 3]], w([1, 4, 3]), w([1, 4, 4])]],
    ['GRU bidirectional, bias, sequence_lens, activations', node('GRU', ['x', 'w', 'r', 'b', 'l'], ['y', 'yh'], { hidden_size: attr(4), direction: attr('bidirectional'), activations: strs(['HardSigmoid', 'Tanh', 'Sigmoid', 'Softsign']) }),
      [['float32', [1, 4, 3]], w([2, 12, 3]), w([2, 12, 4]), ['float32', [2, 24]], ['int32', [4], [1, 1, 0, 1]]]],
    ['GRU linear_before_reset, clip', node('GRU', ['x', 'w', 'r', 'b'], ['y', 'yh'], { hidden_size: attr(4), linear_before_reset: attr(1), clip: attr(1.5, true) }),
      [['float32', [1, 2, 3]], w([1, 12, 3]), w([1, 12, 4]), ['float32', [1, 24]]]],
    ['LSTM peepholes, initial state, input_forget', node('LSTM', ['x', 'w', 'r', 'b', '', 'h0', 'c0', 'p'], ['y', 'yh', 'yc'], { hidden_size: attr(4), input_forget: attr(1) }),
      [['float32', [1, 2, 3]], w([1, 16, 3]), w([1, 16, 4]), ['float32', [1, 32]], undefined, ['float32', [1, 2, 4]], ['float32', [1, 2, 4]], ['float32', [1, 12]]]],
  ]);
});

describe('indexing, loss, signal and vision WGSL', () => {
  snapshotAll([
    ['GatherND', node('GatherND', ['x', 'i'], ['y']), [['float32', [4, 5, 3]], ['int64', [6, 2]]]],
    ['ScatterND none (copy, write)', node('ScatterND', ['x', 'i', 'u'], ['y']), [['float32', [5, 4]], ['int64', [3, 1]], ['float32', [3, 4]]]],
    ['ScatterND add', node('ScatterND', ['x', 'i', 'u'], ['y'], { reduction: attr('add') }), [['float32', [5, 4]], ['int64', [3, 1]], ['float32', [3, 4]]]],
    ['ScatterElements max', node('ScatterElements', ['x', 'i', 'u'], ['y'], { axis: attr(1), reduction: attr('max') }), [['float32', [3, 5]], ['int64', [3, 2]], ['float32', [3, 2]]]],
    ['ScatterElements none (copy, write)', node('ScatterElements', ['x', 'i', 'u'], ['y'], { axis: attr(1) }), [['float32', [3, 5]], ['int64', [3, 2]], ['float32', [3, 2]]]],
    ['OneHot', node('OneHot', ['i', 'd', 'v'], ['y']), [['int64', [4]], ['int64', [], [6]], ['float32', [2]]]],
    ['EyeLike', node('EyeLike', ['x'], ['y'], { k: attr(1) }), [['float32', [3, 4]]]],
    ['Trilu lower', node('Trilu', ['x', 'k'], ['y'], { upper: attr(0) }), [['float32', [2, 3, 4]], ['int64', [], [1]]]],
    ['Einsum contraction', node('Einsum', ['a', 'b'], ['y'], { equation: attr('bii,kb->ki') }), [['float32', [2, 3, 3]], ['float32', [4, 2]]]],
    ['Einsum as MatMul', node('Einsum', ['a', 'b'], ['y'], { equation: attr('bji,bjk->bik') }), [['float32', [2, 4, 3]], ['float32', [2, 4, 5]]]],
    ['NegativeLogLikelihoodLoss mean', node('NegativeLogLikelihoodLoss', ['x', 't', 'w'], ['y'], { reduction: attr('mean') }), [['float32', [3, 5]], ['int64', [3]], ['float32', [5]]]],
    ['SoftmaxCrossEntropyLoss none with log_prob', node('SoftmaxCrossEntropyLoss', ['x', 't'], ['y', 'lp'], { reduction: attr('none') }), [['float32', [3, 5, 2]], ['int64', [3, 2]]]],
    ['MeanVarianceNormalization', node('MeanVarianceNormalization', ['x'], ['y']), [['float32', [2, 3, 4, 5]]]],
    ['LRN', node('LRN', ['x'], ['y'], { size: attr(3) }), [['float32', [1, 4, 3, 3]]]],
    ['ReverseSequence', node('ReverseSequence', ['x', 'l'], ['y']), [['float32', [4, 3, 2]], ['int64', [3]]]],
    ['Det', node('Det', ['x'], ['y']), [['float32', [2, 3, 3]]]],
    ['MaxUnpool', node('MaxUnpool', ['x', 'i'], ['y'], { kernel_shape: attr([2, 2]), strides: attr([2, 2]) }), [['float32', [1, 1, 2, 2]], ['int64', [1, 1, 2, 2]]]],
    ['GridSample bicubic reflection', node('GridSample', ['x', 'g'], ['y'], { mode: attr('bicubic'), padding_mode: attr('reflection') }), [['float32', [1, 2, 4, 4]], ['float32', [1, 3, 3, 2]]]],
    ['GridSample linear 3-D', node('GridSample', ['x', 'g'], ['y'], { mode: attr('linear') }), [['float32', [1, 2, 3, 4, 4]], ['float32', [1, 2, 3, 3, 3]]]],
    ['RoiAlign avg', node('RoiAlign', ['x', 'r', 'b'], ['y']), [['float32', [1, 2, 5, 5]], ['float32', [2, 4]], ['int64', [2]]]],
    ['HannWindow', node('HannWindow', ['n'], ['y']), [['int64', [], [8]]]],
    ['DFT real', node('DFT', ['x'], ['y']), [['float32', [2, 8, 1]]]],
    ['STFT with window', node('STFT', ['x', 's', 'w'], ['y']), [['float32', [1, 32, 1]], ['int64', [], [4]], ['float32', [8]]]],
    ['MelWeightMatrix', node('MelWeightMatrix', ['m', 'd', 's', 'l', 'h'], ['y']), [['int64', [], [4]], ['int64', [], [16]], ['int64', [], [8000]], ['float32', [], [0]], ['float32', [], [4000]]]],
  ]);
});
