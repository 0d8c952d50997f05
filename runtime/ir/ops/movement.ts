import { DTypeError, InvalidArgumentError, ShapeError } from '../../errors.js';
import { attrInt, attrInts, attrString, type Dim, type Node } from '../graph.js';
import { broadcastShapes, dimExpr, normalizeAxes, normalizeAxis } from '../shape.js';
import { dataInput, intParam, paramLength, paren, sumDims, unifyDim } from './data-dims.js';
import { padDims, resolvePads, sliceDims, sliceSpec, splitSizes } from './data-params.js';
import { defineOps, type InferContext, type OpSchema } from './schema.js';

/**
 * Data movement ops (ONNX opset 21 forms): Transpose, Concat, Split, Slice, Gather, GatherElements, Expand, Tile,
 * Pad, DepthToSpace, SpaceToDepth. Element types are unconstrained: these ops only copy elements.
 */

const INDEX_TYPES = ['int32', 'int64'] as const;
const fresh = (ctx: InferContext, what: string) => (i: number): Dim => ctx.symbol(`${ctx.node.name}_${what}${i}`);

/** Transpose-21 permutation: `perm`, or the reversed axes. */
export function transposePerm(node: Node, rank: number): number[] {
  const perm = attrInts(node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const seen = new Set(perm);
  if (perm.length !== rank || seen.size !== rank || perm.some((p) => !Number.isInteger(p) || p < 0 || p >= rank)) {
    throw new ShapeError(`Transpose perm [${perm.join(', ')}] is not a permutation of the ${rank} axes.`);
  }
  return perm;
}

const transpose: OpSchema = {
  op: 'Transpose',
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'data');
    if (!x.shape) return [{ dtype: x.dtype }];
    return [{ dtype: x.dtype, shape: transposePerm(ctx.node, x.shape.length).map((p) => x.shape![p]!) }];
  },
};

/** Concat-13: inputs agree on every dim but `axis`, which adds up. */
const concat: OpSchema = {
  op: 'Concat',
  inputs: [1, Infinity],
  outputs: [1, 1],
  infer(ctx) {
    const xs = ctx.inputs.map((x, i) => x ?? dataInput(ctx, i, `input ${i}`));
    const dtype = xs[0]!.dtype;
    for (const x of xs) if (x.dtype !== dtype) throw new DTypeError(`Concat inputs must share one element type, got ${dtype} and ${x.dtype}.`);
    const a = attrInt(ctx.node, 'axis');
    if (a === undefined) throw new InvalidArgumentError('Concat needs an axis attribute.');
    const known = xs.filter((x) => x.shape);
    if (!known.length) return [{ dtype }];
    const rank = known[0]!.shape!.length;
    if (rank === 0) throw new ShapeError('Concat inputs must have rank 1 or more; got a scalar.');
    const axis = normalizeAxis(a, rank, 'Concat axis');
    const out = [...known[0]!.shape!];
    for (const x of known) {
      const s = x.shape!;
      if (s.length !== rank) throw new ShapeError(`Concat inputs must share one rank, got [${known[0]!.shape!.join(', ')}] and [${s.join(', ')}].`);
      s.forEach((d, i) => {
        if (i !== axis) out[i] = unifyDim(out[i]!, d, () => `Concat inputs differ in dim ${i} outside the axis ${axis}: [${known[0]!.shape!.join(', ')}] vs [${s.join(', ')}].`);
      });
    }
    out[axis] = known.length === xs.length ? sumDims(known.map((x) => x.shape![axis]!)) : ctx.symbol(`${ctx.node.name}_axis`);
    return [{ dtype, shape: out }];
  },
};

/** Split-18: `split` input sizes, or `num_outputs` (last chunk smaller), or equal parts. */
const split: OpSchema = {
  op: 'Split',
  inputs: [1, 2],
  outputs: [1, Infinity],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'input');
    const n = ctx.node.outputs.length;
    const splitIn = ctx.inputs[1];
    const sizes = intParam(ctx, splitIn, 'split');
    const numOutputs = attrInt(ctx.node, 'num_outputs');
    if (splitIn && numOutputs !== undefined) throw new InvalidArgumentError('Split takes either the split input or num_outputs, not both.');
    if (!x.shape) return new Array(n).fill({ dtype: x.dtype });
    const axis = normalizeAxis(attrInt(ctx.node, 'axis', 0), x.shape.length, 'Split axis');
    const dims = splitIn && !sizes ? Array.from({ length: n }, (_, i) => fresh(ctx, 'split')(i)) : splitSizes(x.shape[axis]!, n, sizes, numOutputs);
    return dims.map((d) => ({ dtype: x.dtype, shape: x.shape!.map((s, i) => (i === axis ? d : s)) }));
  },
};

/** Slice-13: starts, ends, axes?, steps? inputs (int32 or int64). */
const slice: OpSchema = {
  op: 'Slice',
  inputs: [3, 5],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'data');
    const [starts, ends, axes, steps] = [1, 2, 3, 4].map((i) => intParam(ctx, i < 3 ? dataInput(ctx, i, 'starts/ends') : ctx.inputs[i], ['starts', 'ends', 'axes', 'steps'][i - 1]!, INDEX_TYPES));
    if (!x.shape) return [{ dtype: x.dtype }];
    const sym = fresh(ctx, 'd');
    const axesUnknown = ctx.inputs[3] && !axes;
    if (!starts || !ends || axesUnknown || (ctx.inputs[4] && !steps)) {
      // Parameters known only at run time: with known axes only those dims change; otherwise any may.
      const touched = axes ? new Set(normalizeAxes(axes, x.shape.length, 'Slice axes')) : undefined;
      const n = paramLength(ctx, ctx.inputs[1], 'starts');
      const maybe = (i: number) => (touched ? touched.has(i) : axesUnknown || n === undefined || i < n);
      return [{ dtype: x.dtype, shape: x.shape.map((d, i) => (maybe(i) ? sym(i) : d)) }];
    }
    const spec = sliceSpec(x.shape.length, starts, ends, axes, steps);
    return [{ dtype: x.dtype, shape: sliceDims(x.shape, starts, ends, spec.axes, spec.steps, sym) }];
  },
};

/** Gather-13: data[:axis] + indices.shape + data[axis+1:]. */
const gather: OpSchema = {
  op: 'Gather',
  inputs: [2, 2],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'data');
    const idx = dataInput(ctx, 1, 'indices');
    if (!INDEX_TYPES.includes(idx.dtype as 'int64')) throw new DTypeError(`Gather indices must be int32 or int64, got ${idx.dtype}.`);
    if (!x.shape || !idx.shape) return [{ dtype: x.dtype }];
    if (x.shape.length === 0) throw new ShapeError('Gather data must have rank 1 or more; got a scalar.');
    const axis = normalizeAxis(attrInt(ctx.node, 'axis', 0), x.shape.length, 'Gather axis');
    return [{ dtype: x.dtype, shape: [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)] }];
  },
};

/** GatherElements-13: indices of data's rank select along `axis`; the output takes the indices' shape. */
const gatherElements: OpSchema = {
  op: 'GatherElements',
  inputs: [2, 2],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'data');
    const idx = dataInput(ctx, 1, 'indices');
    if (!INDEX_TYPES.includes(idx.dtype as 'int64')) throw new DTypeError(`GatherElements indices must be int32 or int64, got ${idx.dtype}.`);
    if (!idx.shape) return [{ dtype: x.dtype }];
    if (x.shape) {
      if (x.shape.length === 0 || x.shape.length !== idx.shape.length) {
        throw new ShapeError(`GatherElements data [${x.shape.join(', ')}] and indices [${idx.shape.join(', ')}] must share one rank of 1 or more.`);
      }
      const axis = normalizeAxis(attrInt(ctx.node, 'axis', 0), x.shape.length, 'GatherElements axis');
      idx.shape.forEach((d, i) => {
        const s = x.shape![i]!;
        if (i !== axis && typeof d === 'number' && typeof s === 'number' && d > s) {
          throw new ShapeError(`GatherElements indices dim ${i} (${d}) exceeds the data's (${s}).`);
        }
      });
    }
    return [{ dtype: x.dtype, shape: [...idx.shape] }];
  },
};

/** Expand-13: input and `shape` broadcast against each other (a 1 in `shape` keeps the input's dim). */
const expand: OpSchema = {
  op: 'Expand',
  inputs: [2, 2],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'input');
    const s = dataInput(ctx, 1, 'shape');
    const target = intParam(ctx, s, 'shape');
    if (!x.shape) return [{ dtype: x.dtype }];
    if (target) {
      if (target.some((d) => d < 0)) throw new ShapeError(`Expand shape [${target.join(', ')}] has a negative dim.`);
      return [{ dtype: x.dtype, shape: broadcastShapes(x.shape, target, 'Expand input and shape') }];
    }
    const n = paramLength(ctx, s, 'shape');
    if (n === undefined) return [{ dtype: x.dtype }];
    // A non-1 input dim survives any valid broadcast; the others depend on the runtime shape.
    const rank = Math.max(n, x.shape.length);
    const sym = fresh(ctx, 'd');
    return [{ dtype: x.dtype, shape: Array.from({ length: rank }, (_, i) => {
      const d = x.shape![i - (rank - x.shape!.length)];
      return typeof d === 'number' && d !== 1 ? d : sym(i);
    }) }];
  },
};

/** Tile-13: dim i times repeats[i]. */
const tile: OpSchema = {
  op: 'Tile',
  inputs: [2, 2],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'input');
    const r = dataInput(ctx, 1, 'repeats');
    const reps = intParam(ctx, r, 'repeats');
    if (!x.shape) return [{ dtype: x.dtype }];
    const n = reps?.length ?? paramLength(ctx, r, 'repeats');
    if (n !== undefined && n !== x.shape.length) throw new ShapeError(`Tile repeats has ${n} entries for a tensor of rank ${x.shape.length}.`);
    if (!reps) return [{ dtype: x.dtype, shape: x.shape.map((_, i) => fresh(ctx, 'd')(i)) }];
    if (reps.some((v) => v < 0)) throw new ShapeError(`Tile repeats [${reps.join(', ')}] must not be negative.`);
    return [{ dtype: x.dtype, shape: x.shape.map((d, i) => dimExpr((a) => a * reps[i]!, (a) => (reps[i] === 1 ? a : `${paren(a)}*${reps[i]}`), d)) }];
  },
};

export const PAD_MODES = ['constant', 'reflect', 'edge', 'wrap'] as const;
export type PadMode = (typeof PAD_MODES)[number];

export function padMode(node: Node): PadMode {
  const m = attrString(node, 'mode', 'constant');
  if (!(PAD_MODES as readonly string[]).includes(m)) throw new InvalidArgumentError(`Pad mode '${m}' is not one of ${PAD_MODES.join(', ')}.`);
  return m as PadMode;
}

/** Pad-21: pads, constant_value? and axes? inputs; modes constant, reflect, edge, wrap. */
const pad: OpSchema = {
  op: 'Pad',
  inputs: [2, 4],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'data');
    padMode(ctx.node);
    const pads = intParam(ctx, dataInput(ctx, 1, 'pads'), 'pads');
    const cv = ctx.inputs[2];
    if (cv && cv.dtype !== x.dtype) throw new DTypeError(`Pad constant_value is ${cv.dtype} but data is ${x.dtype}.`);
    if (cv?.shape && cv.shape.length > 1) throw new ShapeError(`Pad constant_value must be a scalar, got shape [${cv.shape.join(', ')}].`);
    const axesIn = ctx.inputs[3];
    const axes = intParam(ctx, axesIn, 'axes', INDEX_TYPES);
    if (!x.shape) return [{ dtype: x.dtype }];
    if (!pads || (axesIn && !axes)) return [{ dtype: x.dtype, shape: x.shape.map((_, i) => fresh(ctx, 'd')(i)) }];
    const { begin, end } = resolvePads(x.shape.length, pads, axes);
    return [{ dtype: x.dtype, shape: padDims(x.shape, begin, end) }];
  },
};

/** DepthToSpace-13 / SpaceToDepth-13 on [N, C, H, W] with `blocksize`. */
export function blocksize(node: Node): number {
  const b = attrInt(node, 'blocksize');
  if (b === undefined || !Number.isInteger(b) || b < 1) throw new InvalidArgumentError(`${node.op} needs a positive integer blocksize, got ${b}.`);
  return b;
}

const depthToSpace: OpSchema = {
  op: 'DepthToSpace',
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'input');
    const b = blocksize(ctx.node);
    const mode = attrString(ctx.node, 'mode', 'DCR');
    if (mode !== 'DCR' && mode !== 'CRD') throw new InvalidArgumentError(`DepthToSpace mode must be DCR or CRD, got '${mode}'.`);
    if (!x.shape) return [{ dtype: x.dtype, shape: [0, 1, 2, 3].map(fresh(ctx, 'd')) }];
    if (x.shape.length !== 4) throw new ShapeError(`DepthToSpace needs a 4-D input [N, C, H, W], got [${x.shape.join(', ')}].`);
    const [n, c, h, w] = x.shape as [Dim, Dim, Dim, Dim];
    if (typeof c === 'number' && c % (b * b) !== 0) throw new ShapeError(`DepthToSpace channels ${c} are not divisible by blocksize² = ${b * b}.`);
    const times = (d: Dim) => dimExpr((v) => v * b, (v) => `${paren(v)}*${b}`, d);
    return [{ dtype: x.dtype, shape: [n, dimExpr((v) => v / (b * b), (v) => `${paren(v)}/${b * b}`, c), times(h), times(w)] }];
  },
};

const spaceToDepth: OpSchema = {
  op: 'SpaceToDepth',
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'input');
    const b = blocksize(ctx.node);
    if (!x.shape) return [{ dtype: x.dtype, shape: [0, 1, 2, 3].map(fresh(ctx, 'd')) }];
    if (x.shape.length !== 4) throw new ShapeError(`SpaceToDepth needs a 4-D input [N, C, H, W], got [${x.shape.join(', ')}].`);
    const [n, c, h, w] = x.shape as [Dim, Dim, Dim, Dim];
    for (const d of [h, w]) {
      if (typeof d === 'number' && d % b !== 0) throw new ShapeError(`SpaceToDepth spatial dims [${h}, ${w}] are not divisible by blocksize ${b}.`);
    }
    const div = (d: Dim) => dimExpr((v) => v / b, (v) => `${paren(v)}/${b}`, d);
    return [{ dtype: x.dtype, shape: [n, dimExpr((v) => v * b * b, (v) => `${paren(v)}*${b * b}`, c), div(h), div(w)] }];
  },
};

export const schemas = defineOps(transpose, concat, split, slice, gather, gatherElements, expand, tile, pad, depthToSpace, spaceToDepth);
