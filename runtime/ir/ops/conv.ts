import { InvalidArgumentError, ShapeError } from '../../errors.js';
import { attrInt, type Dim } from '../graph.js';
import { dimExpr } from '../shape.js';
import { readTransposeAttrs, readWindowAttrs, transposeOutDim, windowOutDim } from './conv-geometry.js';
import { checkDType, checkSameDType, dimsConflict, requireInput, requireRank } from './math-types.js';
import { defineOps, type InferContext, type OpSchema } from './schema.js';

/** Conv-11 and ConvTranspose-11 (any number of spatial axes; the geometry lives in conv-geometry.ts). */

/** The kernel's spatial size from W when kernel_shape is absent; undefined while W's spatial dims are symbols. */
function kernelFromWeight(w: readonly Dim[] | undefined): number[] | undefined {
  if (!w) return undefined;
  const k = w.slice(2);
  return k.every((d): d is number => typeof d === 'number') ? k : undefined;
}

function checkBias(ctx: InferContext, bShape: readonly Dim[] | undefined, channels: Dim): void {
  if (!bShape) return;
  if (bShape.length !== 1 || dimsConflict(bShape[0]!, channels)) {
    throw new ShapeError(`${ctx.node.op} bias B must have shape [${channels}], got [${bShape.join(', ')}].`);
  }
}

function group(ctx: InferContext): number {
  const g = attrInt(ctx.node, 'group', 1);
  if (!Number.isInteger(g) || g < 1) throw new InvalidArgumentError(`${ctx.node.op} group must be a positive integer, got ${g}.`);
  return g;
}

/** X, W, optional B and group of a Conv or ConvTranspose, with the checks both share (dtypes, ranks ≥ 3). */
function convInputs(ctx: InferContext) {
  const x = requireInput(ctx, 0, 'X');
  const w = requireInput(ctx, 1, 'W');
  const b = ctx.inputs[2];
  checkDType(ctx, 'X', x.dtype, 'float');
  checkSameDType(ctx, x.dtype, w.dtype, 'X and W');
  if (b) checkSameDType(ctx, x.dtype, b.dtype, 'X and B');
  requireRank(ctx, x.shape, 'X', 3);
  requireRank(ctx, w.shape, 'W', 3);
  return { x, w, b, g: group(ctx) };
}

/** Conv-11: X [N, C, D1..Dn], W [M, C/group, k1..kn], B [M] -> Y [N, M, O1..On]. */
const conv: OpSchema = {
  op: 'Conv',
  inputs: [2, 3],
  outputs: [1, 1],
  infer(ctx) {
    const { x, w, b, g } = convInputs(ctx);
    if (x.shape && w.shape && x.shape.length !== w.shape.length) {
      throw new ShapeError(`Conv X [${x.shape.join(', ')}] and W [${w.shape.join(', ')}] must have the same rank.`);
    }
    if (w.shape) {
      const m = w.shape[0]!;
      if (typeof m === 'number' && m % g !== 0) throw new ShapeError(`Conv W has ${m} output channels, not divisible by group ${g}.`);
      checkBias(ctx, b?.shape, m);
    }
    if (x.shape && w.shape) {
      const cw = w.shape[1]!;
      const c = x.shape[1]!;
      if (typeof c === 'number' && typeof cw === 'number' && c !== cw * g) {
        throw new ShapeError(`Conv X has ${c} channels but W expects ${cw} per group x ${g} group(s) = ${cw * g}.`, { x: [...x.shape], w: [...w.shape] });
      }
    }
    if (!x.shape) return [{ dtype: x.dtype }];
    const spatial = x.shape.slice(2);
    const channels = w.shape ? w.shape[0]! : ctx.symbol(`${ctx.node.name}_channels`);
    const kernel = kernelFromWeight(w.shape);
    if (!kernel && !attrsHaveKernel(ctx)) {
      return [{ dtype: x.dtype, shape: [x.shape[0]!, channels, ...spatial.map((_, i) => ctx.symbol(`${ctx.node.name}_d${i + 2}`))] }];
    }
    const attrs = readWindowAttrs(ctx.node, spatial.length, kernel);
    if (kernel && attrs.kernel.some((k, i) => k !== kernel[i])) {
      throw new ShapeError(`Conv kernel_shape [${attrs.kernel.join(', ')}] disagrees with W's spatial shape [${kernel.join(', ')}].`);
    }
    const out = spatial.map((d, i) => windowOutDim(d, attrs, i));
    return [{ dtype: x.dtype, shape: [x.shape[0]!, channels, ...out] }];
  },
};

function attrsHaveKernel(ctx: InferContext): boolean {
  return ctx.node.attrs.kernel_shape !== undefined;
}

/** ConvTranspose-11: X [N, C, D1..Dn], W [C, M/group, k1..kn], B [M] -> Y [N, M, O1..On]. */
const convTranspose: OpSchema = {
  op: 'ConvTranspose',
  inputs: [2, 3],
  outputs: [1, 1],
  infer(ctx) {
    const { x, w, b, g } = convInputs(ctx);
    if (x.shape && w.shape) {
      if (x.shape.length !== w.shape.length) throw new ShapeError(`ConvTranspose X [${x.shape.join(', ')}] and W [${w.shape.join(', ')}] must have the same rank.`);
      if (dimsConflict(x.shape[1]!, w.shape[0]!)) {
        throw new ShapeError(`ConvTranspose X has ${x.shape[1]} channels but W [${w.shape.join(', ')}] expects ${w.shape[0]}.`);
      }
    }
    if (typeof w.shape?.[0] === 'number' && w.shape[0] % g !== 0) throw new ShapeError(`ConvTranspose W has ${w.shape[0]} input channels, not divisible by group ${g}.`);
    const m = w.shape ? dimExpr((c) => c * g, (c) => (g === 1 ? c : `${g}*${c}`), w.shape[1]!) : ctx.symbol(`${ctx.node.name}_channels`);
    checkBias(ctx, b?.shape, m);
    if (!x.shape) return [{ dtype: x.dtype }];
    const spatial = x.shape.slice(2);
    const kernel = kernelFromWeight(w.shape);
    if (!kernel && !attrsHaveKernel(ctx)) {
      return [{ dtype: x.dtype, shape: [x.shape[0]!, m, ...spatial.map((_, i) => ctx.symbol(`${ctx.node.name}_d${i + 2}`))] }];
    }
    const attrs = readTransposeAttrs(ctx.node, spatial.length, kernel ?? []);
    return [{ dtype: x.dtype, shape: [x.shape[0]!, m, ...spatial.map((d, i) => transposeOutDim(d, attrs, i))] }];
  },
};

export const schemas = defineOps(conv, convTranspose);
