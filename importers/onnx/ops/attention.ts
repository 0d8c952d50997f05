import { msOp } from '../../../runtime/ir/ops/contrib.js';
import { attrFloat, attrInt, attrString, type Attr, type Node } from '../../../runtime/ir/graph.js';
import { tensorFromNumbers } from '../../../runtime/ir/tensor.js';
import type { AdapterContext, OpAdapter } from './adapter.js';
import { MAX_OPSET } from './direct.js';
import { AdapterUnsupported, helperNode, i64, scalarLike } from './helpers.js';

/**
 * The attention family of opset 23 (docs/attention.md):
 * - Attention-23 is the IR op (runtime/ir/ops/attention.ts) as it is;
 * - RMSNormalization-23 (X, scale; axis, epsilon, stash_type; output Y) is onnxruntime's
 *   SimplifiedLayerNormalization with its optional inv_std_var output left off: the IR op
 *   'com.microsoft.SimplifiedLayerNormalization' serves both;
 * - RotaryEmbedding-23 (X, cos_cache, sin_cache, position_ids) is 'com.microsoft.RotaryEmbedding' with the inputs in
 *   the contrib order (X, position_ids, cos_cache, sin_cache) and the same attributes; without position_ids (caches
 *   already gathered per token, [B, S, rotary_dim / 2]) the caches are flattened and indexed by token.
 */

export const ATTENTION_ADAPTERS: OpAdapter[] = [
  { op: 'Attention', since: 23, until: MAX_OPSET },
  {
    op: 'RMSNormalization',
    since: 23,
    until: MAX_OPSET,
    targets: [msOp('SimplifiedLayerNormalization')],
    map: (n: Node) => [{ ...n, op: msOp('SimplifiedLayerNormalization') }],
  },
  {
    op: 'RotaryEmbedding',
    since: 23,
    until: MAX_OPSET,
    targets: [msOp('RotaryEmbedding'), 'Shape', 'Mul', 'Squeeze', 'Range', 'Reshape', 'Concat'],
    map: rotary23,
  },
];

/**
 * RotaryEmbedding-23 as the contrib op: inputs reordered to (X, position_ids, cos_cache, sin_cache). Without
 * position_ids the caches are per token, [B, S, rotary_dim / 2]: they are flattened to [B*S, rotary_dim / 2] and
 * token (b, s) reads row b*S + s, through position ids Range(0, B*S) shaped [B, S] (all from shapes, so they fold
 * into constants when the plan is made).
 */
function rotary23(n: Node, ctx: AdapterContext): Node[] {
  const [x, cos, sin, ids] = [n.inputs[0]!, n.inputs[1]!, n.inputs[2]!, n.inputs[3] ?? ''];
  const node = (inputs: string[]): Node => ({ ...n, op: msOp('RotaryEmbedding'), inputs });
  if (ids) return [node([x, ids, cos, sin])];
  const b = builder(n, ctx);
  const bs = b.op('Shape', [cos], { start: int(0), end: int(2) });
  const tokens = b.op('Mul', [b.op('Shape', [cos], { start: int(0), end: int(1) }), b.op('Shape', [cos], { start: int(1), end: int(2) })]);
  const zero = ctx.constant(`${n.name}_zero`, tensorFromNumbers('int64', [], [0]));
  const one = ctx.constant(`${n.name}_one`, tensorFromNumbers('int64', [], [1]));
  const range = b.op('Range', [zero, b.op('Squeeze', [tokens, i64(ctx, `${n.name}_axis0`, [0])]), one]);
  const positions = b.op('Reshape', [range, bs]);
  const rows = b.op('Concat', [i64(ctx, `${n.name}_rows`, [-1]), b.op('Shape', [cos], { start: int(2) })], { axis: int(0) });
  const [cosRows, sinRows] = [b.op('Reshape', [cos, rows]), b.op('Reshape', [sin, rows])];
  return [...b.nodes, node([x, positions, cosRows, sinRows])];
}

// ---- com.microsoft attention ops (onnxruntime's ContribOperators.md), as IR Attention plus plain ops ----

const int = (value: number): Attr => ({ type: 'int', value });
const ints = (value: number[]): Attr => ({ type: 'ints', value });
const INT64_MAX = 2 ** 62;

/** Builds helper nodes for one com.microsoft node: `op(...)` returns its single output's name. */
function builder(n: Node, ctx: AdapterContext) {
  const nodes: Node[] = [];
  let k = 0;
  const op = (type: string, inputs: string[], attrs: Record<string, Attr> = {}, hint = type.toLowerCase()): string => {
    const out = ctx.fresh(`${n.name}_${hint}`);
    nodes.push(helperNode(n, `${hint}_${k++}`, type, inputs, [out], attrs));
    return out;
  };
  return { nodes, op };
}

const present = (n: Node, i: number): string => n.inputs[i] ?? '';

function refuse(n: Node, why: string): never {
  throw new AdapterUnsupported(`com.microsoft ${n.op} (node '${n.name}'): ${why}`);
}

/**
 * The additive float mask of MultiHeadAttention / Attention from an int32 key padding mask (1 keep, 0 masked:
 * mask_filter_value is added, as onnxruntime does) of shape [B, T] or [B, S, T], as [B, 1, 1, T] or [B, 1, S, T].
 */
function paddingBias(n: Node, ctx: AdapterContext, b: ReturnType<typeof builder>, mask: string, like: string): string {
  const rank = ctx.rankOf(mask);
  if (rank !== 2 && rank !== 3) refuse(n, `a key padding mask of rank ${rank ?? 'unknown'} (sequence lengths, [B] or [3B+2]) is not supported; pass a [batch, total_sequence] 0/1 mask`);
  const filter = scalarLike(n, ctx, attrFloat(n, 'mask_filter_value', -10000), like, 'mask_filter');
  const one = scalarLike(n, ctx, 1, like, 'one');
  b.nodes.push(...filter.nodes, ...one.nodes);
  const m = b.op('CastLike', [mask, like]);
  const bias = b.op('Mul', [b.op('Sub', [one.name, m]), filter.name]);
  return b.op('Unsqueeze', [bias, i64(ctx, `${n.name}_mask_axes`, rank === 2 ? [1, 2] : [1])]);
}

/** q [B, S, N*H] as [B, N, S, H] (0 in the Reshape target copies the dim). */
function toHeads(ctx: AdapterContext, b: ReturnType<typeof builder>, n: Node, x: string, heads: number): string {
  const r = b.op('Reshape', [x, i64(ctx, `${n.name}_heads_shape`, [0, 0, heads, -1])]);
  return b.op('Transpose', [r], { perm: ints([0, 2, 1, 3]) });
}

/** The IR Attention node writing `outputs` (Y, present_key, present_value). */
function attentionNode(n: Node, inputs: string[], outputs: string[], attrs: Record<string, Attr>): Node {
  while (inputs.length && !inputs[inputs.length - 1]) inputs.pop();
  return { name: n.name, op: 'Attention', domain: '', inputs, outputs, attrs };
}

/**
 * MultiHeadAttention: query [B, S, N*H]; key/value [B, T, N*H] (projected, the bias adds per part) or [B, N, T, H]
 * (already split into heads: query is split too); key_padding_mask int32 [B, T] or [B, S, T]; attention_bias
 * [B|1, N|1, S, T]; past_key/past_value [B, N, P, H]; unidirectional -> is_causal. Packed QKV/KV, a [B] or [3B+2]
 * length mask, buffer sharing (past_sequence_length), beam cache_indirection and the qk output are refused.
 */
function multiHeadAttention(n: Node, ctx: AdapterContext): Node[] {
  const b = builder(n, ctx);
  const heads = attrInt(n, 'num_heads', 0);
  if (heads <= 0) refuse(n, 'num_heads must be positive');
  let [q, k, v] = [present(n, 0), present(n, 1), present(n, 2)];
  if (!k || !v || ctx.rankOf(q) === 5 || ctx.rankOf(k) === 5) refuse(n, 'packed QKV or KV inputs are not supported; pass query, key and value');
  for (const [i, what] of [[8, 'past_sequence_length (past/present buffer sharing)'], [9, 'cache_indirection (beam search)']] as const) {
    if (present(n, i)) refuse(n, `${what} is not supported`);
  }
  if (n.outputs[3]) refuse(n, 'the qk output is not supported');
  const bnsh = ctx.rankOf(k) === 4;
  const bias = present(n, 3);
  if (bias) {
    if (bnsh) refuse(n, 'a projection bias with key/value already in [B, N, T, H] is not supported');
    // bias = [bq (hidden), bk (hidden), bv (v_hidden)]: cut at the query's hidden size.
    const hq = b.op('Shape', [q], { start: int(-1) });
    const hk = b.op('Add', [hq, hq]);
    const end = i64(ctx, `${n.name}_bias_end`, [INT64_MAX]);
    q = b.op('Add', [q, b.op('Slice', [bias, i64(ctx, `${n.name}_bias_0`, [0]), hq])]);
    k = b.op('Add', [k, b.op('Slice', [bias, hq, hk])]);
    v = b.op('Add', [v, b.op('Slice', [bias, hk, end])]);
  }
  let mask = '';
  if (present(n, 4)) mask = paddingBias(n, ctx, b, present(n, 4), q);
  if (present(n, 5)) mask = mask ? b.op('Add', [mask, present(n, 5)]) : present(n, 5);
  const attrs: Record<string, Attr> = { q_num_heads: int(heads), kv_num_heads: int(heads), is_causal: int(attrInt(n, 'unidirectional', 0)) };
  if (n.attrs.scale) attrs.scale = n.attrs.scale;
  const outs = [n.outputs[0]!, n.outputs[1] ?? '', n.outputs[2] ?? ''];
  if (!bnsh) return [...b.nodes, attentionNode(n, [q, k, v, mask, present(n, 6), present(n, 7)], outs, attrs)];
  // Key and value in heads: query to [B, N, S, H] too, and Y back to [B, S, N*H].
  if (present(n, 6)) refuse(n, 'past_key with key/value already in [B, N, T, H] is not supported');
  const y4 = ctx.fresh(`${n.name}_y4`);
  const node = attentionNode(n, [toHeads(ctx, b, n, q, heads), k, v, mask], [y4, ...outs.slice(1)], attrs);
  const yt = ctx.fresh(`${n.name}_yt`);
  return [
    ...b.nodes, node,
    helperNode(n, 'y_transpose', 'Transpose', [y4], [yt], { perm: ints([0, 2, 1, 3]) }),
    helperNode(n, 'y_reshape', 'Reshape', [yt, i64(ctx, `${n.name}_y_shape`, [0, 0, -1])], [outs[0]!]),
  ];
}

/**
 * GroupQueryAttention: query [B, S, N*H] (or packed QKV [B, S, (N + 2 Nkv) H] without key/value), key/value
 * [B, S, Nkv*H], past_key/past_value [B, Nkv, P, H] (not shared with present), seqlens_k int32 [B] (total length - 1
 * per row), total_sequence_length int32 scalar, causal (default 1), scale, softcap, attention_bias
 * [B|1, N|1, S, T]. Internal rotary (do_rotary), local windows, smooth softmax / head sinks, quantized caches, Q/K
 * norms and the qk output are refused.
 *
 * onnxruntime's semantics (established against onnxruntime-node 1.30; tests/webgpu/gqa-ragged.test.ts pins them):
 * - the call is the first prompt when total_sequence_length == S: row b's past length o_b is 0 there, otherwise
 *   o_b = seqlens_k[b] + 1 - S (rows of different lengths keep their cache left-aligned, each its own length);
 * - present is [B, Nkv, max(P, total_sequence_length), H]: row b holds past[0, o_b), then the S new keys at
 *   [o_b, o_b + S), then zeros (whatever past held beyond o_b is dropped);
 * - query i of row b sees key j when j <= seqlens_k[b] and, when causal, j <= o_b + i.
 *
 * With a past this is built from plain ops: the rows past[.., 0:P), new[.., 0:S) and one zero row are concatenated
 * along the sequence ([B, Nkv, P + S + 1, H]) and present is one GatherND (batch_dims 2) from them with a per-row
 * source row (index [B, Nkv, T, 1], not per element); the mask above is an explicit bool [B, 1, S, T]; the IR
 * Attention op then runs on present with is_causal 0, query and Y going through [B, N, S, H].
 *
 * Decision: this general form is used whenever the node has a past, full rows or not. seqlens_k is data, so nothing
 * at load proves the rows full. The cost over the former plain form (Attention with the past, exact for full rows
 * only) is one more pass over the cache (GatherND after Concat, where the plain form copies once) and ~28 small
 * index, mask and layout dispatches per node: 1.3-1.7x for the attention of a decode step on SwiftShader
 * (docs/attention.md, bench/gqa-ragged.bench.ts). T depends on total_sequence_length's value: folded from shapes
 * in exported models (Shape(attention_mask)[1]), baked into the plan when it is a graph input (value-inputs.ts), a
 * stage boundary when computed from data.
 *
 * Without a past (a first prompt: o_b = 0) the cheaper form stays: keys j > seqlens_k[b] are masked and causal runs
 * in the kernel; present is the new keys, length S (onnxruntime's length is total_sequence_length, which is S on a
 * first prompt).
 */
function groupQueryAttention(n: Node, ctx: AdapterContext): Node[] {
  const b = builder(n, ctx);
  const heads = attrInt(n, 'num_heads', 0);
  const kvHeads = attrInt(n, 'kv_num_heads', 0);
  if (heads <= 0 || kvHeads <= 0) refuse(n, 'num_heads and kv_num_heads must be positive');
  if (heads % kvHeads !== 0) refuse(n, `num_heads ${heads} must be a multiple of kv_num_heads ${kvHeads}`);
  if (attrInt(n, 'do_rotary', 0)) refuse(n, 'do_rotary is not supported; apply RotaryEmbedding to query and key before the node');
  if (attrInt(n, 'local_window_size', -1) !== -1) refuse(n, 'local_window_size (sliding-window attention) is not supported');
  if (attrInt(n, 'smooth_softmax', -1) > 0 || present(n, 11)) refuse(n, 'smooth_softmax / head_sink is not supported');
  if (attrInt(n, 'qk_output', 0) || n.outputs[3]) refuse(n, 'the qk output is not supported');
  if (attrString(n, 'k_quant_type', 'NONE') !== 'NONE' || attrString(n, 'v_quant_type', 'NONE') !== 'NONE' || present(n, 12)) refuse(n, 'quantized KV caches are not supported');
  if (present(n, 14) || present(n, 15)) refuse(n, 'q_norm_weight / k_norm_weight are not supported');
  if (present(n, 7) || present(n, 9)) refuse(n, 'cos_cache / position_ids (internal rotary) are not supported');
  if (!!present(n, 3) !== !!present(n, 4)) refuse(n, 'past_key and past_value must be given together');
  let [q, k, v] = [present(n, 0), present(n, 1), present(n, 2)];
  if (!k) {
    // Packed QKV: split the last axis in the ratio N : Nkv : Nkv.
    const width = b.op('Shape', [q], { start: int(-1) });
    const unit = b.op('Div', [width, i64(ctx, `${n.name}_parts`, [heads + 2 * kvHeads])]);
    const sizes = b.op('Mul', [unit, i64(ctx, `${n.name}_ratio`, [heads, kvHeads, kvHeads])]);
    const [qs, ks, vs] = [ctx.fresh(`${n.name}_q`), ctx.fresh(`${n.name}_k`), ctx.fresh(`${n.name}_v`)];
    b.nodes.push(helperNode(n, 'split_qkv', 'Split', [q, sizes], [qs, ks, vs], { axis: int(-1) }));
    [q, k, v] = [qs, ks, vs];
  }
  const causal = attrInt(n, 'causal', 1);
  const attrs: Record<string, Attr> = { q_num_heads: int(heads), kv_num_heads: int(kvHeads), is_causal: int(0) };
  if (n.attrs.scale) attrs.scale = n.attrs.scale;
  if (n.attrs.softcap) attrs.softcap = n.attrs.softcap;
  const outs = [n.outputs[0]!, n.outputs[1] ?? '', n.outputs[2] ?? ''];
  const c = (hint: string, values: number[]) => i64(ctx, `${n.name}_${hint}`, values);
  const scalar = (hint: string, value: number) => ctx.constant(`${n.name}_${hint}`, tensorFromNumbers('int64', [], [value]));
  const lens = b.op('Cast', [present(n, 5)], { to: int(7) }); // [B]
  /** The bool mask with attention_bias folded in (0 / -inf through Where, plus the bias), if the node has one. */
  const withBias = (mask: string): string => {
    if (!present(n, 10)) return mask;
    const ninf = scalarLike(n, ctx, -Infinity, q, 'ninf');
    const zf = scalarLike(n, ctx, 0, q, 'zero_f');
    b.nodes.push(...ninf.nodes, ...zf.nodes);
    return b.op('Add', [b.op('Where', [mask, zf.name, ninf.name]), present(n, 10)]);
  };

  if (!present(n, 3)) {
    // First prompt: key j valid for row b when j <= seqlens_k[b]; causal in the kernel (no past, so top-left).
    const kvLen = b.op('Squeeze', [b.op('Shape', [k], { start: int(1), end: int(2) }), c('axis0', [0])]);
    const keys = b.op('Range', [scalar('zero', 0), kvLen, scalar('one', 1)]);
    const mask = b.op('LessOrEqual', [keys, b.op('Unsqueeze', [lens, c('len_axes', [1, 2, 3])])]);
    return [...b.nodes, attentionNode(n, [q, k, v, withBias(mask)], outs, { ...attrs, is_causal: int(causal) })];
  }

  // With a past: the general form of the comment above. Index arithmetic in int64 on [B, 1, T, 1] (T = present
  // length); the Shape/Range parts fold into constants when the plan is made.
  const [pastK, pastV] = [present(n, 3), present(n, 4)];
  const s1 = b.op('Shape', [q], { start: int(1), end: int(2) }, 's'); // [1]
  const p1 = b.op('Shape', [pastK], { start: int(2), end: int(3) }, 'p'); // [1]
  const tot1 = b.op('Reshape', [b.op('Cast', [present(n, 6)], { to: int(7) }), c('one_shape', [1])], {}, 'total');
  const t1 = b.op('Max', [p1, tot1], {}, 'present_len');
  const range = (limit: string, hint: string) => b.op('Range', [scalar(`${hint}_start`, 0), b.op('Squeeze', [limit, c(`${hint}_axis`, [0])]), scalar(`${hint}_step`, 1)], {}, hint);
  const keys = range(t1, 'keys'); // [T]
  const keyCol = b.op('Unsqueeze', [keys, c('key_axis', [1])]); // [T, 1]
  const lens4 = b.op('Reshape', [lens, c('len_shape', [-1, 1, 1, 1])], {}, 'lens'); // [B, 1, 1, 1]
  // o_b = seqlens_k[b] + 1 - S, or 0 on a first prompt; at most P (onnxruntime refuses more: the clamp only keeps the
  // indices below in bounds for such inputs).
  const first = b.op('Equal', [tot1, s1], {}, 'first_prompt');
  const own = b.op('Add', [lens4, b.op('Sub', [c('one1', [1]), s1])]);
  const offset = b.op('Min', [b.op('Where', [first, c('zero1', [0]), own]), p1], {}, 'offset'); // [B, 1, 1, 1]
  // Source row of present[b, :, j] in rows = Concat(past, new, one zero row) [B, Nkv, P + S + 1, H]: j below o_b
  // reads past row j, then new row j - o_b, and from o_b + S on the zero row P + S.
  const rel = b.op('Sub', [keyCol, offset], {}, 'rel'); // [B, 1, T, 1]
  const fromNew = b.op('Add', [b.op('Min', [rel, s1]), p1]); // P + min(j - o_b, S)
  const src = b.op('Where', [b.op('Less', [keyCol, offset]), keyCol, fromNew], {}, 'src');
  const batch = b.op('Shape', [q], { start: int(0), end: int(1) }, 'batch');
  const indexShape = b.op('Concat', [batch, c('index_kv', [kvHeads]), t1, c('index_one', [1])], { axis: int(0) });
  const index = b.op('Expand', [src, indexShape], {}, 'index'); // [B, Nkv, T, 1]: GatherND with batch_dims 2
  const cache = (x: string, past: string, out: string, what: string): string => {
    const xh = toHeads(ctx, b, n, x, kvHeads); // [B, Nkv, S, H]
    const zshape = b.op('Concat', [b.op('Shape', [xh], { start: int(0), end: int(2) }), c(`${what}_one`, [1]), b.op('Shape', [xh], { start: int(3) })], { axis: int(0) });
    const zf = scalarLike(n, ctx, 0, x, `${what}_zero`);
    b.nodes.push(...zf.nodes);
    const rows = b.op('Concat', [past, xh, b.op('Expand', [zf.name, zshape])], { axis: int(2) }, `${what}_rows`);
    const name = out || ctx.fresh(`${n.name}_present_${what}`);
    b.nodes.push(helperNode(n, `present_${what}`, 'GatherND', [rows, index], [name], { batch_dims: int(2) }));
    return name;
  };
  const presK = cache(k, pastK, outs[1]!, 'k');
  const presV = cache(v, pastV, outs[2]!, 'v');
  // Mask [B, 1, S|1, T]: key j valid when j <= seqlens_k[b] and, if causal, j <= o_b + i.
  let limit = lens4;
  if (causal) limit = b.op('Min', [lens4, b.op('Add', [offset, b.op('Unsqueeze', [range(s1, 'rows'), c('row_axis', [1])])])], {}, 'last_key'); // [B, 1, S, 1]
  const mask = b.op('LessOrEqual', [keys, limit], {}, 'valid');
  // Query in heads [B, N, S, H] like present; Y back to [B, S, N*H].
  const y4 = ctx.fresh(`${n.name}_y4`);
  b.nodes.push(attentionNode(n, [toHeads(ctx, b, n, q, heads), presK, presV, withBias(mask)], [y4], attrs));
  const yt = b.op('Transpose', [y4], { perm: ints([0, 2, 1, 3]) }, 'yt');
  return [...b.nodes, helperNode(n, 'y_reshape', 'Reshape', [yt, i64(ctx, `${n.name}_y_shape`, [0, 0, -1])], [outs[0]!])];
}

/**
 * com.microsoft Attention (BERT/GPT-2 style, projection included): input [B, S, Din] times weights
 * [Din, Hq + Hk + Hv] plus bias, split into Q, K, V (equal thirds, or qkv_hidden_sizes); mask_index int32 [B, T] or
 * [B, S, T] as an additive mask_filter_value; past [2, B, N, P, H] split into past key and value, present
 * [2, B, N, T, H] stacked from the present key and value; attention_bias; unidirectional -> is_causal. Length-form
 * mask_index ([B], [2B], [3B+2]), the [B, 1, M, M] mask, buffer sharing and do_rotary are refused.
 */
function msAttention(n: Node, ctx: AdapterContext): Node[] {
  const b = builder(n, ctx);
  const heads = attrInt(n, 'num_heads', 0);
  if (heads <= 0) refuse(n, 'num_heads must be positive');
  if (attrInt(n, 'do_rotary', 0)) refuse(n, 'do_rotary is not supported');
  if (attrInt(n, 'past_present_share_buffer', 0) || present(n, 6)) refuse(n, 'past/present buffer sharing (past_sequence_length) is not supported');
  let proj = b.op('MatMul', [present(n, 0), present(n, 1)]);
  if (present(n, 2)) proj = b.op('Add', [proj, present(n, 2)]);
  const sizes = n.attrs.qkv_hidden_sizes?.type === 'ints' ? n.attrs.qkv_hidden_sizes.value : undefined;
  const [q, k, v] = [ctx.fresh(`${n.name}_q`), ctx.fresh(`${n.name}_k`), ctx.fresh(`${n.name}_v`)];
  b.nodes.push(sizes
    ? helperNode(n, 'split_qkv', 'Split', [proj, i64(ctx, `${n.name}_qkv_sizes`, sizes)], [q, k, v], { axis: int(-1) })
    : helperNode(n, 'split_qkv', 'Split', [proj], [q, k, v], { axis: int(-1), num_outputs: int(3) }));
  let mask = '';
  const mi = present(n, 3);
  if (mi) {
    const rank = ctx.rankOf(mi);
    if (rank === 4) refuse(n, 'a [B, 1, M, M] mask_index is not supported');
    mask = paddingBias(n, ctx, b, mi, q);
  }
  if (present(n, 5)) mask = mask ? b.op('Add', [mask, present(n, 5)]) : present(n, 5);
  let [pk, pv] = ['', ''];
  if (present(n, 4)) {
    const [i0, i1] = [0, 1].map((i) => ctx.constant(`${n.name}_past_${i}`, tensorFromNumbers('int64', [], [i])));
    pk = b.op('Gather', [present(n, 4), i0!], { axis: int(0) });
    pv = b.op('Gather', [present(n, 4), i1!], { axis: int(0) });
  }
  const attrs: Record<string, Attr> = { q_num_heads: int(heads), kv_num_heads: int(heads), is_causal: int(attrInt(n, 'unidirectional', 0)) };
  if (n.attrs.scale) attrs.scale = n.attrs.scale;
  const wantPresent = !!n.outputs[1];
  const [presK, presV] = wantPresent ? [ctx.fresh(`${n.name}_present_k`), ctx.fresh(`${n.name}_present_v`)] : ['', ''];
  const nodes = [...b.nodes, attentionNode(n, [q, k, v, mask, pk, pv], [n.outputs[0]!, presK, presV], attrs)];
  if (wantPresent) {
    const axis0 = i64(ctx, `${n.name}_stack_axis`, [0]);
    const [uk, uv] = [ctx.fresh(`${n.name}_present_k0`), ctx.fresh(`${n.name}_present_v0`)];
    nodes.push(
      helperNode(n, 'present_k', 'Unsqueeze', [presK, axis0], [uk]),
      helperNode(n, 'present_v', 'Unsqueeze', [presV, axis0], [uv]),
      helperNode(n, 'present', 'Concat', [uk, uv], [n.outputs[1]!], { axis: int(0) }),
    );
  }
  return nodes;
}

export const MS_ATTENTION_ADAPTERS: OpAdapter[] = [
  { op: 'MultiHeadAttention', since: 1, until: 1, targets: ['Attention', 'Shape', 'Add', 'Slice', 'Sub', 'Mul', 'CastLike', 'Unsqueeze', 'Reshape', 'Transpose'], map: multiHeadAttention },
  {
    op: 'GroupQueryAttention', since: 1, until: 1,
    targets: [
      'Attention', 'Shape', 'Add', 'Sub', 'Div', 'Mul', 'Max', 'Min', 'Split', 'Range', 'Squeeze', 'Cast', 'Unsqueeze', 'Reshape', 'Transpose',
      'Equal', 'Less', 'LessOrEqual', 'Where', 'CastLike', 'Concat', 'Expand', 'GatherND',
    ],
    map: groupQueryAttention,
  },
  { op: 'Attention', since: 1, until: 1, targets: ['Attention', 'MatMul', 'Add', 'Split', 'Sub', 'Mul', 'CastLike', 'Unsqueeze', 'Gather', 'Concat'], map: msAttention },
];
