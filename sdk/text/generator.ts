import { CancelledError, InvalidArgumentError } from '../../runtime/errors.js';
import { isGreedy, sampleRow, samplingKeys, type SamplingParams } from '../../runtime/backends/cpu/sampling.js';
import { GpuSampler } from '../../runtime/backends/webgpu/kernels/sampling.js';
import { sessionInternals } from '../internal.js';
import type { ModelSource } from '../model-source.js';
import { InferenceSession, type SessionOptions } from '../session.js';
import { Tensor } from '../tensor.js';
import { ContextLengthError, NonFiniteLogitsError, VocabularyMismatchError } from './errors.js';
import { decoderLayout, positionTableRows, type DecoderLayout } from './layout.js';
import { checkTokenizer, promptIds, type ChatMessage, type ChatTemplateOptions, type TextTokenizer } from './tokenizer.js';

/**
 * Text generation with a decoder-only ONNX model (sdk/text/layout.ts says which layouts):
 *
 *   const gen = await TextGenerator.create(modelBytes, { tokenizer: await loadTokenizer(json, config) });
 *   const { text, tokensPerSecond } = await gen.generate('Once upon a time', { maxNewTokens: 40, temperature: 0.8, topP: 0.9, seed: 1 });
 *   for await (const t of gen.stream('Once upon a time')) process.stdout.write(t.text);
 *
 * Each step runs the model once on the new tokens with the previous steps' keys and values as `past`. On WebGPU
 * the logits and the presents are kept on the GPU ('gpu-buffer' outputs): presents feed the next step's past as
 * GPU tensors, bound into the next plan as they are (no copy, never through the host; report().gpu.inputCopyBytes
 * and outputCopyBytes stay 0 on the exports tested), the sampler (runtime/backends/webgpu/kernels/sampling.ts)
 * reads the logits where they are, and only the chosen ids (8 bytes a row) come back. On the CPU backend the CPU
 * twin of the sampler chooses with the same arithmetic and the same random stream, so a seed gives the same
 * tokens on both.
 *
 * Batches: prompts of different lengths are padded on the left (attention_mask 0, position ids counting real
 * tokens, as transformers does); a row that meets a stop id is finished and fed padding until every row is.
 */

export interface TextGeneratorOptions {
  /** Turns text into ids and back; without it, prompts must be token ids and results carry no text. */
  tokenizer?: TextTokenizer;
  /**
   * The longest sequence (prompt + generated) the model handles. Default: the rows of the learned position table
   * position_ids index (GPT-2 style); models without one (rotary positions) should say it here.
   */
  contextLength?: number;
  /** Fed for padding and finished rows. Default: the tokenizer's pad id, else its EOS id, else 0. */
  padTokenId?: number;
  /** Session options when `model` is bytes or a URL (backend, ...). */
  session?: SessionOptions;
}

export interface GenerateOptions {
  /** Most new tokens per row. Default 32. */
  maxNewTokens?: number;
  /** 0 (default) is greedy decoding; above 0 samples from softmax(logits / temperature). */
  temperature?: number;
  /** Keep only the k most likely tokens (0 = off). */
  topK?: number;
  /** Keep the smallest set of most likely tokens with probability mass >= topP (1 = off). */
  topP?: number;
  /** > 1 discourages tokens already in the row (prompt included); 1 = off. */
  repetitionPenalty?: number;
  /** Integer in [0, 2^32): the same seed gives the same tokens (on either backend). Default: a random seed, returned in the result. */
  seed?: number;
  /** A row stops after producing one of these (the tokenizer's EOS id is not added implicitly). */
  stopTokenIds?: readonly number[];
  /** Cancels between steps with a CancelledError; the KV cache is released. */
  signal?: AbortSignal;
  /** Called with every new token as it is chosen. */
  onToken?: (token: GeneratedToken) => void;
}

export interface GeneratedToken {
  /** The batch row (0 for a single prompt). */
  row: number;
  /** 0 for the first new token. */
  step: number;
  id: number;
  /** The text this token adds (empty when the tokenizer needs the next token to finish a character). */
  text: string;
}

export interface GeneratedRow {
  /** New tokens, stop token included. */
  tokens: number[];
  /** Their text (stop token excluded), when the generator has a tokenizer. */
  text: string;
  finishReason: 'stop' | 'length';
}

export interface GenerationResult {
  /** Row 0's tokens and text (the whole result for a single prompt). */
  tokens: number[];
  text: string;
  rows: GeneratedRow[];
  /** From the call to the first token's id on the host, in milliseconds (prefill plus one sampling). */
  timeToFirstTokenMs: number;
  /** Tokens after the first (all rows) per second of the time after the first token; 0 when only one step ran. */
  tokensPerSecond: number;
  /** The seed the draws used (the one given, or the random one chosen). */
  seed: number;
  steps: number;
}

export type Prompt = string | readonly number[];

export class TextGenerator {
  readonly session: InferenceSession;
  readonly layout: DecoderLayout;
  readonly tokenizer: TextTokenizer | undefined;
  /** Longest sequence the model handles (Infinity when unknown). */
  readonly contextLength: number;
  readonly #pad: number;
  readonly #ownsSession: boolean;
  #busy: Promise<unknown> = Promise.resolve();

  private constructor(session: InferenceSession, layout: DecoderLayout, options: TextGeneratorOptions, contextLength: number, owns: boolean) {
    this.session = session;
    this.layout = layout;
    this.tokenizer = options.tokenizer;
    this.contextLength = contextLength;
    this.#pad = options.padTokenId ?? options.tokenizer?.padTokenId ?? options.tokenizer?.eosTokenId ?? 0;
    this.#ownsSession = owns;
  }

  /**
   * A generator over an InferenceSession, or over model bytes / a URL (a session is created with
   * `options.session`, and released by release()). Checks the layout and the tokenizer against the logits width.
   */
  static async create(model: InferenceSession | ModelSource, options: TextGeneratorOptions = {}): Promise<TextGenerator> {
    if (options.tokenizer !== undefined) checkTokenizer(options.tokenizer);
    const owns = !(model instanceof InferenceSession);
    const session = model instanceof InferenceSession ? model : await InferenceSession.create(model, options.session);
    try {
      const layout = decoderLayout(session.inputMetadata, session.outputMetadata);
      const size = options.tokenizer?.vocabSize;
      if (size !== undefined && layout.vocab !== undefined && size > layout.vocab) throw new VocabularyMismatchError(size, layout.vocab);
      const ctx = options.contextLength ?? positionTableRows(sessionInternals(session).graph, layout.positionIds) ?? Infinity;
      if (options.contextLength !== undefined && (!Number.isInteger(ctx) || ctx < 1)) throw new InvalidArgumentError(`contextLength must be a positive integer, not ${ctx}.`);
      return new TextGenerator(session, layout, options, ctx, owns);
    } catch (e) {
      if (owns) await session.release();
      throw e;
    }
  }

  /** The model's chat template over `messages` (tokenizers loaded from a config with `chat_template`). */
  applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateOptions): string {
    if (!this.tokenizer?.applyChatTemplate) throw new InvalidArgumentError("This generator's tokenizer has no chat template (tokenizer_config.json's chat_template).");
    return this.tokenizer.applyChatTemplate(messages, options);
  }

  /** Generates a continuation of one prompt or of a batch (an array of prompts). */
  async generate(prompt: Prompt | readonly Prompt[], options: GenerateOptions = {}): Promise<GenerationResult> {
    const it = this.stream(prompt, options);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
    }
  }

  /**
   * The same, as an async iterator of tokens as they are chosen (all rows of a step, in row order); its return
   * value is the GenerationResult. Breaking out of the loop stops generation and frees the cache.
   */
  stream(prompt: Prompt | readonly Prompt[], options: GenerateOptions = {}): AsyncGenerator<GeneratedToken, GenerationResult, undefined> {
    // Calls run one after another: each holds a KV cache, and the session's plans are shared. The turn is taken
    // when the iterator starts (generate() starts it at once), so a stream never iterated blocks nobody.
    const self = this;
    return (async function* () {
      const prev = self.#busy;
      let release!: () => void;
      self.#busy = new Promise<void>((r) => (release = r));
      await prev;
      try {
        return yield* self.#run(prompt, options);
      } finally {
        release();
      }
    })();
  }

  async *#run(prompt: Prompt | readonly Prompt[], o: GenerateOptions): AsyncGenerator<GeneratedToken, GenerationResult, undefined> {
    const t0 = performance.now();
    const single = typeof prompt === 'string' || (Array.isArray(prompt) && prompt.every((x) => typeof x === 'number'));
    const prompts = (single ? [prompt] : prompt) as readonly Prompt[];
    if (!prompts.length) throw new InvalidArgumentError('generate() needs at least one prompt.');
    const ids = prompts.map((p, r) => promptIds(p, this.tokenizer, r));
    const params = samplingOptions(o);
    const maxNew = o.maxNewTokens ?? 32;
    if (!Number.isInteger(maxNew) || maxNew < 0) throw new InvalidArgumentError(`maxNewTokens must be a non-negative integer, not ${maxNew}.`);
    const stops = new Set(o.stopTokenIds ?? []);
    const L = this.layout;
    const B = ids.length;
    ids.forEach((row, r) => {
      if (!row.length) throw new InvalidArgumentError(`Prompt ${r} has no tokens; generation needs at least one.`);
      if (row.length > this.contextLength) throw new ContextLengthError(row.length, this.contextLength, r);
      const bad = row.find((x) => L.vocab !== undefined && x >= L.vocab);
      if (bad !== undefined) throw new InvalidArgumentError(`Prompt ${r} holds token id ${bad}, outside the model's ${L.vocab} logits.`, { row: r, id: bad });
    });
    const width = Math.max(...ids.map((r) => r.length));
    if (!L.attentionMask && ids.some((r) => r.length !== width)) {
      throw new InvalidArgumentError(`This model has no attention_mask input, so a batch's prompts must have equal lengths (got ${ids.map((r) => r.length).join(', ')}); generate them one at a time.`);
    }
    const signal = o.signal;
    const checkAbort = (step: number) => {
      if (signal?.aborted) throw new CancelledError('aborted', { step, running: step > 0 }, { cause: signal.reason });
    };
    checkAbort(0);

    const gpu = this.session.backend === 'webgpu';
    // Inputs of the first step: prompts padded on the left.
    const mask: number[][] = ids.map((r) => [...new Array<number>(width - r.length).fill(0), ...r.map(() => 1)]);
    let input: number[][] = ids.map((r) => [...new Array<number>(width - r.length).fill(this.#pad), ...r]);
    // Positions count real tokens; padding gets 1 (transformers' convention; those keys are masked anyway).
    let positions: number[][] = mask.map((m) => {
      let c = -1;
      return m.map((x) => (x ? ++c : 1));
    });
    const generated: number[][] = ids.map(() => []);
    const finished: ('stop' | 'length' | undefined)[] = ids.map(() => undefined);
    let past: Record<string, Tensor> = {};
    const emptyCache = new Tensor(L.cacheType, L.cacheType === 'float16' ? new Uint16Array(0) : new Float32Array(0), [B, L.heads, 0, L.headDim]);
    for (const l of L.layers) past[l.pastKey] = past[l.pastValue] = emptyCache;
    let sampler: GpuSampler | undefined;
    // CPU: each row's seen-token flags for the repetition penalty (on WebGPU the sampler keeps them on the GPU).
    let seenFlags: Uint8Array[] | undefined;
    const typeOf = (name: string) => (this.session.inputMetadata.find((m) => m.name === name)!.type === 'int32' ? 'int32' : 'int64');
    let fed = width;
    let firstAt = 0;
    let steps = 0;
    const decoded = ids.map(() => '');
    const outputs = [L.logits, ...L.layers.flatMap((l) => [l.presentKey, l.presentValue])];
    try {
      for (let step = 0; step < maxNew; step++) {
        checkAbort(step);
        const S = input[0]!.length;
        const feeds: Record<string, Tensor> = { ...past, [L.inputIds]: intTensor(L.idsType, input, S) };
        if (L.attentionMask) feeds[L.attentionMask] = intTensor(typeOf(L.attentionMask), mask, fed);
        if (L.positionIds) feeds[L.positionIds] = intTensor(typeOf(L.positionIds), positions, S);
        const out = await this.session.run(feeds, { outputs, ...(gpu ? { preferredOutputLocation: 'gpu-buffer' as const } : {}) });
        for (const t of new Set(Object.values(past))) t.dispose();
        past = {};
        for (const l of L.layers) {
          past[l.pastKey] = out[l.presentKey]!;
          past[l.pastValue] = out[l.presentValue]!;
        }
        const logits = out[L.logits]!;
        let chosen: number[];
        let nanRows: number[];
        try {
          const V = logits.dims[logits.dims.length - 1]!;
          // Models that leave the logits' width symbolic are checked on their first logits instead of at create().
          const size = this.tokenizer?.vocabSize;
          if (step === 0 && L.vocab === undefined && size !== undefined && size > V) throw new VocabularyMismatchError(size, V);
          if (gpu) {
            if (!sampler) {
              sampler = await GpuSampler.create(await sessionInternals(this.session).gpu(), B, V);
              sampler.setSeen(params.repetitionPenalty !== 1 ? ids : []);
            }
            const r = await sampler.sample(logits.gpuFeed()!, params, step);
            chosen = Array.from(r.tokens);
            nanRows = r.nan.flatMap((n, i) => (n ? [i] : []));
          } else {
            const data = logits.data as Float32Array;
            if (params.repetitionPenalty !== 1) {
              seenFlags ??= ids.map((row) => {
                const f = new Uint8Array(V);
                for (const x of row) if (x < V) f[x] = 1;
                return f;
              });
            }
            const picks = ids.map((_, r) => sampleRow(data, (r * S + S - 1) * V, V, seenFlags?.[r], params, r, step));
            chosen = picks.map((p) => p.token);
            nanRows = picks.flatMap((p, i) => (p.nan ? [i] : []));
            if (seenFlags) chosen.forEach((t, r) => t >= 0 && (seenFlags![r]![t] = 1));
          }
        } finally {
          logits.dispose();
        }
        // Only live rows can stop generation: a finished row is fed padding, whatever its logits.
        const bad = nanRows.filter((r) => !finished[r]);
        if (bad.length) throw new NonFiniteLogitsError(step, bad, generated.map((g) => [...g]));
        if (step === 0) firstAt = performance.now();
        steps++;
        for (let r = 0; r < B; r++) {
          if (finished[r]) continue;
          const id = chosen[r]!;
          generated[r]!.push(id);
          let text = '';
          if (this.tokenizer && !stops.has(id)) {
            const all = this.tokenizer.decode(generated[r]!);
            // A piece that ends in U+FFFD waits for the next token (a character split across byte tokens).
            if (!all.endsWith('\uFFFD')) {
              text = all.slice(decoded[r]!.length);
              decoded[r] = all;
            }
          }
          if (stops.has(id)) finished[r] = 'stop';
          const token: GeneratedToken = { row: r, step, id, text };
          o.onToken?.(token);
          yield token;
        }
        if (finished.every(Boolean)) break;
        if (fed + 1 > this.contextLength) break;
        input = chosen.map((id, r) => [finished[r] ? this.#pad : id]);
        for (const m of mask) m.push(1);
        positions = positions.map((p) => [p[p.length - 1]! + 1]);
        fed++;
      }
    } finally {
      for (const t of new Set(Object.values(past))) t.dispose();
      emptyCache.dispose();
      sampler?.dispose();
    }
    const end = performance.now();
    const rows: GeneratedRow[] = generated.map((g, r) => ({
      tokens: g,
      text: this.tokenizer ? this.tokenizer.decode(finished[r] === 'stop' ? g.slice(0, -1) : g) : '',
      finishReason: finished[r] ?? 'length',
    }));
    const after = generated.reduce((a, g) => a + Math.max(0, g.length - 1), 0);
    return {
      tokens: rows[0]!.tokens,
      text: rows[0]!.text,
      rows,
      timeToFirstTokenMs: steps ? firstAt - t0 : 0,
      tokensPerSecond: steps > 1 && end > firstAt ? after / ((end - firstAt) / 1000) : 0,
      seed: params.seed,
      steps,
    };
  }

  /** Releases the session when the generator created it (from bytes or a URL). */
  async release(): Promise<void> {
    await this.#busy;
    if (this.#ownsSession) await this.session.release();
  }
}

function samplingOptions(o: GenerateOptions): SamplingParams & { seed: number } {
  const temperature = o.temperature ?? 0;
  const topK = o.topK ?? 0;
  const topP = o.topP ?? 1;
  const repetitionPenalty = o.repetitionPenalty ?? 1;
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new InvalidArgumentError(what);
  };
  check(Number.isFinite(temperature) && temperature >= 0, `temperature must be >= 0 (0 is greedy), not ${temperature}.`);
  check(Number.isInteger(topK) && topK >= 0, `topK must be a non-negative integer (0 is off), not ${topK}.`);
  check(topP > 0 && topP <= 1, `topP must be in (0, 1] (1 is off), not ${topP}.`);
  check(Number.isFinite(repetitionPenalty) && repetitionPenalty > 0, `repetitionPenalty must be > 0 (1 is off), not ${repetitionPenalty}.`);
  const seed = o.seed ?? Math.floor(Math.random() * 2 ** 32);
  check(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 32, `seed must be an integer in [0, 2^32), not ${seed}.`);
  const p = { temperature, topK, topP, repetitionPenalty, keys: samplingKeys(seed), seed };
  if (isGreedy(p)) p.temperature = 0;
  return p;
}

/** A [rows, width] integer tensor. */
function intTensor(t: 'int64' | 'int32', rows: readonly (readonly number[])[], width: number): Tensor {
  const flat = rows.flat();
  return t === 'int64' ? new Tensor('int64', BigInt64Array.from(flat, (x) => BigInt(x)), [rows.length, width]) : new Tensor('int32', Int32Array.from(flat), [rows.length, width]);
}
