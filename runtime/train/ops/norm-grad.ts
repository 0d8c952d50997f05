import { ShapeError } from '../../errors.js';
import { attrFloat, attrInt } from '../../ir/graph.js';
import type { InferredOutput, OpSchema } from '../../ir/ops/schema.js';
import { normalizeAxis } from '../../ir/shape.js';
import type { HostTensor } from '../../ir/tensor.js';
import type { CpuKernel } from '../../backends/cpu/kernel.js';
import { broadcastIndex } from '../../backends/cpu/math-broadcast.js';
import { fromF64, toF64 } from '../../backends/cpu/math-infer.js';
import { needFloat, sameShape } from './common.js';

/**
 * Gradients of the normalizations, recomputing the statistics from the saved input rather than saving them
 * (one pass over a row is cheaper than keeping [rows] extra tensors alive between passes).
 *
 * BatchNormGrad(dY, X, scale, mean, var) {epsilon} -> dX [N, C, ...], dScale [C], dB [C]
 *   BatchNormalization-15 in inference mode (frozen statistics: fine-tuning keeps the running mean/var of the
 *   pretrained model), y = scale (x - mean) k + b with k = 1 / sqrt(var + eps), so
 *   dX = dY scale k,  dScale[c] = sum over (n, spatial) of dY (x - mean) k,  dB[c] = sum of dY.
 *
 * LayerNormGrad(dY, X, Scale) {axis, epsilon} -> dX [X], dScaleFull [X]
 *   LayerNormalization-17 over axes [axis, rank): with xhat = (x - mu) r, r = 1/sqrt(var + eps), g = dY Scale and
 *   means over the D normalized elements of a row,
 *   dX = r (g - mean(g) - xhat mean(g xhat))     (Ba, Kiros, Hinton 2016, differentiated through mu and var)
 *   dScaleFull = dY xhat, X-shaped: the gradient rule sums it down to Scale's (broadcast) shape, as it sums dY
 *   down to B's shape, so any Scale/B broadcasting the forward allows is handled in one place.
 * Outputs the rule does not need are left unnamed ('') and not computed.
 */

export const batchNormGradSchema: OpSchema = {
  op: 'BatchNormGrad',
  inputs: [5, 5],
  outputs: [1, 3],
  infer(ctx) {
    const dy = needFloat(ctx, 0, 'dY');
    const x = needFloat(ctx, 1, 'X');
    const scale = needFloat(ctx, 2, 'scale');
    needFloat(ctx, 3, 'mean');
    needFloat(ctx, 4, 'var');
    const outs: InferredOutput[] = [{ dtype: dy.dtype, shape: sameShape(x) }];
    for (let i = 1; i < ctx.node.outputs.length; i++) outs.push({ dtype: scale.dtype, shape: sameShape(scale) });
    return outs;
  },
};

export const layerNormGradSchema: OpSchema = {
  op: 'LayerNormGrad',
  inputs: [3, 3],
  outputs: [1, 2],
  infer(ctx) {
    const dy = needFloat(ctx, 0, 'dY');
    const x = needFloat(ctx, 1, 'X');
    needFloat(ctx, 2, 'Scale');
    if (x.shape) normalizeAxis(attrInt(ctx.node, 'axis', -1), x.shape.length, 'LayerNormGrad axis');
    return ctx.node.outputs.map(() => ({ dtype: dy.dtype, shape: sameShape(x) }));
  },
};

export const batchNormGradKernel: CpuKernel = (inputs, node) => {
  const [dY, X, S, M, V] = inputs as HostTensor[];
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const [N, C] = [X!.shape[0]!, X!.shape[1]!];
  if (S!.data.length !== C) throw new ShapeError(`BatchNormGrad: scale has ${S!.data.length} elements but X has ${C} channels.`);
  const inner = X!.shape.slice(2).reduce((a, b) => a * b, 1);
  const [dy, x, scale, mean, variance] = [dY!, X!, S!, M!, V!].map(toF64) as Float64Array[];
  const dx = new Float64Array(x!.length);
  const dScale = new Float64Array(C);
  const dB = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    const k = 1 / Math.sqrt(variance![c]! + eps);
    const m = mean![c]!;
    const s = scale![c]!;
    for (let n = 0; n < N; n++) {
      for (let i = 0, base = (n * C + c) * inner; i < inner; i++) {
        const g = dy![base + i]!;
        dx[base + i] = g * s * k;
        dScale[c] = dScale[c]! + g * (x![base + i]! - m) * k;
        dB[c] = dB[c]! + g;
      }
    }
  }
  const out = [fromF64({ dtype: dY!.dtype, shape: [...X!.shape] }, dx)];
  if (node.outputs.length > 1) out.push(fromF64({ dtype: S!.dtype, shape: [...S!.shape] }, dScale));
  if (node.outputs.length > 2) out.push(fromF64({ dtype: S!.dtype, shape: [...S!.shape] }, dB));
  return out;
};

export const layerNormGradKernel: CpuKernel = (inputs, node) => {
  const [dY, X, S] = inputs as HostTensor[];
  const shape = X!.shape;
  const axis = normalizeAxis(attrInt(node, 'axis', -1), shape.length);
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const rows = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const D = shape.slice(axis).reduce((a, b) => a * b, 1);
  const dy = toF64(dY!);
  const x = toF64(X!);
  const scale = toF64(S!);
  const sIdx = broadcastIndex(S!.shape, shape);
  const dx = new Float64Array(x.length);
  const dsFull = new Float64Array(x.length);
  const xhat = new Float64Array(D);
  const g = new Float64Array(D);
  for (let r = 0; r < rows; r++) {
    const base = r * D;
    let mu = 0;
    for (let i = 0; i < D; i++) mu += x[base + i]!;
    mu /= D;
    let v = 0;
    for (let i = 0; i < D; i++) v += (x[base + i]! - mu) ** 2;
    const rstd = 1 / Math.sqrt(v / D + eps);
    let meanG = 0;
    let meanGX = 0;
    for (let i = 0; i < D; i++) {
      const k = base + i;
      xhat[i] = (x[k]! - mu) * rstd;
      g[i] = dy[k]! * scale[sIdx ? sIdx[k]! : k]!;
      dsFull[k] = dy[k]! * xhat[i]!;
      meanG += g[i]!;
      meanGX += g[i]! * xhat[i]!;
    }
    meanG /= D;
    meanGX /= D;
    for (let i = 0; i < D; i++) dx[base + i] = rstd * (g[i]! - meanG - xhat[i]! * meanGX);
  }
  const out = [fromF64({ dtype: dY!.dtype, shape: [...shape] }, dx)];
  if (node.outputs.length > 1) out.push(fromF64({ dtype: dY!.dtype, shape: [...shape] }, dsFull));
  return out;
};
