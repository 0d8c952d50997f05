import { InvalidArgumentError, ShapeError } from '../../errors.js';
import { attrInt, type Dim, type Node } from '../graph.js';
import { normalizeAxes, normalizeAxis } from '../shape.js';
import { checkDType, constInts, requireInput, requireRank, type TypeClass } from './math-types.js';
import { defineOps, type InferContext, type InferInput, type OpSchema } from './schema.js';

/**
 * Reductions and axis scans: Reduce*-18 (axes as an optional int64 input, keepdims, noop_with_empty_axes),
 * ArgMax/ArgMin-13, CumSum-14 and TopK-11.
 */

export const REDUCE_OPS: Readonly<Record<string, TypeClass>> = {
  ReduceSum: 'numeric', ReduceMean: 'numeric', ReduceProd: 'numeric',
  ReduceMax: 'numericOrBool', ReduceMin: 'numericOrBool',
  ReduceL1: 'numeric', ReduceL2: 'numeric', ReduceSumSquare: 'numeric',
  ReduceLogSum: 'numeric', ReduceLogSumExp: 'numeric',
};

/**
 * Which axes a Reduce* node reduces for an input of `rank`: the normalized axes input; every axis when it is
 * absent or empty; none when it is empty and noop_with_empty_axes=1. undefined when the axes are not constant.
 */
export function reduceAxes(ctx: InferContext, rank: number): number[] | undefined {
  const axesInput: InferInput | undefined = ctx.inputs[1];
  let axes: number[] = [];
  if (axesInput) {
    if (axesInput.dtype !== 'int64') throw new InvalidArgumentError(`${ctx.node.op} axes must be int64, got ${axesInput.dtype}.`);
    requireRank(ctx, axesInput.shape, 'axes', 1, 1);
    const v = constInts(axesInput);
    if (!v) return undefined;
    axes = v;
  }
  return resolveReduceAxes(ctx.node, axes, rank);
}

/** The same rule on known axes values (kernels call this with the axes tensor they receive). */
export function resolveReduceAxes(node: Node, axes: readonly number[], rank: number): number[] {
  if (axes.length === 0) {
    return attrInt(node, 'noop_with_empty_axes', 0) !== 0 ? [] : Array.from({ length: rank }, (_, i) => i);
  }
  return normalizeAxes(axes, rank, `${node.op} axes`);
}

function reduceSchema(op: string, types: TypeClass): OpSchema {
  return {
    op,
    inputs: [1, 2],
    outputs: [1, 1],
    infer(ctx) {
      const x = requireInput(ctx, 0, 'data');
      checkDType(ctx, 'data', x.dtype, types);
      const keep = attrInt(ctx.node, 'keepdims', 1) !== 0;
      if (!x.shape) {
        reduceAxesTypeCheck(ctx);
        return [{ dtype: x.dtype }];
      }
      const axes = reduceAxes(ctx, x.shape.length);
      if (!axes) {
        // Axes known only at run time: with keepdims the rank stays and size-1 dims stay 1; otherwise unknown.
        return [{ dtype: x.dtype, shape: keep ? x.shape.map((d, i) => (d === 1 ? 1 : ctx.symbol(`${ctx.node.name}_d${i}`))) : undefined }];
      }
      const set = new Set(axes);
      const shape: Dim[] = [];
      x.shape.forEach((d, i) => {
        if (!set.has(i)) shape.push(d);
        else if (keep) shape.push(1);
      });
      return [{ dtype: x.dtype, shape }];
    },
  };
}

function reduceAxesTypeCheck(ctx: InferContext): void {
  const a = ctx.inputs[1];
  if (a && a.dtype !== 'int64') throw new InvalidArgumentError(`${ctx.node.op} axes must be int64, got ${a.dtype}.`);
}

/** ArgMax/ArgMin-13: int64 indices along `axis` (default 0), that axis kept as 1 or removed. */
function argSchema(op: string): OpSchema {
  return {
    op,
    inputs: [1, 1],
    outputs: [1, 1],
    infer(ctx) {
      const x = requireInput(ctx, 0, 'data');
      checkDType(ctx, 'data', x.dtype, 'numeric');
      if (!x.shape) return [{ dtype: 'int64' }];
      requireRank(ctx, x.shape, 'data', 1);
      const axis = normalizeAxis(attrInt(ctx.node, 'axis', 0), x.shape.length, `${op} axis`);
      if (x.shape[axis] === 0) throw new ShapeError(`${op} over axis ${axis} of size 0 has no answer.`);
      const keep = attrInt(ctx.node, 'keepdims', 1) !== 0;
      const shape = keep ? x.shape.map((d, i) => (i === axis ? 1 : d)) : x.shape.filter((_, i) => i !== axis);
      return [{ dtype: 'int64', shape }];
    },
  };
}

/** CumSum-14: x and a scalar int32/int64 axis; same shape and type out. */
const cumSum: OpSchema = {
  op: 'CumSum',
  inputs: [2, 2],
  outputs: [1, 1],
  infer(ctx) {
    const x = requireInput(ctx, 0, 'x');
    const axis = requireInput(ctx, 1, 'axis');
    checkDType(ctx, 'x', x.dtype, 'numeric');
    if (axis.dtype !== 'int32' && axis.dtype !== 'int64') throw new InvalidArgumentError(`CumSum axis must be int32 or int64, got ${axis.dtype}.`);
    requireRank(ctx, axis.shape, 'axis', 0, 1);
    const a = constInts(axis);
    if (a && x.shape) normalizeAxis(a[0]!, x.shape.length, 'CumSum axis');
    return [{ dtype: x.dtype, shape: x.shape && [...x.shape] }];
  },
};

/** TopK-11: Values (X's type) and int64 Indices, X's shape with dim `axis` replaced by K. */
const topK: OpSchema = {
  op: 'TopK',
  inputs: [2, 2],
  outputs: [2, 2],
  infer(ctx) {
    const x = requireInput(ctx, 0, 'X');
    const kIn = requireInput(ctx, 1, 'K');
    checkDType(ctx, 'X', x.dtype, 'numeric');
    if (kIn.dtype !== 'int64') throw new InvalidArgumentError(`TopK K must be int64, got ${kIn.dtype}.`);
    requireRank(ctx, kIn.shape, 'K', 0, 1);
    if (!x.shape) return [{ dtype: x.dtype }, { dtype: 'int64' }];
    requireRank(ctx, x.shape, 'X', 1);
    const axis = normalizeAxis(attrInt(ctx.node, 'axis', -1), x.shape.length, 'TopK axis');
    const kv = constInts(kIn)?.[0];
    const n = x.shape[axis]!;
    if (kv !== undefined && (kv < 0 || (typeof n === 'number' && kv > n))) {
      throw new ShapeError(`TopK K=${kv} must be between 0 and the size of axis ${axis} (${n}).`);
    }
    const k: Dim = kv ?? ctx.symbol(`${ctx.node.name}_k`);
    const shape = x.shape.map((d, i) => (i === axis ? k : d));
    return [{ dtype: x.dtype, shape }, { dtype: 'int64', shape: [...shape] }];
  },
};

export const schemas = defineOps(
  ...Object.entries(REDUCE_OPS).map(([op, types]) => reduceSchema(op, types)),
  argSchema('ArgMax'),
  argSchema('ArgMin'),
  cumSum,
  topK,
);
