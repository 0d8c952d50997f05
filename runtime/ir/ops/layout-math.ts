import { DTypeError, InvalidArgumentError, ShapeError } from '../../errors.js';
import type { DType } from '../dtype.js';
import { attrFloat, attrInt, attrInts, type Dim, type Node } from '../graph.js';
import { dimExpr, normalizeAxes } from '../shape.js';
import { dataInput, intParam, paren } from './data-dims.js';
import { inTypeClass } from './math-types.js';
import { defineOps, type OpSchema } from './schema.js';

/**
 * Math and layout ops of the default domain that fit no bigger family: MeanVarianceNormalization-13, LRN-13,
 * ReverseSequence-10, Det-11 and MaxUnpool-11. Each keeps its attribute reading here so the CPU and GPU kernels
 * cannot read them differently.
 */

function floatInput(node: Node, d: DType, what = 'input'): void {
  if (!inTypeClass(d, 'float')) throw new DTypeError(`${node.op} ${what} must be a floating-point type, got ${d}.`);
}

/** MVN axes (default [0, 2, 3]: per channel of NCHW), normalized against the rank. */
export function mvnAxes(node: Node, rank: number): number[] {
  return normalizeAxes(attrInts(node, 'axes', [0, 2, 3]), rank, 'MeanVarianceNormalization axes');
}

const mvn: OpSchema = {
  op: 'MeanVarianceNormalization',
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'X');
    floatInput(ctx.node, x.dtype);
    if (x.shape) mvnAxes(ctx.node, x.shape.length);
    return [{ dtype: x.dtype, shape: x.shape && [...x.shape] }];
  },
};

export interface LrnAttrs {
  size: number;
  alpha: number;
  beta: number;
  bias: number;
}

/** LRN-13: the window over channels [c - floor((size-1)/2), c + ceil((size-1)/2)]. */
export function lrnAttrs(node: Node): LrnAttrs {
  const size = attrInt(node, 'size');
  if (size === undefined || size < 1) throw new InvalidArgumentError(`LRN needs a positive size attribute, got ${size}.`);
  return { size, alpha: attrFloat(node, 'alpha', 1e-4), beta: attrFloat(node, 'beta', 0.75), bias: attrFloat(node, 'bias', 1) };
}

const lrn: OpSchema = {
  op: 'LRN',
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'X');
    floatInput(ctx.node, x.dtype);
    lrnAttrs(ctx.node);
    if (x.shape && x.shape.length < 3) throw new ShapeError(`LRN needs [N, C, d1, ...], got [${x.shape.join(', ')}].`);
    return [{ dtype: x.dtype, shape: x.shape && [...x.shape] }];
  },
};

/** ReverseSequence-10: time_axis and batch_axis are 0 and 1 in either order. */
export function reverseAxes(node: Node): { time: number; batch: number } {
  const time = attrInt(node, 'time_axis', 0);
  const batch = attrInt(node, 'batch_axis', 1);
  if (![0, 1].includes(time) || ![0, 1].includes(batch) || time === batch) {
    throw new InvalidArgumentError(`ReverseSequence needs time_axis and batch_axis to be 0 and 1 (in either order), got ${time} and ${batch}.`);
  }
  return { time, batch };
}

const reverseSequence: OpSchema = {
  op: 'ReverseSequence',
  inputs: [2, 2],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'input');
    const lens = dataInput(ctx, 1, 'sequence_lens');
    if (lens.dtype !== 'int64') throw new DTypeError(`ReverseSequence sequence_lens must be int64, got ${lens.dtype}.`);
    const { batch } = reverseAxes(ctx.node);
    if (x.shape && x.shape.length < 2) throw new ShapeError(`ReverseSequence needs rank 2 or more, got [${x.shape.join(', ')}].`);
    const n = lens.shape?.[0];
    const b = x.shape?.[batch];
    if (lens.shape && (lens.shape.length !== 1 || (typeof n === 'number' && typeof b === 'number' && n !== b))) {
      throw new ShapeError(`ReverseSequence sequence_lens must be [${b}], got [${lens.shape.join(', ')}].`);
    }
    return [{ dtype: x.dtype, shape: x.shape && [...x.shape] }];
  },
};

const det: OpSchema = {
  op: 'Det',
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'X');
    floatInput(ctx.node, x.dtype);
    if (!x.shape) return [{ dtype: x.dtype }];
    const r = x.shape.length;
    const [m, n] = [x.shape[r - 2], x.shape[r - 1]];
    if (r < 2 || (typeof m === 'number' && typeof n === 'number' && m !== n)) throw new ShapeError(`Det needs square matrices [*, M, M], got [${x.shape.join(', ')}].`);
    return [{ dtype: x.dtype, shape: x.shape.slice(0, r - 2) }];
  },
};

export interface UnpoolAttrs {
  kernel: number[];
  strides: number[];
  pads: number[];
}

export function unpoolAttrs(node: Node, spatial: number): UnpoolAttrs {
  const kernel = attrInts(node, 'kernel_shape');
  if (!kernel || kernel.length !== spatial) throw new InvalidArgumentError(`MaxUnpool needs kernel_shape with ${spatial} entries, got [${kernel ?? ''}].`);
  const strides = attrInts(node, 'strides', new Array<number>(spatial).fill(1));
  const pads = attrInts(node, 'pads', new Array<number>(2 * spatial).fill(0));
  if (strides.length !== spatial || pads.length !== 2 * spatial) throw new InvalidArgumentError('MaxUnpool strides/pads do not match the spatial rank.');
  return { kernel, strides, pads };
}

/** MaxUnpool's default output extent along spatial axis a: (in - 1) * stride + kernel - pads. */
export function unpoolDim(d: Dim, u: UnpoolAttrs, a: number, spatial: number): Dim {
  const add = u.kernel[a]! - u.strides[a]! - u.pads[a]! - u.pads[a + spatial]!;
  return dimExpr((v) => v * u.strides[a]! + add, (v) => `${paren(v)}*${u.strides[a]}${add >= 0 ? '+' : ''}${add}`, d);
}

/** The default unpooled shape [N, C, spatial...] that MaxPool's indices address, for a concrete X shape. */
export function unpoolFrame(node: Node, xShape: readonly number[]): number[] {
  const spatial = xShape.length - 2;
  const u = unpoolAttrs(node, spatial);
  return [xShape[0]!, xShape[1]!, ...xShape.slice(2).map((d, a) => unpoolDim(d, u, a, spatial) as number)];
}

const maxUnpool: OpSchema = {
  op: 'MaxUnpool',
  inputs: [2, 3],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'X');
    const idx = dataInput(ctx, 1, 'I');
    if (idx.dtype !== 'int64') throw new DTypeError(`MaxUnpool indices must be int64, got ${idx.dtype}.`);
    const outShape = intParam(ctx, ctx.inputs[2], 'output_shape');
    if (!x.shape) return [{ dtype: x.dtype }];
    if (x.shape.length < 3) throw new ShapeError(`MaxUnpool needs [N, C, d1, ...], got [${x.shape.join(', ')}].`);
    const spatial = x.shape.length - 2;
    const u = unpoolAttrs(ctx.node, spatial);
    if (ctx.inputs[2]) {
      if (!outShape) return [{ dtype: x.dtype, shape: x.shape.map((_, i) => ctx.symbol(`${ctx.node.name}_d${i}`)) }];
      if (outShape.length !== x.shape.length) throw new ShapeError(`MaxUnpool output_shape [${outShape.join(', ')}] must have rank ${x.shape.length}.`);
      return [{ dtype: x.dtype, shape: [...outShape] }];
    }
    return [{ dtype: x.dtype, shape: [x.shape[0]!, x.shape[1]!, ...x.shape.slice(2).map((d, a) => unpoolDim(d, u, a, spatial))] }];
  },
};

export const schemas = defineOps(mvn, lrn, reverseSequence, det, maxUnpool);
