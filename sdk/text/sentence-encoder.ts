import { InvalidArgumentError } from '../../runtime/errors.js';
import { sessionInternals } from '../internal.js';
import type { ModelSource } from '../model-source.js';
import { InferenceSession, type SessionOptions } from '../session.js';
import { Tensor } from '../tensor.js';
import { ModelLayoutError, VocabularyMismatchError } from './errors.js';
import { checkTokenizer, promptIds, type TextTokenizer } from './tokenizer.js';

/**
 * Encoder models (BERT-style) over text: sentence embeddings and sequence classification.
 *
 *   const enc = await SentenceEncoder.create(bytes, { tokenizer });
 *   const [a, b] = await enc.embed(['a cat', 'a dog'], { pooling: 'mean' });   // unit vectors
 *   const [{ label, score }] = await enc.classify('great film');
 *
 * Inputs are found by name: input_ids, attention_mask (optional), token_type_ids (optional, zeros). A batch is padded
 * on the right with the pad id and masked. embed() reads the first output whose rank is 3 ([B, S, H]: the hidden
 * states, `last_hidden_state` preferred) and pools it on the host: 'mean' averages the rows the mask keeps
 * (sentence-transformers' mean pooling), 'cls' takes the first token; or a rank-2 output ([B, H], e.g.
 * `sentence_embedding`) already pooled by the model. classify() reads `logits` [B, C] and applies softmax.
 */

export interface SentenceEncoderOptions {
  tokenizer?: TextTokenizer;
  /** Fed for padding. Default: the tokenizer's pad id, else 0. */
  padTokenId?: number;
  /** Class names by index for classify() (config.json's id2label); default 'LABEL_i'. */
  labels?: readonly string[] | Record<number, string>;
  session?: SessionOptions;
}

export interface EmbedOptions {
  /** Default 'mean'. */
  pooling?: 'mean' | 'cls';
  /** Scale each embedding to unit length (L2). Default true. */
  normalize?: boolean;
}

export interface Classification {
  label: string;
  /** Softmax probability of `label`. */
  score: number;
  /** Every class's probability, by index. */
  scores: number[];
}

export class SentenceEncoder {
  readonly session: InferenceSession;
  readonly tokenizer: TextTokenizer | undefined;
  readonly #options: SentenceEncoderOptions;
  readonly #owns: boolean;

  private constructor(session: InferenceSession, options: SentenceEncoderOptions, owns: boolean) {
    this.session = session;
    this.tokenizer = options.tokenizer;
    this.#options = options;
    this.#owns = owns;
  }

  static async create(model: InferenceSession | ModelSource, options: SentenceEncoderOptions = {}): Promise<SentenceEncoder> {
    if (options.tokenizer !== undefined) checkTokenizer(options.tokenizer);
    const owns = !(model instanceof InferenceSession);
    const session = model instanceof InferenceSession ? model : await InferenceSession.create(model, options.session);
    try {
      const names = session.inputNames;
      const known = new Set(['input_ids', 'attention_mask', 'token_type_ids']);
      if (!names.includes('input_ids') || names.some((n) => !known.has(n))) {
        throw new ModelLayoutError(
          `This model is not an encoder layout SentenceEncoder knows. Inputs found: ${names.join(', ')}. Expected input_ids, and optionally attention_mask and token_type_ids.`,
          { inputs: [...names], expected: [...known] },
        );
      }
      // The embedding table's rows bound the ids: checked against the tokenizer when the graph declares it.
      const size = options.tokenizer?.vocabSize;
      if (size !== undefined) {
        const rows = embeddingRows(session);
        if (rows !== undefined && size > rows) throw new VocabularyMismatchError(size, rows);
      }
      return new SentenceEncoder(session, options, owns);
    } catch (e) {
      if (owns) await session.release();
      throw e;
    }
  }

  /** Runs a batch: ids padded on the right, with its mask. Returns the requested outputs (on the host). */
  async #run(texts: readonly (string | readonly number[])[], outputs: string[]): Promise<{ out: Record<string, Tensor>; mask: number[][] }> {
    if (!texts.length) throw new InvalidArgumentError('Pass at least one text.');
    const ids = texts.map((t, r) => promptIds(t, this.tokenizer, r));
    const width = Math.max(1, ...ids.map((r) => r.length));
    const pad = this.#options.padTokenId ?? this.tokenizer?.padTokenId ?? 0;
    const mask = ids.map((r) => Array.from({ length: width }, (_, i) => (i < r.length ? 1 : 0)));
    const type = (name: string) => (this.session.inputMetadata.find((m) => m.name === name)?.type === 'int32' ? 'int32' : 'int64');
    const tensor = (name: string, rows: number[][]) => {
      const flat = rows.flat();
      return type(name) === 'int32' ? new Tensor('int32', Int32Array.from(flat), [rows.length, width]) : new Tensor('int64', BigInt64Array.from(flat, (x) => BigInt(x)), [rows.length, width]);
    };
    const feeds: Record<string, Tensor> = { input_ids: tensor('input_ids', ids.map((r) => [...r, ...new Array<number>(width - r.length).fill(pad)])) };
    if (this.session.inputNames.includes('attention_mask')) feeds.attention_mask = tensor('attention_mask', mask);
    if (this.session.inputNames.includes('token_type_ids')) feeds.token_type_ids = tensor('token_type_ids', mask.map((m) => m.map(() => 0)));
    const out = await this.session.run(feeds, { outputs, preferredOutputLocation: 'cpu' });
    return { out, mask };
  }

  /** One embedding per text (Float32Array of the hidden size). */
  async embed(texts: string | readonly (string | readonly number[])[], options: EmbedOptions = {}): Promise<Float32Array[]> {
    const list = typeof texts === 'string' ? [texts] : texts;
    const pooling = options.pooling ?? 'mean';
    if (pooling !== 'mean' && pooling !== 'cls') throw new InvalidArgumentError(`pooling must be 'mean' or 'cls', not '${String(pooling)}'.`);
    const meta = this.session.outputMetadata;
    const hidden = meta.find((o) => o.name === 'last_hidden_state') ?? meta.find((o) => o.shape.length === 3) ?? meta.find((o) => o.shape.length === 2 && o.name !== 'logits');
    if (!hidden) throw new ModelLayoutError(`No output to embed from: expected last_hidden_state [B, S, H] or a pooled [B, H] output; outputs found: ${meta.map((o) => o.name).join(', ')}.`);
    const { out, mask } = await this.#run(list, [hidden.name]);
    const t = out[hidden.name]!;
    const data = (await t.getData()) as Float32Array;
    const H = t.dims[t.dims.length - 1]!;
    const S = t.dims.length === 3 ? t.dims[1]! : 1;
    const result = list.map((_, r) => {
      const e = new Float32Array(H);
      if (t.dims.length === 2) e.set(data.subarray(r * H, (r + 1) * H));
      else if (pooling === 'cls') e.set(data.subarray(r * S * H, r * S * H + H));
      else {
        // Mean over the positions the mask keeps (sentence-transformers' mean pooling), summed in float64.
        const acc = new Float64Array(H);
        let n = 0;
        for (let s = 0; s < S; s++) {
          if (!mask[r]![s]) continue;
          n++;
          for (let h = 0; h < H; h++) acc[h]! += data[(r * S + s) * H + h]!;
        }
        for (let h = 0; h < H; h++) e[h] = acc[h]! / Math.max(n, 1);
      }
      if (options.normalize ?? true) {
        let sq = 0;
        for (const x of e) sq += x * x;
        const inv = 1 / Math.max(Math.sqrt(sq), 1e-12);
        for (let h = 0; h < H; h++) e[h]! *= inv;
      }
      return e;
    });
    t.dispose();
    return result;
  }

  /** The class of each text, from the `logits` [B, C] output. */
  async classify(texts: string | readonly (string | readonly number[])[]): Promise<Classification[]> {
    const list = typeof texts === 'string' ? [texts] : texts;
    if (!this.session.outputNames.includes('logits')) {
      throw new ModelLayoutError(`classify() reads a 'logits' output [batch, classes]; outputs found: ${this.session.outputNames.join(', ')}.`);
    }
    const { out } = await this.#run(list, ['logits']);
    const t = out.logits!;
    if (t.dims.length !== 2) throw new ModelLayoutError(`classify() expects logits [batch, classes], got [${t.dims.join(', ')}].`);
    const data = (await t.getData()) as Float32Array;
    const C = t.dims[1]!;
    const labels = this.#options.labels;
    return list.map((_, r) => {
      const row = Array.from(data.subarray(r * C, (r + 1) * C));
      const m = Math.max(...row);
      const e = row.map((x) => Math.exp(x - m));
      const sum = e.reduce((a, b) => a + b, 0);
      const scores = e.map((x) => x / sum);
      let best = 0;
      scores.forEach((s, i) => s > scores[best]! && (best = i));
      const label = (Array.isArray(labels) ? labels[best] : (labels as Record<number, string> | undefined)?.[best]) ?? `LABEL_${best}`;
      return { label, score: scores[best]!, scores };
    });
  }

  async release(): Promise<void> {
    if (this.#owns) await this.session.release();
  }
}

/** Rows of the word-embedding table input_ids index (a Gather on an initializer), when the graph has one. */
function embeddingRows(session: InferenceSession): number | undefined {
  const g = sessionInternals(session).graph;
  for (const n of g.nodes) {
    if (n.op !== 'Gather' || n.inputs[1] !== 'input_ids') continue;
    const t = g.initializers[n.inputs[0]!];
    if (t && t.shape.length === 2) return t.shape[0];
  }
  return undefined;
}
