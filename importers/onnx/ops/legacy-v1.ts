import { ModelFormatError } from '../../../runtime/errors.js';
import { attrInt, attrInts, type Node } from '../../../runtime/ir/graph.js';
import { P } from '../proto.js';
import type { AdapterContext, OpAdapter } from './adapter.js';
import { AdapterUnsupported, helperNode, i64, without } from './helpers.js';

/**
 * Forms from opsets 1..6 (ONNX Changelog.md) that differ from the newest one beyond what legacy-inputs/legacy-nn
 * already rewrite: the `broadcast`/`axis` binary-op broadcasting of opsets 1..6, PRelu's per-channel slope,
 * string Cast targets, and `consumed_inputs`, an optimization hint of version 1 with no effect on results.
 */

const strip = (n: Node, ...names: string[]): Node => ({ ...n, attrs: without(n, 'consumed_inputs', ...names) });

/** Unsqueezes `value` (rank `rank`) with `count` trailing 1-dims, so numpy broadcasting aligns it further left. */
function trailingOnes(n: Node, ctx: AdapterContext, value: string, rank: number, count: number, hint: string): { name: string; nodes: Node[] } {
  if (count <= 0) return { name: value, nodes: [] };
  const axes = i64(ctx, `${n.name}_${hint}_axes`, Array.from({ length: count }, (_, i) => rank + i));
  const out = ctx.fresh(`${n.name}_${hint}`);
  return { name: out, nodes: [helperNode(n, `${hint}_unsqueeze`, 'Unsqueeze', [value, axes], [out])] };
}

/**
 * Add/Sub/Mul/Div/Pow/And/Or/Xor/Equal/Less/Greater-1..6: with broadcast=1, B's shape matches a contiguous run of
 * A's dims starting at `axis` (default: the trailing dims, which is numpy's alignment). For another axis B gets
 * trailing 1-dims so numpy broadcasting aligns it there. broadcast=0 required equal shapes, a special case of numpy.
 */
function legacyBroadcast(n: Node, ctx: AdapterContext): Node[] {
  const base = strip(n, 'broadcast', 'axis');
  const axisAttr = attrInt(n, 'axis');
  if (attrInt(n, 'broadcast', 0) === 0 || axisAttr === undefined) return [base];
  const [a, b] = n.inputs as [string, string];
  const ra = ctx.rankOf(a);
  const rb = ctx.rankOf(b);
  if (ra === undefined || rb === undefined) throw new AdapterUnsupported('broadcast=1 with an axis, on inputs of unknown rank');
  const axis = axisAttr < 0 ? axisAttr + ra : axisAttr;
  const count = ra - axis - rb;
  if (axis < 0 || count < 0) {
    throw new ModelFormatError(`Node '${n.name}' (${n.op}) broadcasts a rank-${rb} B at axis ${axisAttr} of a rank-${ra} A, which does not fit.`, { node: n.name });
  }
  const b2 = trailingOnes(n, ctx, b, rb, count, 'b');
  return [...b2.nodes, { ...base, inputs: [a, b2.name] }];
}

/**
 * PRelu-1..6: the slope is a scalar, or per channel: shape [C] for X [N, C, D1, ...] (the Caffe2 convention the
 * PyTorch exporter relied on), where numpy broadcasting from PRelu-7 on would align C with the last axis instead.
 */
function prelu(n: Node, ctx: AdapterContext): Node[] {
  const base = strip(n);
  const [x, slope] = n.inputs as [string, string];
  const rx = ctx.rankOf(x);
  const c = ctx.constantValue(slope);
  const rs = ctx.rankOf(slope);
  if (rs !== 1 || (c && c.data.length === 1) || (rx !== undefined && rx <= 2)) return [base];
  if (rx === undefined) throw new AdapterUnsupported('PRelu before opset 7 with a per-channel slope, on an input of unknown rank');
  const s2 = trailingOnes(n, ctx, slope, 1, rx - 2, 'slope');
  return [...s2.nodes, { ...base, inputs: [x, s2.name] }];
}

/** Cast-1..5: `to` is the type's name ("FLOAT", ...); from Cast-6 on it is the TensorProto.DataType code. */
function cast(n: Node): Node[] {
  const to = n.attrs.to;
  if (to?.type !== 'string') return [n];
  const code = (P.TensorProto.DataType as unknown as Record<string, number>)[to.value.toUpperCase()];
  if (code === undefined) throw new ModelFormatError(`Node '${n.name}' (Cast) casts to unknown type '${to.value}'.`, { node: n.name });
  return [{ ...n, attrs: { ...n.attrs, to: { type: 'int', value: code } } }];
}

/** Reshape-1..4: `shape` attribute → int64 input. */
function reshape(n: Node, ctx: AdapterContext): Node[] {
  const shape = attrInts(n, 'shape');
  if (!shape) throw new ModelFormatError(`Node '${n.name}' (Reshape) has no shape attribute.`, { node: n.name });
  return [{ ...strip(n, 'shape'), inputs: [n.inputs[0]!, i64(ctx, `${n.name}_shape`, shape)] }];
}

/** Concat-1..3: `axis` was optional, default 1. */
function concat(n: Node): Node[] {
  return [n.attrs.axis ? n : { ...n, attrs: { ...n.attrs, axis: { type: 'int', value: 1 } } }];
}

/** Version-1 ops identical to their next version but for `consumed_inputs`. */
const CONSUMED_INPUTS: [string, number][] = [
  ['Relu', 5], ['LeakyRelu', 5], ['Elu', 5], ['Selu', 5], ['Sigmoid', 5], ['HardSigmoid', 5], ['Tanh', 5], ['Exp', 5],
  ['Log', 5], ['Sqrt', 5], ['Neg', 5], ['Abs', 5], ['Reciprocal', 5], ['Floor', 5], ['Ceil', 5],
  ['InstanceNormalization', 5], ['Max', 5], ['Min', 5], ['Sum', 5], ['Mean', 5],
];

const BROADCAST_OPS = ['Add', 'Sub', 'Mul', 'Div', 'Pow', 'And', 'Or', 'Xor', 'Equal', 'Less', 'Greater'];

export const V1_ADAPTERS: OpAdapter[] = [
  ...CONSUMED_INPUTS.map(([op, until]): OpAdapter => ({ op, since: 1, until, map: (n) => [strip(n)] })),
  ...BROADCAST_OPS.map((op): OpAdapter => ({ op, since: 1, until: 6, targets: [op, 'Unsqueeze'], map: legacyBroadcast })),
  { op: 'PRelu', since: 1, until: 6, targets: ['PRelu', 'Unsqueeze'], map: prelu },
  // Gemm-1..6: `broadcast` said whether C broadcasts; Gemm-7 always broadcasts C unidirectionally to [M, N].
  { op: 'Gemm', since: 1, until: 6, map: (n) => [strip(n, 'broadcast')] },
  { op: 'Cast', since: 1, until: 5, map: cast },
  { op: 'Reshape', since: 1, until: 4, map: reshape },
  { op: 'Concat', since: 1, until: 3, map: concat },
];
