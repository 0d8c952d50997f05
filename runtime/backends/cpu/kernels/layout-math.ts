import { InvalidArgumentError } from '../../../errors.js';
import { allocStorage, fromNumbers, toNumbers } from '../../../ir/dtype.js';
import { lrnAttrs, mvnAxes, reverseAxes, schemas, unpoolFrame } from '../../../ir/ops/layout-math.js';
import { hostTensor, stridesOf, type HostTensor } from '../../../ir/tensor.js';
import { cells, outputsOf } from '../data-index.js';
import type { CpuKernel } from '../kernel.js';

/**
 * CPU reference for MeanVarianceNormalization, LRN, ReverseSequence, Det and MaxUnpool. Arithmetic in float64,
 * rounded to the output type once; ReverseSequence and MaxUnpool move storage cells unchanged.
 */

const nums = (t: HostTensor) => toNumbers(t.dtype, t.data);
const k0 = (k: number) => (Number.isInteger(k) && k >= 0 ? k : -1);

/**
 * MVN-13 as its ONNX function defines it: (X - E[X]) / (sqrt(E[X^2] - E[X]^2) + 1e-9), the expectations over
 * `axes`.
 */
const mvn: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.MeanVarianceNormalization, node, inputs, ctx);
  const x = inputs[0]!;
  const axes = new Set(mvnAxes(node, x.shape.length));
  const v = nums(x);
  const st = stridesOf(x.shape);
  // Flat index of an element's group: its coordinates on the kept axes.
  const keptDims = x.shape.map((d, a) => (axes.has(a) ? 1 : d));
  const keptSt = stridesOf(keptDims);
  const group = new Int32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    let g = 0;
    for (let a = 0; a < x.shape.length; a++) if (!axes.has(a)) g += (Math.floor(i / st[a]!) % x.shape[a]!) * keptSt[a]!;
    group[i] = g;
  }
  const groups = keptDims.reduce((p, d) => p * d, 1);
  const n = v.length / Math.max(groups, 1);
  const sum = new Float64Array(groups);
  const sq = new Float64Array(groups);
  for (let i = 0; i < v.length; i++) {
    const g = group[i]!;
    sum[g] = sum[g]! + v[i]!;
    sq[g] = sq[g]! + v[i]! * v[i]!;
  }
  const out = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const mean = sum[group[i]!]! / n;
    const std = Math.sqrt(sq[group[i]!]! / n - mean * mean);
    out[i] = (v[i]! - mean) / (std + 1e-9);
  }
  return [hostTensor(o!.dtype, o!.shape, fromNumbers(o!.dtype, out))];
};

/** LRN-13: y = x / (bias + alpha / size * sum of x^2 over the channel window) ^ beta. */
const lrn: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.LRN, node, inputs, ctx);
  const x = inputs[0]!;
  const { size, alpha, beta, bias } = lrnAttrs(node);
  const [c, inner] = [x.shape[1]!, x.shape.slice(2).reduce((a, b) => a * b, 1)];
  const v = nums(x);
  const out = new Float64Array(v.length);
  const lo = Math.floor((size - 1) / 2);
  const hi = Math.ceil((size - 1) / 2);
  for (let i = 0; i < v.length; i++) {
    const ch = Math.floor(i / inner) % c;
    const base = i - ch * inner;
    let s = 0;
    for (let k = Math.max(0, ch - lo); k <= Math.min(c - 1, ch + hi); k++) s += v[base + k * inner]! ** 2;
    out[i] = v[i]! / (bias + (alpha / size) * s) ** beta;
  }
  return [hostTensor(o!.dtype, o!.shape, fromNumbers(o!.dtype, out))];
};

/** ReverseSequence-10: along time, the first sequence_lens[b] steps of batch b reversed, the rest copied. */
const reverseSequence: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.ReverseSequence, node, inputs, ctx);
  const [x, lensT] = inputs as [HostTensor, HostTensor];
  const { time, batch } = reverseAxes(node);
  const lens = nums(lensT);
  const T = x.shape[time]!;
  lens.forEach((l) => {
    if (!(l >= 0 && l <= T)) throw new InvalidArgumentError(`ReverseSequence sequence_lens value ${l} is outside [0, ${T}].`);
  });
  const st = stridesOf(x.shape);
  const data = allocStorage(x.dtype, x.data.length);
  const out = cells(data);
  const src = cells(x.data);
  for (let i = 0; i < x.data.length; i++) {
    const t = Math.floor(i / st[time]!) % T;
    const b = Math.floor(i / st[batch]!) % x.shape[batch]!;
    const len = lens[b]!;
    const from = t < len ? len - 1 - t : t;
    out[i] = src[i + (from - t) * st[time]!];
  }
  return [hostTensor(o!.dtype, o!.shape, data)];
};

/** Det of one M x M matrix (row-major in `a`, overwritten) by Gaussian elimination with partial pivoting. */
export function determinant(a: Float64Array, m: number): number {
  let det = 1;
  for (let k = 0; k < m; k++) {
    let p = k;
    for (let r = k + 1; r < m; r++) if (Math.abs(a[r * m + k]!) > Math.abs(a[p * m + k]!)) p = r;
    if (a[p * m + k] === 0) return 0;
    if (p !== k) {
      for (let j = 0; j < m; j++) [a[k * m + j], a[p * m + j]] = [a[p * m + j]!, a[k * m + j]!];
      det = -det;
    }
    const piv = a[k * m + k]!;
    det *= piv;
    for (let r = k + 1; r < m; r++) {
      const f = a[r * m + k]! / piv;
      for (let j = k + 1; j < m; j++) a[r * m + j] = a[r * m + j]! - f * a[k * m + j]!;
    }
  }
  return det;
}

const det: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.Det, node, inputs, ctx);
  const x = inputs[0]!;
  const m = x.shape[x.shape.length - 1]!;
  const v = nums(x);
  const count = m === 0 ? o!.shape.reduce((a, b) => a * b, 1) : v.length / (m * m);
  const out = new Float64Array(count);
  for (let b = 0; b < count; b++) out[b] = determinant(v.slice(b * m * m, (b + 1) * m * m), m);
  return [hostTensor(o!.dtype, o!.shape, fromNumbers(o!.dtype, out))];
};

/**
 * MaxUnpool-11: zeros, with X[i] written where I[i] points. I holds MaxPool's flat indices over the whole default
 * unpooled tensor [N, C, (in - 1) * stride + kernel - pads]; a larger output_shape keeps those coordinates (the
 * extra rows and columns stay zero), as the ONNX reference places them.
 */
export function unpoolTarget(k: number, frame: readonly number[], out: readonly number[]): number {
  let rest = k;
  let off = 0;
  let mul = 1;
  for (let a = frame.length - 1; a >= 0; a--) {
    const c = rest % frame[a]!;
    rest = Math.floor(rest / frame[a]!);
    if (c >= out[a]!) return -1;
    off += c * mul;
    mul *= out[a]!;
  }
  return rest === 0 ? off : -1;
}

const maxUnpool: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.MaxUnpool, node, inputs, ctx);
  const [x, it] = inputs as [HostTensor, HostTensor];
  const idx = nums(it);
  if (idx.length !== x.data.length) throw new InvalidArgumentError(`MaxUnpool indices [${it.shape.join(', ')}] must match X [${x.shape.join(', ')}].`);
  const frame = unpoolFrame(node, x.shape);
  const size = o!.shape.reduce((a, b) => a * b, 1);
  const data = allocStorage(o!.dtype, size);
  const out = cells(data);
  const src = cells(x.data);
  for (let i = 0; i < idx.length; i++) {
    const k = k0(idx[i]!);
    const at = k < 0 ? -1 : unpoolTarget(k, frame, o!.shape);
    if (at < 0) throw new InvalidArgumentError(`MaxUnpool index ${idx[i]} is outside the unpooled tensor [${frame.join(', ')}] or the output [${o!.shape.join(', ')}].`);
    out[at] = src[i];
  }
  return [hostTensor(o!.dtype, o!.shape, data)];
};

export const kernels: Record<string, CpuKernel> = {
  MeanVarianceNormalization: mvn, LRN: lrn, ReverseSequence: reverseSequence, Det: det, MaxUnpool: maxUnpool,
};
