import { InvalidArgumentError, ShapeError } from '../../errors.js';
import type { DType } from '../dtype.js';
import { attrInt, type Dim } from '../graph.js';
import { normalizeAxis } from '../shape.js';
import { checkUnidirectional } from './elementwise.js';
import { checkDType, dimsConflict, requireInput, requireRank } from './math-types.js';
import { defineOps, type InferContext, type InferredOutput, type OpSchema } from './schema.js';

/**
 * Normalizations: BatchNormalization-15, InstanceNormalization-6, LayerNormalization-17, GroupNormalization-21,
 * and the per-axis Softmax-13 / LogSoftmax-13 / Hardmax-13.
 */

/** Checks that a per-channel parameter is 1-D with `channels` elements. */
function checkPerChannel(ctx: InferContext, shape: readonly Dim[] | undefined, channels: Dim | undefined, what: string): void {
  if (!shape) return;
  if (shape.length !== 1 || (channels !== undefined && dimsConflict(shape[0]!, channels))) {
    throw new ShapeError(`${ctx.node.op} ${what} must have shape [${channels ?? 'C'}], got [${shape.join(', ')}].`);
  }
}

/** BatchNormalization-15: X [N, C, D1..Dn]; scale, B [C] (T1); input_mean, input_var [C] (T2). */
const batchNorm: OpSchema = {
  op: 'BatchNormalization',
  inputs: [5, 5],
  outputs: [1, 3],
  infer(ctx) {
    const x = requireInput(ctx, 0, 'X');
    const names = ['scale', 'B', 'input_mean', 'input_var'];
    const params = names.map((n, i) => requireInput(ctx, i + 1, n));
    checkDType(ctx, 'X', x.dtype, 'float');
    params.forEach((p, i) => checkDType(ctx, names[i]!, p.dtype, 'float'));
    requireRank(ctx, x.shape, 'X', 2);
    params.forEach((p, i) => checkPerChannel(ctx, p.shape, x.shape?.[1], names[i]!));
    const outs: InferredOutput[] = [{ dtype: x.dtype, shape: x.shape && [...x.shape] }];
    // running_mean / running_var (training_mode=1) have input_mean's type and shape.
    for (let i = 1; i < ctx.node.outputs.length; i++) outs.push({ dtype: params[2]!.dtype, shape: params[2]!.shape && [...params[2]!.shape] });
    return outs;
  },
};

/** InstanceNormalization-6: X [N, C, D1..Dn], scale [C], B [C]. */
const instanceNorm: OpSchema = {
  op: 'InstanceNormalization',
  inputs: [3, 3],
  outputs: [1, 1],
  infer(ctx) {
    const x = requireInput(ctx, 0, 'input');
    const scale = requireInput(ctx, 1, 'scale');
    const b = requireInput(ctx, 2, 'B');
    checkDType(ctx, 'input', x.dtype, 'float');
    requireRank(ctx, x.shape, 'input', 3);
    checkPerChannel(ctx, scale.shape, x.shape?.[1], 'scale');
    checkPerChannel(ctx, b.shape, x.shape?.[1], 'B');
    return [{ dtype: x.dtype, shape: x.shape && [...x.shape] }];
  },
};

/** The element type of LayerNormalization's Mean/InvStdDev outputs: stash_type (a TensorProto data type). */
function stashType(ctx: InferContext): DType {
  const s = attrInt(ctx.node, 'stash_type', 1);
  if (s === 1) return 'float32';
  if (s === 16) return 'bfloat16';
  if (s === 11) return 'float64';
  if (s === 10) return 'float16';
  throw new InvalidArgumentError(`${ctx.node.op} stash_type ${s} is not a floating-point type (1 = float32).`);
}

/**
 * LayerNormalization-17: normalizes over axes [axis, rank); Scale and B broadcast to X's shape.
 * Mean and InvStdDev have X's shape with the normalized axes set to 1.
 */
const layerNorm: OpSchema = {
  op: 'LayerNormalization',
  inputs: [2, 3],
  outputs: [1, 3],
  infer(ctx) {
    const x = requireInput(ctx, 0, 'X');
    const scale = requireInput(ctx, 1, 'Scale');
    const b = ctx.inputs[2];
    checkDType(ctx, 'X', x.dtype, 'float');
    checkDType(ctx, 'Scale', scale.dtype, 'float');
    const u = stashType(ctx);
    let statShape: Dim[] | undefined;
    if (x.shape) {
      requireRank(ctx, x.shape, 'X', 1);
      const axis = normalizeAxis(attrInt(ctx.node, 'axis', -1), x.shape.length, 'LayerNormalization axis');
      checkUnidirectional(ctx, scale.shape, x.shape, 'Scale');
      checkUnidirectional(ctx, b?.shape, x.shape, 'B');
      statShape = x.shape.map((d, i) => (i < axis ? d : 1));
    }
    const outs: InferredOutput[] = [{ dtype: x.dtype, shape: x.shape && [...x.shape] }];
    for (let i = 1; i < ctx.node.outputs.length; i++) outs.push({ dtype: u, shape: statShape && [...statShape] });
    return outs;
  },
};

/** GroupNormalization-21: X [N, C, D1..Dn], scale and bias [C]; channels split into num_groups groups. */
const groupNorm: OpSchema = {
  op: 'GroupNormalization',
  inputs: [3, 3],
  outputs: [1, 1],
  infer(ctx) {
    const x = requireInput(ctx, 0, 'X');
    const scale = requireInput(ctx, 1, 'scale');
    const b = requireInput(ctx, 2, 'bias');
    checkDType(ctx, 'X', x.dtype, 'float');
    requireRank(ctx, x.shape, 'X', 2);
    const groups = attrInt(ctx.node, 'num_groups');
    if (groups === undefined || !Number.isInteger(groups) || groups < 1) {
      throw new InvalidArgumentError('GroupNormalization needs a positive num_groups attribute.');
    }
    const c = x.shape?.[1];
    if (typeof c === 'number' && c % groups !== 0) throw new ShapeError(`GroupNormalization: ${c} channels are not divisible into ${groups} groups.`);
    checkPerChannel(ctx, scale.shape, c, 'scale');
    checkPerChannel(ctx, b.shape, c, 'bias');
    return [{ dtype: x.dtype, shape: x.shape && [...x.shape] }];
  },
};

/** Softmax-13, LogSoftmax-13, Hardmax-13: along one axis (default -1), same shape and type. */
function axisSoftmax(op: string): OpSchema {
  return {
    op,
    inputs: [1, 1],
    outputs: [1, 1],
    infer(ctx) {
      const x = requireInput(ctx, 0, 'input');
      checkDType(ctx, 'input', x.dtype, 'float');
      if (x.shape) {
        // A scalar has no axis; ONNX-13 requires rank >= 1.
        requireRank(ctx, x.shape, 'input', 1);
        normalizeAxis(attrInt(ctx.node, 'axis', -1), x.shape.length, `${op} axis`);
      }
      return [{ dtype: x.dtype, shape: x.shape && [...x.shape] }];
    },
  };
}

export const schemas = defineOps(batchNorm, instanceNorm, layerNorm, groupNorm, axisSoftmax('Softmax'), axisSoftmax('LogSoftmax'), axisSoftmax('Hardmax'));
