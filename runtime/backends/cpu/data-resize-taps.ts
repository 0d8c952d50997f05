import type { ResizeAttrs } from '../../ir/ops/resize.js';

/**
 * Per-axis resampling taps for Resize-19. Every mode EdgeKit supports is separable: an output element along one
 * axis is a weighted sum of input elements along that axis (nearest: one tap of weight 1), so an N-D resize is
 * one 1-D pass per resized axis, and "linear" is N-linear on any number of axes.
 *
 * Coordinates follow the ONNX Resize-19 coordinate_transformation_mode formulas. They are evaluated in float32
 * steps (Math.fround), in the order onnxruntime evaluates them in float, so that nearest rounding ties (x.5) fall
 * the same way: a tie one ulp off picks the other neighbour.
 */

export interface AxisTaps {
  /** Taps per output position (positions with fewer use weight 0). */
  k: number;
  /** [outLen * k] input indices, already inside [0, inLen). */
  index: Int32Array;
  /** [outLen * k] weights. */
  weight: Float64Array;
  /** [outLen] 1 where tf_crop_and_resize samples outside the input: the output is extrapolation_value. */
  outside: Uint8Array;
}

const f = Math.fround;

/** x_original for output coordinate x (ONNX Resize-19, coordinate_transformation_mode). */
export function originalCoordinate(a: ResizeAttrs, x: number, inLen: number, outLen: number, scale: number, roi: readonly [number, number]): number {
  switch (a.coord) {
    case 'half_pixel':
      return f(f(f(x + 0.5) / scale) - 0.5);
    case 'half_pixel_symmetric': {
      // The output canvas is centred on the input's: only differs from half_pixel when in * scale is fractional.
      // (onnxruntime takes the last sum in double precision, hence no rounding inside it.)
      const adjustment = f(outLen / f(scale * inLen));
      const offset = f(f(inLen / 2) * f(1 - adjustment));
      return f(offset + (x + 0.5) / scale - 0.5);
    }
    case 'pytorch_half_pixel':
      return outLen > 1 ? f(f(f(x + 0.5) / scale) - 0.5) : 0;
    case 'align_corners':
      return outLen === 1 ? 0 : f(f(x * (inLen - 1)) / (outLen - 1));
    case 'asymmetric':
      return f(x / scale);
    case 'tf_half_pixel_for_nn':
      return f(f(x + 0.5) / scale);
    case 'tf_crop_and_resize': {
      const [s, e] = roi;
      return outLen > 1 ? f(f(s * (inLen - 1)) + f(f(f(x * f(e - s)) * (inLen - 1)) / (outLen - 1))) : f(0.5 * f(s + e) * (inLen - 1));
    }
  }
}

/**
 * Input index nearest to x under nearest_mode (before clamping). A coordinate within float32 rounding of a .5 tie
 * is treated as the tie: the transforms are exact rationals (2 / (4/7) is 3.5) that float evaluation misses by an
 * ulp either way, and onnxruntime's nearest mapping resolves such cases as the exact tie too.
 */
function nearestIndex(mode: ResizeAttrs['nearest'], x: number): number {
  const lo = Math.floor(x);
  const frac = x - lo;
  const tie = Math.abs(frac - 0.5) <= 4e-7 * Math.max(1, Math.abs(x));
  switch (mode) {
    case 'round_prefer_floor': return tie || frac < 0.5 ? lo : lo + 1;
    case 'round_prefer_ceil': return !tie && frac < 0.5 ? lo : lo + 1;
    case 'floor': return lo;
    case 'ceil': return Math.ceil(x);
  }
}

/** Keys' cubic convolution kernel with parameter A (ONNX cubic_coeff_a). */
function cubic(t: number, A: number): number {
  const x = Math.abs(t);
  if (x <= 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
  if (x < 2) return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
  return 0;
}

const triangle = (t: number) => Math.max(0, 1 - Math.abs(t));

export function axisTaps(a: ResizeAttrs, inLen: number, outLen: number, scale: number, roi: readonly [number, number]): AxisTaps {
  const outside = new Uint8Array(outLen);
  const clamp = (i: number) => Math.min(Math.max(i, 0), inLen - 1);
  const coords = Float64Array.from({ length: outLen }, (_, x) => originalCoordinate(a, x, inLen, outLen, scale, roi));
  if (a.coord === 'tf_crop_and_resize') coords.forEach((c, i) => (outside[i] = c < 0 || c > inLen - 1 ? 1 : 0));

  if (a.mode === 'nearest') {
    const index = Int32Array.from(coords, (c) => clamp(nearestIndex(a.nearest, c)));
    return { k: 1, index, weight: new Float64Array(outLen).fill(1), outside };
  }

  // Linear (triangle, radius 1) and cubic (Keys, radius 2). With antialias and scale < 1 the filter is stretched by
  // 1/scale (ONNX Resize-18 antialias), so more input elements contribute; otherwise the plain 2 or 4 taps.
  const radius = a.mode === 'linear' ? 1 : 2;
  const s = a.antialias ? Math.min(scale, 1) : 1;
  const filter = a.mode === 'linear' ? triangle : (t: number) => cubic(t, a.cubicA);
  const reach = radius / s;
  const k = 2 * Math.ceil(reach) + 1;
  const index = new Int32Array(outLen * k);
  const weight = new Float64Array(outLen * k);
  // Normalizing matters where weights need not add up to 1: stretched filters and dropped outside taps.
  const normalize = a.antialias || a.excludeOutside;
  for (let o = 0; o < outLen; o++) {
    // Linear without antialias clamps the coordinate into the input first (onnxruntime and the reference agree
    // this equals edge padding); cubic keeps it and pads with edge values (or drops outside taps).
    const c = a.mode === 'linear' && !a.antialias ? Math.min(Math.max(coords[o]!, 0), inLen - 1) : coords[o]!;
    const first = Math.floor(c - reach) + 1;
    let total = 0;
    for (let t = 0; t < k; t++) {
      const i = first + t;
      let w = filter((i - c) * s);
      if (a.excludeOutside && (i < 0 || i >= inLen)) w = 0;
      index[o * k + t] = clamp(i);
      weight[o * k + t] = w;
      total += w;
    }
    if (normalize && total !== 0) for (let t = 0; t < k; t++) weight[o * k + t]! /= total;
  }
  return { k, index, weight, outside };
}
