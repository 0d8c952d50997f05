import { tensorToNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { isFloat, toNumbers } from '../../runtime/ir/dtype.js';

/**
 * Closeness checks shared by the conformance suite and the real-model tests.
 *
 * Two notions, used for different purposes:
 * - `allClose`: ONNX's backend-test rule (numpy.testing.assert_allclose): per element
 *   |actual - expected| <= atol + rtol * |expected|, NaN equals NaN, infinities must match exactly; integers, bools
 *   and strings must be equal; shapes and dtypes must be equal.
 * - `relativeError`: max|a - b| / max|b| over the whole tensor, b the reference. One number per tensor, robust to
 *   individual near-zero elements, used to compare whole networks against onnxruntime-node.
 */

export interface CloseOptions {
  rtol?: number;
  atol?: number;
}

/** The ONNX backend test defaults (onnx/backend/test/runner). */
export const ONNX_RTOL = 1e-3;
export const ONNX_ATOL = 1e-7;

export interface Mismatch {
  ok: false;
  /** Says what differs: shape, dtype, or the worst element with its index and values. */
  message: string;
}
export type CloseResult = { ok: true } | Mismatch;

function fmtShape(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

function unravel(i: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length).fill(0);
  for (let d = shape.length - 1; d >= 0; d--) {
    const n = shape[d]!;
    idx[d] = n === 0 ? 0 : i % n;
    i = n === 0 ? 0 : Math.floor(i / n);
  }
  return idx;
}

/** ONNX-style comparison of one output tensor against its reference. */
export function allClose(actual: HostTensor, expected: HostTensor, opts: CloseOptions = {}): CloseResult {
  const rtol = opts.rtol ?? ONNX_RTOL;
  const atol = opts.atol ?? ONNX_ATOL;
  if (actual.dtype !== expected.dtype) {
    return { ok: false, message: `dtype ${actual.dtype}, expected ${expected.dtype}` };
  }
  if (actual.shape.length !== expected.shape.length || actual.shape.some((d, i) => d !== expected.shape[i])) {
    return { ok: false, message: `shape ${fmtShape(actual.shape)}, expected ${fmtShape(expected.shape)}` };
  }
  if (actual.data.length !== expected.data.length) {
    return { ok: false, message: `${actual.data.length} elements, expected ${expected.data.length}` };
  }
  const where = (i: number) => `at index ${fmtShape(unravel(i, expected.shape))} (flat ${i})`;

  if (expected.dtype === 'string' || expected.dtype === 'int64' || expected.dtype === 'uint64') {
    // Exact comparison on the stored values (strings, or BigInts that may exceed 2^53).
    const a = actual.data as ArrayLike<unknown>;
    const e = expected.data as ArrayLike<unknown>;
    let bad = 0;
    let first = -1;
    for (let i = 0; i < e.length; i++) {
      if (a[i] !== e[i]) {
        bad++;
        if (first < 0) first = i;
      }
    }
    if (bad === 0) return { ok: true };
    return {
      ok: false,
      message: `${bad} of ${e.length} elements differ; first ${where(first)}: got ${String(a[first])}, expected ${String(e[first])}`,
    };
  }

  const a = toNumbers(actual.dtype, actual.data);
  const e = toNumbers(expected.dtype, expected.data);
  const exact = !isFloat(expected.dtype);
  let bad = 0;
  let worst = -1;
  let worstExcess = -Infinity;
  for (let i = 0; i < e.length; i++) {
    const x = a[i]!;
    const y = e[i]!;
    let excess: number;
    if (exact) {
      excess = x === y ? -1 : Math.abs(x - y);
    } else if (Number.isNaN(y) || Number.isNaN(x)) {
      excess = Number.isNaN(x) && Number.isNaN(y) ? -1 : Infinity;
    } else if (!Number.isFinite(y) || !Number.isFinite(x)) {
      excess = x === y ? -1 : Infinity;
    } else {
      // How far past the allowed tolerance this element is (<= 0: within tolerance).
      excess = Math.abs(x - y) - (atol + rtol * Math.abs(y));
    }
    if (excess > 0) {
      bad++;
      if (excess > worstExcess) {
        worstExcess = excess;
        worst = i;
      }
    }
  }
  if (bad === 0) return { ok: true };
  const tol = exact ? 'exact' : `rtol ${rtol}, atol ${atol}`;
  return {
    ok: false,
    message: `${bad} of ${e.length} elements differ (${tol}); worst ${where(worst)}: got ${a[worst]}, expected ${e[worst]}`,
  };
}

/**
 * max|a - b| / max|b| over the tensor (b is the reference). Shapes must match; a NaN anywhere, or a zero
 * reference with a non-zero difference, gives Infinity so it can never pass a tolerance check.
 */
export function relativeError(actual: HostTensor, reference: HostTensor): number {
  if (actual.shape.length !== reference.shape.length || actual.shape.some((d, i) => d !== reference.shape[i])) {
    throw new Error(`relativeError: shape ${fmtShape(actual.shape)} vs reference ${fmtShape(reference.shape)}`);
  }
  const a = toNumbers(actual.dtype, actual.data);
  const b = toNumbers(reference.dtype, reference.data);
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (Number.isNaN(d)) return Infinity;
    if (d > maxDiff) maxDiff = d;
    const r = Math.abs(b[i]!);
    if (r > maxRef) maxRef = r;
  }
  if (maxDiff === 0) return 0;
  return maxRef === 0 ? Infinity : maxDiff / maxRef;
}

/** Index of the largest value in each row of a [rows, cols] tensor (first one on ties). */
export function argmaxRows(t: HostTensor): number[] {
  if (t.shape.length !== 2) throw new Error(`argmaxRows expects a 2-D tensor, got ${fmtShape(t.shape)}`);
  const [rows, cols] = t.shape as [number, number];
  const v = toNumbers(t.dtype, t.data);
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (v[r * cols + c]! > v[r * cols + best]!) best = c;
    out.push(best);
  }
  return out;
}

/** Differences between two dequantized outputs in quantization steps of size `step`: the largest, and the share within one. */
export function steps(a: HostTensor, b: HostTensor, step: number): { max: number; within1: number } {
  const x = tensorToNumbers(a);
  const y = tensorToNumbers(b);
  let max = 0;
  let within = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.round(Math.abs(x[i]! - y[i]!) / step);
    max = Math.max(max, d);
    if (d <= 1) within++;
  }
  return { max, within1: within / x.length };
}
