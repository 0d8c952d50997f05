import { InvalidArgumentError } from '../../../errors.js';
import { fromNumbers, toNumbers } from '../../../ir/dtype.js';
import { ignoreIndex, lossReduction, schemas } from '../../../ir/ops/loss.js';
import type { Node } from '../../../ir/graph.js';
import { hostTensor, type HostTensor } from '../../../ir/tensor.js';
import { outputsOf } from '../data-index.js';
import type { CpuKernel } from '../kernel.js';

/**
 * CPU reference for NegativeLogLikelihoodLoss-13 and SoftmaxCrossEntropyLoss-13, in float64 and rounded to the
 * output type once. The input is seen as [N, C, D] (D = d1 * ... * dk); per target (n, d) with class t:
 * loss = -logp[n, t, d] * w[t], with w = 1 without weights and loss = w = 0 where t = ignore_index.
 */

/** Per-target losses and the weight each target contributes to a mean. */
function nllCore(logp: Float64Array, n: number, c: number, d: number, target: Float64Array, weights: Float64Array | undefined, node: Node): { loss: Float64Array; weight: Float64Array } {
  const ii = ignoreIndex(node);
  const loss = new Float64Array(n * d);
  const weight = new Float64Array(n * d);
  for (let b = 0; b < n; b++) {
    for (let j = 0; j < d; j++) {
      const t = target[b * d + j]!;
      if (t === ii) continue;
      if (!(t >= 0 && t < c)) throw new InvalidArgumentError(`${node.op} target ${t} is not a class index in [0, ${c})${ii === undefined ? '' : ` nor ignore_index ${ii}`}.`);
      const w = weights ? weights[t]! : 1;
      loss[b * d + j] = -logp[(b * c + t) * d + j]! * w;
      weight[b * d + j] = w;
    }
  }
  return { loss, weight };
}

function reduce(node: Node, r: { loss: Float64Array; weight: Float64Array }): Float64Array {
  const reduction = lossReduction(node);
  if (reduction === 'none') return r.loss;
  let sum = 0;
  let wsum = 0;
  for (let i = 0; i < r.loss.length; i++) {
    sum += r.loss[i]!;
    wsum += r.weight[i]!;
  }
  return Float64Array.of(reduction === 'sum' ? sum : sum / wsum);
}

/** [N, C, D] view of an input [N, C, d1..dk]. */
function ncd(x: HostTensor): [number, number, number] {
  const d = x.shape.slice(2).reduce((a, b) => a * b, 1);
  return [x.shape[0]!, x.shape[1]!, d];
}

const nll: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.NegativeLogLikelihoodLoss, node, inputs, ctx);
  const [x, t, w] = inputs as [HostTensor, HostTensor, HostTensor | undefined];
  const [n, c, d] = ncd(x);
  const r = nllCore(toNumbers(x.dtype, x.data), n, c, d, toNumbers(t.dtype, t.data), w && toNumbers(w.dtype, w.data), node);
  return [hostTensor(o!.dtype, o!.shape, fromNumbers(o!.dtype, reduce(node, r)))];
};

/** log_softmax over the class axis of [N, C, D], max-shifted. */
export function logSoftmaxNcd(x: Float64Array, n: number, c: number, d: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let b = 0; b < n; b++) {
    for (let j = 0; j < d; j++) {
      let m = -Infinity;
      for (let k = 0; k < c; k++) m = Math.max(m, x[(b * c + k) * d + j]!);
      let s = 0;
      for (let k = 0; k < c; k++) s += Math.exp(x[(b * c + k) * d + j]! - m);
      const lse = m + Math.log(s);
      for (let k = 0; k < c; k++) out[(b * c + k) * d + j] = x[(b * c + k) * d + j]! - lse;
    }
  }
  return out;
}

const sce: CpuKernel = (inputs, node, ctx) => {
  const outs = outputsOf(schemas.SoftmaxCrossEntropyLoss, node, inputs, ctx);
  const [x, t, w] = inputs as [HostTensor, HostTensor, HostTensor | undefined];
  const [n, c, d] = ncd(x);
  const logp = logSoftmaxNcd(toNumbers(x.dtype, x.data), n, c, d);
  const r = nllCore(logp, n, c, d, toNumbers(t.dtype, t.data), w && toNumbers(w.dtype, w.data), node);
  const result = [hostTensor(outs[0]!.dtype, outs[0]!.shape, fromNumbers(outs[0]!.dtype, reduce(node, r)))];
  if (outs[1]) result.push(hostTensor(outs[1].dtype, outs[1].shape, fromNumbers(outs[1].dtype, logp)));
  return result;
};

export const kernels: Record<string, CpuKernel> = { NegativeLogLikelihoodLoss: nll, SoftmaxCrossEntropyLoss: sce };
