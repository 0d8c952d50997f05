import { DTypeError, InvalidArgumentError, ShapeError, UnsupportedOpError } from '../../errors.js';
import { isFloat, toNumbers, type DType } from '../dtype.js';
import { attrInt, attrTensor, type Dim, type Node } from '../graph.js';
import type { HostTensor } from '../tensor.js';
import { dimProduct, isConcrete, normalizeAxes } from '../shape.js';
import { kindField } from '../value.js';
import { castTarget } from './data-onnx-types.js';
import { dataInput, divideDims, intParam, paramLength } from './data-dims.js';
import { defineOps, type InferContext, type InferredOutput, type OpSchema } from './schema.js';

/**
 * Shape plumbing ops (ONNX opset 21 forms): Reshape, Flatten, Squeeze, Unsqueeze, Shape, Size, Identity, Dropout,
 * Constant, ConstantOfShape, Cast, CastLike and Range. They move or relabel data; only Cast and Range compute.
 * Every one works on every element type EdgeKit stores (int64 as BigInt64Array, float16 bits, bool, string).
 */

const same = (x: { dtype: DType; shape?: Dim[] }): InferredOutput => ({ dtype: x.dtype, shape: x.shape && [...x.shape] });
const symbols = (ctx: InferContext, n: number, hint: string): Dim[] => Array.from({ length: n }, (_, i) => ctx.symbol(`${ctx.node.name}_${hint}${i}`));

/**
 * Reshape-21 output shape (onnx Reshape: "At most one dimension of the new shape can be -1 ... A dimension could
 * also be 0, in which case the actual dimension value is unchanged (i.e. taken from the input tensor). If
 * 'allowzero' is set, and the new shape includes 0, the dimension will be set explicitly to zero").
 */
export function reshapeShape(ctx: InferContext, input: readonly Dim[] | undefined, target: readonly number[], allowzero: boolean): Dim[] {
  const minus = target.filter((v) => v === -1).length;
  if (minus > 1) throw new ShapeError(`Reshape shape [${target.join(', ')}] has more than one -1.`);
  if (target.some((v) => v < -1 || !Number.isInteger(v))) throw new ShapeError(`Reshape shape [${target.join(', ')}] has an entry below -1.`);
  if (allowzero && minus && target.includes(0)) {
    throw new ShapeError(`Reshape with allowzero=1 cannot combine 0 and -1 in shape [${target.join(', ')}]: the -1 would be ambiguous.`);
  }
  const out: Dim[] = target.map((v, i) => {
    if (v !== 0 || allowzero) return v;
    if (!input) return ctx.symbol(`${ctx.node.name}_d${i}`);
    if (i >= input.length) throw new ShapeError(`Reshape shape entry ${i} is 0 (copy the input dim) but the input [${input.join(', ')}] has rank ${input.length}.`);
    return input[i]!;
  });
  const at = target.indexOf(-1);
  const known = out.filter((_, i) => i !== at);
  if (at >= 0) {
    if (!input) out[at] = ctx.symbol(`${ctx.node.name}_d${at}`);
    else if (isConcrete(input) && isConcrete(known)) {
      const total = input.reduce((a, b) => a * b, 1);
      const k = known.reduce((a, b) => a * b, 1);
      if (k === 0 || total % k !== 0) {
        throw new ShapeError(`Reshape cannot infer the -1 in [${target.join(', ')}] for an input of shape [${input.join(', ')}] (${total} elements).`);
      }
      out[at] = total / k;
    } else {
      out[at] = divideDims(input, known) ?? ctx.symbol(`${ctx.node.name}_d${at}`);
    }
  } else if (input && isConcrete(input) && isConcrete(out)) {
    const a = input.reduce((x, y) => x * y, 1);
    const b = out.reduce((x, y) => x * y, 1);
    if (a !== b) throw new ShapeError(`Reshape cannot turn shape [${input.join(', ')}] (${a} elements) into [${out.join(', ')}] (${b} elements).`);
  }
  return out;
}

const reshape: OpSchema = {
  op: 'Reshape',
  inputs: [2, 2],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'data');
    const s = dataInput(ctx, 1, 'shape');
    const target = intParam(ctx, s, 'shape');
    if (target) return [{ dtype: x.dtype, shape: reshapeShape(ctx, x.shape, target, attrInt(ctx.node, 'allowzero', 0) !== 0) }];
    // Shape known only at run time: its length still fixes the rank.
    const n = paramLength(ctx, s, 'shape');
    return [{ dtype: x.dtype, shape: n === undefined ? undefined : symbols(ctx, n, 'd') }];
  },
};

/** Flatten-21: [d0..d(axis-1)] and [d(axis)..] multiplied into a 2-D shape; axis in [-r, r]. */
const flatten: OpSchema = {
  op: 'Flatten',
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'input');
    if (!x.shape) return [{ dtype: x.dtype, shape: symbols(ctx, 2, 'd') }];
    const r = x.shape.length;
    const a = attrInt(ctx.node, 'axis', 1);
    const axis = a < 0 ? a + r : a;
    if (axis < 0 || axis > r) throw new ShapeError(`Flatten axis ${a} is out of range for a tensor of rank ${r} (allowed ${-r} to ${r}).`);
    return [{ dtype: x.dtype, shape: [dimProduct(x.shape.slice(0, axis)), dimProduct(x.shape.slice(axis))] }];
  },
};

/** Squeeze-21: removes the listed size-1 axes, or every size-1 axis when `axes` is omitted. */
const squeeze: OpSchema = {
  op: 'Squeeze',
  inputs: [1, 2],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'data');
    const axesIn = ctx.inputs[1];
    const axes = intParam(ctx, axesIn, 'axes');
    if (!x.shape) return [{ dtype: x.dtype }];
    if (!axesIn) {
      // A symbolic dim might be 1 at run time, so the output rank is unknown until the shape is.
      if (!isConcrete(x.shape)) return [{ dtype: x.dtype }];
      return [{ dtype: x.dtype, shape: x.shape.filter((d) => d !== 1) }];
    }
    if (!axes) {
      const n = paramLength(ctx, axesIn, 'axes');
      return [{ dtype: x.dtype, shape: n === undefined ? undefined : symbols(ctx, x.shape.length - n, 'd') }];
    }
    const set = new Set(normalizeAxes(axes, x.shape.length, 'Squeeze axes'));
    for (const a of set) {
      const d = x.shape[a]!;
      if (typeof d === 'number' && d !== 1) throw new ShapeError(`Squeeze axis ${a} has size ${d}; only size-1 axes can be squeezed (shape [${x.shape.join(', ')}]).`);
    }
    return [{ dtype: x.dtype, shape: x.shape.filter((_, i) => !set.has(i)) }];
  },
};

/** Unsqueeze-21: inserts size-1 axes at the listed positions of the output (axes in [-r-k, r+k-1]). */
const unsqueeze: OpSchema = {
  op: 'Unsqueeze',
  inputs: [2, 2],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'data');
    const axesIn = dataInput(ctx, 1, 'axes');
    // A scalar axes is one axis: onnxruntime and the ONNX reference accept it (test_loop13_seq feeds one).
    const axes = intParam(ctx, axesIn, 'axes', ['int64'], true);
    if (!x.shape) return [{ dtype: x.dtype }];
    if (!axes) {
      const n = paramLength(ctx, axesIn, 'axes');
      return [{ dtype: x.dtype, shape: n === undefined ? undefined : symbols(ctx, x.shape.length + n, 'd') }];
    }
    const rank = x.shape.length + axes.length;
    const set = new Set(normalizeAxes(axes, rank, 'Unsqueeze axes'));
    const src = x.shape[Symbol.iterator]();
    return [{ dtype: x.dtype, shape: Array.from({ length: rank }, (_, i) => (set.has(i) ? 1 : src.next().value as Dim)) }];
  },
};

/** Shape-21 `start`/`end` clamped into [0, rank] after adding rank to negatives; the slice may be empty. */
export function shapeRange(node: Node, rank: number): [number, number] {
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
  const start = clamp(attrInt(node, 'start', 0));
  const end = clamp(attrInt(node, 'end', rank));
  return [start, Math.max(start, end)];
}

const shape: OpSchema = {
  op: 'Shape',
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'data');
    if (!x.shape) return [{ dtype: 'int64', shape: [ctx.symbol(`${ctx.node.name}_rank`)] }];
    const [s, e] = shapeRange(ctx.node, x.shape.length);
    return [{ dtype: 'int64', shape: [e - s] }];
  },
};

const size: OpSchema = {
  op: 'Size',
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    dataInput(ctx, 0, 'data');
    return [{ dtype: 'int64', shape: [] }];
  },
};

const identity: OpSchema = {
  op: 'Identity',
  inputs: [1, 1],
  outputs: [1, 1],
  // Identity-16+ also passes sequences and optionals through (ir/value.ts).
  infer: (ctx) => [{ ...same(dataInput(ctx, 0, 'input')), ...kindField(ctx.inputs[0]?.kind) }],
};

/** Dropout-22: output like data; the optional mask is bool of the same shape. */
const dropout: OpSchema = {
  op: 'Dropout',
  inputs: [1, 3],
  outputs: [1, 2],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'data');
    if (!isFloat(x.dtype)) throw new DTypeError(`Dropout data must be a floating-point tensor, got ${x.dtype}.`, { dtype: x.dtype });
    const ratio = ctx.inputs[1];
    if (ratio && !isFloat(ratio.dtype)) throw new DTypeError(`Dropout ratio must be a floating-point scalar, got ${ratio.dtype}.`);
    const training = ctx.inputs[2];
    if (training && training.dtype !== 'bool') throw new DTypeError(`Dropout training_mode must be bool, got ${training.dtype}.`);
    return [same(x), { dtype: 'bool', shape: x.shape && [...x.shape] }];
  },
};

/** The tensor a Constant-21 node holds, described by dtype and shape (the kernel builds the data). */
export function constantKind(node: Node): { attr: string; dtype: DType; shape: number[] } {
  const set = Object.keys(node.attrs).filter((k) => k.startsWith('value') || k === 'sparse_value');
  if (set.length !== 1) {
    throw new InvalidArgumentError(`Constant needs exactly one of value, value_float(s), value_int(s), value_string(s); got ${set.length ? set.join(', ') : 'none'}.`);
  }
  const name = set[0]!;
  const a = node.attrs[name]!;
  const list = (n: number) => [n];
  switch (name) {
    case 'value': {
      const t = attrTensor(node, 'value');
      if (!t) throw new InvalidArgumentError('Constant attribute value must be a tensor.');
      return { attr: name, dtype: t.dtype, shape: [...t.shape] };
    }
    case 'value_float': return { attr: name, dtype: 'float32', shape: [] };
    case 'value_int': return { attr: name, dtype: 'int64', shape: [] };
    case 'value_string': return { attr: name, dtype: 'string', shape: [] };
    case 'value_floats': case 'value_ints': case 'value_strings':
      if (!Array.isArray(a.value)) throw new InvalidArgumentError(`Constant attribute ${name} must be a list.`);
      return { attr: name, dtype: name === 'value_floats' ? 'float32' : name === 'value_ints' ? 'int64' : 'string', shape: list(a.value.length) };
    default:
      throw new UnsupportedOpError([{ op: 'Constant', domain: '', opset: 21, node: node.name, reason: `attribute ${name} (sparse constants) is not supported` }]);
  }
}

const constant: OpSchema = {
  op: 'Constant',
  inputs: [0, 0],
  outputs: [1, 1],
  infer(ctx) {
    const k = constantKind(ctx.node);
    return [{ dtype: k.dtype, shape: k.shape }];
  },
};

/** ConstantOfShape-21: the `value` tensor's single element (default float32 0) repeated over the input shape. */
const constantOfShape: OpSchema = {
  op: 'ConstantOfShape',
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    const s = dataInput(ctx, 0, 'input');
    const v = attrTensor(ctx.node, 'value');
    if (v && v.data.length !== 1) throw new InvalidArgumentError(`ConstantOfShape value must hold exactly one element, got shape [${v.shape.join(', ')}].`);
    const dtype = v?.dtype ?? 'float32';
    const dims = intParam(ctx, s, 'input');
    if (dims) {
      if (dims.some((d) => d < 0)) throw new ShapeError(`ConstantOfShape got a negative dimension in [${dims.join(', ')}].`);
      return [{ dtype, shape: dims }];
    }
    const n = paramLength(ctx, s, 'input');
    return [{ dtype, shape: n === undefined ? undefined : symbols(ctx, n, 'd') }];
  },
};

/** Cast-21 / CastLike-21: any stored type to any other; the shape is unchanged. */
const cast: OpSchema = {
  op: 'Cast',
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'input');
    return [{ dtype: castTarget(ctx.node), shape: x.shape && [...x.shape] }];
  },
};

const castLike: OpSchema = {
  op: 'CastLike',
  inputs: [2, 2],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'input');
    const t = dataInput(ctx, 1, 'target_type');
    return [{ dtype: t.dtype, shape: x.shape && [...x.shape] }];
  },
};

export const RANGE_TYPES: readonly DType[] = ['float32', 'float64', 'int16', 'int32', 'int64'];

/**
 * Range-11 element count: max(ceil((limit - start) / delta), 0). The difference is taken in the element type
 * (float32 rounding matters at the boundary; int64 exact through BigInt), the division in float64.
 */
export function rangeCount(start: HostTensor, limit: HostTensor, delta: HostTensor): number {
  let n: number;
  if (start.dtype === 'int64') {
    const [s, l, d] = [start, limit, delta].map((t) => (t.data as BigInt64Array)[0]!) as [bigint, bigint, bigint];
    if (d === 0n) throw new InvalidArgumentError('Range delta must not be 0.');
    const diff = l - s;
    // Ceiling division on BigInts (which truncate toward zero).
    const q = diff / d;
    n = Number(q * d === diff || (diff < 0n) !== (d < 0n) ? q : q + 1n);
  } else {
    const [s, l, d] = [start, limit, delta].map((t) => toNumbers(t.dtype, t.data)[0]!) as [number, number, number];
    if (d === 0) throw new InvalidArgumentError('Range delta must not be 0.');
    const diff = start.dtype === 'float32' ? Math.fround(l - s) : l - s;
    n = Math.ceil(diff / d);
  }
  if (!Number.isFinite(n)) throw new InvalidArgumentError('Range has no finite length (check start, limit and delta).');
  return Math.max(n, 0);
}

const range: OpSchema = {
  op: 'Range',
  inputs: [3, 3],
  outputs: [1, 1],
  infer(ctx) {
    const args = [dataInput(ctx, 0, 'start'), dataInput(ctx, 1, 'limit'), dataInput(ctx, 2, 'delta')];
    const dtype = args[0]!.dtype;
    if (!RANGE_TYPES.includes(dtype)) throw new DTypeError(`Range supports ${RANGE_TYPES.join(', ')}; got ${dtype}.`, { dtype });
    const names = ['start', 'limit', 'delta'];
    args.forEach((a, i) => {
      if (a.dtype !== dtype) throw new DTypeError(`Range inputs must share one type; start is ${dtype} but ${names[i]} is ${a.dtype}.`);
      const scalarLike = !a.shape || a.shape.length === 0 || (a.shape.length === 1 && a.shape[0] === 1);
      if (!scalarLike) {
        throw new ShapeError(`Range ${names[i]} must be a scalar, got shape [${a.shape!.join(', ')}].`);
      }
    });
    if (args.every((a) => a.value)) {
      return [{ dtype, shape: [rangeCount(args[0]!.value!, args[1]!.value!, args[2]!.value!)] }];
    }
    return [{ dtype, shape: [ctx.symbol(`${ctx.node.name}_n`)] }];
  },
};

export const schemas = defineOps(
  reshape, flatten, squeeze, unsqueeze, shape, size, identity, dropout, constant, constantOfShape, cast, castLike, range,
);
