import type { Graph } from '../../runtime/ir/graph.js';
import type { ValueMetadata } from '../session.js';
import { ModelLayoutError } from './errors.js';

/**
 * Which inputs and outputs of a decoder-only model carry what, discovered from their names. Two layouts:
 *
 *  - 'hf': Hugging Face's ONNX export (optimum, transformers.js models): input_ids [B, S], attention_mask [B, P+S],
 *    optional position_ids [B, S], past_key_values.{i}.key / .value [B, H, P, D] → logits [B, S, V],
 *    present.{i}.key / .value [B, H, P+S, D].
 *  - 'legacy': the older export without attention_mask: input_ids (and optionally position_ids) and the same past
 *    and present names. Rows of a batch must then have equal prompt lengths (nothing can mask padding).
 *
 * Encoder-decoder caches (past_key_values.{i}.decoder.key) and the combined past.{i} [2, B, H, P, D] form are not
 * read. Anything else is a ModelLayoutError that lists the names found and the names expected.
 */

export interface LayerCache {
  pastKey: string;
  pastValue: string;
  presentKey: string;
  presentValue: string;
}

export interface DecoderLayout {
  kind: 'hf' | 'legacy';
  inputIds: string;
  attentionMask?: string;
  positionIds?: string;
  logits: string;
  layers: LayerCache[];
  /** Key/value heads and head size (the cache's dims 1 and 3). */
  heads: number;
  headDim: number;
  cacheType: 'float32' | 'float16';
  idsType: 'int64' | 'int32';
  /** The logits' last dim, when the model declares it. */
  vocab?: number;
}

const EXPECTED =
  "input_ids, attention_mask (optional: the older layout has none), position_ids (optional), past_key_values.{i}.key and past_key_values.{i}.value for i = 0, 1, ...; outputs logits and present.{i}.key / present.{i}.value";

export function decoderLayout(inputs: readonly ValueMetadata[], outputs: readonly ValueMetadata[]): DecoderLayout {
  const inNames = new Set(inputs.map((i) => i.name));
  const outNames = new Set(outputs.map((o) => o.name));
  const fail = (why: string) =>
    new ModelLayoutError(
      `This model is not a decoder layout EdgeKit's TextGenerator knows: ${why}. Inputs found: ${[...inNames].join(', ') || 'none'}; outputs found: ${[...outNames].join(', ') || 'none'}. Expected inputs ${EXPECTED}.`,
      { inputs: [...inNames], outputs: [...outNames], expected: EXPECTED },
    );
  if (!inNames.has('input_ids')) throw fail("no input named 'input_ids'");
  if (!outNames.has('logits')) throw fail("no output named 'logits'");
  const layers: LayerCache[] = [];
  for (let i = 0; inNames.has(`past_key_values.${i}.key`) || inNames.has(`past_key_values.${i}.value`); i++) {
    const l = { pastKey: `past_key_values.${i}.key`, pastValue: `past_key_values.${i}.value`, presentKey: `present.${i}.key`, presentValue: `present.${i}.value` };
    for (const n of [l.pastKey, l.pastValue]) if (!inNames.has(n)) throw fail(`'${n}' is missing (layer ${i} has only half its cache)`);
    for (const n of [l.presentKey, l.presentValue]) if (!outNames.has(n)) throw fail(`output '${n}' is missing for layer ${i}`);
    layers.push(l);
  }
  if (!layers.length) throw fail('no past_key_values.{i}.key / .value inputs (a model exported without its KV cache)');
  const known = new Set(['input_ids', 'attention_mask', 'position_ids', ...layers.flatMap((l) => [l.pastKey, l.pastValue])]);
  const extra = [...inNames].filter((n) => !known.has(n));
  if (extra.length) throw fail(`input${extra.length > 1 ? 's' : ''} ${extra.map((n) => `'${n}'`).join(', ')} ${extra.length > 1 ? 'are' : 'is'} not part of it`);
  const meta = new Map(inputs.map((i) => [i.name, i]));
  const past = meta.get(layers[0]!.pastKey)!;
  const [heads, headDim] = [past.shape[1], past.shape[3]];
  if (past.shape.length !== 4 || typeof heads !== 'number' || typeof headDim !== 'number') {
    throw fail(`'${past.name}' should be [batch, heads, past, head size] with fixed heads and head size, but is [${past.shape.join(', ')}]`);
  }
  if (past.type !== 'float32' && past.type !== 'float16') throw fail(`the cache is ${past.type}; float32 or float16 expected`);
  const ids = meta.get('input_ids')!;
  if (ids.type !== 'int64' && ids.type !== 'int32') throw fail(`input_ids is ${ids.type}; int64 or int32 expected`);
  const logits = outputs.find((o) => o.name === 'logits')!;
  const width = logits.shape[logits.shape.length - 1];
  return {
    kind: inNames.has('attention_mask') ? 'hf' : 'legacy',
    inputIds: 'input_ids',
    attentionMask: inNames.has('attention_mask') ? 'attention_mask' : undefined,
    positionIds: inNames.has('position_ids') ? 'position_ids' : undefined,
    logits: 'logits',
    layers,
    heads,
    headDim,
    cacheType: past.type,
    idsType: ids.type,
    vocab: typeof width === 'number' ? width : undefined,
  };
}

/**
 * The context length a model's position table allows: the rows of the initializer that position_ids index with a
 * Gather (learned absolute positions, GPT-2 style). Undefined for models without one (rotary positions): the caller
 * passes `contextLength` then.
 */
export function positionTableRows(graph: Graph, positionIds: string | undefined): number | undefined {
  if (!positionIds) return undefined;
  const names = new Set([positionIds]);
  // Follow casts and reshapes of position_ids (exporters often Cast int64 → int32 first).
  for (let grew = true; grew; ) {
    grew = false;
    for (const n of graph.nodes) {
      if ((n.op === 'Cast' || n.op === 'Reshape' || n.op === 'Unsqueeze' || n.op === 'Identity') && names.has(n.inputs[0]!) && !names.has(n.outputs[0]!)) {
        names.add(n.outputs[0]!);
        grew = true;
      }
    }
  }
  for (const n of graph.nodes) {
    if (n.op !== 'Gather' || !names.has(n.inputs[1]!)) continue;
    const table = graph.initializers[n.inputs[0]!];
    if (table && table.shape.length === 2) return table.shape[0];
  }
  return undefined;
}
