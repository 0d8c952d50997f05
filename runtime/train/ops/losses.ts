import { DTypeError, InvalidArgumentError, ShapeError } from '../../errors.js';
import { isFloat, isInteger, toNumbers, type DType } from '../../ir/dtype.js';
import { attrFloat, attrInt, attrString, type Dim, type Node } from '../../ir/graph.js';
import type { InferContext, OpSchema } from '../../ir/ops/schema.js';
import type { HostTensor } from '../../ir/tensor.js';
import type { CpuKernel } from '../../backends/cpu/kernel.js';
import { fromF64, toF64 } from '../../backends/cpu/math-infer.js';
import { need, needFloat, sameShape } from './common.js';

/**
 * Loss ops with PyTorch's semantics (the user's reference point when fine-tuning), each with its gradient op:
 *
 * CrossEntropyLoss(logits [N, C, d..], target) {label_smoothing, reduction, ignore_index} -> loss []
 *   torch.nn.CrossEntropyLoss: target holds class indices [N, d..] (int32/int64) or class probabilities
 *   [N, C, d..] (float). With label smoothing e the target becomes t' = (1 - e) t + e / C, and the loss of a
 *   position is -sum_c t'_c log softmax(x)_c. reduction 'mean' divides by the number of positions whose index
 *   is not ignore_index (default -100) for index targets, and by N * prod(d) for probability targets; 'sum' does
 *   not divide. d/dx_c = p_c sum(t') - t'_c per position, times dLoss / divisor.
 * BCEWithLogitsLoss(logits, target) {reduction} -> loss []
 *   torch.nn.BCEWithLogitsLoss: l = max(x, 0) - x t + log(1 + exp(-|x|)) (the stable form of
 *   -[t log s(x) + (1 - t) log(1 - s(x))]); d/dx = s(x) - t, times dLoss / divisor.
 * Grad ops: CrossEntropyLossGrad(dLoss, logits, target) and BCEWithLogitsLossGrad(dLoss, logits, target) -> dLogits,
 * with the forward op's attributes.
 */

type Reduction = 'mean' | 'sum';

function reduction(node: Node): Reduction {
  const r = attrString(node, 'reduction', 'mean');
  if (r !== 'mean' && r !== 'sum') throw new InvalidArgumentError(`${node.op} reduction must be 'mean' or 'sum' (a scalar loss), got '${r}'.`);
  return r;
}

function checkCeTarget(ctx: InferContext, logits: readonly Dim[] | undefined, target: { dtype: DType; shape?: Dim[] }): void {
  const probs = isFloat(target.dtype);
  if (!probs && !isInteger(target.dtype)) throw new DTypeError(`${ctx.node.op} target must hold class indices (int) or probabilities (float), got ${target.dtype}.`);
  if (!logits || !target.shape) return;
  if (logits.length < 2) throw new ShapeError(`${ctx.node.op} logits must be [N, C, ...], got [${logits.join(', ')}].`);
  const want = probs ? logits : [logits[0]!, ...logits.slice(2)];
  const bad = target.shape.length !== want.length || target.shape.some((d, i) => typeof d === 'number' && typeof want[i] === 'number' && d !== want[i]);
  if (bad) throw new ShapeError(`${ctx.node.op} target [${target.shape.join(', ')}] does not fit logits [${logits.join(', ')}]: expected [${want.join(', ')}].`);
}

function lossSchema(op: string, ce: boolean): OpSchema {
  return {
    op,
    inputs: [2, 2],
    outputs: [1, 1],
    infer(ctx) {
      const x = needFloat(ctx, 0, 'logits');
      const t = need(ctx, 1, 'target');
      reduction(ctx.node);
      if (ce) checkCeTarget(ctx, x.shape, t);
      else if (!isFloat(t.dtype)) throw new DTypeError(`${op} target must be a float tensor of 0/1 (or soft) labels, got ${t.dtype}.`);
      return [{ dtype: x.dtype, shape: [] }];
    },
  };
}

function gradSchema(op: string, ce: boolean): OpSchema {
  return {
    op,
    inputs: [3, 3],
    outputs: [1, 1],
    infer(ctx) {
      needFloat(ctx, 0, 'dLoss');
      const x = needFloat(ctx, 1, 'logits');
      const t = need(ctx, 2, 'target');
      if (ce) checkCeTarget(ctx, x.shape, t);
      return [{ dtype: x.dtype, shape: sameShape(x) }];
    },
  };
}

export const crossEntropySchema = lossSchema('CrossEntropyLoss', true);
export const crossEntropyGradSchema = gradSchema('CrossEntropyLossGrad', true);
export const bceWithLogitsSchema = lossSchema('BCEWithLogitsLoss', false);
export const bceWithLogitsGradSchema = gradSchema('BCEWithLogitsLossGrad', false);

/**
 * Cross-entropy core: per position, log-softmax over the class axis, the smoothed target, the loss and (when `dy`
 * is given) the gradient scaled by dy / divisor.
 */
function crossEntropy(node: Node, X: HostTensor, T: HostTensor, dLoss?: number): { loss: number; grad?: Float64Array } {
  const eps = attrFloat(node, 'label_smoothing', 0);
  if (!(eps >= 0 && eps <= 1)) throw new InvalidArgumentError(`${node.op} label_smoothing must be in [0, 1], got ${eps}.`);
  const ignore = attrInt(node, 'ignore_index', -100);
  const red = reduction(node);
  const [N, C] = [X.shape[0]!, X.shape[1]!];
  const inner = X.shape.slice(2).reduce((a, b) => a * b, 1);
  const probs = isFloat(T.dtype);
  const wantT = probs ? X.shape : [N, ...X.shape.slice(2)];
  if (T.shape.length !== wantT.length || T.shape.some((d, i) => d !== wantT[i])) {
    throw new ShapeError(`${node.op} target [${T.shape.join(', ')}] does not fit logits [${X.shape.join(', ')}].`);
  }
  const x = toF64(X);
  const t = toNumbers(T.dtype, T.data);
  const logp = new Float64Array(C);
  const tt = new Float64Array(C);
  const grad = dLoss === undefined ? undefined : new Float64Array(x.length);
  let total = 0;
  let count = 0;
  // First pass accumulates the loss; gradients are scaled by the divisor afterwards (known only at the end).
  for (let n = 0; n < N; n++) {
    for (let i = 0; i < inner; i++) {
      const at = (c: number) => (n * C + c) * inner + i;
      if (!probs) {
        const y = t[n * inner + i]!;
        if (y === ignore) continue;
        if (!Number.isInteger(y) || y < 0 || y >= C) throw new InvalidArgumentError(`${node.op} target class ${y} is outside [0, ${C}) (and is not ignore_index ${ignore}).`);
        for (let c = 0; c < C; c++) tt[c] = (c === y ? 1 - eps : 0) + eps / C;
      } else {
        for (let c = 0; c < C; c++) tt[c] = (1 - eps) * t[at(c)]! + eps / C;
      }
      count++;
      let max = -Infinity;
      for (let c = 0; c < C; c++) max = Math.max(max, x[at(c)]!);
      let sum = 0;
      for (let c = 0; c < C; c++) sum += Math.exp(x[at(c)]! - max);
      const lse = max + Math.log(sum);
      let tSum = 0;
      for (let c = 0; c < C; c++) {
        logp[c] = x[at(c)]! - lse;
        total -= tt[c]! * logp[c]!;
        tSum += tt[c]!;
      }
      if (grad) for (let c = 0; c < C; c++) grad[at(c)] = Math.exp(logp[c]!) * tSum - tt[c]!;
    }
  }
  const divisor = red === 'sum' ? 1 : count; // 0 positions: 0/0 = NaN, as PyTorch
  if (grad) {
    const k = dLoss! / divisor;
    for (let j = 0; j < grad.length; j++) grad[j] = grad[j]! * k;
  }
  return { loss: total / divisor, grad };
}

function bce(node: Node, X: HostTensor, T: HostTensor, dLoss?: number): { loss: number; grad?: Float64Array } {
  if (T.shape.length !== X.shape.length || T.shape.some((d, i) => d !== X.shape[i])) {
    throw new ShapeError(`${node.op} target [${T.shape.join(', ')}] must have the logits' shape [${X.shape.join(', ')}].`);
  }
  const x = toF64(X);
  const t = toF64(T);
  const divisor = reduction(node) === 'sum' ? 1 : x.length;
  const grad = dLoss === undefined ? undefined : new Float64Array(x.length);
  let total = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    total += Math.max(v, 0) - v * t[i]! + Math.log1p(Math.exp(-Math.abs(v)));
    if (grad) grad[i] = (1 / (1 + Math.exp(-v)) - t[i]!) * (dLoss! / divisor);
  }
  return { loss: total / divisor, grad };
}

const scalarOf = (t: HostTensor) => toF64(t)[0]!;

export const crossEntropyKernel: CpuKernel = (inputs, node) => {
  const [X, T] = inputs as HostTensor[];
  return [fromF64({ dtype: X!.dtype, shape: [] }, [crossEntropy(node, X!, T!).loss])];
};

export const crossEntropyGradKernel: CpuKernel = (inputs, node) => {
  const [D, X, T] = inputs as HostTensor[];
  return [fromF64({ dtype: X!.dtype, shape: [...X!.shape] }, crossEntropy(node, X!, T!, scalarOf(D!)).grad!)];
};

export const bceWithLogitsKernel: CpuKernel = (inputs, node) => {
  const [X, T] = inputs as HostTensor[];
  return [fromF64({ dtype: X!.dtype, shape: [] }, [bce(node, X!, T!).loss])];
};

export const bceWithLogitsGradKernel: CpuKernel = (inputs, node) => {
  const [D, X, T] = inputs as HostTensor[];
  return [fromF64({ dtype: X!.dtype, shape: [...X!.shape] }, bce(node, X!, T!, scalarOf(D!)).grad!)];
};
