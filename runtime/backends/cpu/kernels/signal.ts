import { fromNumbers, toNumbers } from '../../../ir/dtype.js';
import { dftGeometry, melWeights, scalarValue, schemas, stftGeometry, WINDOW_COEFFS, windowPeriod } from '../../../ir/ops/signal.js';
import type { Node } from '../../../ir/graph.js';
import { hostTensor, type HostTensor } from '../../../ir/tensor.js';
import { outputsOf } from '../data-index.js';
import type { CpuKernel } from '../kernel.js';

/**
 * CPU reference for the signal ops: cosine windows, DFT and STFT as plain O(N^2) sums in float64 (a reference,
 * not an FFT), MelWeightMatrix from ir/ops/signal.ts. Twiddles use (k n mod N) so their angles stay small.
 */

function cosineWindow(op: string): CpuKernel {
  return (inputs, node, ctx) => {
    const [o] = outputsOf(schemas[op], node, inputs, ctx);
    const size = o!.shape[0]!;
    const [a0, a1, a2] = WINDOW_COEFFS[op]!;
    const n = windowPeriod(node, size);
    const w = Float64Array.from({ length: size }, (_, i) => a0 - a1 * Math.cos((2 * Math.PI * i) / n) + a2 * Math.cos((4 * Math.PI * i) / n));
    return [hostTensor(o!.dtype, o!.shape, fromNumbers(o!.dtype, w))];
  };
}

/**
 * One transform: out[k] = sum_n x[n] e^(-+2 pi i k n / N) (divided by N for the inverse), reading x through `re` and
 * `im` (index n < len; beyond it the signal is zero-padded).
 */
function transform(re: (n: number) => number, im: (n: number) => number, len: number, n: number, outLen: number, inverse: boolean, out: Float64Array, at: (k: number) => number): void {
  const sign = inverse ? 1 : -1;
  const m = Math.min(len, n);
  for (let k = 0; k < outLen; k++) {
    let sr = 0;
    let si = 0;
    for (let t = 0; t < m; t++) {
      const ang = (sign * 2 * Math.PI * ((k * t) % n)) / n;
      const [c, s] = [Math.cos(ang), Math.sin(ang)];
      const [xr, xi] = [re(t), im(t)];
      sr += xr * c - xi * s;
      si += xr * s + xi * c;
    }
    const scale = inverse ? 1 / n : 1;
    out[at(k)] = sr * scale;
    out[at(k) + 1] = si * scale;
  }
}

const dft: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.DFT, node, inputs, ctx);
  const x = inputs[0]!;
  const g = dftGeometry(node, x.shape, scalarValue(inputs[1]), scalarValue(inputs[2]));
  const v = toNumbers(x.dtype, x.data);
  const c = x.shape[x.shape.length - 1]!;
  const outer = x.shape.slice(0, g.axis).reduce((a, b) => a * b, 1);
  const inner = x.shape.slice(g.axis + 1, -1).reduce((a, b) => a * b, 1);
  const out = new Float64Array(outer * g.outLen * inner * 2);
  for (let a = 0; a < outer; a++) {
    for (let i = 0; i < inner; i++) {
      const src = (t: number) => ((a * g.len + t) * inner + i) * c;
      transform((t) => v[src(t)]!, (t) => (g.complex ? v[src(t) + 1]! : 0), g.len, g.n, g.outLen, g.inverse, out, (k) => ((a * g.outLen + k) * inner + i) * 2);
    }
  }
  return [hostTensor(o!.dtype, o!.shape, fromNumbers(o!.dtype, out))];
};

function stftParams(inputs: (HostTensor | undefined)[], node: Node) {
  const x = inputs[0]!;
  const w = inputs[2];
  return stftGeometry(node, x.shape, scalarValue(inputs[1])!, scalarValue(inputs[3]), w?.shape[0]);
}

const stft: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.STFT, node, inputs, ctx);
  const x = inputs[0]!;
  const g = stftParams(inputs, node);
  const v = toNumbers(x.dtype, x.data);
  const w = inputs[2] ? toNumbers(inputs[2].dtype, inputs[2].data) : undefined;
  const c = x.shape[2]!;
  const out = new Float64Array(g.batch * g.frames * g.bins * 2);
  for (let b = 0; b < g.batch; b++) {
    for (let f = 0; f < g.frames; f++) {
      const src = (t: number) => (b * g.len + f * g.step + t) * c;
      const win = (t: number) => (w ? w[t]! : 1);
      transform((t) => v[src(t)]! * win(t), (t) => (g.complex ? v[src(t) + 1]! * win(t) : 0), g.frameLength, g.frameLength, g.bins, false, out, (k) => ((b * g.frames + f) * g.bins + k) * 2);
    }
  }
  return [hostTensor(o!.dtype, o!.shape, fromNumbers(o!.dtype, out))];
};

const melWeightMatrix: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.MelWeightMatrix, node, inputs, ctx);
  const [mels, dl, sr, lo, hi] = inputs.map(scalarValue) as number[];
  const { weights } = melWeights(mels!, dl!, sr!, lo!, hi!);
  return [hostTensor(o!.dtype, o!.shape, fromNumbers(o!.dtype, weights))];
};

export const kernels: Record<string, CpuKernel> = {
  HannWindow: cosineWindow('HannWindow'), HammingWindow: cosineWindow('HammingWindow'), BlackmanWindow: cosineWindow('BlackmanWindow'),
  DFT: dft, STFT: stft, MelWeightMatrix: melWeightMatrix,
};
