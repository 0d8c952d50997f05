import { GpuDiffusionOps } from '../../runtime/backends/webgpu/kernels/diffusion.js';
import { EdgeKitError, InvalidArgumentError } from '../../runtime/errors.js';
import { sessionInternals } from '../internal.js';
import type { LoadOptions } from '../loading/options.js';
import { loadModelSource } from '../model-source.js';
import { InferenceSession, type SessionOptions } from '../session.js';
import { Tensor } from '../tensor.js';
import { checkTokenizer, loadTokenizer, type TextTokenizer } from '../text/tokenizer.js';
import {
  DiffusionPipeline, type DiffusionPreview, type DiffusionResult, type GenerateImageOptions, type LatentDecoding,
} from './pipeline.js';

/**
 * Latent diffusion in diffusers' ONNX folder layout (docs/diffusion.md): a text encoder, a noise-prediction UNet on
 * latents and a VAE decoder, with the scheduler and tokenizer beside them.
 *
 *   model_index.json                    the component list; read to find what the folder has and refuse what it can't run
 *   text_encoder/model.onnx             input_ids [N, L] (int32 or int64) -> last_hidden_state [N, L, D]
 *   unet/model.onnx                     sample, timestep, encoder_hidden_states -> noise prediction
 *   vae_decoder/model.onnx (+config.json with scaling_factor)
 *   scheduler/scheduler_config.json
 *   tokenizer/tokenizer.json (+tokenizer_config.json: model_max_length, pad_token)
 *   latent_preview.json (optional, EdgeKit's): the latent -> RGB preview projection { matrix, bias }
 *
 * generate() runs the text encoder once: one call over the distinct texts among the batch's prompts and, under
 * guidance, its negative prompts (the empty prompt by default). The states stay on the GPU on a WebGPU session; where
 * texts repeat they are copied into row order there (the combine kernel with one term of coefficient 1, exact), and
 * the result is fed to every UNet step as the batch-2N encoder_hidden_states (conditional rows, then unconditional).
 * The loop itself is DiffusionPipeline's.
 */

/** A diffusion folder lacks a part EdgeKit needs, or has one it cannot run. `details.missing` names it. */
export class DiffusionLayoutError extends EdgeKitError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('MODEL_FORMAT', message, details);
    this.name = 'DiffusionLayoutError';
  }
}

export interface LatentDiffusionComponents {
  unet: InferenceSession;
  /** Text encoder and tokenizer: required when the UNet has encoder_hidden_states. */
  textEncoder?: InferenceSession;
  tokenizer?: TextTokenizer;
  /** Prompt length in tokens (prompts are padded and truncated to it). Default: the text encoder's input_ids length. */
  maxLength?: number;
  /** Pad token id. Default: the tokenizer's pad token, else its EOS token (CLIP's convention). */
  padTokenId?: number;
  /** scheduler_config.json (text or parsed). */
  schedulerConfig?: string | Record<string, unknown>;
  /** The VAE decoder, its scaling factor, the preview projection and what previews use. */
  decoding?: LatentDecoding;
}

export interface LoadLatentDiffusionOptions {
  /** Session options for every component (backend, ...). */
  session?: SessionOptions;
  /** Per-component overrides; `integrity` and `externalDataIntegrity` belong here (they differ per file). */
  textEncoderSession?: SessionOptions;
  unetSession?: SessionOptions;
  vaeDecoderSession?: SessionOptions;
  /** Overrides vae_decoder/config.json's scaling_factor. */
  scalingFactor?: number;
  /** Overrides latent_preview.json. */
  projection?: { matrix: number[][]; bias?: number[] };
  preview?: LatentDecoding['preview'];
  /** Progress and cache options for the files fetched. */
  load?: LoadOptions;
}

export interface GenerateFromPromptOptions extends Omit<GenerateImageOptions, 'encoderHiddenStates' | 'classLabels' | 'nullClass' | 'batch'> {
  /** One prompt per sample. */
  prompt: string | readonly string[];
  /** The unconditional prompt(s) of classifier-free guidance (default ''), one for all or one per prompt. */
  negativePrompt?: string | readonly string[];
}

export interface LatentDiffusionResult extends DiffusionResult {
  /** The token ids fed to the text encoder (prompts, then negative prompts under guidance). */
  inputIds: number[][];
}

type Json = Record<string, unknown>;

const COMPONENTS_RUN = new Set(['unet', 'text_encoder', 'tokenizer', 'vae_decoder', 'scheduler']);
/** Components a model_index.json may list that generation does not need (image-to-image, safety checking). */
const COMPONENTS_IGNORED = new Set(['vae_encoder', 'safety_checker', 'feature_extractor', 'image_encoder']);

export class LatentDiffusionPipeline {
  readonly pipeline: DiffusionPipeline;
  readonly textEncoder: InferenceSession | undefined;
  readonly tokenizer: TextTokenizer | undefined;
  readonly maxLength: number | undefined;
  readonly #pad: number | undefined;
  readonly #idsType: 'int32' | 'int64';
  readonly #owned: InferenceSession[];

  private constructor(pipeline: DiffusionPipeline, c: LatentDiffusionComponents, maxLength: number | undefined, pad: number | undefined, owned: InferenceSession[]) {
    this.pipeline = pipeline;
    this.textEncoder = c.textEncoder;
    this.tokenizer = c.tokenizer;
    this.maxLength = maxLength;
    this.#pad = pad;
    this.#owned = owned;
    const ids = c.textEncoder?.inputMetadata.find((m) => m.name === 'input_ids');
    this.#idsType = ids?.type === 'int64' ? 'int64' : 'int32';
  }

  get unet(): InferenceSession {
    return this.pipeline.session;
  }

  get vaeDecoder(): InferenceSession | undefined {
    return this.pipeline.vaeDecoder;
  }

  /** From sessions the caller made. The caller keeps them (release() does not release them). */
  static create(c: LatentDiffusionComponents): LatentDiffusionPipeline {
    return LatentDiffusionPipeline.#make(c, []);
  }

  static #make(c: LatentDiffusionComponents, owned: InferenceSession[]): LatentDiffusionPipeline {
    const pipeline = DiffusionPipeline.create(c.unet, { schedulerConfig: c.schedulerConfig, decoding: c.decoding });
    const textual = c.unet.inputNames.includes('encoder_hidden_states');
    let maxLength: number | undefined;
    let pad: number | undefined;
    if (textual) {
      if (!c.textEncoder) throw new DiffusionLayoutError('The UNet is text-conditional (encoder_hidden_states) but there is no text encoder.', { missing: 'text_encoder' });
      if (!c.tokenizer) throw new DiffusionLayoutError('The UNet is text-conditional but there is no tokenizer.', { missing: 'tokenizer' });
      checkTokenizer(c.tokenizer);
      const ids = c.textEncoder.inputMetadata.find((m) => m.name === 'input_ids');
      if (!ids) throw new DiffusionLayoutError(`The text encoder has no input_ids input (its inputs: ${c.textEncoder.inputNames.join(', ')}).`, { missing: 'text_encoder input_ids' });
      const others = c.textEncoder.inputNames.filter((n) => n !== 'input_ids');
      if (others.length) throw new DiffusionLayoutError(`The text encoder has inputs besides input_ids that EdgeKit does not feed: ${others.join(', ')}.`, { unsupported: others });
      if (ids.type !== 'int32' && ids.type !== 'int64') throw new DiffusionLayoutError(`The text encoder's input_ids is ${ids.type}; int32 or int64 is needed.`, { type: ids.type });
      if (!c.textEncoder.outputNames.includes('last_hidden_state')) {
        throw new DiffusionLayoutError(`The text encoder has no last_hidden_state output (its outputs: ${c.textEncoder.outputNames.join(', ')}).`, { missing: 'text_encoder last_hidden_state' });
      }
      const declared = typeof ids.shape[1] === 'number' ? ids.shape[1] : undefined;
      maxLength = c.maxLength ?? declared;
      if (maxLength === undefined || !Number.isInteger(maxLength) || maxLength < 2) {
        throw new DiffusionLayoutError('The prompt length is unknown: the text encoder\'s input_ids has a symbolic length and there is no model_max_length (tokenizer_config.json) or maxLength.', { missing: 'model_max_length' });
      }
      pad = c.padTokenId ?? c.tokenizer.padTokenId ?? c.tokenizer.eosTokenId;
      if (pad === undefined) throw new DiffusionLayoutError('The tokenizer has neither a pad_token nor an eos_token to pad prompts with; pass padTokenId.', { missing: 'pad_token' });
    }
    return new LatentDiffusionPipeline(pipeline, c, maxLength, pad, owned);
  }

  /**
   * Loads a diffusers ONNX folder: a path in Node, a URL (or a path relative to the page) in browsers. Everything
   * the folder needs that EdgeKit does not support fails here with a DiffusionLayoutError naming it.
   */
  static async load(folder: string | URL, options: LoadLatentDiffusionOptions = {}): Promise<LatentDiffusionPipeline> {
    for (const key of ['integrity', 'externalDataIntegrity'] as const) {
      for (const [where, o] of [['load', options.load], ['session', options.session]] as const) {
        if ((o as Record<string, unknown> | undefined)?.[key] !== undefined) {
          // One digest cannot match three files: each component's digests go in its own options.
          throw new InvalidArgumentError(`LatentDiffusionPipeline.load: ${key} in options.${where} would apply to every component; give it per component in textEncoderSession, unetSession or vaeDecoderSession.`);
        }
      }
    }
    const base = String(folder).replace(/\/+$/, '');
    const at = (rel: string) => `${base}/${rel}`;
    const text = async (rel: string): Promise<string> => new TextDecoder().decode((await loadModelSource(at(rel), undefined, { ...options.load, integrity: undefined })).bytes);
    const json = async (rel: string): Promise<Json> => {
      const t = await text(rel);
      try {
        return JSON.parse(t) as Json;
      } catch (e) {
        throw new DiffusionLayoutError(`${rel} is not valid JSON: ${(e as Error).message}`, { file: rel });
      }
    };
    const optionalJson = async (rel: string): Promise<Json | undefined> => {
      try {
        return await json(rel);
      } catch (e) {
        if (e instanceof DiffusionLayoutError) throw e;
        return undefined;
      }
    };
    let index: Json;
    try {
      index = await json('model_index.json');
    } catch (e) {
      if (e instanceof DiffusionLayoutError) throw e;
      throw new DiffusionLayoutError(`No model_index.json in ${base}: this is not a diffusers folder (${(e as Error).message}).`, { missing: 'model_index.json' });
    }
    const listed = Object.keys(index).filter((k) => !k.startsWith('_') && Array.isArray(index[k]) && (index[k] as unknown[])[0] !== null);
    const unsupported = listed.filter((k) => !COMPONENTS_RUN.has(k) && !COMPONENTS_IGNORED.has(k));
    if (unsupported.length) {
      throw new DiffusionLayoutError(`The folder has components EdgeKit's latent pipeline does not run: ${unsupported.join(', ')} (text_encoder_2/tokenizer_2 are SDXL's; only one text encoder is supported).`, { unsupported });
    }
    for (const need of ['unet', 'scheduler'] as const) {
      if (!listed.includes(need)) throw new DiffusionLayoutError(`model_index.json lists no ${need}.`, { missing: need });
    }
    const sessionOptions = (o?: SessionOptions): SessionOptions => ({ ...options.session, ...options.load, ...o });
    const owned: InferenceSession[] = [];
    const session = async (name: string, o?: SessionOptions) => {
      let s: InferenceSession;
      try {
        s = await InferenceSession.create(at(`${name}/model.onnx`), sessionOptions(o));
      } catch (e) {
        const msg = (e as Error).message;
        if (e instanceof EdgeKitError && /Cannot read|Fetching|Cannot fetch/.test(msg)) {
          throw new DiffusionLayoutError(`${name}/model.onnx could not be read: ${msg}`, { missing: `${name}/model.onnx` });
        }
        throw e;
      }
      owned.push(s);
      return s;
    };
    try {
      let schedulerConfig: Json;
      try {
        schedulerConfig = await json('scheduler/scheduler_config.json');
      } catch (e) {
        if (e instanceof DiffusionLayoutError) throw e;
        throw new DiffusionLayoutError(`scheduler/scheduler_config.json could not be read: ${(e as Error).message}`, { missing: 'scheduler/scheduler_config.json' });
      }
      const unet = await session('unet', options.unetSession);
      let textEncoder: InferenceSession | undefined;
      let tokenizer: TextTokenizer | undefined;
      let maxLength: number | undefined;
      if (unet.inputNames.includes('encoder_hidden_states')) {
        if (!listed.includes('text_encoder')) throw new DiffusionLayoutError('The UNet is text-conditional but model_index.json lists no text_encoder.', { missing: 'text_encoder' });
        if (!listed.includes('tokenizer')) throw new DiffusionLayoutError('The UNet is text-conditional but model_index.json lists no tokenizer.', { missing: 'tokenizer' });
        let tokJson: string;
        try {
          tokJson = await text('tokenizer/tokenizer.json');
        } catch (e) {
          throw new DiffusionLayoutError(`tokenizer/tokenizer.json could not be read (${(e as Error).message}). EdgeKit loads a tokenizer.json; a folder with only vocab.json and merges.txt (CLIPTokenizer) needs one saved by transformers' fast tokenizer, or pass a tokenizer to LatentDiffusionPipeline.create().`, { missing: 'tokenizer/tokenizer.json' });
        }
        const tokConfig = (await optionalJson('tokenizer/tokenizer_config.json')) ?? {};
        tokenizer = await loadTokenizer(tokJson, tokConfig);
        const mml = tokConfig.model_max_length;
        // transformers writes a huge sentinel (1e30) when the length is unset.
        if (typeof mml === 'number' && Number.isInteger(mml) && mml > 1 && mml < 1e6) maxLength = mml;
        textEncoder = await session('text_encoder', options.textEncoderSession);
      }
      const decoding: LatentDecoding = { preview: options.preview };
      if (listed.includes('vae_decoder')) {
        const cfg = await optionalJson('vae_decoder/config.json');
        const sf = options.scalingFactor ?? (typeof cfg?.scaling_factor === 'number' ? cfg.scaling_factor : undefined);
        if (sf === undefined) {
          throw new DiffusionLayoutError('The VAE decoder\'s scaling_factor is unknown: vae_decoder/config.json is missing or has none; pass scalingFactor (0.18215 for Stable Diffusion 1.x/2.x).', { missing: 'vae_decoder/config.json scaling_factor' });
        }
        decoding.vaeDecoder = await session('vae_decoder', options.vaeDecoderSession);
        decoding.scalingFactor = sf;
      }
      const proj = options.projection ?? (await optionalJson('latent_preview.json'));
      if (proj && Array.isArray(proj.matrix)) decoding.projection = { matrix: proj.matrix as number[][], bias: proj.bias as number[] | undefined };
      return LatentDiffusionPipeline.#make({ unet, textEncoder, tokenizer, maxLength, schedulerConfig, decoding }, owned);
    } catch (e) {
      await Promise.all(owned.map((s) => s.release()));
      throw e;
    }
  }

  /** Prompt -> token ids: the tokenizer's ids (with its special tokens), truncated keeping the last token (EOS), padded. */
  tokenize(prompt: string): number[] {
    if (!this.tokenizer || this.maxLength === undefined) throw new InvalidArgumentError('This pipeline has no text encoder: its UNet is not text-conditional.');
    if (typeof prompt !== 'string') throw new InvalidArgumentError(`A prompt must be a string, got ${typeof prompt}.`);
    let ids = this.tokenizer.encode(prompt);
    if (ids.length > this.maxLength) ids = [...ids.slice(0, this.maxLength - 1), ids[ids.length - 1]!];
    return [...ids, ...new Array<number>(this.maxLength - ids.length).fill(this.#pad!)];
  }

  /**
   * The text encoder's last_hidden_state for these prompts, one call; on a WebGPU encoder it stays on the GPU. The
   * caller disposes the tensor.
   */
  async encodePrompts(prompts: readonly string[], signal?: AbortSignal): Promise<{ states: Tensor; inputIds: number[][] }> {
    const enc = this.textEncoder;
    if (!enc) throw new InvalidArgumentError('This pipeline has no text encoder: its UNet is not text-conditional.');
    const inputIds = prompts.map((p) => this.tokenize(p));
    const flat = inputIds.flat();
    const data = this.#idsType === 'int64' ? BigInt64Array.from(flat.map(BigInt)) : Int32Array.from(flat);
    const gpu = enc.backend === 'webgpu' && this.unet.backend === 'webgpu';
    const out = await enc.run({ input_ids: new Tensor(this.#idsType, data, [prompts.length, this.maxLength!]) }, {
      outputs: ['last_hidden_state'], signal, ...(gpu ? { preferredOutputLocation: 'gpu-buffer' as const } : {}),
    });
    let states = out.last_hidden_state!;
    if (!gpu && states.location !== 'cpu') {
      const host = new Tensor(states.type, await states.getData(), [...states.dims]);
      states.dispose();
      states = host;
    }
    return { states, inputIds };
  }

  /** Text to image: the text encoder once, the sampling loop, the VAE decoder for previews and the result. */
  async generate(o: GenerateFromPromptOptions): Promise<LatentDiffusionResult> {
    const prompts = typeof o.prompt === 'string' ? [o.prompt] : [...(o.prompt ?? [])];
    if (!prompts.length) throw new InvalidArgumentError('prompt must be a string or a non-empty array of strings.');
    const guided = (o.guidanceScale ?? 1) !== 1;
    let rows = prompts;
    if (guided) {
      const neg = o.negativePrompt ?? '';
      const negs = typeof neg === 'string' ? prompts.map(() => neg) : [...neg];
      if (negs.length !== prompts.length) throw new InvalidArgumentError(`negativePrompt has ${negs.length} entries for ${prompts.length} prompts.`);
      rows = [...prompts, ...negs];
    } else if (o.negativePrompt !== undefined) {
      throw new InvalidArgumentError('negativePrompt applies under classifier-free guidance (guidanceScale ≠ 1).');
    }
    // Each distinct text once (a batch of one prompt under guidance: two texts, not 2N).
    const unique = [...new Set(rows)];
    const encoded = await this.encodePrompts(unique, o.signal);
    const index = rows.map((r) => unique.indexOf(r));
    const inputIds = index.map((k) => encoded.inputIds[k]!);
    let states = encoded.states;
    if (unique.length !== rows.length) {
      try {
        states = await this.#expandRows(encoded.states, index);
      } finally {
        encoded.states.dispose();
      }
    }
    try {
      const { prompt: _p, negativePrompt: _n, ...rest } = o;
      const r = await this.pipeline.generate({ ...rest, batch: prompts.length, encoderHiddenStates: states });
      return { ...r, inputIds };
    } finally {
      states.dispose();
    }
  }

  /** Rows `index[r]` of `states` [k, L, D] as a new [index.length, L, D] tensor, on the GPU when it is there. */
  async #expandRows(states: Tensor, index: number[]): Promise<Tensor> {
    const [, len, dim] = states.dims as [number, number, number];
    const row = len * dim;
    const f = states.gpuFeed();
    if (f && f.storage === 'f32') {
      const res = await sessionInternals(this.unet).gpu();
      const ops = await GpuDiffusionOps.create(res);
      const lease = res.memory.acquire(Math.max(16, index.length * row * 4), undefined, 'edgekit-diffusion-text-states');
      try {
        index.forEach((k, r) => ops.combine(lease.buffer, r * row, row, [{ buffer: f.buffer, offset: f.offset / 4 + k * row, coef: 1 }]));
      } catch (e) {
        res.memory.release(lease);
        throw e;
      } finally {
        ops.dispose();
      }
      return Tensor.fromGpu({ buffer: lease.buffer, offset: 0, storage: 'f32', dtype: 'float32', shape: [index.length, len, dim], lease }, res.memory);
    }
    const src = (await states.getData()) as Float32Array;
    const out = new Float32Array(index.length * row);
    index.forEach((k, r) => out.set(src.subarray(k * row, (k + 1) * row), r * row));
    return new Tensor('float32', out, [index.length, len, dim]);
  }

  /** Releases the sessions load() created (not those passed to create()). */
  async release(): Promise<void> {
    await Promise.all(this.#owned.map((s) => s.release()));
  }
}

export type { DiffusionPreview };
