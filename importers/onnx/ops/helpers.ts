import { attrInts, type Attr, type Node } from '../../../runtime/ir/graph.js';
import { tensorFromNumbers } from '../../../runtime/ir/tensor.js';
import type { AdapterContext } from './adapter.js';

/** Building blocks the per-op adapters share: attribute moves, constants, and small node factories. */

/** Thrown by an adapter for a node form EdgeKit cannot express; collected into the load's UnsupportedOpError. */
export class AdapterUnsupported extends Error {}

/** An int64 1-D constant. */
export const i64 = (ctx: AdapterContext, hint: string, values: number[]): string =>
  ctx.constant(hint, tensorFromNumbers('int64', [values.length], values));

/** A float32 constant of the given shape. */
export const f32 = (ctx: AdapterContext, hint: string, values: number[], shape = [values.length]): string =>
  ctx.constant(hint, tensorFromNumbers('float32', shape, values));

export function without(n: Node, ...names: string[]): Node['attrs'] {
  const attrs = { ...n.attrs };
  for (const k of names) delete attrs[k];
  return attrs;
}

/** Drops trailing omitted ('') optional inputs. */
export function trimInputs(inputs: string[]): string[] {
  const out = [...inputs];
  while (out.length && out[out.length - 1] === '') out.pop();
  return out;
}

/** A helper node named after the node it came from (`<node>_<suffix>`). */
export function helperNode(from: Node, suffix: string, op: string, inputs: string[], outputs: string[], attrs: Record<string, Attr> = {}): Node {
  return { name: `${from.name}_${suffix}`, op, domain: '', inputs, outputs, attrs };
}

/** Moves an `ints` attribute to an int64 input at `index` (omitted when the attribute is absent). */
export function attrToInput(n: Node, ctx: AdapterContext, attr: string, index: number): Node {
  const v = attrInts(n, attr);
  const inputs = [...n.inputs];
  while (inputs.length < index) inputs.push('');
  inputs[index] = v ? i64(ctx, `${n.name}_${attr}`, v) : '';
  return { ...n, inputs: trimInputs(inputs), attrs: without(n, attr) };
}

/**
 * A float attribute as a scalar input of `like`'s element type: a float32 constant, followed by CastLike(like)
 * unless the file declares `like` as float32 (newer opsets take such values as inputs of the data's type).
 */
export function scalarLike(n: Node, ctx: AdapterContext, value: number, like: string, hint: string): { name: string; nodes: Node[] } {
  const c = ctx.constant(`${n.name}_${hint}_f32`, tensorFromNumbers('float32', [], [value]));
  if (ctx.dtypeOf(like) === 'float32') return { name: c, nodes: [] };
  const out = ctx.fresh(`${n.name}_${hint}`);
  return { name: out, nodes: [helperNode(n, `${hint}_cast`, 'CastLike', [c, like], [out])] };
}
