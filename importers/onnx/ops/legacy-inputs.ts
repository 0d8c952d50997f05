import { attrFloat, attrInt, attrInts, type Node } from '../../../runtime/ir/graph.js';
import type { AdapterContext, OpAdapter } from './adapter.js';
import { MAX_OPSET } from './direct.js';
import { attrToInput, i64, scalarLike, trimInputs, without } from './helpers.js';

/**
 * Older op versions whose parameters were attributes and became inputs (ONNX Changelog.md). Each adapter rewrites
 * the node into the newest form with the attribute values as constant inputs; semantics are otherwise unchanged.
 */

/** Reduce*-1..17 (ReduceSum-1..12): `axes` attribute → input; absent means all axes (noop_with_empty_axes = 0). */
const REDUCE_AXES_ATTR: [string, number][] = [
  ['ReduceSum', 12], ['ReduceMean', 17], ['ReduceMax', 17], ['ReduceMin', 17], ['ReduceProd', 17], ['ReduceL1', 17],
  ['ReduceL2', 17], ['ReduceLogSum', 17], ['ReduceLogSumExp', 17], ['ReduceSumSquare', 17],
];

const axesToInput: OpAdapter['map'] = (n, ctx) => [attrToInput(n, ctx, 'axes', 1)];

/**
 * Split-1..12: `split` attribute (Split-1 also accepted it as a second input, the newest form); without either
 * (and through Split-17 without the input) equal parts per output.
 */
function split(n: Node, ctx: AdapterContext): Node[] {
  const m = n.attrs.split ? attrToInput(n, ctx, 'split', 1) : n;
  if (m.inputs[1]) return [m];
  // Split-18 needs num_outputs when `split` is absent; for evenly divisible axes both forms agree.
  return [{ ...m, attrs: { ...m.attrs, num_outputs: { type: 'int', value: n.outputs.length } } }];
}

/** Slice-1..9: starts/ends/axes attributes (no steps). INT64_MAX ends survive: the constant saturates. */
function slice(n: Node, ctx: AdapterContext): Node[] {
  const inputs = [n.inputs[0]!, i64(ctx, `${n.name}_starts`, attrInts(n, 'starts', [])), i64(ctx, `${n.name}_ends`, attrInts(n, 'ends', []))];
  const axes = attrInts(n, 'axes');
  if (axes) inputs.push(i64(ctx, `${n.name}_axes`, axes));
  return [{ ...n, inputs, attrs: {} }];
}

/** Pad-1..10: `pads` (Pad-1: `paddings`) and `value` attributes (value default 0; used by mode 'constant' only). */
function pad(n: Node, ctx: AdapterContext): Node[] {
  const pads = i64(ctx, `${n.name}_pads`, attrInts(n, 'pads') ?? attrInts(n, 'paddings', []));
  const mode = n.attrs.mode ?? { type: 'string', value: 'constant' };
  const cv = scalarLike(n, ctx, attrFloat(n, 'value', 0), n.inputs[0]!, 'value');
  return [...cv.nodes, { ...n, inputs: [n.inputs[0]!, pads, cv.name], attrs: { mode } }];
}

/** Clip-1..10: `min`/`max` attributes; an absent bound (default ±FLT_MAX) becomes an omitted input. */
function clip(n: Node, ctx: AdapterContext): Node[] {
  const nodes: Node[] = [];
  const inputs = [n.inputs[0]!];
  for (const k of ['min', 'max'] as const) {
    const v = attrFloat(n, k);
    if (v === undefined) {
      inputs.push('');
      continue;
    }
    const c = scalarLike(n, ctx, v, n.inputs[0]!, k);
    nodes.push(...c.nodes);
    inputs.push(c.name);
  }
  return [...nodes, { ...n, inputs: trimInputs(inputs), attrs: {} }];
}

export const INPUT_ADAPTERS: OpAdapter[] = [
  ...REDUCE_AXES_ATTR.map(([op, until]): OpAdapter => ({ op, since: 1, until, map: axesToInput })),
  { op: 'Squeeze', since: 1, until: 12, map: axesToInput },
  { op: 'Unsqueeze', since: 1, until: 12, map: axesToInput },
  { op: 'Split', since: 1, until: 17, map: split },
  { op: 'Split', since: 18, until: MAX_OPSET },
  { op: 'Slice', since: 1, until: 9, map: slice },
  { op: 'Pad', since: 1, until: 10, targets: ['Pad', 'CastLike'], map: pad },
  { op: 'Clip', since: 1, until: 10, targets: ['Clip', 'CastLike'], map: clip },
  // TopK-1..9: `k` attribute → int64 [1] input K.
  { op: 'TopK', since: 1, until: 9, map: (n, ctx) => [{ ...n, inputs: [n.inputs[0]!, i64(ctx, `${n.name}_k`, [attrInt(n, 'k', 1)])], attrs: without(n, 'k') }] },
];
