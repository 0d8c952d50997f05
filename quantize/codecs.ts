import { f32ToF16Bits } from '../runtime/ir/dtype.js';
import { roundHalfEven } from '../runtime/ir/ops/quantize.js';
import { hostTensor, tensorToNumbers, type HostTensor } from '../runtime/ir/tensor.js';

/**
 * Pure codecs: linear quantization parameters from a range, int8 weights per tensor or per channel, int32 biases,
 * 4-bit blocks in MatMulNBits' layout, float16. Formulas are the ONNX spec's (QuantizeLinear):
 *   q = saturate(round_half_even(x / scale) + zero_point),  x ≈ (q - zero_point) * scale.
 */

export type QType = 'uint8' | 'int8';
export interface QParams {
  scale: number;
  zeroPoint: number;
  type: QType;
}

export const QRANGE: Record<QType, [number, number]> = { uint8: [0, 255], int8: [-128, 127] };

/** Float32 as stored: parameters are float32 in the file, so compute with the rounded value. */
const f32 = (v: number) => Math.fround(v);

/**
 * Parameters for a calibrated range. The range is widened to contain 0 so that 0 (padding, Relu's floor) is exact.
 * Asymmetric: the range maps onto [qmin, qmax]; a range starting at 0 gets zero point qmin, so saturation is a Relu.
 * Symmetric: int8 zero point 0 over [-127, 127] steps, uint8 zero point 128 (onnxruntime's choices).
 */
export function paramsForRange(lo: number, hi: number, type: QType, symmetric: boolean): QParams {
  let rmin = Math.min(lo, 0);
  let rmax = Math.max(hi, 0);
  if (!Number.isFinite(rmin) || !Number.isFinite(rmax)) [rmin, rmax] = [0, 0];
  const [qmin, qmax] = QRANGE[type];
  if (symmetric) {
    const abs = Math.max(-rmin, rmax);
    if (abs === 0) return { scale: 1, zeroPoint: type === 'int8' ? 0 : 128, type };
    return type === 'int8' ? { scale: f32(abs / 127), zeroPoint: 0, type } : { scale: f32((2 * abs) / 255), zeroPoint: 128, type };
  }
  if (rmax === rmin) return { scale: 1, zeroPoint: qmin, type };
  const scale = f32((rmax - rmin) / (qmax - qmin));
  const zp = Math.min(qmax, Math.max(qmin, roundHalfEven(qmin - rmin / scale)));
  return { scale, zeroPoint: zp, type };
}

export function quantizeValue(x: number, p: QParams): number {
  const [qmin, qmax] = QRANGE[p.type];
  return Math.min(qmax, Math.max(qmin, roundHalfEven(x / p.scale) + p.zeroPoint));
}

export function scalarTensor(dtype: 'float32' | 'uint8' | 'int8', v: number): HostTensor {
  const data = dtype === 'float32' ? Float32Array.of(v) : dtype === 'uint8' ? Uint8Array.of(v) : Int8Array.of(v);
  return hostTensor(dtype, [], data);
}

export interface QuantizedWeight {
  q: HostTensor;
  /** One scale per tensor, or per slice along `axis`. */
  scales: Float32Array;
  axis: number | undefined;
}

/**
 * Symmetric int8 weights, zero point 0, values in [-127, 127] (so that -w is representable too and the int8
 * product never meets -128 * -128). Per channel: one scale per index along `axis`.
 */
export function quantizeWeightInt8(w: HostTensor, axis: number | undefined): QuantizedWeight {
  const v = tensorToNumbers(w);
  const rank = w.shape.length;
  const dim = axis === undefined ? 1 : w.shape[axis]!;
  const inner = axis === undefined ? v.length : w.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channel = (i: number) => (axis === undefined ? 0 : Math.floor(i / inner) % dim);
  const absmax = new Float64Array(dim);
  for (let i = 0; i < v.length; i++) absmax[channel(i)] = Math.max(absmax[channel(i)]!, Math.abs(v[i]!));
  const scales = new Float32Array(dim);
  for (let c = 0; c < dim; c++) scales[c] = absmax[c]! > 0 ? absmax[c]! / 127 : 1;
  const q = new Int8Array(v.length);
  for (let i = 0; i < v.length; i++) q[i] = Math.min(127, Math.max(-127, roundHalfEven(v[i]! / scales[channel(i)]!)));
  void rank;
  return { q: hostTensor('int8', [...w.shape], q), scales, axis };
}

/** A float32 bias as int32 at scale = input scale × weight scale (per channel), zero point 0; saturated to int32. */
export function quantizeBiasInt32(b: HostTensor, inputScale: number, weightScales: Float32Array): { q: HostTensor; scales: Float32Array } {
  const v = tensorToNumbers(b);
  const scales = new Float32Array(v.length);
  const q = new Int32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const s = f32(inputScale * weightScales[weightScales.length === 1 ? 0 : i]!);
    scales[i] = s > 0 ? s : 1;
    q[i] = Math.min(2147483647, Math.max(-2147483648, roundHalfEven(v[i]! / scales[i]!)));
  }
  return { q: hostTensor('int32', [v.length], q), scales };
}

/** Range shrink factors tried per 4-bit block (quantizeInt4Blocks). */
const SHRINK = [1, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7];

export interface Int4Blocks {
  /** [N, blocks, blockSize / 2]: two 4-bit values per byte, the even k in the low nibble. */
  packed: Uint8Array;
  /** [N * blocks] (n-major). */
  scales: Float32Array;
  /** [N * ceil(blocks / 2)]: packed 4-bit zero points, undefined when symmetric (implicit 8). */
  zeroPoints: Uint8Array | undefined;
  blocks: number;
  /** The dequantized weights [K, N] as float32 (for the report). */
  dequantized: Float32Array;
}

/**
 * A constant MatMul weight B [K, N] as 4-bit blocks along K (com.microsoft MatMulNBits' layout: column n's K
 * values in blocks of `blockSize`, K padded with zeros to a whole block). Asymmetric blocks: range [min, max]
 * widened to hold 0, 15 steps, zero point in 0..15. Symmetric: zero point 8, scale absmax / 8 (values -8..7 around
 * it, the positive end saturating at 7).
 */
export function quantizeInt4Blocks(b: HostTensor, blockSize: number, symmetric: boolean): Int4Blocks {
  const [K, N] = b.shape as [number, number];
  const v = tensorToNumbers(b);
  const blocks = Math.ceil(K / blockSize);
  const half = blockSize / 2;
  const packed = new Uint8Array(N * blocks * half);
  const scales = new Float32Array(N * blocks);
  const zpBytes = Math.ceil(blocks / 2);
  const zeroPoints = symmetric ? undefined : new Uint8Array(N * zpBytes);
  const dequantized = new Float32Array(K * N);
  const q = new Uint8Array(blockSize);
  for (let n = 0; n < N; n++) {
    for (let blk = 0; blk < blocks; blk++) {
      const k0 = blk * blockSize;
      const k1 = Math.min(K, k0 + blockSize);
      let lo = 0;
      let hi = 0;
      for (let k = k0; k < k1; k++) {
        lo = Math.min(lo, v[k * N + n]!);
        hi = Math.max(hi, v[k * N + n]!);
      }
      // The block's range is searched, not taken as is: shrinking either end clips a few outliers but refines every
      // other step, and the pair with the least squared error wins (a small grid, as in llama.cpp's k-quants).
      let scale = 1;
      let zp = symmetric ? 8 : 0;
      let bestErr = Infinity;
      for (const sl of SHRINK) {
        for (const sh of symmetric ? [sl] : SHRINK) {
          let s: number;
          let z: number;
          if (symmetric) {
            const abs = Math.max(-lo, hi) * sl;
            s = abs > 0 ? f32(abs / 8) : 1;
            z = 8;
          } else {
            const a = lo * sl;
            const b = hi * sh;
            s = b > a ? f32((b - a) / 15) : 1;
            z = Math.min(15, Math.max(0, roundHalfEven(-a / s)));
          }
          let err = 0;
          for (let k = k0; k < k1; k++) {
            const w = v[k * N + n]!;
            const d = w - (Math.min(15, Math.max(0, roundHalfEven(w / s) + z)) - z) * s;
            err += d * d;
          }
          if (err < bestErr) [bestErr, scale, zp] = [err, s, z];
        }
      }
      scales[n * blocks + blk] = scale;
      if (zeroPoints) zeroPoints[n * zpBytes + (blk >> 1)]! |= zp << ((blk & 1) * 4);
      q.fill(zp); // padding past K dequantizes to 0
      for (let k = k0; k < k1; k++) {
        const x = Math.min(15, Math.max(0, roundHalfEven(v[k * N + n]! / scale) + zp));
        q[k - k0] = x;
        dequantized[k * N + n] = (x - zp) * scale;
      }
      const base = (n * blocks + blk) * half;
      for (let j = 0; j < half; j++) packed[base + j] = q[2 * j]! | (q[2 * j + 1]! << 4);
    }
  }
  return { packed, scales, zeroPoints, blocks, dequantized };
}

/** Float32 storage → float16 bits (round to nearest even; beyond ±65504 becomes ±Infinity, as a Cast does). */
export function toFloat16(t: HostTensor): HostTensor {
  const v = t.data as Float32Array;
  const out = new Uint16Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = f32ToF16Bits(v[i]!);
  return hostTensor('float16', [...t.shape], out);
}
