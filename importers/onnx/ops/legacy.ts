import { attrFloat, attrInt, attrInts, type Node } from '../../../runtime/ir/graph.js';
import { tensorFromNumbers } from '../../../runtime/ir/tensor.js';
import type { AdapterContext, OpAdapter } from './adapter.js';
import { MAX_OPSET } from './direct.js';

/**
 * Rewrites of older op versions into the newest form. Each cites the version whose semantics it reproduces
 * (ONNX Changelog.md / Operators.md).
 */

const i64 = (ctx: AdapterContext, hint: string, values: number[]) => ctx.constant(hint, tensorFromNumbers('int64', [values.length], values));

function without(n: Node, ...names: string[]): Node['attrs'] {
  const attrs = { ...n.attrs };
  for (const k of names) delete attrs[k];
  return attrs;
}

/** Moves an `ints` attribute to an int64 input at `index` (omitted when the attribute is absent). */
function attrToInput(n: Node, ctx: AdapterContext, attr: string, index: number): Node {
  const v = attrInts(n, attr);
  const inputs = [...n.inputs];
  while (inputs.length < index) inputs.push('');
  inputs[index] = v ? i64(ctx, `${n.name}_${attr}`, v) : '';
  while (inputs.length && inputs[inputs.length - 1] === '') inputs.pop();
  return { ...n, inputs, attrs: without(n, attr) };
}

/** A float attribute as a scalar input of the data's type: Const(float32) → CastLike(data). */
function scalarLike(n: Node, ctx: AdapterContext, value: number, like: string, hint: string): { name: string; nodes: Node[] } {
  const c = ctx.constant(`${n.name}_${hint}_f32`, tensorFromNumbers('float32', [], [value]));
  const dtype = ctx.dtypeOf(like);
  if (dtype === 'float32') return { name: c, nodes: [] };
  const out = ctx.fresh(`${n.name}_${hint}`);
  return { name: out, nodes: [{ name: `${n.name}_${hint}_cast`, op: 'CastLike', domain: '', inputs: [c, like], outputs: [out], attrs: {} }] };
}

const REDUCE_AXES_ATTR: [string, number][] = [
  ['ReduceSum', 12], ['ReduceMean', 17], ['ReduceMax', 17], ['ReduceMin', 17], ['ReduceProd', 17], ['ReduceL1', 17],
  ['ReduceL2', 17], ['ReduceLogSum', 17], ['ReduceLogSumExp', 17], ['ReduceSumSquare', 17],
];

/** Softmax-1..12 "coerces" the input to 2-D at `axis` (default 1) and normalizes each row. */
function coercedSoftmax(n: Node, ctx: AdapterContext): Node[] {
  const x = n.inputs[0]!;
  const y = n.outputs[0]!;
  const axis = attrInt(n, 'axis', 1);
  const rank = ctx.rankOf(x);
  if (axis === -1 || (rank !== undefined && (axis === rank - 1 || axis + rank === rank - 1))) {
    return [{ ...n, attrs: { axis: { type: 'int', value: -1 } } }];
  }
  const flat = ctx.fresh(`${n.name}_2d`);
  const soft = ctx.fresh(`${n.name}_rows`);
  const shape = ctx.fresh(`${n.name}_shape`);
  return [
    { name: `${n.name}_flatten`, op: 'Flatten', domain: '', inputs: [x], outputs: [flat], attrs: { axis: { type: 'int', value: axis } } },
    { ...n, inputs: [flat], outputs: [soft], attrs: { axis: { type: 'int', value: -1 } } },
    { name: `${n.name}_shape`, op: 'Shape', domain: '', inputs: [x], outputs: [shape], attrs: {} },
    { name: `${n.name}_reshape`, op: 'Reshape', domain: '', inputs: [soft, shape], outputs: [y], attrs: {} },
  ];
}

/** Upsample-7..9 and Resize-10: output index i reads input floor(i / scale) ("asymmetric" coordinates). */
function upsampleToResize(n: Node, ctx: AdapterContext): Node[] {
  const mode = n.attrs.mode?.type === 'string' ? n.attrs.mode.value : 'nearest';
  const scalesAttr = attrFloats(n, 'scales');
  const scales = scalesAttr ? ctx.constant(`${n.name}_scales`, tensorFromNumbers('float32', [scalesAttr.length], scalesAttr)) : n.inputs[1]!;
  return [{
    ...n,
    op: 'Resize',
    inputs: [n.inputs[0]!, '', scales],
    attrs: {
      mode: { type: 'string', value: mode === 'bilinear' ? 'linear' : mode },
      coordinate_transformation_mode: { type: 'string', value: 'asymmetric' },
      nearest_mode: { type: 'string', value: 'floor' },
    },
  }];
}

function attrFloats(n: Node, name: string): number[] | undefined {
  const a = n.attrs[name];
  return a && (a.type === 'floats' || a.type === 'ints') ? a.value : undefined;
}

/** Resize-11..19: empty roi/scales/sizes tensors mean "absent" (opset 11 required placeholders). */
function resizeDropEmpty(n: Node, ctx: AdapterContext): Node[] {
  const inputs = n.inputs.map((v, i) => {
    if (i === 0 || !v) return v;
    const c = ctx.constantValue(v);
    return c && c.data.length === 0 ? '' : v;
  });
  while (inputs.length > 1 && inputs[inputs.length - 1] === '') inputs.pop();
  return [{ ...n, inputs }];
}

export const LEGACY_ADAPTERS: OpAdapter[] = [
  ...REDUCE_AXES_ATTR.map(([op, until]): OpAdapter => ({ op, since: 7, until, map: (n, ctx) => [attrToInput(n, ctx, 'axes', 1)] })),
  { op: 'Squeeze', since: 7, until: 12, map: (n, ctx) => [attrToInput(n, ctx, 'axes', 1)] },
  { op: 'Unsqueeze', since: 7, until: 12, map: (n, ctx) => [attrToInput(n, ctx, 'axes', 1)] },
  {
    // Split-2..12: `split` attribute; without it (and through Split-17 without the input) split evenly per output.
    op: 'Split', since: 7, until: 17,
    map: (n, ctx) => {
      const m = n.attrs.split ? attrToInput(n, ctx, 'split', 1) : n;
      if (m.inputs[1]) return [m];
      return [{ ...m, attrs: { ...m.attrs, num_outputs: { type: 'int', value: n.outputs.length } } }];
    },
  },
  { op: 'Split', since: 18, until: MAX_OPSET },
  {
    // Slice-1..9: starts/ends/axes attributes.
    op: 'Slice', since: 7, until: 9,
    map: (n, ctx) => {
      const starts = attrInts(n, 'starts', []);
      const inputs = [n.inputs[0]!, i64(ctx, `${n.name}_starts`, starts), i64(ctx, `${n.name}_ends`, attrInts(n, 'ends', []))];
      const axes = attrInts(n, 'axes');
      if (axes) inputs.push(i64(ctx, `${n.name}_axes`, axes));
      return [{ ...n, inputs, attrs: {} }];
    },
  },
  {
    // Pad-2..10: `pads` and `value` attributes.
    op: 'Pad', since: 7, until: 10, targets: ['Pad', 'CastLike'],
    map: (n, ctx) => {
      const pads = i64(ctx, `${n.name}_pads`, attrInts(n, 'pads', []));
      const mode = n.attrs.mode ?? { type: 'string', value: 'constant' };
      const value = attrFloat(n, 'value', 0);
      const cv = scalarLike(n, ctx, value, n.inputs[0]!, 'value');
      return [...cv.nodes, { ...n, inputs: [n.inputs[0]!, pads, cv.name], attrs: { mode } }];
    },
  },
  {
    // Clip-6..10: `min`/`max` attributes (defaults: the float range, i.e. no bound).
    op: 'Clip', since: 7, until: 10, targets: ['Clip', 'CastLike'],
    map: (n, ctx) => {
      const nodes: Node[] = [];
      const inputs = [n.inputs[0]!];
      for (const k of ['min', 'max'] as const) {
        const v = attrFloat(n, k);
        if (v === undefined) inputs.push('');
        else {
          const c = scalarLike(n, ctx, v, n.inputs[0]!, k);
          nodes.push(...c.nodes);
          inputs.push(c.name);
        }
      }
      while (inputs[inputs.length - 1] === '') inputs.pop();
      return [...nodes, { ...n, inputs, attrs: {} }];
    },
  },
  { op: 'TopK', since: 7, until: 9, map: (n, ctx) => [{ ...n, inputs: [n.inputs[0]!, i64(ctx, `${n.name}_k`, [attrInt(n, 'k', 1)])], attrs: without(n, 'k') }] },
  {
    // Dropout-7..11: `ratio` attribute; inference semantics (identity) unless training_mode is given (12+ only).
    op: 'Dropout', since: 7, until: 11,
    map: (n, ctx) => [{ ...n, inputs: [n.inputs[0]!, ctx.constant(`${n.name}_ratio`, tensorFromNumbers('float32', [], [attrFloat(n, 'ratio', 0.5)]))], attrs: without(n, 'ratio', 'is_test') }],
  },
  {
    // BatchNormalization-7..13: inference form only (training outputs became the training_mode attribute in 14).
    op: 'BatchNormalization', since: 7, until: 13,
    map: (n) => {
      if (n.outputs.slice(1).some(Boolean)) throw new AdapterUnsupported('training-mode outputs of BatchNormalization before opset 14');
      if (attrInt(n, 'spatial', 1) !== 1) throw new AdapterUnsupported('BatchNormalization with spatial=0');
      return [{ ...n, outputs: [n.outputs[0]!], attrs: without(n, 'spatial', 'is_test', 'consumed_inputs') }];
    },
  },
  ...['Softmax', 'LogSoftmax', 'Hardmax'].map((op): OpAdapter => ({ op, since: 7, until: 12, targets: [op, 'Flatten', 'Shape', 'Reshape'], map: coercedSoftmax })),
  { op: 'Upsample', since: 7, until: 9, targets: ['Resize'], map: upsampleToResize },
  { op: 'Resize', since: 10, until: 10, map: upsampleToResize },
  { op: 'Resize', since: 11, until: MAX_OPSET, map: resizeDropEmpty },
];

/** Thrown by an adapter for a node form EdgeKit cannot express; collected into the load's UnsupportedOpError. */
export class AdapterUnsupported extends Error {}
