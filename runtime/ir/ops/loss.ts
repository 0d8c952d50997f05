import { DTypeError, InvalidArgumentError, ShapeError } from '../../errors.js';
import { attrInt, attrString, type Dim, type Node } from '../graph.js';
import { dataInput } from './data-dims.js';
import { inTypeClass } from './math-types.js';
import { defineOps, type InferContext, type InferredOutput, type OpSchema } from './schema.js';

/**
 * Classification losses (ONNX opset 13 forms): NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss over
 * input [N, C, d1..dk] and integer targets [N, d1..dk], optional per-class weights [C], `ignore_index`, and
 * reduction none (loss per target, [N, d1..dk]) / sum / mean (a scalar; mean divides by the summed weights of the
 * targets that are not ignored). SoftmaxCrossEntropyLoss also returns log_prob = LogSoftmax(scores, axis 1).
 */

export const LOSS_REDUCTIONS = ['none', 'sum', 'mean'] as const;
export type LossReduction = (typeof LOSS_REDUCTIONS)[number];

export function lossReduction(node: Node): LossReduction {
  const r = attrString(node, 'reduction', 'mean');
  if (!(LOSS_REDUCTIONS as readonly string[]).includes(r)) throw new InvalidArgumentError(`${node.op} reduction '${r}' is not one of none, sum, mean.`);
  return r as LossReduction;
}

/** ignore_index, or undefined when the attribute is absent (then every target must be a valid class). */
export function ignoreIndex(node: Node): number | undefined {
  return attrInt(node, 'ignore_index');
}

function lossOutputs(ctx: InferContext, what: [string, string]): { dtype: InferredOutput['dtype']; loss: Dim[] | undefined; scores: Dim[] | undefined } {
  const x = dataInput(ctx, 0, what[0]);
  const t = dataInput(ctx, 1, what[1]);
  const w = ctx.inputs[2];
  const op = ctx.node.op;
  if (!inTypeClass(x.dtype, 'float')) throw new DTypeError(`${op} ${what[0]} must be a floating-point type, got ${x.dtype}.`);
  if (t.dtype !== 'int32' && t.dtype !== 'int64') throw new DTypeError(`${op} ${what[1]} must be int32 or int64, got ${t.dtype}.`);
  if (w && w.dtype !== x.dtype) throw new DTypeError(`${op} weights are ${w.dtype} but ${what[0]} is ${x.dtype}.`);
  const reduction = lossReduction(ctx.node);
  if (x.shape) {
    if (x.shape.length < 2) throw new ShapeError(`${op} ${what[0]} must be [N, C, d1..dk], got [${x.shape.join(', ')}].`);
    if (t.shape) {
      const want = [x.shape[0]!, ...x.shape.slice(2)];
      const ok = t.shape.length === want.length && want.every((d, i) => typeof d !== 'number' || typeof t.shape![i] !== 'number' || d === t.shape![i]);
      if (!ok) throw new ShapeError(`${op} ${what[1]} must have shape [${want.join(', ')}] for ${what[0]} [${x.shape.join(', ')}], got [${t.shape.join(', ')}].`);
    }
    const c = x.shape[1];
    if (w?.shape && (w.shape.length !== 1 || (typeof c === 'number' && typeof w.shape[0] === 'number' && w.shape[0] !== c))) {
      throw new ShapeError(`${op} weights must be [C] = [${c}], got [${w.shape.join(', ')}].`);
    }
  }
  const perTarget = t.shape ?? (x.shape ? [x.shape[0]!, ...x.shape.slice(2)] : undefined);
  return { dtype: x.dtype, loss: reduction === 'none' ? perTarget && [...perTarget] : [], scores: x.shape && [...x.shape] };
}

const nll: OpSchema = {
  op: 'NegativeLogLikelihoodLoss',
  inputs: [2, 3],
  outputs: [1, 1],
  infer(ctx) {
    const o = lossOutputs(ctx, ['input', 'target']);
    return [{ dtype: o.dtype, shape: o.loss }];
  },
};

const sce: OpSchema = {
  op: 'SoftmaxCrossEntropyLoss',
  inputs: [2, 3],
  outputs: [1, 2],
  infer(ctx) {
    const o = lossOutputs(ctx, ['scores', 'labels']);
    const out: InferredOutput[] = [{ dtype: o.dtype, shape: o.loss }];
    if (ctx.node.outputs.length > 1) out.push({ dtype: o.dtype, shape: o.scores });
    return out;
  },
};

export const schemas = defineOps(nll, sce);
