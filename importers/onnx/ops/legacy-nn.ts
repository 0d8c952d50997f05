import { attrFloat, attrInt, type Node } from '../../../runtime/ir/graph.js';
import { toNum, type PNode } from '../proto.js';
import type { AdapterContext, OpAdapter } from './adapter.js';
import { f32, helperNode, scalarLike, without } from './helpers.js';

/**
 * Older versions of Dropout, BatchNormalization and the softmax family, rewritten into the newest form
 * (ONNX Changelog.md). Inference semantics throughout: training-mode forms that cannot be expressed are refused.
 */

/**
 * Dropout-1..11: `ratio` attribute → input. Dropout-1..6 also had `is_test`; EdgeKit runs inference, where Dropout
 * is the identity, whatever the flag says.
 */
function dropout(n: Node, ctx: AdapterContext): Node[] {
  const ratio = f32(ctx, `${n.name}_ratio`, [attrFloat(n, 'ratio', 0.5)], []);
  const base: Node = { ...n, inputs: [n.inputs[0]!, ratio], attrs: without(n, 'ratio', 'is_test', 'consumed_inputs') };
  const mask = n.outputs[1];
  // Dropout-7..9's mask has the data's type; from Dropout-10 on it is bool.
  if (!mask || ctx.opset >= 10) return [base];
  const boolMask = ctx.fresh(`${n.name}_mask_bool`);
  return [
    { ...base, outputs: [n.outputs[0]!, boolMask] },
    helperNode(n, 'mask_cast', 'CastLike', [boolMask, n.inputs[0]!], [mask]),
  ];
}

/**
 * BatchNormalization-1..13 had optional training outputs (mean, var, saved mean/var); 14 moved them behind
 * training_mode. BatchNormalization-1..6 also had `is_test`, default 0: training mode, normalizing with the batch's
 * own statistics, which EdgeKit does not run (exporters set is_test=1 for inference graphs).
 */
function batchNormCheck(n: PNode, opset: number): string | undefined {
  if ((n.output ?? []).slice(1).some(Boolean)) return 'training-mode outputs (running/saved mean and variance) before opset 14 are not supported; export the model in eval mode';
  const isTest = (n.attribute ?? []).find((a) => a.name === 'is_test');
  if (opset < 7 && (!isTest || toNum(isTest.i) === 0)) return 'is_test=0 (training mode: batch statistics) is not supported; export the model in eval mode';
  return undefined;
}

/**
 * BatchNormalization-1..13 in inference form. spatial=0 (BatchNormalization-1..8 only) normalizes per activation:
 * scale, B, mean and var are [C, D1, ...] rather than [C], so it becomes plain broadcasting arithmetic:
 * Y = (X - mean) / sqrt(var + epsilon) * scale + B   // X [N, C, D1, ...], params [C, D1, ...]
 */
function batchNorm(n: Node, ctx: AdapterContext): Node[] {
  if (ctx.opset >= 9 || attrInt(n, 'spatial', 1) !== 0) {
    return [{ ...n, outputs: [n.outputs[0]!], attrs: without(n, 'spatial', 'is_test', 'consumed_inputs') }];
  }
  const [x, scale, b, mean, variance] = n.inputs as [string, string, string, string, string];
  const eps = scalarLike(n, ctx, attrFloat(n, 'epsilon', 1e-5), x, 'epsilon');
  const v = (s: string) => ctx.fresh(`${n.name}_${s}`);
  const [ve, sd, centered, normed, scaled] = [v('var_eps'), v('std'), v('centered'), v('normed'), v('scaled')];
  return [
    ...eps.nodes,
    helperNode(n, 'var_eps', 'Add', [variance, eps.name], [ve]),
    helperNode(n, 'std', 'Sqrt', [ve], [sd]),
    helperNode(n, 'centered', 'Sub', [x, mean], [centered]),
    helperNode(n, 'normed', 'Div', [centered, sd], [normed]),
    helperNode(n, 'scaled', 'Mul', [normed, scale], [scaled]),
    helperNode(n, 'shifted', 'Add', [scaled, b], [n.outputs[0]!]),
  ];
}

/**
 * Softmax/LogSoftmax/Hardmax-1..12 "coerce" the input to 2-D at `axis` (default 1) and normalize each row. When
 * `axis` is the last axis that is exactly the newest form with axis -1; otherwise
 * Flatten(axis) → op(axis = -1) → Reshape(Shape(x)), which needs no knowledge of the rank.
 */
function coercedSoftmax(n: Node, ctx: AdapterContext): Node[] {
  const x = n.inputs[0]!;
  const axis = attrInt(n, 'axis', 1);
  const rank = ctx.rankOf(x);
  if (axis === -1 || (rank !== undefined && axis === rank - 1)) return [{ ...n, attrs: { axis: { type: 'int', value: -1 } } }];
  const [flat, rows, shape] = [ctx.fresh(`${n.name}_2d`), ctx.fresh(`${n.name}_rows`), ctx.fresh(`${n.name}_shape`)];
  return [
    helperNode(n, 'flatten', 'Flatten', [x], [flat], { axis: { type: 'int', value: axis } }),
    { ...n, inputs: [flat], outputs: [rows], attrs: { axis: { type: 'int', value: -1 } } },
    helperNode(n, 'shape', 'Shape', [x], [shape]),
    helperNode(n, 'reshape', 'Reshape', [rows, shape], [n.outputs[0]!]),
  ];
}

export const NN_ADAPTERS: OpAdapter[] = [
  { op: 'Dropout', since: 1, until: 11, targets: ['Dropout', 'CastLike'], map: dropout },
  { op: 'BatchNormalization', since: 1, until: 13, targets: ['BatchNormalization', 'Add', 'Sqrt', 'Sub', 'Div', 'Mul', 'CastLike'], map: batchNorm, check: batchNormCheck },
  ...['Softmax', 'LogSoftmax', 'Hardmax'].map((op): OpAdapter => ({ op, since: 1, until: 12, targets: [op, 'Flatten', 'Shape', 'Reshape'], map: coercedSoftmax })),
];
