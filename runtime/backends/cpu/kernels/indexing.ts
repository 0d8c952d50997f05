import { InvalidArgumentError } from '../../../errors.js';
import { allocStorage, fromNumbers, toNumbers, type TensorStorage } from '../../../ir/dtype.js';
import { attrInt } from '../../../ir/graph.js';
import { eyeLikeDType, gatherNdBatchDims, oneHotAxis, oneHotDepthValue, scatterReduction, schemas, type ScatterReduction } from '../../../ir/ops/indexing.js';
import { normalizeAxis } from '../../../ir/shape.js';
import { hostTensor, sizeOf, stridesOf, type HostTensor } from '../../../ir/tensor.js';
import { around, cells, outputsOf } from '../data-index.js';
import type { CpuKernel } from '../kernel.js';

/**
 * CPU kernels for the index-driven ops: GatherND, ScatterND, ScatterElements (reductions none/add/mul/max/min),
 * OneHot, EyeLike, Trilu. Copies move storage cells unchanged (int64 stays exact); scatter reductions compute on JS
 * numbers and convert back with Cast semantics. Updates apply in row-major order, so duplicate indices with
 * reduction 'none' keep the last update (the spec leaves that case undefined).
 */

const ints = (t: HostTensor): number[] => Array.from(toNumbers(t.dtype, t.data));
const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** An index resolved against an axis of size n (negative counts from the back); out of range is an error. */
function indexInto(v: number, n: number, op: string): number {
  const k = v < 0 ? v + n : v;
  if (!(k >= 0 && k < n)) throw new InvalidArgumentError(`${op} index ${v} is out of range for an axis of size ${n} (allowed ${-n} to ${n - 1}).`);
  return k;
}

/** GatherND-13: out[t, s] = data[batch(t), idx[t, 0..K-1], s] over index tuples t and slice elements s. */
const gatherNd: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.GatherND, node, inputs, ctx);
  const x = inputs[0]!;
  const it = inputs[1]!;
  const q = it.shape.length;
  const b = gatherNdBatchDims(node, x.shape.length, q);
  const k = it.shape[q - 1]!;
  const idx = ints(it);
  const xs = stridesOf(x.shape);
  const slice = prod(x.shape.slice(b + k));
  const tuples = prod(it.shape.slice(0, q - 1));
  const perBatch = prod(it.shape.slice(b, q - 1));
  const batchStride = prod(x.shape.slice(b));
  const data = allocStorage(o!.dtype, sizeOf(o!.shape));
  const out = cells(data);
  const src = cells(x.data);
  for (let t = 0; t < tuples; t++) {
    let off = Math.floor(t / perBatch) * batchStride;
    for (let j = 0; j < k; j++) off += indexInto(idx[t * k + j]!, x.shape[b + j]!, 'GatherND') * xs[b + j]!;
    for (let s = 0; s < slice; s++) out[t * slice + s] = src[off + s];
  }
  return [hostTensor(o!.dtype, o!.shape, data)];
};

const REDUCE: Record<Exclude<ScatterReduction, 'none'>, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  mul: (a, b) => a * b,
  max: (a, b) => Math.max(a, b),
  min: (a, b) => Math.min(a, b),
};

/**
 * Applies (target offset, update position) pairs to a copy of `data`: plain cell copies for 'none' (exact for every
 * dtype), arithmetic on numbers for the reductions.
 */
function scatterInto(data: HostTensor, updates: HostTensor, reduction: ScatterReduction, visit: (apply: (dst: number, src: number) => void) => void): TensorStorage {
  if (reduction === 'none') {
    const out = Array.isArray(data.data) ? [...data.data] : data.data.slice();
    const o = cells(out);
    const u = cells(updates.data);
    visit((dst, src) => {
      o[dst] = u[src];
    });
    return out;
  }
  const acc = toNumbers(data.dtype, data.data);
  const u = toNumbers(updates.dtype, updates.data);
  const f = REDUCE[reduction];
  visit((dst, src) => {
    acc[dst] = f(acc[dst]!, u[src]!);
  });
  return fromNumbers(data.dtype, acc);
}

/** ScatterND-18: the slice data[idx[t, 0..K-1], ...] receives updates[t, ...] for every index tuple t. */
const scatterNd: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.ScatterND, node, inputs, ctx);
  const [x, it, upd] = inputs as [HostTensor, HostTensor, HostTensor];
  const q = it.shape.length;
  const k = it.shape[q - 1]!;
  const idx = ints(it);
  const xs = stridesOf(x.shape);
  const slice = prod(x.shape.slice(k));
  const tuples = prod(it.shape.slice(0, q - 1));
  const data = scatterInto(x, upd, scatterReduction(node), (apply) => {
    for (let t = 0; t < tuples; t++) {
      let off = 0;
      for (let j = 0; j < k; j++) off += indexInto(idx[t * k + j]!, x.shape[j]!, 'ScatterND') * xs[j]!;
      for (let s = 0; s < slice; s++) apply(off + s, t * slice + s);
    }
  });
  return [hostTensor(o!.dtype, o!.shape, data)];
};

/** ScatterElements-18: the update at position p goes to data at p with p[axis] replaced by indices[p]. */
const scatterElements: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.ScatterElements, node, inputs, ctx);
  const [x, it, upd] = inputs as [HostTensor, HostTensor, HostTensor];
  const r = x.shape.length;
  const axis = normalizeAxis(attrInt(node, 'axis', 0), r);
  const idx = ints(it);
  const xs = stridesOf(x.shape);
  const data = scatterInto(x, upd, scatterReduction(node), (apply) => {
    const coord = new Array<number>(r).fill(0);
    for (let p = 0; p < idx.length; p++) {
      let off = 0;
      for (let d = 0; d < r; d++) {
        const c = d === axis ? indexInto(idx[p]!, x.shape[axis]!, 'ScatterElements') : coord[d]!;
        if (c >= x.shape[d]!) throw new InvalidArgumentError(`ScatterElements indices/updates dim ${d} (${it.shape[d]}) exceeds the data's (${x.shape[d]}).`);
        off += c * xs[d]!;
      }
      apply(off, p);
      for (let d = r - 1; d >= 0; d--) {
        if (++coord[d]! < it.shape[d]!) break;
        coord[d] = 0;
      }
    }
  });
  return [hostTensor(o!.dtype, o!.shape, data)];
};

/** OneHot-11: on_value where the (negative-wrapped) index equals the depth position, off_value elsewhere. */
const oneHot: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.OneHot, node, inputs, ctx);
  const [it, depthT, values] = inputs as [HostTensor, HostTensor, HostTensor];
  const depth = oneHotDepthValue(depthT);
  const axis = oneHotAxis(node, it.shape.length);
  const [outer, , inner] = around(o!.shape, axis);
  const idx = toNumbers(it.dtype, it.data);
  const v = cells(values.data);
  const data = allocStorage(o!.dtype, sizeOf(o!.shape, ctx.maxElements));
  const out = cells(data);
  for (let i = 0; i < out.length; i++) out[i] = v[0];
  for (let a = 0; a < outer; a++) {
    for (let i = 0; i < inner; i++) {
      // A non-integral float index matches no position (onnxruntime and the ONNX reference compare values).
      let k = idx[a * inner + i]!;
      if (k < 0) k += depth;
      if (Number.isInteger(k) && k >= 0 && k < depth) out[(a * depth + k) * inner + i] = v[1];
    }
  }
  return [hostTensor(o!.dtype, o!.shape, data)];
};

/** EyeLike-9: ones where col - row = k. */
const eyeLike: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.EyeLike, node, inputs, ctx);
  const [rows, cols] = o!.shape as [number, number];
  const k = attrInt(node, 'k', 0);
  const v = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) if (r + k >= 0 && r + k < cols) v[r * cols + r + k] = 1;
  return [hostTensor(eyeLikeDType(node, inputs[0]!.dtype), o!.shape, fromNumbers(o!.dtype, v))];
};

/** Trilu-14: keeps col - row >= k (upper) or col - row <= k (lower) in each matrix of the last two dims. */
const trilu: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.Trilu, node, inputs, ctx);
  const x = inputs[0]!;
  const k = inputs[1] ? ints(inputs[1])[0] ?? 0 : 0;
  const upper = attrInt(node, 'upper', 1) !== 0;
  const r = x.shape.length;
  const [rows, cols] = [x.shape[r - 2]!, x.shape[r - 1]!];
  const data = allocStorage(x.dtype, x.data.length);
  const out = cells(data);
  const src = cells(x.data);
  const zero = cells(allocStorage(x.dtype, 1))[0];
  for (let i = 0; i < x.data.length; i++) {
    const col = i % cols;
    const row = Math.floor(i / cols) % rows;
    const keep = upper ? col - row >= k : col - row <= k;
    out[i] = keep ? src[i] : zero;
  }
  return [hostTensor(o!.dtype, o!.shape, data)];
};

export const kernels: Record<string, CpuKernel> = {
  GatherND: gatherNd, ScatterND: scatterNd, ScatterElements: scatterElements, OneHot: oneHot, EyeLike: eyeLike, Trilu: trilu,
};
