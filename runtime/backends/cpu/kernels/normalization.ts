import { attrFloat, attrInt } from '../../../ir/graph.js';
import { schemas } from '../../../ir/ops/normalization.js';
import { normalizeAxis } from '../../../ir/shape.js';
import type { HostTensor } from '../../../ir/tensor.js';
import type { CpuKernel } from '../kernel.js';
import { broadcastIndex } from '../math-broadcast.js';
import { fromF64, inferConcrete, toF64 } from '../math-infer.js';

/**
 * Normalizations on the CPU. Means and variances are computed in float64 with two passes (mean first, then the
 * mean of squared deviations), which avoids the cancellation of E[x^2] - E[x]^2; results round once to the output
 * type.
 */

/** Mean and population variance of `count` elements of v starting at `start`, `stride` apart. */
function meanVar(v: Float64Array, start: number, count: number, stride = 1): [number, number] {
  let s = 0;
  for (let i = 0; i < count; i++) s += v[start + i * stride]!;
  const mean = s / count;
  let q = 0;
  for (let i = 0; i < count; i++) {
    const d = v[start + i * stride]! - mean;
    q += d * d;
  }
  return [mean, q / count];
}

/**
 * BatchNormalization-15. Inference: y = scale (x - mean) / sqrt(var + epsilon) + B with the given statistics.
 * training_mode=1: the batch's own mean and population variance (over every axis but 1) normalize X, and the
 * optional outputs are running_mean = input_mean * momentum + batch_mean * (1 - momentum) (same for var).
 */
const batchNorm: CpuKernel = (inputs, node, ctx) => {
  const outs = inferConcrete(schemas.BatchNormalization, node, inputs, ctx);
  const [X, S, B, M, V] = inputs as HostTensor[];
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const momentum = attrFloat(node, 'momentum', 0.9);
  const training = attrInt(node, 'training_mode', 0) !== 0;
  const [N, C] = [X!.shape[0]!, X!.shape[1]!];
  const inner = X!.shape.slice(2).reduce((a, b) => a * b, 1);
  const x = toF64(X!);
  const [scale, bias, inMean, inVar] = [S!, B!, M!, V!].map(toF64) as [Float64Array, Float64Array, Float64Array, Float64Array];
  const mean = Float64Array.from(inMean);
  const variance = Float64Array.from(inVar);
  if (training) {
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let n = 0; n < N; n++) for (let i = 0, b = (n * C + c) * inner; i < inner; i++) s += x[b + i]!;
      const m = s / (N * inner);
      let q = 0;
      for (let n = 0; n < N; n++) for (let i = 0, b = (n * C + c) * inner; i < inner; i++) q += (x[b + i]! - m) ** 2;
      mean[c] = m;
      variance[c] = q / (N * inner);
    }
  }
  const y = new Float64Array(x.length);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const k = scale[c]! / Math.sqrt(variance[c]! + eps);
      const base = (n * C + c) * inner;
      for (let i = 0; i < inner; i++) y[base + i] = (x[base + i]! - mean[c]!) * k + bias[c]!;
    }
  }
  const result = [fromF64(outs[0]!, y)];
  if (outs.length > 1) {
    const running = (input: Float64Array, batch: Float64Array) => (training ? input.map((v, c) => v * momentum + batch[c]! * (1 - momentum)) : input);
    result.push(fromF64(outs[1]!, running(inMean, mean)));
    if (outs.length > 2) result.push(fromF64(outs[2]!, running(inVar, variance)));
  }
  return result;
};

/** InstanceNormalization-6: each [n, c] plane normalized by its own mean and variance, then scale[c], B[c]. */
const instanceNorm: CpuKernel = (inputs, node, ctx) => {
  const [o] = inferConcrete(schemas.InstanceNormalization, node, inputs, ctx);
  const [X, S, B] = inputs as HostTensor[];
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const [N, C] = [X!.shape[0]!, X!.shape[1]!];
  const inner = X!.shape.slice(2).reduce((a, b) => a * b, 1);
  const x = toF64(X!);
  const scale = toF64(S!);
  const bias = toF64(B!);
  const y = new Float64Array(x.length);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const base = (n * C + c) * inner;
      const [m, v] = meanVar(x, base, inner);
      const k = scale[c]! / Math.sqrt(v + eps);
      for (let i = 0; i < inner; i++) y[base + i] = (x[base + i]! - m) * k + bias[c]!;
    }
  }
  return [fromF64(o!, y)];
};

/** LayerNormalization-17: per row of the trailing axes [axis, rank): y = (x - mean) / sqrt(var + eps) * Scale + B. */
const layerNorm: CpuKernel = (inputs, node, ctx) => {
  const outs = inferConcrete(schemas.LayerNormalization, node, inputs, ctx);
  const [X, S, B] = inputs;
  const shape = X!.shape;
  const axis = normalizeAxis(attrInt(node, 'axis', -1), shape.length);
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const rows = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const cols = shape.slice(axis).reduce((a, b) => a * b, 1);
  const x = toF64(X!);
  const scale = toF64(S!);
  const sIdx = broadcastIndex(S!.shape, shape);
  const bias = B ? toF64(B) : undefined;
  const bIdx = B ? broadcastIndex(B.shape, shape) : undefined;
  const y = new Float64Array(x.length);
  const means = new Float64Array(rows);
  const invStd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    const [m, v] = meanVar(x, base, cols);
    const k = 1 / Math.sqrt(v + eps);
    means[r] = m;
    invStd[r] = k;
    for (let i = base; i < base + cols; i++) {
      const s = scale[sIdx ? sIdx[i]! : i]!;
      const b = bias ? bias[bIdx ? bIdx[i]! : i]! : 0;
      y[i] = (x[i]! - m) * k * s + b;
    }
  }
  const result = [fromF64(outs[0]!, y)];
  if (outs[1]) result.push(fromF64(outs[1], means));
  if (outs[2]) result.push(fromF64(outs[2], invStd));
  return result;
};

/** GroupNormalization-21: statistics per (n, group) over the group's channels and all spatial positions. */
const groupNorm: CpuKernel = (inputs, node, ctx) => {
  const [o] = inferConcrete(schemas.GroupNormalization, node, inputs, ctx);
  const [X, S, B] = inputs as HostTensor[];
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const G = attrInt(node, 'num_groups', 1);
  const [N, C] = [X!.shape[0]!, X!.shape[1]!];
  const inner = X!.shape.slice(2).reduce((a, b) => a * b, 1);
  const cg = C / G;
  const x = toF64(X!);
  const scale = toF64(S!);
  const bias = toF64(B!);
  const y = new Float64Array(x.length);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < G; g++) {
      const base = (n * C + g * cg) * inner; // the group's channels are contiguous
      const [m, v] = meanVar(x, base, cg * inner);
      const k = 1 / Math.sqrt(v + eps);
      for (let c = 0; c < cg; c++) {
        const ch = g * cg + c;
        for (let i = 0, b = base + c * inner; i < inner; i++) y[b + i] = (x[b + i]! - m) * k * scale[ch]! + bias[ch]!;
      }
    }
  }
  return [fromF64(o!, y)];
};

/**
 * Softmax-13 / LogSoftmax-13 / Hardmax-13 along one axis. The maximum is subtracted before exponentiating, so large
 * inputs do not overflow; LogSoftmax is x - max - log(sum exp(x - max)), never log of a rounded softmax.
 */
function axisSoftmax(op: 'Softmax' | 'LogSoftmax' | 'Hardmax'): CpuKernel {
  return (inputs, node, ctx) => {
    const [o] = inferConcrete(schemas[op], node, inputs, ctx);
    const X = inputs[0]!;
    const axis = normalizeAxis(attrInt(node, 'axis', -1), X.shape.length);
    const L = X.shape[axis]!;
    const inner = X.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    const outer = X.shape.slice(0, axis).reduce((a, b) => a * b, 1);
    const x = toF64(X);
    const y = new Float64Array(x.length);
    for (let a = 0; a < outer; a++) {
      for (let i = 0; i < inner; i++) {
        const base = a * L * inner + i;
        let max = -Infinity;
        let arg = 0;
        for (let l = 0; l < L; l++) {
          const v = x[base + l * inner]!;
          // The first NaN is the maximum (numpy.argmax), so Hardmax marks it and Softmax's row becomes NaN.
          if (v > max || (v !== v && max === max)) {
            max = v;
            arg = l;
          }
        }
        if (op === 'Hardmax') {
          y[base + arg * inner] = L > 0 ? 1 : 0;
          continue;
        }
        let sum = 0;
        for (let l = 0; l < L; l++) sum += Math.exp(x[base + l * inner]! - max);
        const logSum = Math.log(sum);
        for (let l = 0; l < L; l++) {
          const d = x[base + l * inner]! - max;
          y[base + l * inner] = op === 'Softmax' ? Math.exp(d) / sum : d - logSum;
        }
      }
    }
    return [fromF64(o!, y)];
  };
}

export const kernels: Record<string, CpuKernel> = {
  BatchNormalization: batchNorm,
  InstanceNormalization: instanceNorm,
  LayerNormalization: layerNorm,
  GroupNormalization: groupNorm,
  Softmax: axisSoftmax('Softmax'),
  LogSoftmax: axisSoftmax('LogSoftmax'),
  Hardmax: axisSoftmax('Hardmax'),
};
