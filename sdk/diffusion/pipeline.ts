import { GpuDiffusionOps, type CombineTerm } from '../../runtime/backends/webgpu/kernels/diffusion.js';
import type { GpuBufferLease, GpuMemory } from '../../runtime/backends/webgpu/memory.js';
import { CancelledError, InvalidArgumentError } from '../../runtime/errors.js';
import { sessionInternals } from '../internal.js';
import type { InferenceSession } from '../session.js';
import { Tensor } from '../tensor.js';
import {
  DEFAULT_SCHEDULE, parseSchedulerConfig, planSampling, validateSchedule,
  type NoiseScheduleConfig, type SamplingPlan, type SchedulerName,
} from './schedulers.js';

/**
 * The diffusion sampling loop over a noise-prediction UNet session (docs/diffusion.md).
 *
 * On a WebGPU session the latents, the noise, the doubled batch of the guidance call and the DPM-Solver history are
 * GPU buffers for the whole loop: the UNet's output stays on the GPU (preferredOutputLocation 'gpu-buffer'), and the
 * guidance combine, the scheduler update and the next model input are dispatches of one linear-combination kernel
 * (runtime/backends/webgpu/kernels/diffusion.ts). Only the timestep and class-label feeds (a few bytes) go up each
 * step, and only previews and the final latents come down. On a CPU session the same coefficients are applied on
 * the host.
 */

/**
 * Turns latents into pixels for previews and the result: a VAE decoder session (fed `latents / scalingFactor`), or
 * the cheap per-pixel linear projection `rgb = latents · matrix + bias` (docs/diffusion.md says where its numbers
 * come from). With neither, previews and the result carry the latents only.
 */
export interface LatentDecoding {
  /** A VAE decoder: input [N, C, h, w] latents, output [N, 3 (or 1), H, W] in [-1, 1]. */
  vaeDecoder?: InferenceSession;
  /** Its input and output names (default: its first input and output). */
  vaeInput?: string;
  vaeOutput?: string;
  /** Latents are divided by this before the decoder (Stable Diffusion's VAE: 0.18215). Required with a decoder. */
  scalingFactor?: number;
  /** The preview projection: `matrix[c][k]` maps latent channel c to output channel k, plus `bias[k]`. */
  projection?: { matrix: number[][]; bias?: number[] };
  /** What previews use: 'decoder' (default when there is one), 'projection', or 'latents' (x0 only). */
  preview?: 'decoder' | 'projection' | 'latents';
}

export interface DiffusionPipelineOptions {
  /** A diffusers scheduler_config.json (text or parsed); without it diffusers' DDPM defaults (DEFAULT_SCHEDULE). */
  schedulerConfig?: string | Record<string, unknown>;
  /** Fields that override the config. */
  schedule?: Partial<NoiseScheduleConfig>;
  /** Input names (default: 'sample', 'timestep' and, where the model has it, 'class_labels'). */
  sampleInput?: string;
  timestepInput?: string;
  classInput?: string;
  /** The output name (default: the model's first output). */
  output?: string;
  /** Text conditioning input (default 'encoder_hidden_states' where the model has it). */
  conditioningInput?: string;
  /** Decoding latents to pixels (a latent-diffusion model). */
  decoding?: LatentDecoding;
}

export interface DiffusionProgress {
  /** 1-based index of the step just finished. */
  step: number;
  steps: number;
  timestep: number;
  /** Wall time of this step (UNet call and update), milliseconds. */
  stepMs: number;
  elapsedMs: number;
}

export interface DiffusionPreview {
  step: number;
  /** The predicted x0 after this step, [batch, ...sampleShape]. */
  x0: Float32Array;
  shape: number[];
  /** x0 as pixels, [batch, channels, H, W] in the decoder's range ([-1, 1]), where the pipeline decodes. */
  image?: Float32Array;
  imageShape?: number[];
  /** Where `image` came from: the VAE decoder or the linear projection. */
  imageSource?: 'decoder' | 'projection';
}

export interface GenerateImageOptions {
  /** Sampling steps (default 20). */
  steps?: number;
  scheduler?: SchedulerName;
  /** DDIM's η (default 0). */
  eta?: number;
  /** Shape of one sample, e.g. [1, 8, 8] or [4, 64, 64] for latents. Default: the model's sample input without batch. */
  sampleShape?: number[];
  /** Number of samples (default classLabels.length, or 1). */
  batch?: number;
  /**
   * Text conditioning for the UNet's encoder_hidden_states input, [batch, L, D] (or [2·batch, L, D] under guidance:
   * the conditional rows, then the unconditional ones), on the CPU or the UNet's GPU. Fed every step as it is.
   * LatentDiffusionPipeline computes it from prompts.
   */
  encoderHiddenStates?: Tensor;
  /** One class per sample for a class-conditional model. */
  classLabels?: number[];
  /** The class id the model was trained with for "no class" (classifier-free guidance). */
  nullClass?: number;
  /** Classifier-free guidance scale (default 1: no guidance, one batch-1 call per step). */
  guidanceScale?: number;
  /** Seed of the noise generator (default 0). */
  seed?: number;
  /**
   * Injected noise instead of the generator (tests): draw 0 is the initial latents, draw k + 1 the noise step k
   * uses (called only for steps that draw). Must return batch · prod(sampleShape) standard-normal values.
   */
  noise?: (draw: number, size: number) => Float32Array | readonly number[];
  /** Report a preview every k steps (and never on the last step; the result carries that). 0: none (default). */
  previewEvery?: number;
  onPreview?: (p: DiffusionPreview) => void;
  onProgress?: (p: DiffusionProgress) => void;
  signal?: AbortSignal;
}

export interface DiffusionResult {
  /** The final sample (x0 after the last step), [batch, ...sampleShape], values in the model's data range. */
  samples: Float32Array;
  shape: number[];
  /** The samples through the VAE decoder, [batch, channels, H, W] in [-1, 1] (a pipeline with a decoder). */
  images?: Float32Array;
  imageShape?: number[];
  timesteps: number[];
  stepMs: number[];
}

interface IoNames { sample: string; timestep: string; classes: string | undefined; text: string | undefined; output: string }

export class DiffusionPipeline {
  readonly session: InferenceSession;
  readonly schedule: NoiseScheduleConfig;
  readonly #names: IoNames;
  readonly #decoding: Required<Pick<LatentDecoding, 'preview'>> & LatentDecoding;

  private constructor(session: InferenceSession, schedule: NoiseScheduleConfig, names: IoNames, decoding: LatentDiffusionDecodingChecked) {
    this.session = session;
    this.schedule = schedule;
    this.#names = names;
    this.#decoding = decoding;
  }

  /** The VAE decoder, where the pipeline has one. */
  get vaeDecoder(): InferenceSession | undefined {
    return this.#decoding.vaeDecoder;
  }

  static create(unet: InferenceSession, options: DiffusionPipelineOptions = {}): DiffusionPipeline {
    const schedule = options.schedulerConfig !== undefined
      ? parseSchedulerConfig(options.schedulerConfig, options.schedule)
      : validateSchedule({ ...DEFAULT_SCHEDULE, ...options.schedule });
    const inputs = unet.inputNames;
    const need = (n: string | undefined, what: string) => {
      if (n === undefined || !inputs.includes(n)) throw new InvalidArgumentError(`The UNet has no ${what} input ${JSON.stringify(n)}; its inputs are ${inputs.join(', ')}.`, { input: n });
      return n;
    };
    const sample = need(options.sampleInput ?? 'sample', 'sample');
    const timestep = need(options.timestepInput ?? 'timestep', 'timestep');
    const classes = options.classInput !== undefined ? need(options.classInput, 'class') : inputs.includes('class_labels') ? 'class_labels' : undefined;
    const text = options.conditioningInput !== undefined ? need(options.conditioningInput, 'conditioning')
      : inputs.includes('encoder_hidden_states') ? 'encoder_hidden_states' : undefined;
    const known = new Set([sample, timestep, classes, text]);
    const extra = inputs.filter((n) => !known.has(n));
    if (extra.length) {
      throw new InvalidArgumentError(`The UNet has inputs the pipeline does not feed: ${extra.join(', ')} (it feeds sample, timestep, class labels and encoder_hidden_states; SDXL's text_embeds/time_ids and LCM's timestep_cond are not supported).`, { inputs: extra });
    }
    const output = options.output ?? unet.outputNames[0]!;
    if (!unet.outputNames.includes(output)) throw new InvalidArgumentError(`The UNet has no output ${JSON.stringify(output)}.`);
    return new DiffusionPipeline(unet, schedule, { sample, timestep, classes, text, output }, checkDecoding(options.decoding ?? {}));
  }

  /** Runs the sampling loop. Throws CancelledError when `signal` aborts (between steps). */
  async generate(o: GenerateImageOptions = {}): Promise<DiffusionResult> {
    const steps = o.steps ?? 20;
    const plan = planSampling(o.scheduler ?? 'ddpm', this.schedule, steps, { eta: o.eta });
    const batch = o.batch ?? o.classLabels?.length ?? 1;
    if (!Number.isInteger(batch) || batch < 1) throw new InvalidArgumentError(`batch must be a positive integer, got ${batch}.`);
    const sampleShape = o.sampleShape ?? this.#defaultSampleShape();
    const per = sampleShape.reduce((a, b) => a * b, 1);
    const n = batch * per;
    const g = o.guidanceScale ?? 1;
    const guided = g !== 1;
    if (o.classLabels && o.classLabels.length !== batch) throw new InvalidArgumentError(`classLabels has ${o.classLabels.length} entries for a batch of ${batch}.`);
    if (this.#names.classes && !o.classLabels) throw new InvalidArgumentError('This UNet is class-conditional: pass classLabels.');
    const rows = guided ? 2 * batch : batch;
    if (this.#names.text) {
      const h = o.encoderHiddenStates;
      if (!h) throw new InvalidArgumentError(`This UNet is text-conditional: pass encoderHiddenStates (${this.#names.text}), or use LatentDiffusionPipeline with prompts.`);
      if (h.dims[0] !== rows) {
        throw new InvalidArgumentError(`encoderHiddenStates has ${h.dims[0]} rows; a batch of ${batch} needs ${rows}${guided ? ' (conditional rows, then unconditional rows, for guidance)' : ''}.`);
      }
    } else if (o.encoderHiddenStates) {
      throw new InvalidArgumentError('encoderHiddenStates was given, but the UNet has no encoder_hidden_states input.');
    }
    if (guided && !this.#names.text && (!this.#names.classes || o.nullClass === undefined)) {
      throw new InvalidArgumentError('Classifier-free guidance (guidanceScale ≠ 1) needs a class-conditional UNet and nullClass, or a text-conditional UNet with unconditional rows in encoderHiddenStates.');
    }
    const labels = guided && o.classLabels ? [...o.classLabels, ...o.classLabels.map(() => o.nullClass!)] : o.classLabels;
    const backend = this.session.backend;
    const ops = backend === 'webgpu' ? await GpuOps.create(this.session, n, rows * per) : new HostOps(n, rows * per);
    try {
      return await this.#loop(ops, plan, { ...o, steps }, { batch, rows, per, n, g, guided, sampleShape, labels });
    } finally {
      ops.dispose();
    }
  }

  #defaultSampleShape(): number[] {
    const meta = this.session.inputMetadata.find((m) => m.name === this.#names.sample);
    const dims = meta?.shape.slice(1) ?? [];
    if (!dims.length || dims.some((d) => typeof d !== 'number')) {
      throw new InvalidArgumentError(`The UNet's sample input has symbolic dims [${meta?.shape.join(', ')}]; pass sampleShape.`);
    }
    return dims as number[];
  }

  async #loop(
    ops: LoopOps, plan: SamplingPlan, o: GenerateImageOptions & { steps: number },
    s: { batch: number; rows: number; per: number; n: number; g: number; guided: boolean; sampleShape: number[]; labels?: number[] },
  ): Promise<DiffusionResult> {
    const { n, g, guided } = s;
    const seed = o.seed ?? 0;
    const draw = (k: number, dst: Vec) => {
      if (o.noise) {
        const v = o.noise(k, n);
        if (v.length !== n) throw new InvalidArgumentError(`noise(${k}) returned ${v.length} values; expected ${n}.`);
        ops.upload(dst, Float32Array.from(v));
      } else {
        ops.noise(dst, seed, k);
      }
    };
    const check = (step: number) => {
      if (o.signal?.aborted) throw new CancelledError('aborted', { step, running: step > 0 }, { cause: o.signal.reason });
    };
    const tsMeta = this.session.inputMetadata.find((m) => m.name === this.#names.timestep);
    const tsType = tsMeta?.type === 'int64' ? 'int64' : tsMeta?.type === 'int32' ? 'int32' : 'float32';
    const outShape = [s.batch, ...s.sampleShape];
    const inShape = [s.rows, ...s.sampleShape];
    const classFeed = s.labels && this.#names.classes ? new Tensor('int64', BigInt64Array.from(s.labels.map(BigInt)), [s.rows]) : undefined;

    check(0);
    draw(0, ops.z);
    ops.combine(ops.x, 0, [[ops.z, 0, plan.initSigma]]);
    const stepMs: number[] = [];
    const start = performance.now();
    for (let i = 0; i < plan.steps.length; i++) {
      check(i);
      const t0 = performance.now();
      const p = plan.steps[i]!;
      // Model input: inputScale · x, twice for guidance (conditional rows, then unconditional).
      ops.combine(ops.input, 0, [[ops.x, 0, p.inputScale]]);
      if (guided) ops.combine(ops.input, n, [[ops.x, 0, p.inputScale]]);
      const tsData = tsType === 'float32' ? new Float32Array(s.rows).fill(p.timestep)
        : tsType === 'int64' ? new BigInt64Array(s.rows).fill(BigInt(p.timestep)) : new Int32Array(s.rows).fill(p.timestep);
      const feeds: Record<string, Tensor> = {
        [this.#names.sample]: ops.inputTensor(inShape),
        [this.#names.timestep]: new Tensor(tsType, tsData, [s.rows]),
      };
      if (classFeed) feeds[this.#names.classes!] = classFeed;
      if (this.#names.text) feeds[this.#names.text] = o.encoderHiddenStates!;
      const out = await this.session.run(feeds, { outputs: [this.#names.output], signal: o.signal, ...(ops.gpu ? { preferredOutputLocation: 'gpu-buffer' as const } : {}) });
      const m = ops.wrapOutput(out[this.#names.output]!);
      try {
        // The model output m enters as guided = (1 - g)·uncond + g·cond.
        const mTerms = (c: number): Term[] => (guided ? [[m, 0, c * g], [m, n, c * (1 - g)]] : [[m, 0, c]]);
        if (p.noise) draw(i + 1, ops.z);
        const wantPreview = !!o.onPreview && (o.previewEvery ?? 0) > 0 && (i + 1) % o.previewEvery! === 0 && i + 1 < plan.steps.length;
        const last = i + 1 === plan.steps.length;
        if (p.keepX0 || wantPreview || last) ops.combine(ops.x0, 0, [[ops.x, 0, p.x0.x], ...mTerms(p.x0.m)]);
        ops.combine(ops.xNext, 0, [[ops.x, 0, p.next.x], ...mTerms(p.next.m), [ops.z, 0, p.next.z], [ops.hist, 0, p.next.h]]);
        ops.swapX();
        if (p.keepX0) ops.swapHist();
        if (wantPreview) {
          const src = p.keepX0 ? ops.hist : ops.x0;
          const x0 = await ops.read(src);
          const how = this.#decoding.preview;
          const img = how === 'decoder' ? await this.#decode(ops, src, outShape, o.signal)
            : how === 'projection' ? project(x0, outShape, this.#decoding.projection!) : undefined;
          o.onPreview!({ step: i + 1, x0, shape: outShape, ...(img ? { image: img.data, imageShape: img.shape, imageSource: how as 'decoder' | 'projection' } : {}) });
        }
      } finally {
        m.release();
      }
      // Wait for the device so the step time is the step's, not its encoding's (the GPU runs ahead otherwise), and
      // so an abort stops the loop within one step of work.
      await ops.sync();
      const dt = performance.now() - t0;
      stepMs.push(dt);
      o.onProgress?.({ step: i + 1, steps: plan.steps.length, timestep: p.timestep, stepMs: dt, elapsedMs: performance.now() - start });
    }
    // After the last step x is the sample (every scheduler's last update lands on x0).
    const samples = await ops.read(ops.x);
    const img = this.#decoding.vaeDecoder ? await this.#decode(ops, ops.x, outShape, o.signal) : undefined;
    return { samples, shape: outShape, ...(img ? { images: img.data, imageShape: img.shape } : {}), timesteps: plan.timesteps, stepMs };
  }

  /**
   * Latents through the VAE decoder. On the GPU the scaled latents are written by the combine kernel into a buffer
   * the decoder reads directly (only the image comes down); a CPU decoder gets them from the host.
   */
  async #decode(ops: LoopOps, v: Vec, shape: number[], signal: AbortSignal | undefined): Promise<{ data: Float32Array; shape: number[] }> {
    const d = this.#decoding;
    const dec = d.vaeDecoder!;
    const input = d.vaeInput ?? dec.inputNames[0]!;
    const output = d.vaeOutput ?? dec.outputNames[0]!;
    const scale = 1 / d.scalingFactor!;
    let feed: Tensor;
    if (ops.gpu && dec.backend === 'webgpu') {
      feed = ops.scaledTensor(v, scale, shape);
    } else {
      const host = await ops.read(v);
      for (let i = 0; i < host.length; i++) host[i]! *= scale;
      feed = new Tensor('float32', host, shape);
    }
    const out = await dec.run({ [input]: feed }, { outputs: [output], signal });
    const t = out[output]!;
    try {
      if (t.type !== 'float32') throw new InvalidArgumentError(`The VAE decoder's output '${output}' is ${t.type}; float32 is needed.`);
      return { data: (await t.getData()) as Float32Array, shape: [...t.dims] };
    } finally {
      t.dispose();
    }
  }
}

type LatentDiffusionDecodingChecked = LatentDecoding & { preview: 'decoder' | 'projection' | 'latents' };

function checkDecoding(d: LatentDecoding): LatentDiffusionDecodingChecked {
  if (d.vaeDecoder) {
    if (!(typeof d.scalingFactor === 'number' && Number.isFinite(d.scalingFactor) && d.scalingFactor > 0)) {
      throw new InvalidArgumentError(`A VAE decoder needs its scalingFactor (vae_decoder/config.json's scaling_factor; Stable Diffusion 1.x/2.x: 0.18215), got ${String(d.scalingFactor)}.`);
    }
    for (const [name, list, what] of [[d.vaeInput, d.vaeDecoder.inputNames, 'input'], [d.vaeOutput, d.vaeDecoder.outputNames, 'output']] as const) {
      if (name !== undefined && !list.includes(name)) throw new InvalidArgumentError(`The VAE decoder has no ${what} ${JSON.stringify(name)}; it has ${list.join(', ')}.`);
    }
  }
  if (d.projection) {
    const { matrix, bias } = d.projection;
    const k = matrix[0]?.length ?? 0;
    if (!matrix.length || !k || matrix.some((r) => r.length !== k || r.some((v) => !Number.isFinite(v)))) {
      throw new InvalidArgumentError('projection.matrix must be a non-empty [latentChannels][outputChannels] array of finite numbers.');
    }
    if (bias && (bias.length !== k || bias.some((v) => !Number.isFinite(v)))) throw new InvalidArgumentError(`projection.bias must have ${k} finite numbers.`);
  }
  const preview = d.preview ?? (d.vaeDecoder ? 'decoder' : d.projection ? 'projection' : 'latents');
  if (preview === 'decoder' && !d.vaeDecoder) throw new InvalidArgumentError("preview 'decoder' needs a vaeDecoder.");
  if (preview === 'projection' && !d.projection) throw new InvalidArgumentError("preview 'projection' needs a projection matrix.");
  if (!['decoder', 'projection', 'latents'].includes(preview)) throw new InvalidArgumentError(`preview must be 'decoder', 'projection' or 'latents', not ${JSON.stringify(preview)}.`);
  return { ...d, preview };
}

/**
 * The cheap preview: per latent pixel, `out[k] = bias[k] + sum_c latents[c] · matrix[c][k]`, on the host (the
 * latents are small: 4·64·64 values for Stable Diffusion at 512²; they come down for the preview anyway).
 */
export function projectLatents(x0: Float32Array, shape: readonly number[], projection: { matrix: number[][]; bias?: number[] }): { data: Float32Array; shape: number[] } {
  return project(x0, shape, projection);
}

function project(x0: Float32Array, shape: readonly number[], { matrix, bias }: { matrix: number[][]; bias?: number[] }): { data: Float32Array; shape: number[] } {
  const [n, c, ...spatial] = shape as number[];
  if (c !== matrix.length) throw new InvalidArgumentError(`The projection matrix has ${matrix.length} rows; the latents have ${c} channels.`);
  const k = matrix[0]!.length;
  const hw = spatial.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n! * k * hw);
  for (let b = 0; b < n!; b++) {
    for (let o = 0; o < k; o++) {
      const dst = (b * k + o) * hw;
      out.fill(bias?.[o] ?? 0, dst, dst + hw);
      for (let ch = 0; ch < c!; ch++) {
        const w = matrix[ch]![o]!;
        const src = (b * c! + ch) * hw;
        for (let i = 0; i < hw; i++) out[dst + i]! += w * x0[src + i]!;
      }
    }
  }
  return { data: out, shape: [n!, k, ...spatial] };
}

// ---- the two implementations of the loop's vector operations ----

interface Vec {
  readonly kind: 'host' | 'gpu';
  release(): void;
}
type Term = [Vec, number, number];

interface LoopOps {
  readonly gpu: boolean;
  x: Vec; xNext: Vec; x0: Vec; hist: Vec; z: Vec; input: Vec;
  combine(dst: Vec, dstOffset: number, terms: Term[]): void;
  noise(dst: Vec, seed: number, draw: number): void;
  upload(dst: Vec, data: Float32Array): void;
  read(v: Vec): Promise<Float32Array>;
  inputTensor(shape: number[]): Tensor;
  /** A float32 tensor of `scale · v` for another session of the same device (the VAE decoder's input). */
  scaledTensor(v: Vec, scale: number, shape: number[]): Tensor;
  wrapOutput(t: Tensor): Vec;
  swapX(): void;
  swapHist(): void;
  sync(): Promise<void>;
  dispose(): void;
}

class HostVec implements Vec {
  readonly kind = 'host' as const;
  constructor(readonly data: Float32Array, readonly owner?: Tensor) {}
  release(): void {
    this.owner?.dispose();
  }
}

/**
 * The host twin of the GPU noise program: the same hash and Box-Muller transform in float64 (the GPU's f32 log and
 * cos differ in the last bits, so GPU and CPU draws agree to ~1e-6, not bit for bit).
 */
export function hostNoise(seed: number, draw: number, n: number, out: Float32Array = new Float32Array(n)): Float32Array {
  const mix32 = (v: number) => {
    let x = v >>> 0;
    x ^= x >>> 16; x = Math.imul(x, 0x7feb352d) >>> 0;
    x ^= x >>> 15; x = Math.imul(x, 0x846ca68b) >>> 0;
    return (x ^ (x >>> 16)) >>> 0;
  };
  const base = mix32((mix32(seed >>> 0) ^ Math.imul(draw >>> 0, 0x9e3779b9)) >>> 0);
  for (let i = 0; i < n; i++) {
    const h1 = mix32((base ^ (i * 2)) >>> 0), h2 = mix32((base ^ (i * 2 + 1)) >>> 0);
    const u1 = Math.fround(((h1 >>> 8) + 1) * 5.9604644775390625e-8), u2 = Math.fround((h2 >>> 8) * 5.9604644775390625e-8);
    out[i] = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
  return out;
}

class HostOps implements LoopOps {
  readonly gpu = false;
  x: HostVec; xNext: HostVec; x0: HostVec; hist: HostVec; z: HostVec; input: HostVec;
  constructor(readonly n: number, inputLen: number) {
    const v = (len: number) => new HostVec(new Float32Array(len));
    [this.x, this.xNext, this.x0, this.hist, this.z, this.input] = [v(n), v(n), v(n), v(n), v(n), v(inputLen)];
  }
  combine(dst: Vec, dstOffset: number, terms: Term[]): void {
    const d = (dst as HostVec).data;
    const live = terms.filter((t) => t[2] !== 0);
    for (let i = 0; i < this.n; i++) {
      let acc = 0;
      for (const [v, off, c] of live) acc += c * (v as HostVec).data[off + i]!;
      d[dstOffset + i] = acc;
    }
  }
  noise(dst: Vec, seed: number, draw: number): void {
    hostNoise(seed, draw, this.n, (dst as HostVec).data);
  }
  upload(dst: Vec, data: Float32Array): void {
    (dst as HostVec).data.set(data);
  }
  async read(v: Vec): Promise<Float32Array> {
    return (v as HostVec).data.slice(0, this.n);
  }
  inputTensor(shape: number[]): Tensor {
    return new Tensor('float32', this.input.data, shape);
  }
  scaledTensor(v: Vec, scale: number, shape: number[]): Tensor {
    return new Tensor('float32', Float32Array.from((v as HostVec).data.subarray(0, this.n), (x) => x * scale), shape);
  }
  wrapOutput(t: Tensor): Vec {
    return new HostVec(t.data as Float32Array, t);
  }
  swapX(): void {
    [this.x, this.xNext] = [this.xNext, this.x];
  }
  swapHist(): void {
    // x0 was written into this.x0; it becomes the history, and the old history buffer the next x0 target.
    [this.hist, this.x0] = [this.x0, this.hist];
  }
  async sync(): Promise<void> {}
  dispose(): void {}
}

class GpuVec implements Vec {
  readonly kind = 'gpu' as const;
  constructor(readonly buffer: GPUBuffer, readonly offset: number, readonly onRelease?: () => void) {}
  release(): void {
    this.onRelease?.();
  }
}

class GpuOps implements LoopOps {
  readonly gpu = true;
  x: GpuVec; xNext: GpuVec; x0: GpuVec; hist: GpuVec; z: GpuVec; input: GpuVec;
  readonly #ops: GpuDiffusionOps;
  readonly #memory: GpuMemory;
  readonly #device: GPUDevice;
  readonly #leases: GpuBufferLease[] = [];
  readonly #inputLease: GpuBufferLease;
  #inputTensor: Tensor | undefined;
  #decodeLease: GpuBufferLease | undefined;
  #decodeTensor: Tensor | undefined;

  private constructor(ops: GpuDiffusionOps, memory: GpuMemory, device: GPUDevice, readonly n: number, inputLen: number) {
    this.#ops = ops;
    this.#device = device;
    this.#memory = memory;
    const v = (len: number) => {
      const l = memory.acquire(Math.max(16, len * 4), undefined, 'edgekit-diffusion-latents');
      this.#leases.push(l);
      return new GpuVec(l.buffer, 0);
    };
    [this.x, this.xNext, this.x0, this.hist, this.z] = [v(n), v(n), v(n), v(n), v(n)];
    this.#inputLease = memory.acquire(Math.max(16, inputLen * 4), undefined, 'edgekit-diffusion-input');
    this.input = new GpuVec(this.#inputLease.buffer, 0);
  }

  static async create(session: InferenceSession, n: number, inputLen: number): Promise<GpuOps> {
    const res = await sessionInternals(session).gpu();
    return new GpuOps(await GpuDiffusionOps.create(res), res.memory, res.ctx.device, n, inputLen);
  }

  combine(dst: Vec, dstOffset: number, terms: Term[]): void {
    const d = dst as GpuVec;
    const t: CombineTerm[] = terms.map(([v, off, coef]) => ({ buffer: (v as GpuVec).buffer, offset: (v as GpuVec).offset + off, coef }));
    this.#ops.combine(d.buffer, d.offset + dstOffset, this.n, t);
  }
  noise(dst: Vec, seed: number, draw: number): void {
    const d = dst as GpuVec;
    this.#ops.noise(d.buffer, d.offset, this.n, seed, draw);
  }
  upload(dst: Vec, data: Float32Array): void {
    const d = dst as GpuVec;
    this.#memory.upload(d.buffer, d.offset * 4, data);
  }
  async read(v: Vec): Promise<Float32Array> {
    const g = v as GpuVec;
    const bytes = await this.#memory.readback(g.buffer, g.offset * 4, this.n * 4);
    const out = new Float32Array(this.n);
    new Uint8Array(out.buffer).set(bytes.subarray(0, this.n * 4));
    return out;
  }
  inputTensor(shape: number[]): Tensor {
    // One Tensor over the loop's own input buffer, fed every step; the kernel rewrites its contents in between. It
    // does not own the lease (dispose() releases it), so it is never disposed.
    this.#inputTensor ??= Tensor.fromGpu({ buffer: this.#inputLease.buffer, offset: 0, storage: 'f32', dtype: 'float32', shape, lease: this.#inputLease }, this.#memory);
    return this.#inputTensor;
  }
  scaledTensor(v: Vec, scale: number, shape: number[]): Tensor {
    // The decoder's input buffer, made on first use; like the UNet's input tensor it is rewritten in place by the
    // combine kernel before each decode and released by dispose().
    this.#decodeLease ??= this.#memory.acquire(Math.max(16, this.n * 4), undefined, 'edgekit-diffusion-decode');
    this.combine(new GpuVec(this.#decodeLease.buffer, 0), 0, [[v, 0, scale]]);
    this.#decodeTensor ??= Tensor.fromGpu({ buffer: this.#decodeLease.buffer, offset: 0, storage: 'f32', dtype: 'float32', shape, lease: this.#decodeLease }, this.#memory);
    return this.#decodeTensor;
  }
  wrapOutput(t: Tensor): Vec {
    const f = t.gpuFeed();
    if (!f || f.storage !== 'f32') {
      t.dispose();
      throw new InvalidArgumentError(`The UNet output must be a float32 GPU tensor; got ${f ? f.storage : 'a host tensor'}.`);
    }
    const bytesPer = 4;
    return new GpuVec(f.buffer, f.offset / bytesPer, () => t.dispose());
  }
  swapX(): void {
    [this.x, this.xNext] = [this.xNext, this.x];
  }
  swapHist(): void {
    [this.hist, this.x0] = [this.x0, this.hist];
  }
  sync(): Promise<void> {
    return this.#device.queue.onSubmittedWorkDone();
  }
  dispose(): void {
    for (const l of this.#leases) this.#memory.release(l);
    this.#memory.release(this.#inputLease);
    if (this.#decodeLease) this.#memory.release(this.#decodeLease);
    this.#ops.dispose();
  }
}
