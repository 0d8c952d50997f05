import { msOp } from '../../../runtime/ir/ops/contrib.js';
import type { Node } from '../../../runtime/ir/graph.js';
import type { PNode } from '../proto.js';
import type { OpAdapter } from './adapter.js';
import { MAX_OPSET } from './direct.js';

/**
 * The attention family of opset 23 (docs/attention.md):
 * - Attention-23 is the IR op (runtime/ir/ops/attention.ts) as it is;
 * - RMSNormalization-23 (X, scale; axis, epsilon, stash_type; output Y) is onnxruntime's
 *   SimplifiedLayerNormalization with its optional inv_std_var output left off: the IR op
 *   'com.microsoft.SimplifiedLayerNormalization' serves both;
 * - RotaryEmbedding-23 (X, cos_cache, sin_cache, position_ids) is 'com.microsoft.RotaryEmbedding' with the inputs in
 *   the contrib order (X, position_ids, cos_cache, sin_cache) and the same attributes. The form without position_ids
 *   (caches already gathered per token, [B, S, rotary_dim / 2]) has no IR op yet and is refused at load.
 */

const inputName = (n: PNode, i: number): string => n.input?.[i] ?? '';

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
    targets: [msOp('RotaryEmbedding')],
    check: (n) => (inputName(n, 3) ? undefined : 'RotaryEmbedding without position_ids (per-token [B, S, D/2] caches) is not supported; pass position_ids and [max_position, D/2] caches'),
    map: (n: Node) => [{ ...n, op: msOp('RotaryEmbedding'), inputs: [n.inputs[0]!, n.inputs[3]!, n.inputs[1]!, n.inputs[2]!] }],
  },
];
