import { DTypeError } from '../../errors.js';
import { attrInt, type Dim, type Node } from '../graph.js';
import { normalizeAxis } from '../shape.js';
import { dataInput } from './data-dims.js';
import { defineOps, type InferContext, type OpSchema } from './schema.js';

/**
 * Unique-11: the distinct elements of X (flattened), or its distinct slices along `axis`, sorted ascending
 * (lexicographically for slices) unless sorted=0 keeps first-occurrence order. Outputs Y, indices (first
 * occurrence of each), inverse_indices (for each element or slice of X, its position in Y) and counts. How many
 * are distinct depends on the data, so U is a symbol.
 *
 * For the WebGPU lowering (backends/webgpu/lower-counts.ts) Unique takes a second input, never imported or
 * exported: `count`, U as an int64 scalar, from UniqueFirst (1 where an element or slice occurs for the first
 * time) summed on the GPU and read back at a stage boundary.
 */

/** [outer, n, inner] of X seen as n slices along `axis` (n = every element when flattened). */
export function uniqueView(node: Node, shape: readonly number[]): { axis: number | undefined; outer: number; n: number; inner: number } {
  const axis = node.attrs.axis === undefined ? undefined : normalizeAxis(attrInt(node, 'axis', 0), shape.length);
  const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
  if (axis === undefined) return { axis, outer: 1, n: size(shape), inner: 1 };
  return { axis, outer: size(shape.slice(0, axis)), n: shape[axis]!, inner: size(shape.slice(axis + 1)) };
}

function checkX(ctx: InferContext) {
  const x = dataInput(ctx, 0, 'X');
  if (x.dtype === 'string' || x.dtype === 'bool') throw new DTypeError(`Unique of ${x.dtype} is not supported; Cast to an integer type first.`, { dtype: x.dtype });
  const axis = ctx.node.attrs.axis === undefined || !x.shape ? undefined : normalizeAxis(attrInt(ctx.node, 'axis', 0), x.shape.length);
  const n: Dim | undefined = !x.shape ? undefined : axis === undefined ? x.shape.reduce<Dim>((a, d) => (typeof a === 'number' && typeof d === 'number' ? a * d : `${a}*${d}`), 1) : x.shape[axis];
  return { x, axis, n };
}

const unique: OpSchema = {
  op: 'Unique',
  inputs: [1, 2],
  outputs: [1, 4],
  infer(ctx) {
    const { x, axis, n } = checkX(ctx);
    const c = ctx.inputs[1]?.value;
    const u: Dim = c ? Number(c.data[0]) : ctx.symbol(`${ctx.node.name}_unique`);
    const y = !x.shape ? undefined : axis === undefined ? [u] : x.shape.map((d, i) => (i === axis ? u : d));
    return [{ dtype: x.dtype, shape: y }, { dtype: 'int64', shape: [u] }, { dtype: 'int64', shape: n === undefined ? undefined : [n] }, { dtype: 'int64', shape: [u] }];
  },
};

const uniqueFirst: OpSchema = {
  op: 'UniqueFirst',
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    const { n } = checkX(ctx);
    return [{ dtype: 'int64', shape: n === undefined ? undefined : [n] }];
  },
};

export const schemas = defineOps(unique, uniqueFirst);
