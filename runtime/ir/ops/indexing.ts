import { DTypeError, InvalidArgumentError, ShapeError } from '../../errors.js';
import { toNumbers, type DType } from '../dtype.js';
import { attrInt, attrString, type Dim, type Node } from '../graph.js';
import { normalizeAxis } from '../shape.js';
import type { HostTensor } from '../tensor.js';
import { castTarget } from './data-onnx-types.js';
import { dataInput, intParam } from './data-dims.js';
import { inTypeClass } from './math-types.js';
import { defineOps, type InferContext, type OpSchema } from './schema.js';

/**
 * Index-driven ops (ONNX opset 18–21 forms): GatherND, ScatterND, ScatterElements, OneHot, EyeLike, Trilu.
 * Scatters return data's shape; GatherND and OneHot build their shape from the indices'. The deprecated Scatter-9
 * is rewritten to ScatterElements by the importer.
 */

const INDEX_TYPES = ['int32', 'int64'] as const;

export const SCATTER_REDUCTIONS = ['none', 'add', 'mul', 'max', 'min'] as const;
export type ScatterReduction = (typeof SCATTER_REDUCTIONS)[number];

/** ScatterND-18 / ScatterElements-18 `reduction`. */
export function scatterReduction(node: Node): ScatterReduction {
  const r = attrString(node, 'reduction', 'none');
  if (!(SCATTER_REDUCTIONS as readonly string[]).includes(r)) {
    throw new InvalidArgumentError(`${node.op} reduction '${r}' is not one of ${SCATTER_REDUCTIONS.join(', ')}.`);
  }
  return r as ScatterReduction;
}

function indexDType(ctx: InferContext, d: string, what = 'indices'): void {
  if (!INDEX_TYPES.includes(d as 'int64')) throw new DTypeError(`${ctx.node.op} ${what} must be int32 or int64, got ${d}.`);
}

const known = (d: Dim | undefined): d is number => typeof d === 'number';

/**
 * GatherND-13: indices [..., K] address the first K dims after `batch_dims`; the output is
 * indices.shape[:-1] + data.shape[batch_dims + K:].
 */
export function gatherNdBatchDims(node: Node, r: number, q: number): number {
  const b = attrInt(node, 'batch_dims', 0);
  if (!Number.isInteger(b) || b < 0 || b >= Math.min(r, q)) {
    throw new ShapeError(`${node.op} batch_dims=${b} must be in [0, min(data rank ${r}, indices rank ${q})).`);
  }
  return b;
}

const gatherNd: OpSchema = {
  op: 'GatherND',
  inputs: [2, 2],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'data');
    const idx = dataInput(ctx, 1, 'indices');
    indexDType(ctx, idx.dtype);
    if (!x.shape || !idx.shape) return [{ dtype: x.dtype }];
    const r = x.shape.length;
    const q = idx.shape.length;
    if (r < 1 || q < 1) throw new ShapeError(`GatherND data and indices must have rank 1 or more, got ${r} and ${q}.`);
    const b = gatherNdBatchDims(ctx.node, r, q);
    const k = idx.shape[q - 1];
    if (!known(k)) return [{ dtype: x.dtype }];
    if (k < 1 || k > r - b) throw new ShapeError(`GatherND indices' last dim ${k} must be in [1, ${r - b}] (data rank ${r}, batch_dims ${b}).`);
    for (let i = 0; i < b; i++) {
      const [a, c] = [x.shape[i], idx.shape[i]];
      if (known(a) && known(c) && a !== c) throw new ShapeError(`GatherND batch dim ${i} differs: data ${a}, indices ${c}.`);
    }
    return [{ dtype: x.dtype, shape: [...idx.shape.slice(0, q - 1), ...x.shape.slice(b + k)] }];
  },
};

/** ScatterND-18: updates has shape indices.shape[:-1] + data.shape[K:]. */
const scatterNd: OpSchema = {
  op: 'ScatterND',
  inputs: [3, 3],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'data');
    const idx = dataInput(ctx, 1, 'indices');
    const upd = dataInput(ctx, 2, 'updates');
    if (idx.dtype !== 'int64') throw new DTypeError(`ScatterND indices must be int64, got ${idx.dtype}.`);
    if (upd.dtype !== x.dtype) throw new DTypeError(`ScatterND updates are ${upd.dtype} but data is ${x.dtype}.`);
    scatterReduction(ctx.node);
    if (x.shape && idx.shape && upd.shape) {
      const q = idx.shape.length;
      const k = idx.shape[q - 1];
      if (q < 1 || x.shape.length < 1) throw new ShapeError('ScatterND data and indices must have rank 1 or more.');
      if (known(k)) {
        if (k > x.shape.length) throw new ShapeError(`ScatterND indices' last dim ${k} exceeds the data rank ${x.shape.length}.`);
        const want = [...idx.shape.slice(0, q - 1), ...x.shape.slice(k)];
        const ok = want.length === upd.shape.length && want.every((d, i) => !known(d) || !known(upd.shape![i]) || d === upd.shape![i]);
        if (!ok) throw new ShapeError(`ScatterND updates must have shape [${want.join(', ')}], got [${upd.shape.join(', ')}].`);
      }
    }
    return [{ dtype: x.dtype, shape: x.shape && [...x.shape] }];
  },
};

/** ScatterElements-18: indices and updates share one shape and data's rank. */
const scatterElements: OpSchema = {
  op: 'ScatterElements',
  inputs: [3, 3],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'data');
    const idx = dataInput(ctx, 1, 'indices');
    const upd = dataInput(ctx, 2, 'updates');
    indexDType(ctx, idx.dtype);
    if (upd.dtype !== x.dtype) throw new DTypeError(`ScatterElements updates are ${upd.dtype} but data is ${x.dtype}.`);
    scatterReduction(ctx.node);
    if (x.shape) {
      if (x.shape.length < 1) throw new ShapeError('ScatterElements data must have rank 1 or more.');
      normalizeAxis(attrInt(ctx.node, 'axis', 0), x.shape.length, 'ScatterElements axis');
      for (const s of [idx.shape, upd.shape]) {
        if (s && s.length !== x.shape.length) throw new ShapeError(`ScatterElements indices/updates [${s.join(', ')}] must have data's rank ${x.shape.length}.`);
      }
    }
    if (idx.shape && upd.shape && idx.shape.some((d, i) => known(d) && known(upd.shape![i]) && d !== upd.shape![i])) {
      throw new ShapeError(`ScatterElements indices [${idx.shape.join(', ')}] and updates [${upd.shape.join(', ')}] must share one shape.`);
    }
    return [{ dtype: x.dtype, shape: x.shape && [...x.shape] }];
  },
};

/** OneHot-11: depth is inserted at `axis` (in [-r-1, r]); the output takes values' type. */
export function oneHotAxis(node: Node, rank: number): number {
  return normalizeAxis(attrInt(node, 'axis', -1), rank + 1, 'OneHot axis');
}

const oneHot: OpSchema = {
  op: 'OneHot',
  inputs: [3, 3],
  outputs: [1, 1],
  infer(ctx) {
    const idx = dataInput(ctx, 0, 'indices');
    const depth = dataInput(ctx, 1, 'depth');
    const values = dataInput(ctx, 2, 'values');
    if (!inTypeClass(idx.dtype, 'numeric')) throw new DTypeError(`OneHot indices must be numeric, got ${idx.dtype}.`);
    if (!inTypeClass(depth.dtype, 'numeric')) throw new DTypeError(`OneHot depth must be numeric, got ${depth.dtype}.`);
    if (depth.shape && !(depth.shape.length === 0 || (depth.shape.length === 1 && depth.shape[0] === 1))) {
      throw new ShapeError(`OneHot depth must be a scalar or a 1-element tensor, got [${depth.shape.join(', ')}].`);
    }
    if (values.shape && !(values.shape.length === 1 && (values.shape[0] === 2 || !known(values.shape[0])))) {
      throw new ShapeError(`OneHot values must be [off_value, on_value], got shape [${values.shape.join(', ')}].`);
    }
    if (!idx.shape) return [{ dtype: values.dtype }];
    const axis = oneHotAxis(ctx.node, idx.shape.length);
    const d = depth.value ? oneHotDepthValue(depth.value) : undefined;
    const out = [...idx.shape];
    out.splice(axis, 0, d ?? ctx.symbol(`${ctx.node.name}_depth`));
    return [{ dtype: values.dtype, shape: out }];
  },
};

/** OneHot depth when constant: the spec casts it to an integer (a float depth truncates); it must be positive. */
export function oneHotDepthValue(t: HostTensor): number {
  const d = Math.trunc(toNumbers(t.dtype, t.data)[0] ?? NaN);
  if (!Number.isInteger(d) || d < 1) throw new InvalidArgumentError(`OneHot depth must be a positive integer, got ${d}.`);
  return d;
}

/** EyeLike-9: a 2-D tensor of input's shape, ones on diagonal k; `dtype` (an ONNX DataType code) or the input's type. */
export function eyeLikeDType(node: Node, inputDType: DType): DType {
  return node.attrs['dtype'] ? castTarget({ ...node, attrs: { to: node.attrs['dtype'] } }) : inputDType;
}

const eyeLike: OpSchema = {
  op: 'EyeLike',
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'input');
    const dtype = eyeLikeDType(ctx.node, x.dtype);
    if (dtype === 'string') throw new DTypeError('EyeLike cannot produce strings.');
    if (x.shape && x.shape.length !== 2) throw new ShapeError(`EyeLike needs a 2-D input, got [${x.shape.join(', ')}].`);
    return [{ dtype, shape: x.shape ? [...x.shape] : [ctx.symbol(`${ctx.node.name}_rows`), ctx.symbol(`${ctx.node.name}_cols`)] }];
  },
};

/** Trilu-14: keeps the upper (upper=1) or lower triangle of the last two dims, offset by the optional k input. */
const trilu: OpSchema = {
  op: 'Trilu',
  inputs: [1, 2],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'input');
    const k = ctx.inputs[1];
    intParam(ctx, k, 'k', ['int64'], true);
    if (k?.shape && k.shape.length === 1 && known(k.shape[0]) && k.shape[0] !== 1) throw new ShapeError('Trilu k must hold one value.');
    if (x.shape && x.shape.length < 2) throw new ShapeError(`Trilu needs rank 2 or more, got [${x.shape.join(', ')}].`);
    return [{ dtype: x.dtype, shape: x.shape && [...x.shape] }];
  },
};

export const schemas = defineOps(gatherNd, scatterNd, scatterElements, oneHot, eyeLike, trilu);
