import { InvalidArgumentError, ShapeError } from '../../../errors.js';
import { allocStorage, toNumbers, type TensorStorage } from '../../../ir/dtype.js';
import { attrInt, attrString } from '../../../ir/graph.js';
import { sliceAxis, sliceSpec, resolvePads } from '../../../ir/ops/data-params.js';
import { blocksize, padMode, schemas, transposePerm, type PadMode } from '../../../ir/ops/movement.js';
import { normalizeAxis } from '../../../ir/shape.js';
import { hostTensor, sizeOf, type HostTensor, stridesOf } from '../../../ir/tensor.js';
import { around, cells, gatherByAxisMaps, outputsOf, stridedCopy } from '../data-index.js';
import type { CpuKernel } from '../kernel.js';

/**
 * CPU kernels for the data-movement ops. Each is a pure index mapping: Transpose, Slice, Split, Expand and
 * Depth/SpaceToDepth are affine views (stridedCopy), Tile and Pad per-axis index maps (gatherByAxisMaps), Concat
 * and Gather block copies. Elements are copied, never converted.
 */

const ints = (t: HostTensor | undefined): number[] | undefined => (t ? Array.from(toNumbers(t.dtype, t.data)) : undefined);

const transpose: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.Transpose, node, inputs, ctx);
  const x = inputs[0]!;
  const st = stridesOf(x.shape);
  const perm = transposePerm(node, x.shape.length);
  return [hostTensor(o!.dtype, o!.shape, stridedCopy(x.data, x.dtype, o!.shape, 0, perm.map((p) => st[p]!), ctx.maxElements))];
};

const concat: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.Concat, node, inputs, ctx);
  const axis = normalizeAxis(attrInt(node, 'axis')!, o!.shape.length);
  const [outer, outAxis, inner] = around(o!.shape, axis);
  const data = allocStorage(o!.dtype, sizeOf(o!.shape));
  const out = cells(data);
  let at = 0;
  for (const x of inputs as HostTensor[]) {
    // Every input contributes one contiguous block of x.shape[axis] * inner elements per outer index.
    const len = x.shape[axis]! * inner;
    const src = cells(x.data);
    for (let b = 0; b < outer; b++) {
      const dst = b * outAxis * inner + at;
      for (let k = 0; k < len; k++) out[dst + k] = src[b * len + k];
    }
    at += len;
  }
  return [hostTensor(o!.dtype, o!.shape, data)];
};

const split: CpuKernel = (inputs, node, ctx) => {
  const outs = outputsOf(schemas.Split, node, inputs, ctx);
  const x = inputs[0]!;
  const axis = normalizeAxis(attrInt(node, 'axis', 0), x.shape.length);
  const st = stridesOf(x.shape);
  let start = 0;
  return outs.map((o) => {
    const t = hostTensor(o.dtype, o.shape, stridedCopy(x.data, x.dtype, o.shape, start * st[axis]!, st, ctx.maxElements));
    start += o.shape[axis]!;
    return t;
  });
};

const slice: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.Slice, node, inputs, ctx);
  const x = inputs[0]!;
  const [starts, ends, axes, steps] = [1, 2, 3, 4].map((i) => ints(inputs[i]));
  const spec = sliceSpec(x.shape.length, starts!, ends!, axes, steps);
  const st = stridesOf(x.shape);
  const strides = [...st];
  let offset = 0;
  spec.axes.forEach((a, i) => {
    const { start } = sliceAxis(x.shape[a]!, starts![i]!, ends![i]!, spec.steps[i]!);
    offset += start * st[a]!;
    strides[a] = st[a]! * spec.steps[i]!;
  });
  return [hostTensor(o!.dtype, o!.shape, stridedCopy(x.data, x.dtype, o!.shape, offset, strides, ctx.maxElements))];
};

/** Checks and resolves an index against an axis of size n (negative counts from the back). */
function indexInto(v: number, n: number, op: string): number {
  const k = v < 0 ? v + n : v;
  if (!(k >= 0 && k < n)) throw new InvalidArgumentError(`${op} index ${v} is out of range for an axis of size ${n} (allowed ${-n} to ${n - 1}).`);
  return k;
}

const gather: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.Gather, node, inputs, ctx);
  const x = inputs[0]!;
  const axis = normalizeAxis(attrInt(node, 'axis', 0), x.shape.length);
  const [outer, n, inner] = around(x.shape, axis);
  const idx = ints(inputs[1])!.map((v) => indexInto(v, n, 'Gather'));
  const data = allocStorage(o!.dtype, sizeOf(o!.shape));
  const out = cells(data);
  const src = cells(x.data);
  let w = 0;
  for (let b = 0; b < outer; b++) {
    for (const k of idx) {
      const from = (b * n + k) * inner;
      for (let i = 0; i < inner; i++) out[w++] = src[from + i];
    }
  }
  return [hostTensor(o!.dtype, o!.shape, data)];
};

/** GatherElements-13: out[i0..ik..] = data[i0..indices[i0..ik..]..] with the index replacing coordinate `axis`. */
const gatherElements: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.GatherElements, node, inputs, ctx);
  const x = inputs[0]!;
  const idxT = inputs[1]!;
  const r = x.shape.length;
  const axis = normalizeAxis(attrInt(node, 'axis', 0), r);
  const idx = ints(idxT)!;
  const xs = stridesOf(x.shape);
  const data = allocStorage(o!.dtype, idx.length);
  const out = cells(data);
  const src = cells(x.data);
  const coord = new Array<number>(r).fill(0);
  for (let i = 0; i < idx.length; i++) {
    let off = 0;
    for (let d = 0; d < r; d++) off += (d === axis ? indexInto(idx[i]!, x.shape[axis]!, 'GatherElements') : coord[d]!) * xs[d]!;
    out[i] = src[off];
    // Advance the row-major coordinate over the indices' shape.
    for (let d = r - 1; d >= 0; d--) {
      if (++coord[d]! < idxT.shape[d]!) break;
      coord[d] = 0;
    }
  }
  return [hostTensor(o!.dtype, o!.shape, data)];
};

/** Expand-13: a broadcast view (stride 0 along expanded axes). */
const expand: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.Expand, node, inputs, ctx);
  const x = inputs[0]!;
  const st = stridesOf(x.shape);
  const lead = o!.shape.length - x.shape.length;
  const strides = o!.shape.map((_, i) => (i < lead || x.shape[i - lead] === 1 ? 0 : st[i - lead]!));
  return [hostTensor(o!.dtype, o!.shape, stridedCopy(x.data, x.dtype, o!.shape, 0, strides, ctx.maxElements))];
};

const tile: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.Tile, node, inputs, ctx);
  const x = inputs[0]!;
  const maps = o!.shape.map((n, a) => Int32Array.from({ length: n }, (_, i) => i % x.shape[a]!));
  return [hostTensor(o!.dtype, o!.shape, gatherByAxisMaps(x.data, x.dtype, x.shape, maps, undefined, ctx.maxElements))];
};

/**
 * Where output position i along one axis reads from (-1: the constant). Negative pads crop first, then the
 * remaining [lo, lo + len) range is padded — onnxruntime's order, which matters for wrap and reflect.
 */
export function padMap(dim: number, begin: number, end: number, mode: PadMode): Int32Array {
  const lo = Math.max(0, -begin);
  const len = dim - lo - Math.max(0, -end);
  const before = Math.max(0, begin);
  const total = len + before + Math.max(0, end);
  if (len < 0) throw new ShapeError(`Pad crops more than an axis of size ${dim} holds (pads ${begin}, ${end}).`);
  if (len === 0 && total > 0 && mode !== 'constant') throw new ShapeError(`Pad mode '${mode}' cannot pad an empty axis.`);
  const map = new Int32Array(total);
  const period = 2 * (len - 1);
  for (let i = 0; i < total; i++) {
    const j = i - before;
    let k: number;
    if (j >= 0 && j < len) k = j;
    else if (mode === 'constant') k = -1;
    else if (mode === 'edge') k = j < 0 ? 0 : len - 1;
    else if (mode === 'wrap') k = ((j % len) + len) % len;
    else if (len === 1) k = 0;
    else {
      // reflect: mirror about the edge elements without repeating them (numpy 'reflect'), repeatedly.
      const m = ((j % period) + period) % period;
      k = m < len ? m : period - m;
    }
    map[i] = k < 0 ? -1 : lo + k;
  }
  return map;
}

const pad: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.Pad, node, inputs, ctx);
  const x = inputs[0]!;
  const mode = padMode(node);
  const { begin, end } = resolvePads(x.shape.length, ints(inputs[1])!, ints(inputs[3]));
  const cv = inputs[2];
  const fill = cv && cv.data.length ? cells(cv.data)[0] : cells(allocStorage(x.dtype, 1))[0];
  const maps = x.shape.map((d, a) => padMap(d, begin[a]!, end[a]!, mode));
  return [hostTensor(o!.dtype, o!.shape, gatherByAxisMaps(x.data, x.dtype, x.shape, maps, fill, ctx.maxElements))];
};

/** Reads `x` as the 6-D view `view` permuted by `perm`: DepthToSpace and SpaceToDepth are such a transpose. */
function viewTranspose(x: HostTensor, view: number[], perm: number[], maxElements: number): TensorStorage {
  const st = stridesOf(view);
  return stridedCopy(x.data, x.dtype, perm.map((p) => view[p]!), 0, perm.map((p) => st[p]!), maxElements);
}

const depthToSpace: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.DepthToSpace, node, inputs, ctx);
  const x = inputs[0]!;
  const b = blocksize(node);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const cc = c / (b * b);
  // DCR: depth is [b, b, C'] (column-row-channel order); CRD: [C', b, b] (ONNX DepthToSpace-13).
  const data = attrString(node, 'mode', 'DCR') === 'DCR'
    ? viewTranspose(x, [n, b, b, cc, h, w], [0, 3, 4, 1, 5, 2], ctx.maxElements)
    : viewTranspose(x, [n, cc, b, b, h, w], [0, 1, 4, 2, 5, 3], ctx.maxElements);
  return [hostTensor(o!.dtype, o!.shape, data)];
};

const spaceToDepth: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.SpaceToDepth, node, inputs, ctx);
  const x = inputs[0]!;
  const b = blocksize(node);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  // [N, C, H/b, b, W/b, b] → [N, b, b, C, H/b, W/b]
  return [hostTensor(o!.dtype, o!.shape, viewTranspose(x, [n, c, h / b, b, w / b, b], [0, 3, 5, 1, 2, 4], ctx.maxElements))];
};

export const kernels: Record<string, CpuKernel> = {
  Transpose: transpose, Concat: concat, Split: split, Slice: slice, Gather: gather, GatherElements: gatherElements,
  Expand: expand, Tile: tile, Pad: pad, DepthToSpace: depthToSpace, SpaceToDepth: spaceToDepth,
};
