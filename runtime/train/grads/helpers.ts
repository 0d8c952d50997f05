import type { GradContext } from './rule.js';
import { A } from './rule.js';

/**
 * Divides a gradient by the number of elements forward input i has along `axes` (mean-style reductions:
 * ReduceMean, GlobalAveragePool). A constant when those dims are known when the graph is built; otherwise the
 * count is computed from the saved shape (Gather, ReduceProd, CastLike), still without keeping the tensor.
 */
export function divideByCount(ctx: GradContext, grad: string, i: number, axes: readonly number[]): string {
  const shape = ctx.inputShape(i);
  const dims = axes.map((a) => shape[a]!);
  const dt = ctx.inputDType(i);
  if (dims.every((d): d is number => typeof d === 'number')) {
    const count = dims.reduce((a, b) => a * b, 1);
    return count === 1 ? grad : ctx.emit('Mul', [grad, ctx.scalar(1 / count, dt)])[0]!;
  }
  const picked = ctx.emit('Gather', [ctx.shapeOf(i), ctx.ints(axes)], { axis: A.int(0) })[0]!;
  const count = ctx.emit('ReduceProd', [picked], { keepdims: A.int(0) })[0]!;
  const countF = ctx.emit('CastLike', [count, ctx.scalar(0, dt)])[0]!;
  return ctx.emit('Div', [grad, countF])[0]!;
}

/** Every axis of a rank-r tensor but the channel axis 1: [0, 2, 3, ..]. */
export function nonChannelAxes(rank: number): number[] {
  return Array.from({ length: rank }, (_, k) => k).filter((k) => k !== 1);
}
