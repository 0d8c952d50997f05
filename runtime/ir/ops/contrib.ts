import { DTypeError, InvalidArgumentError, ShapeError } from '../../errors.js';
import { attrInt, type Dim } from '../graph.js';
import { normalizeAxis } from '../shape.js';
import { checkUnidirectional } from './elementwise.js';
import { checkDType, checkSameDType, dimsConflict, requireInput, requireRank } from './math-types.js';
import { defineOps, type InferContext, type InferInput, type InferredOutput, type OpSchema } from './schema.js';

/**
 * Transformer ops of onnxruntime's 'com.microsoft' domain (version 1; semantics from onnxruntime's
 * ContribOperators.md, checked against onnxruntime-node): the GELU family (Gelu, FastGelu, BiasGelu, QuickGelu),
 * BiasAdd, BiasSplitGelu, SkipLayerNormalization, SkipSimplifiedLayerNormalization, SimplifiedLayerNormalization
 * (RMSNorm; onnxruntime registers it in the default domain, the importer maps both) and RotaryEmbedding. The IR
 * names say the domain ('com.microsoft.Gelu'), as 'ai.onnx.preview.training.Adam' does.
 */

export const COM_MICROSOFT = 'com.microsoft';

export const msOp = (op: string): string => `${COM_MICROSOFT}.${op}`;

/** SkipLayerNormalization's epsilon default (onnxruntime kDefaultSkipLayerNormEpsilon). */
export const SKIP_LN_EPSILON = 1e-12;

const same = (x: InferInput): InferredOutput => ({ dtype: x.dtype, shape: x.shape && [...x.shape] });

/** A 1-D tensor of the input's last dim (the bias of FastGelu, BiasGelu, BiasAdd, the gamma/beta of the norms). */
function checkLastDimVector(ctx: InferContext, p: InferInput | undefined, x: InferInput, what: string, size?: Dim): void {
  if (!p) return;
  checkSameDType(ctx, x.dtype, p.dtype, `input and ${what}`);
  const want = size ?? x.shape?.[x.shape.length - 1];
  if (p.shape && (p.shape.length !== 1 || (want !== undefined && dimsConflict(p.shape[0]!, want)))) {
    throw new ShapeError(`${ctx.node.op} ${what} must have shape [${want ?? 'hidden'}], got [${p.shape.join(', ')}].`, { shape: [...p.shape] });
  }
}

/** Gelu and QuickGelu: X -> Y, same shape and type. */
function unary(op: string): OpSchema {
  return {
    op: msOp(op),
    inputs: [1, 1],
    outputs: [1, 1],
    infer(ctx) {
      const x = requireInput(ctx, 0, 'X');
      checkDType(ctx, 'X', x.dtype, 'float');
      return [same(x)];
    },
  };
}

/** FastGelu (X, optional bias [H]) and BiasGelu (A, B [H]): Y has X's shape. */
function biased(op: string, biasRequired: boolean): OpSchema {
  return {
    op: msOp(op),
    inputs: [biasRequired ? 2 : 1, 2],
    outputs: [1, 1],
    infer(ctx) {
      const x = requireInput(ctx, 0, 'X');
      checkDType(ctx, 'X', x.dtype, 'float');
      requireRank(ctx, x.shape, 'X', 1);
      checkLastDimVector(ctx, biasRequired ? requireInput(ctx, 1, 'bias') : ctx.inputs[1], x, 'bias');
      return [same(x)];
    },
  };
}

/** BiasAdd: X [N, S, C] + bias [C] + skip [N, S, C]. */
const biasAdd: OpSchema = {
  op: msOp('BiasAdd'),
  inputs: [3, 3],
  outputs: [1, 1],
  infer(ctx) {
    const x = requireInput(ctx, 0, 'X');
    const skip = requireInput(ctx, 2, 'skip');
    checkDType(ctx, 'X', x.dtype, 'float');
    requireRank(ctx, x.shape, 'X', 3, 3);
    checkLastDimVector(ctx, requireInput(ctx, 1, 'bias'), x, 'bias');
    checkSameDType(ctx, x.dtype, skip.dtype, 'X and skip');
    if (x.shape && skip.shape && (skip.shape.length !== 3 || skip.shape.some((d, i) => dimsConflict(d, x.shape![i]!)))) {
      throw new ShapeError(`${ctx.node.op} skip must have X's shape [${x.shape.join(', ')}], got [${skip.shape.join(', ')}].`);
    }
    return [same(x)];
  },
};

/** BiasSplitGelu: X [N, S, D] + bias [D], split in halves along D: Y [N, S, D/2] = left * Gelu(right). */
const biasSplitGelu: OpSchema = {
  op: msOp('BiasSplitGelu'),
  inputs: [2, 2],
  outputs: [1, 1],
  infer(ctx) {
    const x = requireInput(ctx, 0, 'X');
    checkDType(ctx, 'X', x.dtype, 'float');
    requireRank(ctx, x.shape, 'X', 3, 3);
    checkLastDimVector(ctx, requireInput(ctx, 1, 'bias'), x, 'bias');
    if (!x.shape) return [{ dtype: x.dtype }];
    const d = x.shape[2]!;
    if (typeof d === 'number' && d % 2 !== 0) throw new ShapeError(`${ctx.node.op} needs an even last dim to split in halves, got ${d}.`);
    return [{ dtype: x.dtype, shape: [x.shape[0]!, x.shape[1]!, typeof d === 'number' ? d / 2 : ctx.symbol(`${d}_half`)] }];
  },
};

/**
 * Skip must equal X's trailing dims after dropping its leading 1s (onnxruntime: [B, S, H], [1, S, H] or [S, H]),
 * so element i of X adds skip element i % size(skip).
 */
export function checkSkip(ctx: InferContext, x: InferInput, skip: InferInput): void {
  checkSameDType(ctx, x.dtype, skip.dtype, 'input and skip');
  requireRank(ctx, skip.shape, 'skip', 2, 3);
  if (!x.shape || !skip.shape) return;
  const first = skip.shape.findIndex((d) => d !== 1);
  const core = first < 0 ? [] : skip.shape.slice(first);
  const ok = skip.shape.length <= x.shape.length && core.every((d, i) => !dimsConflict(d, x.shape![x.shape!.length - core.length + i]!));
  if (!ok) throw new ShapeError(`${ctx.node.op} skip of shape [${skip.shape.join(', ')}] must match the trailing dims of input [${x.shape.join(', ')}].`);
}

/**
 * SkipLayerNormalization (input, skip, gamma, beta?, bias?) and SkipSimplifiedLayerNormalization (input, skip,
 * gamma, bias?): input [.., H] (rank 2 or 3). Outputs: output (input's shape), mean and inv_std_var (float32,
 * input's shape with H set to 1), input_skip_bias_sum (input's shape).
 */
function skipNorm(simplified: boolean): OpSchema {
  const op = simplified ? 'SkipSimplifiedLayerNormalization' : 'SkipLayerNormalization';
  return {
    op: msOp(op),
    inputs: [3, simplified ? 4 : 5],
    outputs: [1, 4],
    infer(ctx) {
      const x = requireInput(ctx, 0, 'input');
      checkDType(ctx, 'input', x.dtype, 'float');
      requireRank(ctx, x.shape, 'input', 2, 3);
      checkSkip(ctx, x, requireInput(ctx, 1, 'skip'));
      checkLastDimVector(ctx, requireInput(ctx, 2, 'gamma'), x, 'gamma');
      if (!simplified) checkLastDimVector(ctx, ctx.inputs[3], x, 'beta');
      checkLastDimVector(ctx, ctx.inputs[simplified ? 3 : 4], x, 'bias');
      const stat = x.shape && x.shape.map((d, i) => (i === x.shape!.length - 1 ? 1 : d));
      const outs: InferredOutput[] = [same(x)];
      for (let i = 1; i < ctx.node.outputs.length; i++) outs.push(i === 3 ? same(x) : { dtype: 'float32', shape: stat && [...stat] });
      return outs;
    },
  };
}

/**
 * SimplifiedLayerNormalization (RMSNorm over axes [axis, rank)): X, scale (broadcast to X). Outputs Y and
 * inv_std_var (stash_type, X's shape with the normalized axes set to 1).
 */
const simplifiedLayerNorm: OpSchema = {
  op: msOp('SimplifiedLayerNormalization'),
  inputs: [2, 2],
  outputs: [1, 2],
  infer(ctx) {
    const x = requireInput(ctx, 0, 'X');
    const scale = requireInput(ctx, 1, 'scale');
    checkDType(ctx, 'X', x.dtype, 'float');
    checkDType(ctx, 'scale', scale.dtype, 'float');
    const stash = attrInt(ctx.node, 'stash_type', 1);
    if (stash !== 1) throw new InvalidArgumentError(`${ctx.node.op} stash_type ${stash} is not supported (1 = float32, the only type onnxruntime computes in).`);
    let stat: Dim[] | undefined;
    if (x.shape) {
      requireRank(ctx, x.shape, 'X', 1);
      const axis = normalizeAxis(attrInt(ctx.node, 'axis', -1), x.shape.length, `${ctx.node.op} axis`);
      checkUnidirectional(ctx, scale.shape, x.shape, 'scale');
      stat = x.shape.map((d, i) => (i < axis ? d : 1));
    }
    const outs: InferredOutput[] = [same(x)];
    if (ctx.node.outputs.length > 1) outs.push({ dtype: 'float32', shape: stat });
    return outs;
  },
};

/**
 * RotaryEmbedding: input [B, S, N*H] or [B, N, S, H]; position_ids (int64) [1] or [] (start offset: position
 * = p + s) or [B, S]; cos_cache, sin_cache [max_position, rotary_dim / 2]. Output has input's shape.
 */
const rotary: OpSchema = {
  op: msOp('RotaryEmbedding'),
  inputs: [4, 4],
  outputs: [1, 1],
  infer(ctx) {
    const x = requireInput(ctx, 0, 'input');
    const pos = requireInput(ctx, 1, 'position_ids');
    const cos = requireInput(ctx, 2, 'cos_cache');
    const sin = requireInput(ctx, 3, 'sin_cache');
    checkDType(ctx, 'input', x.dtype, 'float');
    checkSameDType(ctx, x.dtype, cos.dtype, 'input and cos_cache');
    checkSameDType(ctx, x.dtype, sin.dtype, 'input and sin_cache');
    if (pos.dtype !== 'int64') throw new DTypeError(`${ctx.node.op} position_ids must be int64, got ${pos.dtype}.`, { dtype: pos.dtype });
    requireRank(ctx, x.shape, 'input', 3, 4);
    requireRank(ctx, cos.shape, 'cos_cache', 2, 2);
    requireRank(ctx, sin.shape, 'sin_cache', 2, 2);
    if (cos.shape && sin.shape && cos.shape.some((d, i) => dimsConflict(d, sin.shape![i]!))) {
      throw new ShapeError(`${ctx.node.op} cos_cache and sin_cache must have one shape, got [${cos.shape.join(', ')}] and [${sin.shape.join(', ')}].`);
    }
    if (pos.shape && pos.shape.length === 2 && x.shape) {
      const seq = x.shape.length === 4 ? x.shape[2]! : x.shape[1]!;
      if (dimsConflict(pos.shape[0]!, x.shape[0]!) || dimsConflict(pos.shape[1]!, seq)) {
        throw new ShapeError(`${ctx.node.op} position_ids must be [batch, sequence] = [${x.shape[0]}, ${seq}], got [${pos.shape.join(', ')}].`);
      }
    } else if (pos.shape && pos.shape.length > 1) {
      throw new ShapeError(`${ctx.node.op} position_ids must be [1], a scalar or [batch, sequence], got [${pos.shape.join(', ')}].`);
    } else if (pos.shape?.length === 1 && dimsConflict(pos.shape[0]!, 1)) {
      throw new ShapeError(`${ctx.node.op} 1-D position_ids must hold one start offset, got [${pos.shape.join(', ')}].`);
    }
    const numHeads = attrInt(ctx.node, 'num_heads', 0);
    const rotaryDim = attrInt(ctx.node, 'rotary_embedding_dim', 0);
    if (rotaryDim > 0 && numHeads <= 0) throw new InvalidArgumentError(`${ctx.node.op} needs num_heads when rotary_embedding_dim is set.`);
    if (x.shape && cos.shape) rotaryGeometry(ctx.node.op, x.shape, cos.shape, numHeads, rotaryDim);
    return [same(x)];
  },
};

export interface RotaryGeometry {
  heads: number;
  headSize: number;
  rotaryDim: number;
}

/**
 * Heads, head size and rotated width (onnxruntime rotary_embedding_helper): without rotary_embedding_dim the head
 * size is 2 * the cache width and every element rotates; with it, head size = hidden / num_heads. The cache width
 * must be rotary_dim / 2 (onnxruntime also admits head_size / 2 there but then indexes rows with the wrong
 * stride). Checks only what the known dims decide.
 */
export function rotaryGeometry(op: string, x: readonly Dim[], cache: readonly Dim[], numHeads: number, rotaryDim: number): RotaryGeometry | undefined {
  const hidden = x.length === 4 ? (typeof x[1] === 'number' && typeof x[3] === 'number' ? x[1] * x[3] : undefined) : x[2];
  const half = cache[1];
  if (typeof hidden !== 'number' || typeof half !== 'number') return undefined;
  const headSize = rotaryDim === 0 ? half * 2 : hidden / numHeads;
  const rot = rotaryDim === 0 ? headSize : rotaryDim;
  const heads = numHeads > 0 ? numHeads : hidden / headSize;
  const bad = (why: string) => new ShapeError(`${op}: ${why} (input [${x.join(', ')}], cache [${cache.join(', ')}], num_heads ${numHeads}, rotary_embedding_dim ${rotaryDim}).`);
  if (!Number.isInteger(headSize) || !Number.isInteger(heads) || heads * headSize !== hidden) throw bad('the hidden size does not split into heads');
  if (x.length === 4 && (x[1] !== heads || x[3] !== headSize)) throw bad('a 4-D input must be [batch, num_heads, sequence, head_size]');
  if (rot > headSize || rot % 2 !== 0) throw bad('rotary_embedding_dim must be even and at most the head size');
  if (half * 2 !== rot) throw bad('the cache width must be rotary_embedding_dim / 2');
  return { heads, headSize, rotaryDim: rot };
}

export const schemas = defineOps(
  unary('Gelu'),
  unary('QuickGelu'),
  biased('FastGelu', false),
  biased('BiasGelu', true),
  biasAdd,
  biasSplitGelu,
  skipNorm(false),
  skipNorm(true),
  simplifiedLayerNorm,
  rotary,
);
