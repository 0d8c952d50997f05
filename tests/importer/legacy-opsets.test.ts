import { describe, expect, it } from 'vitest';
import { importOnnx } from '../../importers/onnx/index.js';
import { runGraphCpu } from '../../runtime/backends/cpu/executor.js';
import { UnsupportedOpError } from '../../runtime/errors.js';
import type { DType } from '../../runtime/ir/dtype.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { randomTensor, Rng } from '../helpers/random.js';
import { float, floats, int, ints, model, nodeModel, str, vi, type PAttr, type ValueSpec } from './model-builder.js';
import { checkAgainstOrt } from './ort-check.js';

/**
 * Old op versions (opsets 7..20) whose form differs from the newest one: each case is a one-node model at that
 * opset, run in onnxruntime-node as the reference, then imported (rewritten into the newest form) and run on the
 * CPU backend, and exported back to ONNX (opset 21) and run in onnxruntime again.
 */

const rng = new Rng(7);
const rand = (shape: number[], dtype: DType = 'float32', lo = -2, hi = 2): HostTensor => randomTensor(rng, dtype, shape, { lo, hi });
const feed = (name: string, value: HostTensor, as: ValueSpec['as'] = 'feed'): ValueSpec => ({ name, value, as });
const init = (name: string, value: HostTensor): ValueSpec => ({ name, value, as: 'init' });
const f32 = (values: number[], shape = [values.length]) => tensorFromNumbers('float32', shape, values);
const i64 = (values: number[], shape = [values.length]) => tensorFromNumbers('int64', shape, values);
const out = (name = 'y', elemType = 1) => ({ name, elemType });

interface Case {
  name: string;
  op: string;
  opset: number;
  attrs?: PAttr[];
  inputs: (ValueSpec | '')[];
  outputs?: { name: string; elemType?: number }[];
  /** IR ops the import must produce (checks the rewrite took the intended path). */
  irOps?: string[];
}

const x3 = rand([2, 3, 4]);
const x4 = rand([1, 2, 3, 4]);

const CASES: Case[] = [
  // ---- attribute → input moves ----
  { name: 'Squeeze-11 axes attr', op: 'Squeeze', opset: 11, attrs: [ints('axes', [-2])], inputs: [feed('x', rand([1, 3, 1, 2]))], irOps: ['Squeeze'] },
  { name: 'Squeeze-7 no axes', op: 'Squeeze', opset: 7, inputs: [feed('x', rand([1, 3, 1, 2]))] },
  { name: 'Unsqueeze-11 axes attr', op: 'Unsqueeze', opset: 11, attrs: [ints('axes', [0, -1])], inputs: [feed('x', rand([3, 2]))] },
  { name: 'Unsqueeze-7 axes attr', op: 'Unsqueeze', opset: 7, attrs: [ints('axes', [1])], inputs: [feed('x', rand([3, 2]))] },
  { name: 'ReduceSum-11 axes keepdims=0', op: 'ReduceSum', opset: 11, attrs: [ints('axes', [1]), int('keepdims', 0)], inputs: [feed('x', x3)] },
  { name: 'ReduceSum-7 all axes', op: 'ReduceSum', opset: 7, inputs: [feed('x', x3)] },
  { name: 'ReduceMean-13 negative axes', op: 'ReduceMean', opset: 13, attrs: [ints('axes', [-1])], inputs: [feed('x', x3)] },
  { name: 'ReduceMax-12 all axes', op: 'ReduceMax', opset: 12, inputs: [feed('x', x3)] },
  { name: 'ReduceMin-11 axes', op: 'ReduceMin', opset: 11, attrs: [ints('axes', [0, 2])], inputs: [feed('x', x3)] },
  { name: 'ReduceProd-7', op: 'ReduceProd', opset: 7, attrs: [ints('axes', [2])], inputs: [feed('x', x3)] },
  { name: 'ReduceL1-13', op: 'ReduceL1', opset: 13, attrs: [ints('axes', [1])], inputs: [feed('x', x3)] },
  { name: 'ReduceL2-17', op: 'ReduceL2', opset: 17, attrs: [ints('axes', [0, 2]), int('keepdims', 0)], inputs: [feed('x', x3)] },
  { name: 'ReduceLogSum-11', op: 'ReduceLogSum', opset: 11, attrs: [ints('axes', [1])], inputs: [feed('x', rand([2, 3, 4], 'float32', 0.5, 2))] },
  { name: 'ReduceLogSumExp-11', op: 'ReduceLogSumExp', opset: 11, attrs: [ints('axes', [2])], inputs: [feed('x', x3)] },
  { name: 'ReduceSumSquare-13', op: 'ReduceSumSquare', opset: 13, attrs: [ints('axes', [0])], inputs: [feed('x', x3)] },
  {
    name: 'Split-11 split attr', op: 'Split', opset: 11, attrs: [int('axis', 2), ints('split', [1, 3])], inputs: [feed('x', x3)],
    outputs: [out('a'), out('b')],
  },
  { name: 'Split-7 equal parts', op: 'Split', opset: 7, attrs: [int('axis', 1)], inputs: [feed('x', rand([2, 6]))], outputs: [out('a'), out('b'), out('c')] },
  { name: 'Split-13 equal parts (no split input)', op: 'Split', opset: 13, attrs: [int('axis', -1)], inputs: [feed('x', x3)], outputs: [out('a'), out('b')] },
  {
    name: 'Split-13 split input', op: 'Split', opset: 13, attrs: [int('axis', 2)], inputs: [feed('x', x3), init('split', i64([3, 1]))],
    outputs: [out('a'), out('b')],
  },
  {
    name: 'Slice-9 attrs with INT64_MAX end and negative start', op: 'Slice', opset: 9,
    attrs: [ints('starts', [-3, 1]), { name: 'ends', type: 7, ints: ['9223372036854775807', 3] as never }, ints('axes', [2, 1])], inputs: [feed('x', x3)],
  },
  { name: 'Slice-7 attrs without axes', op: 'Slice', opset: 7, attrs: [ints('starts', [1, 0]), ints('ends', [2, -1])], inputs: [feed('x', x3)] },
  { name: 'Pad-10 constant value', op: 'Pad', opset: 10, attrs: [ints('pads', [0, 1, 2, 0, 2, 1]), float('value', 1.5)], inputs: [feed('x', x3)] },
  { name: 'Pad-7 reflect', op: 'Pad', opset: 7, attrs: [str('mode', 'reflect'), ints('pads', [0, 0, 1, 2, 0, 0, 2, 1])], inputs: [feed('x', x4)] },
  { name: 'Pad-10 edge', op: 'Pad', opset: 10, attrs: [str('mode', 'edge'), ints('pads', [1, 0, 2, 0, 1, 3])], inputs: [feed('x', x3)] },
  { name: 'Clip-7 min and max', op: 'Clip', opset: 7, attrs: [float('min', -0.5), float('max', 0.75)], inputs: [feed('x', x3)] },
  { name: 'Clip-10 min only', op: 'Clip', opset: 10, attrs: [float('min', 0.1)], inputs: [feed('x', x3)] },
  { name: 'Clip-10 max only', op: 'Clip', opset: 10, attrs: [float('max', 0.25)], inputs: [feed('x', rand([5]))] },
  { name: 'Clip-10 no bounds', op: 'Clip', opset: 10, inputs: [feed('x', x3)] },
  { name: 'TopK-9 k attr', op: 'TopK', opset: 9, attrs: [int('k', 2), int('axis', 1)], inputs: [feed('x', x3)], outputs: [out('v'), out('i', 7)] },
  { name: 'TopK-7 default axis', op: 'TopK', opset: 7, attrs: [int('k', 3)], inputs: [feed('x', x3)], outputs: [out('v'), out('i', 7)] },
  // ---- normalization / dropout ----
  { name: 'Dropout-11 output only', op: 'Dropout', opset: 11, attrs: [float('ratio', 0.1)], inputs: [feed('x', x3)] },
  {
    name: 'BatchNormalization-7 spatial', op: 'BatchNormalization', opset: 7, attrs: [float('epsilon', 1e-3), float('momentum', 0.8)],
    inputs: [feed('x', x4), init('s', rand([2])), init('b', rand([2])), init('m', rand([2])), init('v', rand([2], 'float32', 0.5, 2))],
  },
  {
    name: 'BatchNormalization-7 spatial=0 (per activation)', op: 'BatchNormalization', opset: 7, attrs: [int('spatial', 0)],
    inputs: [feed('x', x4), init('s', rand([2, 3, 4])), init('b', rand([2, 3, 4])), init('m', rand([2, 3, 4])), init('v', rand([2, 3, 4], 'float32', 0.5, 2))],
    irOps: ['Add', 'Sqrt', 'Sub', 'Div', 'Mul', 'Add'],
  },
  {
    name: 'BatchNormalization-9', op: 'BatchNormalization', opset: 9,
    inputs: [feed('x', x3), init('s', rand([3])), init('b', rand([3])), init('m', rand([3])), init('v', rand([3], 'float32', 0.5, 2))],
  },
  // ---- softmax family: opset < 13 coerces to 2-D at axis ----
  { name: 'Softmax-11 axis=1 of rank 3 (coerced)', op: 'Softmax', opset: 11, attrs: [int('axis', 1)], inputs: [feed('x', x3)], irOps: ['Flatten', 'Softmax', 'Shape', 'Reshape'] },
  { name: 'Softmax-11 last axis (direct)', op: 'Softmax', opset: 11, attrs: [int('axis', 2)], inputs: [feed('x', x3)], irOps: ['Softmax'] },
  { name: 'Softmax-9 default axis of rank 4', op: 'Softmax', opset: 9, inputs: [feed('x', x4)] },
  { name: 'Softmax-11 unknown rank', op: 'Softmax', opset: 11, attrs: [int('axis', -1)], inputs: [feed('x', x3, 'feed-no-shape')] },
  { name: 'LogSoftmax-11 axis=0', op: 'LogSoftmax', opset: 11, attrs: [int('axis', 0)], inputs: [feed('x', x3)] },
  { name: 'LogSoftmax-7 default axis, rank 2 (direct)', op: 'LogSoftmax', opset: 7, inputs: [feed('x', rand([3, 5]))], irOps: ['LogSoftmax'] },
  { name: 'Hardmax-11 axis=1 of rank 3', op: 'Hardmax', opset: 11, attrs: [int('axis', 1)], inputs: [feed('x', x3)] },
  // ---- Upsample / Resize-10: asymmetric coordinates, old nearest rounding ----
  { name: 'Upsample-7 nearest scales attr', op: 'Upsample', opset: 7, attrs: [floats('scales', [1, 1, 2, 3])], inputs: [feed('x', x4)], irOps: ['Resize'] },
  { name: 'Upsample-7 linear', op: 'Upsample', opset: 7, attrs: [str('mode', 'linear'), floats('scales', [1, 1, 2, 2.5])], inputs: [feed('x', x4)] },
  { name: 'Upsample-9 scales input', op: 'Upsample', opset: 9, inputs: [feed('x', x4), init('scales', f32([1, 1, 3, 2]))] },
  { name: 'Resize-10 nearest upsample', op: 'Resize', opset: 10, inputs: [feed('x', x4), init('scales', f32([1, 1, 2, 1.5]))] },
  { name: 'Resize-10 nearest downsample (ceil)', op: 'Resize', opset: 10, inputs: [feed('x', rand([1, 1, 5, 7])), init('scales', f32([1, 1, 0.6, 0.45]))] },
  {
    name: 'Resize-10 nearest mixed up/down', op: 'Resize', opset: 10, inputs: [feed('x', rand([1, 1, 5, 3])), init('scales', f32([1, 1, 0.6, 2.5]))],
    irOps: ['Resize', 'Resize'],
  },
  { name: 'Resize-10 linear downsample', op: 'Resize', opset: 10, attrs: [str('mode', 'linear')], inputs: [feed('x', rand([1, 1, 5, 7])), init('scales', f32([1, 1, 0.6, 0.5]))] },
  { name: 'Resize-10 scales fed at run time', op: 'Resize', opset: 10, inputs: [feed('x', x4), feed('scales', f32([1, 1, 2, 2]))] },
  // ---- Resize-11..18: empty placeholders, modes of the time ----
  {
    name: 'Resize-11 sizes with empty roi/scales placeholders', op: 'Resize', opset: 11, attrs: [str('mode', 'linear')],
    inputs: [feed('x', x4), init('roi', f32([])), init('scales', f32([])), init('sizes', i64([1, 2, 5, 7]))],
  },
  {
    name: 'Resize-11 nearest tf_half_pixel_for_nn', op: 'Resize', opset: 11,
    attrs: [str('coordinate_transformation_mode', 'tf_half_pixel_for_nn')],
    inputs: [feed('x', x4), init('roi', f32([])), init('scales', f32([1, 1, 1.5, 0.75]))],
  },
  {
    name: 'Resize-11 tf_crop_and_resize with roi', op: 'Resize', opset: 11,
    attrs: [str('mode', 'linear'), str('coordinate_transformation_mode', 'tf_crop_and_resize'), float('extrapolation_value', 9)],
    inputs: [feed('x', x4), init('roi', f32([0, 0, 0.1, -0.2, 1, 1, 0.9, 1.1])), init('scales', f32([])), init('sizes', i64([1, 2, 4, 5]))],
  },
  {
    name: 'Resize-13 cubic, omitted roi', op: 'Resize', opset: 13, attrs: [str('mode', 'cubic')],
    inputs: [feed('x', x4), '', init('scales', f32([1, 1, 2, 1.5]))],
  },
  {
    name: 'Resize-18 axes + keep_aspect_ratio_policy', op: 'Resize', opset: 18,
    attrs: [str('mode', 'nearest'), ints('axes', [2, 3]), str('keep_aspect_ratio_policy', 'not_larger')],
    inputs: [feed('x', x4), '', '', init('sizes', i64([7, 7]))],
  },
  // ---- ops already in the newest form at an old opset (rewritten by nothing; checked anyway) ----
  { name: 'Gemm-7 transB with bias', op: 'Gemm', opset: 7, attrs: [int('transB', 1), float('alpha', 0.5)], inputs: [feed('a', rand([2, 3])), init('b', rand([4, 3])), init('c', rand([4]))] },
  { name: 'Conv-7 pads strides', op: 'Conv', opset: 7, attrs: [ints('pads', [1, 0, 1, 1]), ints('strides', [2, 1])], inputs: [feed('x', x4), init('w', rand([3, 2, 2, 2]))] },
  { name: 'MaxPool-8 with indices', op: 'MaxPool', opset: 8, attrs: [ints('kernel_shape', [2, 2])], inputs: [feed('x', x4)], outputs: [out('y'), out('i', 7)] },
  { name: 'AveragePool-7 count_include_pad', op: 'AveragePool', opset: 7, attrs: [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1]), int('count_include_pad', 1)], inputs: [feed('x', x4)] },
  { name: 'Cast-9 to int32', op: 'Cast', opset: 9, attrs: [int('to', 6)], inputs: [feed('x', rand([6], 'float32', -9, 9))], outputs: [out('y', 6)] },
  { name: 'Flatten-9 axis 2', op: 'Flatten', opset: 9, attrs: [int('axis', 2)], inputs: [feed('x', x4)] },
  { name: 'Reshape-7 with 0 and -1', op: 'Reshape', opset: 7, inputs: [feed('x', x4), init('shape', i64([0, -1, 4]))] },
  { name: 'Concat-7', op: 'Concat', opset: 7, attrs: [int('axis', 1)], inputs: [feed('a', rand([2, 1])), feed('b', rand([2, 3]))] },
  { name: 'Gather-7 negative axis', op: 'Gather', opset: 7, attrs: [int('axis', 1)], inputs: [feed('x', x3), init('idx', i64([2, 0, 2]))] },
  { name: 'Expand-8', op: 'Expand', opset: 8, inputs: [feed('x', rand([3, 1])), init('shape', i64([2, 3, 4]))] },
  { name: 'Tile-7', op: 'Tile', opset: 7, inputs: [feed('x', rand([2, 3])), init('r', i64([2, 1]))] },
  { name: 'DepthToSpace-11 CRD', op: 'DepthToSpace', opset: 11, attrs: [int('blocksize', 2), str('mode', 'CRD')], inputs: [feed('x', rand([1, 8, 2, 3]))] },
  { name: 'Equal-7 int64', op: 'Equal', opset: 7, inputs: [feed('a', rand([4], 'int64', 0, 2)), feed('b', rand([4], 'int64', 0, 2))], outputs: [out('y', 9)] },
  { name: 'PRelu-7 broadcast slope', op: 'PRelu', opset: 7, inputs: [feed('x', x4), init('slope', rand([2, 1, 1]))] },
  { name: 'LeakyRelu-7', op: 'LeakyRelu', opset: 7, attrs: [float('alpha', 0.2)], inputs: [feed('x', x3)] },
  { name: 'HardSigmoid-7', op: 'HardSigmoid', opset: 7, inputs: [feed('x', x3)] },
  { name: 'ConstantOfShape-9', op: 'ConstantOfShape', opset: 9, attrs: [{ name: 'value', type: 4, t: { dims: [1], dataType: 1, floatData: [2.5] } }], inputs: [feed('s', i64([2, 3]))] },
  { name: 'ArgMax-11 keepdims=0', op: 'ArgMax', opset: 11, attrs: [int('axis', -1), int('keepdims', 0)], inputs: [feed('x', x3)], outputs: [out('y', 7)] },
  { name: 'Max-8 broadcasting', op: 'Max', opset: 8, inputs: [feed('a', rand([2, 3])), feed('b', rand([3]))] },
  { name: 'InstanceNormalization-7', op: 'InstanceNormalization', opset: 7, inputs: [feed('x', x4), init('s', rand([2])), init('b', rand([2]))] },
];

describe('old opsets are rewritten into the newest form (vs onnxruntime-node, and exported back)', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const { bytes, feeds } = nodeModel({ op: c.op, opset: c.opset, attrs: c.attrs, inputs: c.inputs, outputs: c.outputs ?? [out()] });
      const { problems, imported } = await checkAgainstOrt(bytes, feeds);
      expect(problems).toEqual([]);
      if (c.irOps) expect(imported.graph.nodes.map((n) => n.op).filter((op) => op !== 'CastLike')).toEqual(c.irOps);
      expect(imported.opset).toBe(c.opset);
    });
  }

  // Dropout-7..11 leave the inference-mode mask unspecified and onnxruntime returns zeros there; EdgeKit uses the
  // Dropout-12+ definition (output = data * mask / (1 - ratio) with output = data, so mask = 1), which onnxruntime
  // also follows from opset 12 on. Only the output is compared with onnxruntime.
  for (const [opset, elemType, dtype] of [[7, 1, 'float32'], [10, 9, 'bool']] as const) {
    it(`Dropout-${opset} with a mask output (${dtype} mask of ones)`, async () => {
      const { bytes, feeds } = nodeModel({ op: 'Dropout', opset, attrs: [float('ratio', 0.3)], inputs: [feed('x', x3)], outputs: [out('y'), out('mask', elemType)] });
      const { problems, imported } = await checkAgainstOrt(bytes, feeds, undefined, ['mask']);
      expect(problems).toEqual([]);
      const mask = runGraphCpu(imported.graph, feeds).mask!;
      expect(mask.dtype).toBe(dtype);
      expect(Array.from(mask.data as ArrayLike<number>)).toEqual(new Array(24).fill(1));
    });
  }

  it('Softmax-11 on an intermediate value knows its rank from inference (direct form); unknown rank takes Flatten/Reshape', async () => {
    const x = rand([2, 3, 4]);
    const softmaxAfterRelu = (declareShape: boolean) => model({
      opset: 11,
      nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['r'] }, { op: 'Softmax', inputs: ['r'], outputs: ['y'], attrs: [int('axis', 2)] }],
      inputs: [vi('x', 1, declareShape ? [2, 3, 4] : undefined)], outputs: [vi('y')],
    });
    for (const [declared, ops] of [[true, ['Relu', 'Softmax']], [false, ['Relu', 'Flatten', 'Softmax', 'Shape', 'Reshape']]] as const) {
      const { problems, imported } = await checkAgainstOrt(softmaxAfterRelu(declared), { x });
      expect(problems).toEqual([]);
      expect(imported.graph.nodes.map((n) => n.op)).toEqual(ops);
    }
  });

  it('Clip-10 bounds take the data type: float64 data gets CastLike constants (clamp checked by hand)', async () => {
    const values = [-2, -0.5, -0.25, 0, 0.3, 0.75, 3];
    const bytes = model({
      opset: 10,
      nodes: [{ op: 'Clip', inputs: ['x'], outputs: ['y'], attrs: [float('min', -0.25), float('max', 0.5)] }],
      inputs: [vi('x', 11, [7])], outputs: [vi('y', 11)],
    });
    const g = (await importOnnx(bytes)).graph;
    expect(g.nodes.map((n) => n.op)).toEqual(['CastLike', 'CastLike', 'Clip']);
    const y = runGraphCpu(g, { x: tensorFromNumbers('float64', [7], values) }).y!;
    expect(y.dtype).toBe('float64');
    expect(Array.from(y.data as Float64Array)).toEqual(values.map((v) => Math.min(0.5, Math.max(-0.25, v))));
  });

  it('BatchNormalization before opset 14 with training outputs is refused before weights are decoded', async () => {
    const bytes = model({
      opset: 9,
      nodes: [{ op: 'BatchNormalization', inputs: ['x', 's', 'b', 'm', 'v'], outputs: ['y', 'rm', 'rv'], name: 'bn_train' }],
      inputs: [vi('x', 1, [1, 2, 3])], outputs: [vi('y')],
      // payloads that would fail to decode: the refusal must come first
      initializers: ['s', 'b', 'm', 'v'].map((name) => ({ name, dims: [2], dataType: 1, rawData: new Uint8Array(3) })),
    });
    const err = (await importOnnx(bytes).catch((e: unknown) => e)) as UnsupportedOpError;
    expect(err).toBeInstanceOf(UnsupportedOpError);
    expect(err.nodes).toEqual([expect.objectContaining({ op: 'BatchNormalization', opset: 9, node: 'bn_train' })]);
    expect(err.message).toMatch(/training-mode outputs/);
  });
});
