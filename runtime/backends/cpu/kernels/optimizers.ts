import { fromNumbers, toNumbers } from '../../../ir/dtype.js';
import { optimizerParams, parameterCount, schemas, STATE_GROUPS, type OptimizerParams } from '../../../ir/ops/optimizers.js';
import { hostTensor, type HostTensor } from '../../../ir/tensor.js';
import { outputsOf } from '../data-index.js';
import type { CpuKernel } from '../kernel.js';

/**
 * CPU reference for ai.onnx.preview.training Adagrad, Momentum and Adam (ONNX operator spec, version 1), in
 * float64 and rounded to the output type once. With g = norm_coefficient * x + grad (the L2 term's gradient):
 *   Adagrad:  r' = R / (1 + T * decay_factor); h' = h + g^2; x' = x - r' * g / (sqrt(h') + epsilon)
 *   Momentum: b = T > 0 ? beta : 1; v' = alpha * v + b * g;
 *             x' = x - R * v' (standard), x - R * (g + alpha * v') (nesterov)
 *   Adam:     v' = alpha * v + (1 - alpha) * g; h' = beta * h + (1 - beta) * g^2;
 *             r' = T > 0 ? R * sqrt(1 - beta^T) / (1 - alpha^T) : R;
 *             x' = (1 - norm_coefficient_post) * (x - r' * v' / (sqrt(h') + epsilon))
 */

/** One element's update: x, grad and the states in, the new x and states out (written into `out`). */
export function updateElement(p: OptimizerParams, r: number, t: number, x: number, grad: number, s: number[], out: number[]): void {
  const g = p.normCoefficient * x + grad;
  if (p.kind === 'Adagrad') {
    const rate = r / (1 + t * p.decayFactor);
    const h = s[0]! + g * g;
    out[0] = x - (rate * g) / (Math.sqrt(h) + p.epsilon);
    out[1] = h;
  } else if (p.kind === 'Momentum') {
    const v = p.alpha * s[0]! + (t > 0 ? p.beta : 1) * g;
    out[0] = p.nesterov ? x - r * (g + p.alpha * v) : x - r * v;
    out[1] = v;
  } else {
    const v = p.alpha * s[0]! + (1 - p.alpha) * g;
    const h = p.beta * s[1]! + (1 - p.beta) * g * g;
    const rate = t > 0 ? (r * Math.sqrt(1 - p.beta ** t)) / (1 - p.alpha ** t) : r;
    out[0] = (1 - p.normCoefficientPost) * (x - (rate * v) / (Math.sqrt(h) + p.epsilon));
    out[1] = v;
    out[2] = h;
  }
}

const optimizer: CpuKernel = (inputs, node, ctx) => {
  const outs = outputsOf(schemas[node.op], node, inputs, ctx);
  const p = optimizerParams(node);
  const n = parameterCount(node);
  const k = STATE_GROUPS[p.kind];
  const scalar = (i: number) => toNumbers(inputs[i]!.dtype, inputs[i]!.data)[0]!;
  const r = scalar(0);
  const t = scalar(1);
  const result: HostTensor[] = new Array(outs.length);
  for (let i = 0; i < n; i++) {
    const read = (group: number) => toNumbers(inputs[2 + group * n + i]!.dtype, inputs[2 + group * n + i]!.data);
    const x = read(0);
    const grad = read(1);
    const states = Array.from({ length: k }, (_, s) => read(2 + s));
    const news = Array.from({ length: k + 1 }, () => new Float64Array(x.length));
    const s = new Array<number>(k);
    const o = new Array<number>(k + 1);
    for (let e = 0; e < x.length; e++) {
      for (let j = 0; j < k; j++) s[j] = states[j]![e]!;
      updateElement(p, r, t, x[e]!, grad[e]!, s, o);
      for (let j = 0; j <= k; j++) news[j]![e] = o[j]!;
    }
    news.forEach((values, j) => {
      const spec = outs[j * n + i]!;
      result[j * n + i] = hostTensor(spec.dtype, spec.shape, fromNumbers(spec.dtype, values));
    });
  }
  return result;
};

export const kernels: Record<string, CpuKernel> = Object.fromEntries(Object.keys(schemas).map((op) => [op, optimizer]));
