import { InternalError } from '../../errors.js';
import { allocStorage, type DType, type TensorStorage } from '../../ir/dtype.js';
import type { Node } from '../../ir/graph.js';
import type { OpSchema } from '../../ir/ops/schema.js';
import { isConcrete } from '../../ir/shape.js';
import { sizeOf, type HostTensor, stridesOf } from '../../ir/tensor.js';
import type { CpuKernelContext } from './kernel.js';

/**
 * Index machinery for the data-movement kernels. These ops never convert elements: they copy them, so every
 * helper here reads and writes storage cells as opaque values (numbers, BigInts, strings) and works on every
 * storage class unchanged — int64 stays exact, float16 bits stay bits, strings stay strings.
 */

/** Storage seen as plain cells: element copies without knowing the class. */
export type Cells = { length: number; [i: number]: unknown };
export const cells = (d: TensorStorage): Cells => d as unknown as Cells;

export interface ConcreteOutput {
  dtype: DType;
  shape: number[];
}

/**
 * Sizes a kernel's outputs by running the op's own schema `infer` with every input value known, so inference
 * and execution cannot disagree, and checks the allocation guard before anything is allocated.
 */
export function outputsOf(schema: OpSchema | undefined, node: Node, inputs: readonly (HostTensor | undefined)[], ctx: CpuKernelContext): ConcreteOutput[] {
  if (!schema) throw new InternalError(`No schema for ${node.op} in the data-movement op families.`);
  const outs = schema.infer({
    node,
    inputs: inputs.map((t) => t && { dtype: t.dtype, shape: [...t.shape], value: t }),
    symbol: (hint) => {
      throw new InternalError(`${node.op} inference asked for a symbol ('${hint}') although every input value is known.`);
    },
  });
  return outs.map((o, i) => {
    if (!isConcrete(o.shape)) throw new InternalError(`${node.op} inference left output ${i} unresolved on concrete inputs.`);
    sizeOf(o.shape, ctx.maxElements);
    return { dtype: o.dtype, shape: o.shape };
  });
}

/** A tensor sharing nothing with `t` but holding the same elements under another shape. */
export function copyAs(t: HostTensor, shape: number[]): HostTensor {
  const data = Array.isArray(t.data) ? [...t.data] : t.data.slice();
  return { dtype: t.dtype, shape: [...shape], data };
}

/**
 * Reads `src` through an affine view: output element at multi-index i (row-major over `outShape`) is
 * src[offset + sum_k i[k] * strides[k]]. Strides may be 0 (broadcast) or negative (reversed slices); this is
 * Transpose, Slice, Expand, Split and Depth/SpaceToDepth.
 */
export function stridedCopy(src: TensorStorage, dtype: DType, outShape: readonly number[], offset: number, strides: readonly number[], maxElements: number): TensorStorage {
  const n = sizeOf(outShape, maxElements);
  const out = allocStorage(dtype, n);
  const o = cells(out);
  const s = cells(src);
  if (n === 0) return out;
  const r = outShape.length;
  if (r === 0) {
    o[0] = s[offset];
    return out;
  }
  const inner = outShape[r - 1]!;
  const innerStride = strides[r - 1]!;
  const idx = new Array<number>(r).fill(0);
  let base = offset;
  let w = 0;
  for (;;) {
    for (let k = 0, p = base; k < inner; k++, p += innerStride) o[w++] = s[p];
    let d = r - 2;
    for (; d >= 0; d--) {
      idx[d]!++;
      base += strides[d]!;
      if (idx[d]! < outShape[d]!) break;
      base -= strides[d]! * outShape[d]!;
      idx[d] = 0;
    }
    if (d < 0) return out;
  }
}


/**
 * Per-axis index maps: output element at (i0, i1, ...) reads src at (map0[i0], map1[i1], ...), or is `fill`
 * where any map entry is -1. Tile (i mod d), Pad (reflect/edge/wrap/constant) and nearest Resize are each one
 * map per axis.
 */
export function gatherByAxisMaps(
  src: TensorStorage,
  dtype: DType,
  inShape: readonly number[],
  maps: readonly Int32Array[],
  fill: unknown,
  maxElements: number,
): TensorStorage {
  const outShape = maps.map((m) => m.length);
  const n = sizeOf(outShape, maxElements);
  const out = allocStorage(dtype, n);
  if (n === 0) return out;
  const o = cells(out);
  const s = cells(src);
  const strides = stridesOf(inShape);
  // Offsets per axis, precomputed once: offs[a][i] = map[a][i] * stride[a], or -1 for "outside".
  const offs = maps.map((m, a) => Float64Array.from(m, (v) => (v < 0 ? -1 : v * strides[a]!)));
  const r = outShape.length;
  if (r === 0) {
    o[0] = s[0];
    return out;
  }
  let w = 0;
  const walk = (axis: number, base: number, valid: boolean): void => {
    const off = offs[axis]!;
    if (axis === r - 1) {
      for (let i = 0; i < off.length; i++) o[w++] = valid && off[i]! >= 0 ? s[base + off[i]!] : fill;
      return;
    }
    for (let i = 0; i < off.length; i++) walk(axis + 1, base + Math.max(off[i]!, 0), valid && off[i]! >= 0);
  };
  walk(0, 0, true);
  return out;
}

/** [outer, axis length, inner] around one axis: the layout Concat, Split and Gather copy blocks in. */
export function around(shape: readonly number[], axis: number): [number, number, number] {
  let outer = 1;
  let inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i]!;
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i]!;
  return [outer, shape[axis]!, inner];
}
