import { InvalidArgumentError } from '../../../errors.js';
import { attrFloat, attrInt } from '../../../ir/graph.js';
import { msOp, rotaryGeometry, schemas, SKIP_LN_EPSILON } from '../../../ir/ops/contrib.js';
import { normalizeAxis } from '../../../ir/shape.js';
import type { HostTensor } from '../../../ir/tensor.js';
import type { CpuKernel } from '../kernel.js';
import { broadcastIndex } from '../math-broadcast.js';
import { erf } from '../math-erf.js';
import { fromF64, inferConcrete, toF64 } from '../math-infer.js';

/**
 * CPU reference for the com.microsoft transformer ops (runtime/ir/ops/contrib.ts), from onnxruntime's
 * ContribOperators.md: values in float64, rounded once to the output type; statistics in two passes.
 */

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
/** Gelu: 0.5 x (1 + erf(x / sqrt 2)) (Hendrycks & Gimpel 2016). */
export const geluExact = (x: number): number => 0.5 * x * (1 + erf(x * Math.SQRT1_2));
/** FastGelu: the tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
export const geluTanh = (x: number): number => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));

/** y = f(x + bias[i % H]) with an optional bias along the last dim. */
function biasedUnary(op: string, f: (x: number, node: Parameters<CpuKernel>[1]) => number): CpuKernel {
  return (inputs, node, ctx) => {
    const [o] = inferConcrete(schemas[msOp(op)], node, inputs, ctx);
    const x = toF64(inputs[0]!);
    const bias = inputs[1] ? toF64(inputs[1]) : undefined;
    const y = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) y[i] = f(x[i]! + (bias ? bias[i % bias.length]! : 0), node);
    return [fromF64(o!, y)];
  };
}

/** BiasAdd: Y = X + bias + skip. */
const biasAdd: CpuKernel = (inputs, node, ctx) => {
  const [o] = inferConcrete(schemas[msOp('BiasAdd')], node, inputs, ctx);
  const [x, bias, skip] = (inputs as HostTensor[]).map(toF64) as [Float64Array, Float64Array, Float64Array];
  return [fromF64(o!, x.map((v, i) => v + bias[i % bias.length]! + skip[i]!))];
};

/** BiasSplitGelu: with h = X + bias split into halves [.., D/2] along D, Y = h_left * Gelu(h_right). */
const biasSplitGelu: CpuKernel = (inputs, node, ctx) => {
  const [o] = inferConcrete(schemas[msOp('BiasSplitGelu')], node, inputs, ctx);
  const [x, bias] = (inputs as HostTensor[]).map(toF64) as [Float64Array, Float64Array];
  const d = bias.length;
  const half = d / 2;
  const y = new Float64Array(x.length / 2);
  for (let r = 0; r < x.length / d; r++) {
    for (let i = 0; i < half; i++) {
      const left = x[r * d + i]! + bias[i]!;
      y[r * half + i] = left * geluExact(x[r * d + half + i]! + bias[half + i]!);
    }
  }
  return [fromF64(o!, y)];
};

/**
 * SkipLayerNormalization / SkipSimplifiedLayerNormalization over the last dim H: s = input + skip + bias,
 * LayerNorm: y = (s - mean) / sqrt(var + eps) * gamma + beta; Simplified (RMSNorm): y = s / sqrt(mean(s^2) + eps)
 * * gamma. mean (0 for the simplified form, which has none, as onnxruntime writes), inv_std_var and the sum s are
 * optional outputs.
 */
function skipNorm(simplified: boolean): CpuKernel {
  const op = msOp(simplified ? 'SkipSimplifiedLayerNormalization' : 'SkipLayerNormalization');
  return (inputs, node, ctx) => {
    const outs = inferConcrete(schemas[op], node, inputs, ctx);
    const [X, S, G] = inputs as HostTensor[];
    const B = simplified ? undefined : inputs[3];
    const bias = inputs[simplified ? 3 : 4];
    const eps = attrFloat(node, 'epsilon', SKIP_LN_EPSILON);
    const x = toF64(X!);
    const skip = toF64(S!);
    const gamma = toF64(G!);
    const beta = B ? toF64(B) : undefined;
    const b = bias ? toF64(bias) : undefined;
    const h = gamma.length;
    const rows = x.length / h;
    const sum = new Float64Array(x.length);
    const y = new Float64Array(x.length);
    const means = new Float64Array(rows);
    const invStd = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      const base = r * h;
      let m = 0;
      for (let i = 0; i < h; i++) {
        const v = x[base + i]! + skip[(base + i) % skip.length]! + (b ? b[i]! : 0);
        sum[base + i] = v;
        m += v;
      }
      m = simplified ? 0 : m / h;
      let q = 0;
      for (let i = 0; i < h; i++) q += (sum[base + i]! - m) ** 2;
      const k = 1 / Math.sqrt(q / h + eps);
      means[r] = m;
      invStd[r] = k;
      for (let i = 0; i < h; i++) y[base + i] = (sum[base + i]! - m) * k * gamma[i]! + (beta ? beta[i]! : 0);
    }
    const result = [fromF64(outs[0]!, y)];
    if (outs[1]) result.push(fromF64(outs[1], means));
    if (outs[2]) result.push(fromF64(outs[2], invStd));
    if (outs[3]) result.push(fromF64(outs[3], sum));
    return result;
  };
}

/** SimplifiedLayerNormalization (RMSNorm, Zhang & Sennrich 2019) over axes [axis, rank): y = x / sqrt(mean(x^2) + eps) * scale. */
const simplifiedLayerNorm: CpuKernel = (inputs, node, ctx) => {
  const outs = inferConcrete(schemas[msOp('SimplifiedLayerNormalization')], node, inputs, ctx);
  const [X, S] = inputs as HostTensor[];
  const shape = X!.shape;
  const axis = normalizeAxis(attrInt(node, 'axis', -1), shape.length);
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const cols = shape.slice(axis).reduce((a, b) => a * b, 1);
  const rows = cols === 0 ? 0 : shape.reduce((a, b) => a * b, 1) / cols;
  const x = toF64(X!);
  const scale = toF64(S!);
  const sIdx = broadcastIndex(S!.shape, shape);
  const y = new Float64Array(x.length);
  const invStd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let q = 0;
    for (let i = r * cols; i < (r + 1) * cols; i++) q += x[i]! * x[i]!;
    const k = 1 / Math.sqrt(q / cols + eps);
    invStd[r] = k;
    for (let i = r * cols; i < (r + 1) * cols; i++) y[i] = x[i]! * k * scale[sIdx ? sIdx[i]! : i]!;
  }
  const result = [fromF64(outs[0]!, y)];
  if (outs[1]) result.push(fromF64(outs[1], invStd));
  return result;
};

/**
 * RotaryEmbedding (Su et al. 2021, RoFormer), per head of each token at position p, over the first rotary_dim
 * elements (the rest copied): non-interleaved pairs element i with i + rotary_dim/2 (GPT-NeoX),
 * y_i = x_i cos_c - x_{i+half} sin_c and y_{i+half} = x_{i+half} cos_c + x_i sin_c with c = i; interleaved
 * pairs (2c, 2c+1) (GPT-J). cos/sin come from row p of the caches. `scale` only matters to onnxruntime's CUDA
 * cache extension (never to an output) and is_packed_batching to its CUDA ragged batches: the CPU kernel of
 * onnxruntime ignores both for dense inputs, and so does this.
 */
const rotary: CpuKernel = (inputs, node, ctx) => {
  const [o] = inferConcrete(schemas[msOp('RotaryEmbedding')], node, inputs, ctx);
  const [X, P, C, S] = inputs as HostTensor[];
  const shape = X!.shape;
  const g = rotaryGeometry(node.op, shape, C!.shape, attrInt(node, 'num_heads', 0), attrInt(node, 'rotary_embedding_dim', 0))!;
  const interleaved = attrInt(node, 'interleaved', 0) !== 0;
  const bsnh = shape.length === 3;
  const [batch, seq] = bsnh ? [shape[0]!, shape[1]!] : [shape[0]!, shape[2]!];
  const { heads, headSize, rotaryDim } = g;
  const half = rotaryDim / 2;
  const maxPos = C!.shape[0]!;
  const x = toF64(X!);
  const pos = toF64(P!);
  const cos = toF64(C!);
  const sin = toF64(S!);
  const y = Float64Array.from(x);
  for (let b = 0; b < batch; b++) {
    for (let s = 0; s < seq; s++) {
      const p = pos.length === 1 && P!.shape.length < 2 ? pos[0]! + s : pos[b * seq + s]!;
      if (!(p >= 0 && p < maxPos)) {
        throw new InvalidArgumentError(`${node.op}: position ${p} (batch ${b}, token ${s}) is outside the cos/sin caches' ${maxPos} rows.`, { position: p });
      }
      for (let n = 0; n < heads; n++) {
        const base = bsnh ? ((b * seq + s) * heads + n) * headSize : ((b * heads + n) * seq + s) * headSize;
        for (let i = 0; i < rotaryDim; i++) {
          const c = interleaved ? i >> 1 : i % half;
          const first = interleaved ? i % 2 === 0 : i < half;
          const j = interleaved ? (first ? i + 1 : i - 1) : first ? i + half : i - half;
          const k = p * half + c;
          y[base + i] = x[base + i]! * cos[k]! + (first ? -1 : 1) * x[base + j]! * sin[k]!;
        }
      }
    }
  }
  return [fromF64(o!, y)];
};

export const kernels: Record<string, CpuKernel> = {
  [msOp('Gelu')]: biasedUnary('Gelu', geluExact),
  [msOp('BiasGelu')]: biasedUnary('BiasGelu', geluExact),
  [msOp('FastGelu')]: biasedUnary('FastGelu', geluTanh),
  [msOp('QuickGelu')]: biasedUnary('QuickGelu', (x, node) => x / (1 + Math.exp(-attrFloat(node, 'alpha', 1.702) * x))),
  [msOp('BiasAdd')]: biasAdd,
  [msOp('BiasSplitGelu')]: biasSplitGelu,
  [msOp('SkipLayerNormalization')]: skipNorm(false),
  [msOp('SkipSimplifiedLayerNormalization')]: skipNorm(true),
  [msOp('SimplifiedLayerNormalization')]: simplifiedLayerNorm,
  [msOp('RotaryEmbedding')]: rotary,
};
