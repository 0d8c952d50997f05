import { InternalError } from '../errors.js';
import type { Attr, Dim } from '../ir/graph.js';
import type { EmitOptions } from './grads/rule.js';
import { TRAIN_DOMAIN } from './ops/common.js';

/**
 * The adjoint of broadcasting: sums a gradient of shape `from` down to the shape `to` it was broadcast from.
 * Axes are aligned from the right ("Broadcasting in ONNX"); an axis is summed when it is a leading axis `to` lacks
 * or when `to` has 1 there and `from` does not. Decided when the graph is built wherever the dims allow, giving
 * plain ReduceSum (+ Squeeze for leading axes) nodes. When a symbolic dim of `to` faces a different dim of `from`
 * it may be 1 or not at run time, and the sum is left to the SumToShape op with the runtime shape.
 */
export interface SumToEmitter {
  emit(op: string, inputs: readonly string[], attrs?: Record<string, Attr>, opts?: EmitOptions): string[];
  ints(values: readonly number[]): string;
  runtimeShape(): string;
}

export function broadcastAxes(from: readonly Dim[], to: readonly Dim[]): { leading: number; kept1: number[]; dynamic: boolean } {
  if (to.length > from.length) throw new InternalError(`Cannot sum a gradient of shape [${from.join(', ')}] to the higher-rank shape [${to.join(', ')}].`);
  const leading = from.length - to.length;
  const kept1: number[] = [];
  let dynamic = false;
  to.forEach((t, k) => {
    const i = k + leading;
    const f = from[i]!;
    if (t === f) return;
    if (t === 1) kept1.push(i);
    else if (typeof t === 'string') dynamic = true; // t may be 1 (sum) or equal f (keep) at run time
    else if (typeof f === 'number') throw new InternalError(`Shape [${to.join(', ')}] does not broadcast to [${from.join(', ')}].`);
    // t a number other than 1 facing a symbol: broadcasting forces the symbol to equal t, so nothing to sum.
  });
  return { leading, kept1, dynamic };
}

export function sumToDims(e: SumToEmitter, grad: string, from: readonly Dim[], to: readonly Dim[]): string {
  const { leading, kept1, dynamic } = broadcastAxes(from, to);
  if (dynamic) return e.emit('SumToShape', [grad, e.runtimeShape()], {}, { domain: TRAIN_DOMAIN })[0]!;
  const lead = Array.from({ length: leading }, (_, k) => k);
  if (!kept1.length) {
    if (!leading) return grad;
    return e.emit('ReduceSum', [grad, e.ints(lead)], { keepdims: { type: 'int', value: 0 } })[0]!;
  }
  const summed = e.emit('ReduceSum', [grad, e.ints([...lead, ...kept1])], { keepdims: { type: 'int', value: 1 } })[0]!;
  return leading ? e.emit('Squeeze', [summed, e.ints(lead)])[0]! : summed;
}
