import { attrInt } from '../../../ir/graph.js';
import { concreteWindow, readTransposeAttrs, readWindowAttrs, transposeAxis } from '../../../ir/ops/conv-geometry.js';
import { schemas } from '../../../ir/ops/conv.js';
import { tapTable } from '../conv-taps.js';
import type { CpuKernel } from '../kernel.js';
import { fromF64, inferConcrete, toF64 } from '../math-infer.js';

/**
 * Conv and ConvTranspose on the CPU, for any number of spatial axes, through tap tables (conv-taps.ts).
 * Accumulation is in float64, rounded once to the output type.
 */

/** Conv-11: Y[n, m, o] = B[m] + sum_{c in group(m), t} W[m, c, t] * X[n, c, o * s - pb + t * d]. */
const conv: CpuKernel = (inputs, node, ctx) => {
  const [o] = inferConcrete(schemas.Conv, node, inputs, ctx);
  const [X, W, B] = inputs;
  const [N, C] = X!.shape as [number, number];
  const M = W!.shape[0]!;
  const inSpatial = X!.shape.slice(2);
  const kernel = W!.shape.slice(2);
  const g = attrInt(node, 'group', 1);
  const attrs = readWindowAttrs(node, inSpatial.length, kernel);
  const win = concreteWindow(inSpatial, attrs);
  const taps = tapTable({ src: win.out, dst: inSpatial, kernel: attrs.kernel, strides: attrs.strides, dilations: attrs.dilations, padsBegin: win.padsBegin, padsEnd: win.padsEnd });
  const P = win.out.reduce((a, b) => a * b, 1); // output positions
  const T = attrs.kernel.reduce((a, b) => a * b, 1); // taps per window
  const Q = inSpatial.reduce((a, b) => a * b, 1); // input positions
  const Cg = C / g;
  const Mg = M / g;
  const x = toF64(X!);
  const w = toF64(W!);
  const bias = B ? toF64(B) : undefined;
  const y = new Float64Array(N * M * P);
  const window = new Float64Array(T);
  for (let n = 0; n < N; n++) {
    for (let gi = 0; gi < g; gi++) {
      for (let c = 0; c < Cg; c++) {
        const xBase = (n * C + gi * Cg + c) * Q;
        for (let p = 0; p < P; p++) {
          // Gather this input channel's window once, then apply every output channel of the group to it.
          const row = p * T;
          for (let t = 0; t < T; t++) {
            const off = taps[row + t]!;
            window[t] = off >= 0 ? x[xBase + off]! : 0;
          }
          for (let mm = 0; mm < Mg; mm++) {
            const m = gi * Mg + mm;
            const wBase = (m * Cg + c) * T;
            let s = 0;
            for (let t = 0; t < T; t++) s += w[wBase + t]! * window[t]!;
            y[(n * M + m) * P + p] = y[(n * M + m) * P + p]! + s;
          }
        }
      }
    }
    if (bias) for (let m = 0; m < M; m++) for (let p = 0, base = (n * M + m) * P; p < P; p++) y[base + p] = y[base + p]! + bias[m]!;
  }
  return [fromF64(o!, y)];
};

/** ConvTranspose-11: each input element scatters X[n, c, i] * W[c, m, t] to Y[n, m, i * s - pb + t * d]. */
const convTranspose: CpuKernel = (inputs, node, ctx) => {
  const [o] = inferConcrete(schemas.ConvTranspose, node, inputs, ctx);
  const [X, W, B] = inputs;
  const [N, C] = X!.shape as [number, number];
  const g = attrInt(node, 'group', 1);
  const Mg = W!.shape[1]!;
  const M = Mg * g;
  const inSpatial = X!.shape.slice(2);
  const attrs = readTransposeAttrs(node, inSpatial.length, W!.shape.slice(2));
  const axes = inSpatial.map((n, i) => transposeAxis(n, attrs, i));
  const outSpatial = o!.shape.slice(2);
  const taps = tapTable({
    src: inSpatial, dst: outSpatial, kernel: attrs.kernel, strides: attrs.strides, dilations: attrs.dilations,
    padsBegin: axes.map((a) => a.padBegin), padsEnd: axes.map((a) => a.padEnd),
  });
  const Q = inSpatial.reduce((a, b) => a * b, 1);
  const P = outSpatial.reduce((a, b) => a * b, 1);
  const T = attrs.kernel.reduce((a, b) => a * b, 1);
  const Cg = C / g;
  const x = toF64(X!);
  const w = toF64(W!);
  const y = new Float64Array(N * M * P);
  for (let n = 0; n < N; n++) {
    for (let gi = 0; gi < g; gi++) {
      for (let c = 0; c < Cg; c++) {
        const ci = gi * Cg + c;
        const xBase = (n * C + ci) * Q;
        for (let mm = 0; mm < Mg; mm++) {
          const yBase = (n * M + gi * Mg + mm) * P;
          const wBase = (ci * Mg + mm) * T;
          for (let q = 0; q < Q; q++) {
            const xv = x[xBase + q]!;
            const row = q * T;
            for (let t = 0; t < T; t++) {
              const off = taps[row + t]!;
              if (off >= 0) y[yBase + off] = y[yBase + off]! + xv * w[wBase + t]!;
            }
          }
        }
      }
    }
  }
  if (B) {
    const bias = toF64(B);
    for (let n = 0; n < N; n++) for (let m = 0; m < M; m++) for (let p = 0, base = (n * M + m) * P; p < P; p++) y[base + p] = y[base + p]! + bias[m]!;
  }
  return [fromF64(o!, y)];
};

export const kernels: Record<string, CpuKernel> = { Conv: conv, ConvTranspose: convTranspose };
