import { tensorFromNumbers } from '../../runtime/ir/tensor.js';
import { tensorProto } from './ort-single-node.js';
import { Rng } from './random.js';
import { int, ints, model, vi, type NodeSpec } from '../importer/model-builder.js';

/**
 * A tiny random-weight decoder in the Hugging Face ONNX layout, built node by node (no PyTorch needed), for the
 * text-generation tests: token and position embeddings, one causal self-attention layer with a KV cache, a residual
 * and an LM head.
 *
 *   inputs  input_ids [B, S] int64, attention_mask [B, P+S] int64, position_ids [B, S] int64,
 *           past_key_values.{i}.key / .value [B, H, P, D] float32
 *   outputs logits [B, S, V], present.{i}.key / .value [B, H, P+S, D]
 *
 * The mask needs no Range: a key's position is cumsum(attention_mask) - 1 (what HF feeds as position_ids under left
 * padding), and query i may see key j when key_pos[j] <= position_ids[i] and attention_mask[j] = 1. So cached
 * decoding and recomputing the whole sequence give the same logits, which the tests check.
 *
 * `layout: 'legacy'` drops attention_mask and position_ids (the older export: input_ids and past only) and attends
 * to every key (no mask), positions are not embedded.
 */
export interface TinyDecoderOptions {
  vocab?: number;
  heads?: number;
  headDim?: number;
  layers?: number;
  seed?: number;
  layout?: 'hf' | 'legacy';
  /** Largest position the position table covers (the context length). */
  context?: number;
  /** This token's embedding is NaN: feeding it makes the logits NaN (the NaN-logits tests). */
  nanToken?: number;
}

export function tinyDecoder(o: TinyDecoderOptions = {}): Uint8Array {
  const V = o.vocab ?? 50;
  const H = o.heads ?? 2;
  const D = o.headDim ?? 4;
  const E = H * D;
  const L = o.layers ?? 1;
  const ctx = o.context ?? 64;
  const legacy = o.layout === 'legacy';
  const rng = new Rng(o.seed ?? 7);
  const w = (name: string, shape: number[], scale: number) =>
    tensorProto(name, tensorFromNumbers('float32', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (rng.next() * 2 - 1) * scale)));
  const wte = w('wte', [V, E], 1);
  if (o.nanToken !== undefined) new Float32Array(wte.rawData!.buffer, wte.rawData!.byteOffset, V * E).fill(NaN, o.nanToken * E, (o.nanToken + 1) * E);
  const inits = [
    wte,
    w('wpe', [ctx, E], 0.5),
    w('lm_head', [E, V], 1),
    tensorProto('heads_shape', tensorFromNumbers('int64', [4], [0, 0, H, D])),
    tensorProto('merge_shape', tensorFromNumbers('int64', [3], [0, 0, E])),
    tensorProto('scale', tensorFromNumbers('float32', [], [1 / Math.sqrt(D)])),
    tensorProto('one', tensorFromNumbers('int64', [], [1])),
    tensorProto('neg', tensorFromNumbers('float32', [], [-1e9])),
    tensorProto('axis_last', tensorFromNumbers('int64', [], [1])),
    tensorProto('ax1', tensorFromNumbers('int64', [1], [1])),
    tensorProto('ax2', tensorFromNumbers('int64', [1], [2])),
  ];
  const nodes: NodeSpec[] = [];
  const n = (op: string, inputs: string[], outputs: string[], attrs?: NodeSpec['attrs']) => nodes.push({ op, inputs, outputs, attrs });
  n('Gather', ['wte', 'input_ids'], ['tok']);
  if (legacy) n('Identity', ['tok'], ['h0']);
  else {
    n('Gather', ['wpe', 'position_ids'], ['pos']);
    n('Add', ['tok', 'pos'], ['h0']);
    // Mask [B, 1, S, T]: key_pos[j] = cumsum(mask)[j] - 1 <= position_ids[i], and mask[j] = 1.
    n('CumSum', ['attention_mask', 'axis_last'], ['mask_cum']);
    n('Sub', ['mask_cum', 'one'], ['key_pos']);
    n('Unsqueeze', ['key_pos', 'ax1'], ['key_pos_1']); // [B, 1, T]
    n('Unsqueeze', ['position_ids', 'ax2'], ['q_pos']); // [B, S, 1]
    n('LessOrEqual', ['key_pos_1', 'q_pos'], ['causal']); // [B, S, T]
    n('Cast', ['attention_mask'], ['mask_bool'], [int('to', 9)]);
    n('Unsqueeze', ['mask_bool', 'ax1'], ['mask_bool_1']); // [B, 1, T]
    n('And', ['causal', 'mask_bool_1'], ['allowed_bst']);
    n('Unsqueeze', ['allowed_bst', 'ax1'], ['allowed']); // [B, 1, S, T]
  }
  const inputs = [vi('input_ids', 7, ['batch', 'sequence'])];
  if (!legacy) inputs.push(vi('attention_mask', 7, ['batch', 'total']), vi('position_ids', 7, ['batch', 'sequence']));
  const outputs = [vi('logits', 1, ['batch', 'sequence', V])];
  let h = 'h0';
  for (let l = 0; l < L; l++) {
    inits.push(w(`wq${l}`, [E, E], 1), w(`wk${l}`, [E, E], 1), w(`wv${l}`, [E, E], 1), w(`wo${l}`, [E, E], 0.5));
    const heads = (x: string, name: string) => {
      n('MatMul', [h, x], [`${name}_flat`]);
      n('Reshape', [`${name}_flat`, 'heads_shape'], [`${name}_4d`]);
      n('Transpose', [`${name}_4d`], [name], [ints('perm', [0, 2, 1, 3])]); // [B, H, S, D]
    };
    heads(`wq${l}`, `q${l}`);
    heads(`wk${l}`, `k${l}`);
    heads(`wv${l}`, `v${l}`);
    const pk = `past_key_values.${l}.key`;
    const pv = `past_key_values.${l}.value`;
    inputs.push(vi(pk, 1, ['batch', H, 'past', D]), vi(pv, 1, ['batch', H, 'past', D]));
    outputs.push(vi(`present.${l}.key`, 1, ['batch', H, 'total', D]), vi(`present.${l}.value`, 1, ['batch', H, 'total', D]));
    n('Concat', [pk, `k${l}`], [`present.${l}.key`], [int('axis', 2)]);
    n('Concat', [pv, `v${l}`], [`present.${l}.value`], [int('axis', 2)]);
    n('Transpose', [`present.${l}.key`], [`kt${l}`], [ints('perm', [0, 1, 3, 2])]);
    n('MatMul', [`q${l}`, `kt${l}`], [`s${l}_raw`]);
    n('Mul', [`s${l}_raw`, 'scale'], [`s${l}`]); // [B, H, S, T]
    if (legacy) n('Identity', [`s${l}`], [`s${l}_m`]);
    else n('Where', ['allowed', `s${l}`, 'neg'], [`s${l}_m`]);
    n('Softmax', [`s${l}_m`], [`p${l}`], [int('axis', -1)]);
    n('MatMul', [`p${l}`, `present.${l}.value`], [`a${l}`]); // [B, H, S, D]
    n('Transpose', [`a${l}`], [`a${l}_t`], [ints('perm', [0, 2, 1, 3])]);
    n('Reshape', [`a${l}_t`, 'merge_shape'], [`a${l}_m`]);
    n('MatMul', [`a${l}_m`, `wo${l}`], [`o${l}`]);
    n('Add', [h, `o${l}`], [`h${l + 1}`]);
    h = `h${l + 1}`;
  }
  n('MatMul', [h, 'lm_head'], ['logits']);
  return model({ nodes, inputs, outputs, initializers: inits, opset: 14 });
}
