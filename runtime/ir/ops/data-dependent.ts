import { DTypeError, ShapeError } from '../../errors.js';
import { toNumbers } from '../dtype.js';
import { attrInt, type Dim } from '../graph.js';
import { normalizeAxis } from '../shape.js';
import type { HostTensor } from '../tensor.js';
import { dataInput } from './data-dims.js';
import { defineOps, type InferContext, type OpSchema } from './schema.js';

/**
 * Ops whose output SIZE depends on their input's data: NonZero-13 and Compress-11. Shape inference gives the
 * count as a symbol unless the data is constant.
 *
 * Each takes one more input than ONNX gives it, which only EdgeKit's WebGPU lowering adds (never an imported or
 * exported model): `count`, an int64 scalar holding the number of selected elements, computed on the GPU by a
 * reduction and read back at a stage boundary (backends/webgpu/lower-counts.ts, staged-plan.ts). With it
 * constant the output shape is concrete and the kernel can be planned. The CPU reference checks it when given.
 */

/** The count input's value, when the lowering gave one and it is known. */
function givenCount(ctx: InferContext, i: number): number | undefined {
  const c = ctx.inputs[i];
  if (!c) return undefined;
  if (c.dtype !== 'int64') throw new DTypeError(`${ctx.node.op} count must be int64, got ${c.dtype}.`, { dtype: c.dtype });
  return c.value ? Number(toNumbers(c.value.dtype, c.value.data)[0]) : undefined;
}

/** How many elements of `t` are non-zero (NaN counts: it is not zero). */
export function countNonZero(t: HostTensor, limit = t.data.length): number {
  const v = toNumbers(t.dtype, t.data);
  let n = 0;
  for (let i = 0; i < limit; i++) if (v[i] !== 0) n++;
  return n;
}

const nonZero: OpSchema = {
  op: 'NonZero',
  inputs: [1, 2],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'X');
    if (x.dtype === 'string') throw new DTypeError('NonZero does not take string tensors.', { dtype: x.dtype });
    const count: Dim = givenCount(ctx, 1) ?? (x.value ? countNonZero(x.value) : ctx.symbol(`${ctx.node.name}_count`));
    return [{ dtype: 'int64', shape: x.shape ? [x.shape.length, count] : undefined }];
  },
};

/** Compress's axis (normalized), or undefined for the flattened input. */
export function compressAxis(node: InferContext['node'], rank: number): number | undefined {
  const a = node.attrs.axis;
  return a === undefined ? undefined : normalizeAxis(attrInt(node, 'axis', 0), rank);
}

const compress: OpSchema = {
  op: 'Compress',
  inputs: [2, 3],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'input');
    const cond = dataInput(ctx, 1, 'condition');
    if (cond.dtype !== 'bool') throw new DTypeError(`Compress condition must be bool, got ${cond.dtype}.`, { dtype: cond.dtype });
    if (cond.shape && cond.shape.length !== 1) throw new ShapeError(`Compress condition must be 1-D, got shape [${cond.shape.join(', ')}].`);
    if (!x.shape) return [{ dtype: x.dtype }];
    const axis = compressAxis(ctx.node, x.shape.length);
    const along: Dim = axis === undefined ? x.shape.reduce<Dim>((a, d) => (typeof a === 'number' && typeof d === 'number' ? a * d : `${a}*${d}`), 1) : x.shape[axis]!;
    const len = cond.shape?.[0];
    if (typeof len === 'number' && typeof along === 'number' && len > along) {
      throw new ShapeError(`Compress condition has ${len} entries but the input has ${along} ${axis === undefined ? 'elements' : `along axis ${axis}`}.`);
    }
    const count: Dim = givenCount(ctx, 2) ?? (cond.value ? countNonZero(cond.value) : ctx.symbol(`${ctx.node.name}_count`));
    return [{ dtype: x.dtype, shape: axis === undefined ? [count] : x.shape.map((d, i) => (i === axis ? count : d)) }];
  },
};

export const schemas = defineOps(nonZero, compress);
