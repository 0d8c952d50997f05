import { InvalidArgumentError } from '../../../errors.js';
import { allocStorage, fromNumbers, toNumbers, type TensorStorage } from '../../../ir/dtype.js';
import { attrInt, attrTensor, type Node } from '../../../ir/graph.js';
import { constantKind, schemas, shapeRange } from '../../../ir/ops/shape-ops.js';
import { hostTensor, sizeOf, type HostTensor } from '../../../ir/tensor.js';
import { castStorage } from '../data-cast.js';
import { cells, copyAs, outputsOf } from '../data-index.js';
import { dropoutMask } from '../data-random.js';
import type { CpuKernel } from '../kernel.js';

/**
 * CPU kernels for the shape plumbing ops. The relabelling ops (Reshape, Flatten, Squeeze, Unsqueeze, Identity)
 * copy their input under the shape their schema infers; outputs never alias inputs, so a caller may mutate a
 * result without touching a feed.
 */

const relabel: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas[node.op], node, inputs, ctx);
  return [copyAs(inputs[0]!, o!.shape)];
};

const shape: CpuKernel = (inputs, node, ctx) => {
  outputsOf(schemas.Shape, node, inputs, ctx);
  const x = inputs[0]!;
  const [s, e] = shapeRange(node, x.shape.length);
  const dims = x.shape.slice(s, e);
  return [hostTensor('int64', [dims.length], BigInt64Array.from(dims, (d) => BigInt(d)))];
};

const size: CpuKernel = (inputs, node, ctx) => {
  outputsOf(schemas.Size, node, inputs, ctx);
  return [hostTensor('int64', [], BigInt64Array.of(BigInt(sizeOf(inputs[0]!.shape))))];
};

/**
 * Dropout-22. Inference (training_mode absent or false, or ratio 0): the data passes through and the mask is all
 * true. Training: each element is kept with probability 1 - ratio and scaled by 1 / (1 - ratio). The mask comes
 * from EdgeKit's own seeded generator (see data-random.ts), so it will not equal onnxruntime's mask for the same
 * `seed`; only its statistics do.
 */
const dropout: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.Dropout, node, inputs, ctx);
  const x = inputs[0]!;
  const ratio = inputs[1] ? toNumbers(inputs[1].dtype, inputs[1].data)[0]! : 0.5;
  const training = inputs[2] ? (inputs[2].data as Uint8Array)[0] !== 0 : false;
  const n = x.data.length;
  if (!training || ratio === 0) {
    return [copyAs(x, o!.shape), hostTensor('bool', [...x.shape], new Uint8Array(n).fill(1))];
  }
  if (!(ratio >= 0 && ratio <= 1)) throw new InvalidArgumentError(`Dropout ratio must be in [0, 1), got ${ratio}.`);
  const mask = dropoutMask(n, ratio, attrInt(node, 'seed'));
  const scale = ratio < 1 ? 1 / (1 - ratio) : 0;
  const v = toNumbers(x.dtype, x.data);
  for (let i = 0; i < n; i++) v[i] = mask[i] ? v[i]! * scale : 0;
  return [hostTensor(x.dtype, [...x.shape], fromNumbers(x.dtype, v)), hostTensor('bool', [...x.shape], mask)];
};

/** The data of a Constant node from whichever value* attribute it carries. */
function constantData(node: Node): HostTensor {
  const k = constantKind(node);
  const a = node.attrs[k.attr]!;
  const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : [v]);
  switch (k.attr) {
    case 'value': {
      const t = attrTensor(node, 'value')!;
      return copyAs(t, t.shape);
    }
    case 'value_float': case 'value_floats':
      return hostTensor('float32', k.shape, Float32Array.from(list(a.value) as number[]));
    case 'value_int': case 'value_ints':
      return hostTensor('int64', k.shape, BigInt64Array.from(list(a.value) as number[], (v) => BigInt(v)));
    default:
      return hostTensor('string', k.shape, (list(a.value) as string[]).map(String));
  }
}

const constant: CpuKernel = (_inputs, node) => [constantData(node)];

/** ConstantOfShape-21: the `value` tensor's one element (float32 0 without it) at every position. */
const constantOfShape: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.ConstantOfShape, node, inputs, ctx);
  const v = attrTensor(node, 'value');
  const n = sizeOf(o!.shape, ctx.maxElements);
  const data = allocStorage(o!.dtype, n);
  if (v) {
    const out = cells(data);
    const fill = cells(v.data)[0];
    for (let i = 0; i < n; i++) out[i] = fill;
  }
  return [hostTensor(o!.dtype, o!.shape, data)];
};

/** Cast-21 and CastLike-21: element conversion in data-cast.ts; the target type is what inference says. */
const cast: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas[node.op], node, inputs, ctx);
  const x = inputs[0]!;
  return [hostTensor(o!.dtype, o!.shape, castStorage(x.dtype, o!.dtype, x.data))];
};

/**
 * Range-11: start, start + delta, ... accumulated in the element type (the spec's loop body adds delta to the
 * previous value; float32 rounding after every addition, int64 exact through BigInt).
 */
const range: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.Range, node, inputs, ctx);
  const [start, , delta] = inputs as HostTensor[];
  const dtype = o!.dtype;
  const n = o!.shape[0]!;
  const s = toNumbers(dtype, start!.data)[0]!;
  const d = toNumbers(dtype, delta!.data)[0]!;
  let data: TensorStorage;
  if (dtype === 'int64') {
    const out = new BigInt64Array(n);
    const b0 = (start!.data as BigInt64Array)[0]!;
    const bd = (delta!.data as BigInt64Array)[0]!;
    for (let i = 0, v = b0; i < n; i++, v += bd) out[i] = v;
    data = out;
  } else {
    const round = dtype === 'float32' ? Math.fround : (x: number) => x;
    const values = new Float64Array(n);
    for (let i = 0, v = s; i < n; i++, v = round(v + d)) values[i] = v;
    data = fromNumbers(dtype, values);
  }
  return [hostTensor(dtype, [n], data)];
};

export const kernels: Record<string, CpuKernel> = {
  Reshape: relabel, Flatten: relabel, Squeeze: relabel, Unsqueeze: relabel, Identity: relabel,
  Shape: shape, Size: size, Dropout: dropout, Constant: constant, ConstantOfShape: constantOfShape,
  Cast: cast, CastLike: cast, Range: range,
};
