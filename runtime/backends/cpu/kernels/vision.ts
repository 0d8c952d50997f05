import { fromNumbers, toNumbers } from '../../../ir/dtype.js';
import { gridSampleAttrs, schemas, type GridPadding } from '../../../ir/ops/vision.js';
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
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const [ho, wo] = [g.shape[1]!, g.shape[2]!];
  const xv = toNumbers(x.dtype, x.data);
  const gv = toNumbers(g.dtype, g.data);
  const out = new Float64Array(n * c * ho * wo);
  const unnorm = (v: number, size: number) => (alignCorners ? ((v + 1) / 2) * (size - 1) : ((v + 1) * size - 1) / 2);
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < ho * wo; i++) {
      const gx = gv[(b * ho * wo + i) * 2]!;
      const gy = gv[(b * ho * wo + i) * 2 + 1]!;
      for (let ch = 0; ch < c; ch++) {
        const plane = (b * c + ch) * h * w;
        const at = (yy: number, xx: number) => (yy >= 0 && yy < h && xx >= 0 && xx < w ? xv[plane + yy * w + xx]! : 0);
        let v: number;
        if (mode === 'bicubic') {
          const ix = unnorm(gx, w);
          const iy = unnorm(gy, h);
          const x0 = Math.floor(ix);
          const y0 = Math.floor(iy);
          const wx = cubicWeights(ix - x0);
          const wy = cubicWeights(iy - y0);
          // Each tap is padded on its own (border/reflection move it inside; zeros read it as 0).
          const tap = (yy: number, xx: number) => {
            if (padding === 'zeros') return at(yy, xx);
            return at(padCoord(yy, h, padding, alignCorners), padCoord(xx, w, padding, alignCorners));
          };
          v = 0;
          for (let r = 0; r < 4; r++) {
            let row = 0;
            for (let k = 0; k < 4; k++) row += wx[k]! * tap(y0 - 1 + r, x0 - 1 + k);
            v += wy[r]! * row;
          }
        } else {
          const ix = padCoord(unnorm(gx, w), w, padding, alignCorners);
          const iy = padCoord(unnorm(gy, h), h, padding, alignCorners);
          if (mode === 'nearest') v = at(rint(iy), rint(ix));
          else {
            const x0 = Math.floor(ix);
            const y0 = Math.floor(iy);
            const [fx, fy] = [ix - x0, iy - y0];
            v = (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)) + fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1));
          }
        }
        out[plane / (h * w) * ho * wo + i] = v;
      }
    }
  }
  return [hostTensor(o!.dtype, o!.shape, fromNumbers(o!.dtype, out))];
};

export const kernels: Record<string, CpuKernel> = { GridSample: gridSample };
