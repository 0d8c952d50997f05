import { DTypeError, InvalidArgumentError, ShapeError } from '../../errors.js';
import { isFloat, toNumbers, type DType } from '../../ir/dtype.js';
import type { Dim } from '../../ir/graph.js';
import type { InferContext, InferInput } from '../../ir/ops/schema.js';
import type { HostTensor } from '../../ir/tensor.js';

/**
 * Helpers shared by the training ops (domain 'edgekit.train'): input checks and the "shape given as an int64
 * tensor input" convention that the gradient ops use when an output's size cannot be derived from the other inputs
 * (a strided Conv's input size, for one). Passing the shape rather than the tensor keeps the backward pass from
 * holding a whole activation alive just to read its dims.
 */
export const TRAIN_DOMAIN = 'edgekit.train';

export function need(ctx: InferContext, i: number, what: string): InferInput {
  const x = ctx.inputs[i];
  if (!x) throw new InvalidArgumentError(`${ctx.node.op} input ${i} (${what}) is required but missing.`);
  return x;
}

export function needFloat(ctx: InferContext, i: number, what: string): InferInput {
  const x = need(ctx, i, what);
  if (!isFloat(x.dtype)) throw new DTypeError(`${ctx.node.op} ${what} must be a floating-point tensor, got ${x.dtype}.`, { dtype: x.dtype });
  return x;
}

export function sameShape(x: { shape?: Dim[] }): Dim[] | undefined {
  return x.shape && [...x.shape];
}

/**
 * The shape an int64 shape input describes: exact when the value is known (an initializer), fresh symbols of the
 * right rank when only its length is known, undefined when even that is unknown.
 */
export function shapeFromInput(ctx: InferContext, i: number, what: string): Dim[] | undefined {
  const s = need(ctx, i, what);
  if (s.dtype !== 'int64') throw new DTypeError(`${ctx.node.op} ${what} must be an int64 shape tensor, got ${s.dtype}.`);
  if (s.shape && s.shape.length !== 1) throw new ShapeError(`${ctx.node.op} ${what} must be 1-D, got shape [${s.shape.join(', ')}].`);
  if (s.value) return Array.from(toNumbers('int64', s.value.data));
  const len = s.shape?.[0];
  if (typeof len !== 'number') return undefined;
  return Array.from({ length: len }, (_, k) => ctx.symbol(`${ctx.node.name}_${what}${k}`));
}

/** The concrete dims an int64 shape tensor holds (kernels). */
export function shapeValues(t: HostTensor | undefined, op: string, what: string): number[] {
  if (!t) throw new InvalidArgumentError(`${op} input ${what} is required but missing.`);
  return Array.from(toNumbers(t.dtype, t.data));
}

export function floatOrThrow(op: string, d: DType, what: string): void {
  if (!isFloat(d)) throw new DTypeError(`${op} ${what} must be a floating-point tensor, got ${d}.`, { dtype: d });
}
