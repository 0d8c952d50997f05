import { fromNumbers, toNumbers } from '../../../ir/dtype.js';
import { InvalidArgumentError } from '../../../errors.js';
import { gridSampleAttrs, roiAlignAttrs, schemas, type GridPadding } from '../../../ir/ops/vision.js';
import { hostTensor, type HostTensor } from '../../../ir/tensor.js';
import { outputsOf } from '../data-index.js';
import type { CpuKernel } from '../kernel.js';

/**
 * CPU reference for GridSample (and RoiAlign). GridSample follows the definition ONNX adopted from PyTorch's
 * grid_sample: unnormalize (align_corners: -1 and 1 are the centers of the corner pixels, else their outer edges),
 * apply the padding mode to the source coordinate (bilinear, nearest) or to each tap (bicubic, A = -0.75), and read
 * out-of-range taps as 0 under 'zeros'.
 */

/** Mirror `v` into [lo2 / 2, hi2 / 2] (twice the bounds, so half-pixel edges stay integers). */
function reflect(v: number, lo2: number, hi2: number): number {
  if (lo2 === hi2) return 0;
  const min = lo2 / 2;
  const span = (hi2 - lo2) / 2;
  const a = Math.abs(v - min);
  const extra = a % span;
  const flips = Math.floor(a / span);
  return flips % 2 === 0 ? extra + min : span - extra + min;
}

/** A coordinate after the padding mode: border clamps, reflection mirrors then clamps, zeros leaves it. */
function padCoord(v: number, n: number, padding: GridPadding, alignCorners: boolean): number {
  if (padding === 'border') return Math.min(Math.max(v, 0), n - 1);
  if (padding === 'reflection') {
    const r = alignCorners ? reflect(v, 0, 2 * (n - 1)) : reflect(v, -1, 2 * n - 1);
    return Math.min(Math.max(r, 0), n - 1);
  }
  return v;
}

/** Cubic convolution weights for t in [0, 1) (Keys, A = -0.75) for taps -1, 0, 1, 2. */
function cubicWeights(t: number): [number, number, number, number] {
  const A = -0.75;
  const near = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1;
  const far = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
  return [far(t + 1), near(t), near(1 - t), far(2 - t)];
}

/** Round half to even (C nearbyint), the nearest mode's rounding. */
function rint(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const gridSample: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.GridSample, node, inputs, ctx);
  const [x, g] = inputs as [HostTensor, HostTensor];
  const { mode, padding, alignCorners } = gridSampleAttrs(node);
  // Spatial axes in input order (D,) H, W; grid component k addresses axis S - 1 - k (x is the width).
  const S = x.shape.length - 2;
  const [n, c] = [x.shape[0]!, x.shape[1]!];
  const dims = x.shape.slice(2);
  const plane = dims.reduce((p, d) => p * d, 1);
  const outPlane = g.shape.slice(1, -1).reduce((p, d) => p * d, 1);
  const xv = toNumbers(x.dtype, x.data);
  const gv = toNumbers(g.dtype, g.data);
  const out = new Float64Array(n * c * outPlane);
  const unnorm = (v: number, size: number) => (alignCorners ? ((v + 1) / 2) * (size - 1) : ((v + 1) * size - 1) / 2);
  const st = dims.map((_, a) => dims.slice(a + 1).reduce((p, d) => p * d, 1));
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < outPlane; i++) {
      const src = dims.map((d, a) => unnorm(gv[(b * outPlane + i) * S + (S - 1 - a)]!, d));
      for (let ch = 0; ch < c; ch++) {
        const base = (b * c + ch) * plane;
        const at = (p: number[]) => (p.every((v, a) => v >= 0 && v < dims[a]!) ? xv[base + p.reduce((s, v, a) => s + v * st[a]!, 0)]! : 0);
        let v = 0;
        if (mode === 'bicubic') {
          const [iy, ix] = src as [number, number];
          const [h, w] = dims as [number, number];
          const x0 = Math.floor(ix);
          const y0 = Math.floor(iy);
          const wx = cubicWeights(ix - x0);
          const wy = cubicWeights(iy - y0);
          // Each tap is padded on its own (border/reflection move it inside; zeros read it as 0).
          const tap = (yy: number, xx: number) => (padding === 'zeros' ? at([yy, xx]) : at([padCoord(yy, h, padding, alignCorners), padCoord(xx, w, padding, alignCorners)]));
          for (let r = 0; r < 4; r++) {
            let row = 0;
            for (let k = 0; k < 4; k++) row += wx[k]! * tap(y0 - 1 + r, x0 - 1 + k);
            v += wy[r]! * row;
          }
        } else {
          const p = src.map((s, a) => padCoord(s, dims[a]!, padding, alignCorners));
          if (mode === 'nearest') v = at(p.map(rint));
          else {
            // (Bi/tri)linear: the 2^S corners, each weighted by the product of its per-axis weights.
            const lo = p.map(Math.floor);
            for (let corner = 0; corner < 1 << S; corner++) {
              let wgt = 1;
              const q = lo.map((l, a) => {
                const up = (corner >> (S - 1 - a)) & 1;
                wgt *= up ? p[a]! - l : 1 - (p[a]! - l);
                return l + up;
              });
              v += wgt * at(q);
            }
          }
        }
        out[(b * c + ch) * outPlane + i] = v;
      }
    }
  }
  return [hostTensor(o!.dtype, o!.shape, fromNumbers(o!.dtype, out))];
};

/**
 * RoiAlign-16 as onnxruntime defines it (and the ONNX reference follows): each output bin averages (or, for 'max',
 * takes the largest of) sampling_ratio^2 bilinear samples (adaptive ceil(roi / bins) when 0); a sample more than
 * one pixel outside the image is 0, one within clamps to the edge. 'max' takes, per sample, the largest of the four
 * weighted corner values, as onnxruntime does.
 */
const roiAlign: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.RoiAlign, node, inputs, ctx);
  const [x, roisT, biT] = inputs as [HostTensor, HostTensor, HostTensor];
  const a = roiAlignAttrs(node);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const xv = toNumbers(x.dtype, x.data);
  const rois = toNumbers(roisT.dtype, roisT.data);
  const bi = toNumbers(biT.dtype, biT.data);
  const r = roisT.shape[0]!;
  const out = new Float64Array(r * c * a.outH * a.outW);
  const offset = a.halfPixel ? 0.5 : 0;
  for (let q = 0; q < r; q++) {
    const b = bi[q]!;
    if (!(Number.isInteger(b) && b >= 0 && b < n)) throw new InvalidArgumentError(`RoiAlign batch index ${b} is outside [0, ${n}).`);
    const [x1, y1, x2, y2] = [0, 1, 2, 3].map((k) => rois[q * 4 + k]! * a.scale - offset) as [number, number, number, number];
    let [rw, rh] = [x2 - x1, y2 - y1];
    if (!a.halfPixel) [rw, rh] = [Math.max(rw, 1), Math.max(rh, 1)];
    const [bh, bw] = [rh / a.outH, rw / a.outW];
    const gh = a.samplingRatio > 0 ? a.samplingRatio : Math.ceil(rh / a.outH);
    const gw = a.samplingRatio > 0 ? a.samplingRatio : Math.ceil(rw / a.outW);
    const count = Math.max(gh * gw, 1);
    for (let ch = 0; ch < c; ch++) {
      const plane = (b * c + ch) * h * w;
      for (let ph = 0; ph < a.outH; ph++) {
        for (let pw = 0; pw < a.outW; pw++) {
          let acc = a.max ? -Infinity : 0;
          let any = false;
          for (let iy = 0; iy < gh; iy++) {
            for (let ix = 0; ix < gw; ix++) {
              const s = roiSample(xv, plane, h, w, y1 + ph * bh + ((iy + 0.5) * bh) / gh, x1 + pw * bw + ((ix + 0.5) * bw) / gw, a.max);
              acc = a.max ? Math.max(acc, s) : acc + s;
              any = true;
            }
          }
          out[((q * c + ch) * a.outH + ph) * a.outW + pw] = a.max ? (any ? acc : 0) : acc / count;
        }
      }
    }
  }
  return [hostTensor(o!.dtype, o!.shape, fromNumbers(o!.dtype, out))];
};

/** One bilinear sample at (y, x) of a plane; 'max' returns the largest weighted corner instead of their sum. */
function roiSample(v: Float64Array, plane: number, h: number, w: number, y: number, x: number, max: boolean): number {
  if (y < -1 || y > h || x < -1 || x > w) return 0;
  y = Math.max(y, 0);
  x = Math.max(x, 0);
  let [yl, xl] = [Math.floor(y), Math.floor(x)];
  let [yh, xh] = [yl + 1, xl + 1];
  if (yl >= h - 1) [yl, yh, y] = [h - 1, h - 1, h - 1];
  if (xl >= w - 1) [xl, xh, x] = [w - 1, w - 1, w - 1];
  const [ly, lx] = [y - yl, x - xl];
  const [hy, hx] = [1 - ly, 1 - lx];
  const t = [hy * hx * v[plane + yl * w + xl]!, hy * lx * v[plane + yl * w + xh]!, ly * hx * v[plane + yh * w + xl]!, ly * lx * v[plane + yh * w + xh]!];
  return max ? Math.max(...t) : t[0]! + t[1]! + t[2]! + t[3]!;
}

export const kernels: Record<string, CpuKernel> = { GridSample: gridSample, RoiAlign: roiAlign };
