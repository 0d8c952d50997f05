import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { attr } from './ir-builder.js';
import { Rng, randomTensor } from './random.js';

/**
 * Opset-23 Attention cases over its attributes (3-D and 4-D, causal, bool and float masks, GQA/MQA, past KV,
 * scale, softcap, a value head size unlike the key's), shared by the CPU (tests/reference/attention.test.ts) and
 * WebGPU (tests/webgpu/attention.test.ts) suites, which both compare with onnxruntime-node. Query lengths are
 * chosen so that both WebGPU forms run: below 8 rows the decode form (a workgroup per row), from 8 the row tiles.
 */

export interface AttentionCase {
  name: string;
  attrs: Record<string, Attr>;
  /** Q, K, V, attn_mask, past_key, past_value; undefined = omitted. */
  inputs: (HostTensor | undefined)[];
  /** Outputs the node names: 1 (Y), 3 (Y, present_key, present_value) or 4 (also qk_matmul_output). */
  outputs: number;
}

const int = (v: number) => attr(v);
const float = (v: number) => attr(v, true);

export function attentionCases(seed: number, dtype: DType = 'float32'): AttentionCase[] {
  const rng = new Rng(seed);
  const r = (shape: number[], lo = -1, hi = 1) => randomTensor(rng, dtype, shape, { lo, hi });
  const boolMask = (shape: number[], keep: (i: number) => boolean) =>
    tensorFromNumbers('bool', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => (keep(i) ? 1 : 0)));
  return [
    { name: '4-D multi-head, cross lengths', attrs: {}, inputs: [r([2, 3, 5, 8]), r([2, 3, 7, 8]), r([2, 3, 7, 8])], outputs: 1 },
    { name: '4-D causal self-attention', attrs: { is_causal: int(1) }, inputs: [r([1, 2, 12, 16]), r([1, 2, 12, 16]), r([1, 2, 12, 16])], outputs: 1 },
    {
      name: '3-D GQA (4 query heads on 2 kv heads), causal',
      attrs: { q_num_heads: int(4), kv_num_heads: int(2), is_causal: int(1) },
      inputs: [r([2, 11, 4 * 8]), r([2, 11, 2 * 8]), r([2, 11, 2 * 8])],
      outputs: 1,
    },
    {
      name: '4-D GQA with a float mask [Sq, T]',
      attrs: {},
      inputs: [r([2, 6, 3, 4]), r([2, 2, 9, 4]), r([2, 2, 9, 4]), r([3, 9], -3, 1)],
      outputs: 1,
    },
    {
      name: 'bool padding mask [B, 1, 1, T] and a row-wise mask [B, 1, Sq, T]',
      attrs: {},
      inputs: [r([2, 2, 4, 8]), r([2, 2, 40, 8]), r([2, 2, 40, 8]), boolMask([2, 1, 4, 40], (i) => i % 40 < 30 - 5 * Math.floor(i / 40))],
      outputs: 1,
    },
    {
      name: 'past KV with is_causal: present = concat(past, new)',
      attrs: { is_causal: int(1) },
      inputs: [r([2, 2, 9, 8]), r([2, 2, 9, 8]), r([2, 2, 9, 8]), undefined, r([2, 2, 5, 8]), r([2, 2, 5, 8])],
      outputs: 3,
    },
    {
      name: '3-D decode step, MQA (1 kv head), past, float mask [B, 1, 1, T]',
      attrs: { q_num_heads: int(4), kv_num_heads: int(1) },
      inputs: [r([2, 1, 4 * 16]), r([2, 1, 16]), r([2, 1, 16]), r([2, 1, 1, 38], -2, 0), r([2, 1, 37, 16]), r([2, 1, 37, 16])],
      outputs: 3,
    },
    { name: 'scale and softcap', attrs: { scale: float(0.9), softcap: float(1.5) }, inputs: [r([1, 2, 10, 8], -2, 2), r([1, 2, 6, 8], -2, 2), r([1, 2, 6, 8])], outputs: 1 },
    {
      name: 'value head size unlike the key head size (3-D), present outputs without a past',
      attrs: { q_num_heads: int(2), kv_num_heads: int(2) },
      inputs: [r([1, 3, 2 * 8]), r([1, 5, 2 * 8]), r([1, 5, 2 * 12])],
      outputs: 3,
    },
    {
      name: 'long keys across many tiles, causal with bool mask, head size 64',
      attrs: { is_causal: int(1) },
      inputs: [r([1, 2, 70, 64]), r([1, 2, 70, 64]), r([1, 2, 70, 64]), boolMask([70, 70], (i) => i % 7 !== 3)],
      outputs: 1,
    },
  ];
}

/** A com.microsoft attention case: the op, its inputs (undefined = omitted) and outputs. */
export interface MsAttentionCase extends AttentionCase {
  op: 'MultiHeadAttention' | 'GroupQueryAttention' | 'Attention';
}

/**
 * MultiHeadAttention and GroupQueryAttention cases over what the importer maps (importers/onnx/ops/attention.ts):
 * bias, key padding mask, attention bias, past/present, unidirectional/causal, key/value in heads, packed QKV,
 * scale and softcap, a GQA decode step over rows of different lengths (more in tests/webgpu/gqa-ragged.test.ts).
 */
export function msAttentionCases(seed: number): MsAttentionCase[] {
  const rng = new Rng(seed);
  const r = (shape: number[], lo = -1, hi = 1) => randomTensor(rng, 'float32', shape, { lo, hi });
  const i32 = (shape: number[], values: number[]) => tensorFromNumbers('int32', shape, values);
  const heads = int(2);
  return [
    { op: 'MultiHeadAttention', name: 'MHA: 3-D query/key/value', attrs: { num_heads: heads }, inputs: [r([2, 4, 16]), r([2, 6, 16]), r([2, 6, 16])], outputs: 1 },
    {
      op: 'MultiHeadAttention', name: 'MHA: projection bias and a key padding mask [B, T]',
      attrs: { num_heads: heads, mask_filter_value: float(-5000) },
      inputs: [r([2, 4, 16]), r([2, 6, 16]), r([2, 6, 24]), r([56]), i32([2, 6], [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0])],
      outputs: 1,
    },
    {
      op: 'MultiHeadAttention', name: 'MHA: unidirectional with past, present and an attention bias, scale',
      attrs: { num_heads: heads, unidirectional: int(1), scale: float(0.3) },
      inputs: [r([2, 4, 16]), r([2, 4, 16]), r([2, 4, 16]), undefined, undefined, r([1, 2, 4, 7]), r([2, 2, 3, 8]), r([2, 2, 3, 8])],
      outputs: 3,
    },
    {
      op: 'MultiHeadAttention', name: 'MHA: key and value already in heads [B, N, T, H]',
      attrs: { num_heads: heads },
      inputs: [r([2, 3, 16]), r([2, 2, 5, 8]), r([2, 2, 5, 8])],
      outputs: 1,
    },
    {
      op: 'GroupQueryAttention', name: 'GQA: prompt, 4 query heads on 2 kv heads',
      attrs: { num_heads: int(4), kv_num_heads: heads },
      inputs: [r([2, 3, 32]), r([2, 3, 16]), r([2, 3, 16]), undefined, undefined, i32([2], [2, 2]), i32([], [3])],
      outputs: 3,
    },
    {
      op: 'GroupQueryAttention', name: 'GQA: right-padded prompt (rows of lengths 3 and 2)',
      attrs: { num_heads: int(2), kv_num_heads: int(1) },
      inputs: [r([2, 3, 16]), r([2, 3, 8]), r([2, 3, 8]), undefined, undefined, i32([2], [2, 1]), i32([], [3])],
      outputs: 3,
    },
    {
      op: 'GroupQueryAttention', name: 'GQA: decode step with past, scale and softcap',
      attrs: { num_heads: int(4), kv_num_heads: heads, scale: float(0.5), softcap: float(2) },
      inputs: [r([2, 1, 32], -2, 2), r([2, 1, 16], -2, 2), r([2, 1, 16]), r([2, 2, 5, 8], -2, 2), r([2, 2, 5, 8]), i32([2], [5, 5]), i32([], [6])],
      outputs: 3,
    },
    {
      // Rows of lengths 6, 3 and 1: each row's new key lands at its own offset (seqlens_k + 1 - S) in present.
      op: 'GroupQueryAttention', name: 'GQA: decode step over rows of different lengths (ragged cache)',
      attrs: { num_heads: int(4), kv_num_heads: heads },
      inputs: [r([3, 1, 32]), r([3, 1, 16]), r([3, 1, 16]), r([3, 2, 5, 8]), r([3, 2, 5, 8]), i32([3], [5, 2, 0]), i32([], [6])],
      outputs: 3,
    },
    {
      op: 'GroupQueryAttention', name: 'GQA: packed QKV prompt, MQA (1 kv head)',
      attrs: { num_heads: int(4), kv_num_heads: int(1) },
      inputs: [r([1, 5, (4 + 2) * 8]), undefined, undefined, undefined, undefined, i32([1], [4]), i32([], [5])],
      outputs: 3,
    },
    {
      op: 'Attention', name: 'Attention (com.microsoft): projection, bias, mask_index [B, T]',
      attrs: { num_heads: heads },
      inputs: [r([2, 4, 12]), r([12, 48], -0.5, 0.5), r([48]), i32([2, 4], [1, 1, 1, 1, 1, 1, 0, 0])],
      outputs: 1,
    },
    {
      op: 'Attention', name: 'Attention (com.microsoft): unidirectional with past [2, B, N, P, H] and present, qkv_hidden_sizes',
      attrs: { num_heads: heads, unidirectional: int(1), qkv_hidden_sizes: attr([16, 16, 16]) },
      inputs: [r([2, 3, 12]), r([12, 48], -0.5, 0.5), r([48]), undefined, r([2, 2, 2, 4, 8])],
      outputs: 2,
    },
  ];
}
