import { DTypeError, InvalidArgumentError, ShapeError } from '../../errors.js';
import { attrFloat, attrInt, type Dim, type Node } from '../graph.js';
import { checkDType, checkSameDType, dimsConflict, requireInput, requireRank } from './math-types.js';
import { defineOps, type InferContext, type InferInput, type InferredOutput, type OpSchema } from './schema.js';

/**
 * Attention (ONNX opset 23): softmax(softcap(Q K^T * scale) + bias) V per head, where bias comes from attn_mask
 * (bool: false masks out; float: added) and is_causal. It is the one IR attention op: opset-23 nodes import as
 * they are, the com.microsoft attention ops import as it plus plain ops around it (importers/onnx/ops/attention.ts),
 * and the WebGPU backend rewrites the torch.onnx chain MatMul -> scale -> mask -> Softmax -> MatMul into it
 * (backends/webgpu/fuse-attention.ts). One fused kernel then serves all of them (docs/attention.md).
 *
 * Inputs: Q [B, Hq, Sq, D] or [B, Sq, Hq*D]; K [B, Hkv, Skv, D] or [B, Skv, Hkv*D]; V [B, Hkv, Skv, Dv] or
 * [B, Skv, Hkv*Dv]; attn_mask broadcastable to [B, Hq, Sq, T]; past_key [B, Hkv, P, D]; past_value
 * [B, Hkv, P, Dv]; T = P + Skv. Outputs: Y (Q's rank: [B, Hq, Sq, Dv] or [B, Sq, Hq*Dv]), present_key
 * [B, Hkv, T, D], present_value [B, Hkv, T, Dv] (= concat(past, new) along T), qk_matmul_output [B, Hq, Sq, T].
 *
 * Semantics pinned by onnxruntime-node (which disagrees with the spec text in two places; we follow the runtime
 * users compare against, and say so):
 * - the order is scale, softcap, mask, softmax (the spec lists the mask before the softcap, which would turn a
 *   masked -inf into -softcap and let masked keys through);
 * - is_causal lets query i see key j when j <= i + P: top-left aligned without a past, offset by the past length;
 * - a query row whose keys are all masked out yields zeros, not NaN;
 * - qk_matmul_output_mode 1 and 2 are swapped in onnxruntime relative to the spec, so only 0 (the scaled Q K^T)
 *   and 3 (the softmax) are accepted; 1 and 2 are refused with an InvalidArgumentError.
 * GQA/MQA: query head h reads key/value head floor(h / (Hq / Hkv)).
 *
 * Nodes made by the WebGPU attention fusion may carry one attribute ONNX does not have, mask_fill (float): a false
 * bool-mask entry then sets the score to that value instead of excluding the key, as the Where(mask, S, fill) the
 * node replaces did. The CPU reference honours it too; the importer never produces it.
 */

export interface AttentionGeometry {
  batch: number;
  qHeads: number;
  kvHeads: number;
  qSeq: number;
  kvSeq: number;
  past: number;
  total: number;
  headSize: number;
  vHeadSize: number;
  /** Q, K, V (and Y) are [B, S, H*D] rather than [B, H, S, D]. */
  packed: boolean;
}

interface DimGeometry {
  batch: Dim;
  qHeads: Dim;
  kvHeads: Dim;
  qSeq: Dim;
  kvSeq: Dim;
  past: Dim;
  headSize: Dim;
  vHeadSize: Dim;
}

const div = (a: Dim, b: Dim | undefined, hint: string, ctx?: InferContext): Dim =>
  typeof a === 'number' && typeof b === 'number' ? a / b : ctx ? ctx.symbol(hint) : NaN;

/** Heads and sizes from the shapes and attributes; throws ShapeError for what the known dims rule out. */
function geometry(op: string, node: Node, q: readonly Dim[], k: readonly Dim[], v: readonly Dim[], past: readonly Dim[] | undefined, ctx?: InferContext): DimGeometry {
  const bad = (why: string) => new ShapeError(`${op} (node '${node.name}'): ${why} (Q [${q.join(', ')}], K [${k.join(', ')}], V [${v.join(', ')}]).`);
  if (q.length !== k.length || q.length !== v.length) throw bad('Q, K and V must all be 3-D or all 4-D');
  let g: DimGeometry;
  if (q.length === 4) {
    g = { batch: q[0]!, qHeads: q[1]!, kvHeads: k[1]!, qSeq: q[2]!, kvSeq: k[2]!, past: 0, headSize: q[3]!, vHeadSize: v[3]! };
    if (dimsConflict(k[3]!, q[3]!)) throw bad('K must have the head size of Q');
    if (dimsConflict(v[1]!, k[1]!)) throw bad('V must have the head count of K');
  } else {
    const qHeads = attrInt(node, 'q_num_heads', 0);
    const kvHeads = attrInt(node, 'kv_num_heads', 0);
    if (qHeads <= 0 || kvHeads <= 0) throw new InvalidArgumentError(`${op} (node '${node.name}') with 3-D inputs needs positive q_num_heads and kv_num_heads attributes.`);
    const headSize = div(q[2]!, qHeads, 'head_size', ctx);
    const kHead = div(k[2]!, kvHeads, 'head_size', ctx);
    const vHeadSize = div(v[2]!, kvHeads, 'v_head_size', ctx);
    for (const [d, what] of [[headSize, 'Q'], [kHead, 'K'], [vHeadSize, 'V']] as const) {
      if (typeof d === 'number' && !Number.isInteger(d)) throw bad(`the hidden size of ${what} does not split into its heads`);
    }
    if (dimsConflict(kHead, headSize)) throw bad('K must have the head size of Q');
    g = { batch: q[0]!, qHeads, kvHeads, qSeq: q[1]!, kvSeq: k[1]!, past: 0, headSize, vHeadSize };
  }
  if (dimsConflict(k[0]!, g.batch) || dimsConflict(v[0]!, g.batch)) throw bad('Q, K and V must have one batch size');
  if (dimsConflict(v[q.length === 4 ? 2 : 1]!, g.kvSeq)) throw bad('K and V must have one sequence length');
  if (typeof g.qHeads === 'number' && typeof g.kvHeads === 'number' && (g.kvHeads <= 0 || g.qHeads % g.kvHeads !== 0)) {
    throw bad(`the query head count ${g.qHeads} must be a multiple of the key/value head count ${g.kvHeads}`);
  }
  if (past) g.past = past[2]!;
  return g;
}

const sum = (a: Dim, b: Dim, ctx: InferContext | undefined): Dim => (typeof a === 'number' && typeof b === 'number' ? a + b : ctx ? ctx.symbol('total_sequence_length') : NaN);

/** Concrete geometry for kernels (every shape known). */
export function attentionGeometry(node: Node, q: readonly number[], k: readonly number[], v: readonly number[], pastKey?: readonly number[]): AttentionGeometry {
  const g = geometry(node.op, node, q, k, v, pastKey) as { [K in keyof DimGeometry]: number };
  return { ...g, total: g.past + g.kvSeq, packed: q.length === 3 };
}

/** The scale: the attribute, else 1 / sqrt(head size). */
export function attentionScale(node: Node, headSize: number): number {
  return attrFloat(node, 'scale', 1 / Math.sqrt(headSize));
}

/** qk_matmul_output_mode, refused where onnxruntime and the spec disagree (see the opening comment). */
export function qkOutputMode(node: Node): 0 | 3 {
  const mode = attrInt(node, 'qk_matmul_output_mode', 0);
  if (mode === 0 || mode === 3) return mode;
  throw new InvalidArgumentError(
    `${node.op} (node '${node.name}') qk_matmul_output_mode ${mode} is not supported: the ONNX spec and onnxruntime disagree on what modes 1 and 2 hold; use 0 (scaled Q K^T) or 3 (softmax).`,
  );
}

/** attn_mask must broadcast (numpy rules, from the right) to [B, Hq, Sq, T]. */
function checkMask(ctx: InferContext, mask: InferInput, target: Dim[]): void {
  if (mask.dtype !== 'bool') checkSameDType(ctx, mask.dtype, ctx.inputs[0]!.dtype, 'Q and a float attn_mask');
  const s = mask.shape;
  if (!s) return;
  requireRank(ctx, s, 'attn_mask', 2, 4);
  s.forEach((d, i) => {
    const t = target[target.length - s.length + i]!;
    if (d !== 1 && dimsConflict(d, t)) {
      throw new ShapeError(`${ctx.node.op} attn_mask of shape [${s.join(', ')}] does not broadcast to [${target.join(', ')}] (batch, q heads, q sequence, total sequence).`);
    }
  });
}

const attention: OpSchema = {
  op: 'Attention',
  inputs: [3, 6],
  outputs: [1, 4],
  infer(ctx) {
    const q = requireInput(ctx, 0, 'Q');
    const k = requireInput(ctx, 1, 'K');
    const v = requireInput(ctx, 2, 'V');
    const [mask, pastKey, pastValue] = [ctx.inputs[3], ctx.inputs[4], ctx.inputs[5]];
    checkDType(ctx, 'Q', q.dtype, 'float');
    checkSameDType(ctx, q.dtype, k.dtype, 'Q and K');
    checkSameDType(ctx, q.dtype, v.dtype, 'Q and V');
    if (!!pastKey !== !!pastValue) throw new InvalidArgumentError(`${ctx.node.op} needs past_key and past_value together.`);
    if (mask && mask.dtype !== 'bool' && !mask.dtype.startsWith('float')) {
      throw new DTypeError(`${ctx.node.op} attn_mask must be bool or Q's float type, got ${mask.dtype}.`, { dtype: mask.dtype });
    }
    for (const [p, what] of [[pastKey, 'past_key'], [pastValue, 'past_value']] as const) {
      if (!p) continue;
      checkSameDType(ctx, q.dtype, p.dtype, `Q and ${what}`);
      requireRank(ctx, p.shape, what, 4, 4);
    }
    requireRank(ctx, q.shape, 'Q', 3, 4);
    requireRank(ctx, k.shape, 'K', 3, 4);
    requireRank(ctx, v.shape, 'V', 3, 4);
    const nOut = ctx.node.outputs.length;
    if (nOut > 3 && ctx.node.outputs[3]) qkOutputMode(ctx.node);
    if (!q.shape || !k.shape || !v.shape || (pastKey && (!pastKey.shape || !pastValue!.shape))) {
      return Array.from({ length: nOut }, () => ({ dtype: q.dtype }));
    }
    const g = geometry(ctx.node.op, ctx.node, q.shape, k.shape, v.shape, pastKey?.shape, ctx);
    if (pastKey) {
      const pk = pastKey.shape!;
      const pv = pastValue!.shape!;
      const want = [g.batch, g.kvHeads, g.past, g.headSize];
      const wantV = [g.batch, g.kvHeads, g.past, g.vHeadSize];
      if (pk.some((d, i) => dimsConflict(d, want[i]!)) || pv.some((d, i) => dimsConflict(d, wantV[i]!))) {
        throw new ShapeError(`${ctx.node.op} past_key [${pk.join(', ')}] and past_value [${pv.join(', ')}] must be [batch, kv heads, past, head size] = [${want.join(', ')}] and [${wantV.join(', ')}].`);
      }
    }
    const total = pastKey ? sum(g.past, g.kvSeq, ctx) : g.kvSeq;
    if (mask) checkMask(ctx, mask, [g.batch, g.qHeads, g.qSeq, total]);
    const vHidden = typeof g.qHeads === 'number' && typeof g.vHeadSize === 'number' ? g.qHeads * g.vHeadSize : ctx.symbol('v_hidden');
    const y: Dim[] = q.shape.length === 4 ? [g.batch, g.qHeads, g.qSeq, g.vHeadSize] : [g.batch, g.qSeq, vHidden];
    const outs: InferredOutput[] = [{ dtype: q.dtype, shape: y }];
    if (nOut > 1) outs.push({ dtype: q.dtype, shape: [g.batch, g.kvHeads, total, g.headSize] });
    if (nOut > 2) outs.push({ dtype: q.dtype, shape: [g.batch, g.kvHeads, total, g.vHeadSize] });
    if (nOut > 3) outs.push({ dtype: q.dtype, shape: [g.batch, g.qHeads, g.qSeq, total] });
    return outs;
  },
};

export const schemas = defineOps(attention);
