import { DeviceError, InvalidArgumentError } from '../../errors.js';
import { slotCount, validateOptimizer, type OptimizerConfig } from '../../train/optimizers.js';
import type { GpuRange, GpuResources } from './executor.js';
import { UNIFORM_USAGE, type GpuBufferLease } from './memory.js';
import { NONE, optimizerPrograms, OPTIMIZER_WG as WG, STAT, STATS_BYTES, STATS_WORDS, type GpuClip, type StepStats } from './kernels/train/optimizer-step.js';
import { dispatchLinear, type ProgramSpec, type Uniforms } from './program.js';
import { packUniforms } from './wgsl/builder.js';

export { optimizerPrograms, STAT, STATS_WORDS, type GpuClip, type StepStats };

/**
 * The optimizer step on the GPU over the flat layout (runtime/train/layout.ts), in one buffer:
 *
 *   flat = [ params | grads | slot 0 | slot 1 | ... ]     each section L floats (L = layout.length)
 *
 * A step is three dispatches and no host round trip:
 *   1. grad-stats: workgroups reduce the gradient section into partials: sum of squares (raw, and after clipping by
 *      value when that is on) and the first non-finite element (index and bits).
 *   2. grad-finish: one workgroup combines the partials and the loss (written by the forward pass at word 0 of the
 *      stats buffer) into the step's verdict: the NaN/Inf flag, the gradient norm before clipping and the global-norm
 *      clip coefficient min(1, maxNorm / (norm + 1e-6)) (torch.nn.utils.clip_grad_norm_), into the stats buffer.
 *   3. step: one invocation per element reads the flag (a bad step leaves every section untouched, like
 *      CpuTrainer's skip), clips (value, then the norm coefficient; the clipped gradient is written back, as the
 *      CPU clips in place) and applies SGD (momentum, dampening, Nesterov, L2), Adam, AdamW (decoupled decay) or
 *      RMSprop (momentum, centered), the formulas of runtime/train/optimizers.ts, in f32.
 * lr, the step number and the bias corrections change per step: they are uniforms rewritten before each submit.
 * The stats buffer's words (u32) are what the trainer reads back once per step (STATS_WORDS). The WGSL lives in
 * kernels/train/optimizer-step.ts.
 */

/**
 * The GPU optimizer of one trainer: its pipelines, the stats and partials buffers, and the uniforms. `flat` is the
 * trainer's buffer ([params | grads | slots], each `len` floats).
 */
export class GpuOptimizer {
  private readonly leases: GpuBufferLease[] = [];
  private disposed = false;

  private constructor(
    private readonly res: GpuResources,
    readonly config: OptimizerConfig,
    readonly clip: GpuClip,
    readonly len: number,
    private readonly programs: { stats: ProgramSpec; finish: ProgramSpec; step: ProgramSpec },
    private readonly stats: GpuBufferLease,
    private readonly partials: GpuBufferLease,
    private readonly uniforms: GpuBufferLease,
    private readonly groups: number,
    private readonly bindGroups: { stats: GPUBindGroup; finish: GPUBindGroup; step: GPUBindGroup },
  ) {}

  static async create(res: GpuResources, flat: GpuRange, len: number, config: OptimizerConfig, clip: GpuClip = {}): Promise<GpuOptimizer> {
    validateOptimizer(config);
    validateClip(clip);
    const { ctx, memory, pipelines } = res;
    const sections = 2 + slotCount(config);
    const maxBinding = ctx.limits.maxStorageBufferBindingSize;
    if (len * sections * 4 > maxBinding) {
      throw new DeviceError(
        'LIMIT_EXCEEDED',
        `The optimizer binds ${len * sections * 4} bytes of parameters, gradients and state, more than this device's maxStorageBufferBindingSize (${maxBinding}). Train fewer parameters, or use the CPU trainer.`,
        { limit: 'maxStorageBufferBindingSize', needed: len * sections * 4, available: maxBinding },
      );
    }
    const programs = optimizerPrograms(config, clip);
    await pipelines.prepare(Object.values(programs));
    const groups = Math.max(1, Math.min(WG, Math.ceil(len / WG)));
    const leases: GpuBufferLease[] = [];
    const lease = async (bytes: number, label: string, usage?: number) => {
      const l = await memory.acquireChecked(bytes, usage, label);
      leases.push(l);
      return l;
    };
    try {
      const stats = await lease(STATS_BYTES, 'edgekit-train-stats');
      const partials = await lease(groups * 16, 'edgekit-train-partials');
      const uniformAlign = ctx.limits.minUniformBufferOffsetAlignment;
      const uniforms = await lease(3 * uniformAlign, 'edgekit-train-uniforms', UNIFORM_USAGE);
      const device = ctx.device;
      const group = (p: ProgramSpec, entries: GpuRange[], slot: number) =>
        device.createBindGroup({
          layout: pipelines.getReady(p).getBindGroupLayout(0),
          label: p.key,
          entries: [
            ...entries.map((r, i) => ({ binding: i, resource: { buffer: r.buffer, offset: r.offset, size: r.size } })),
            { binding: entries.length, resource: { buffer: uniforms.buffer, offset: slot * uniformAlign, size: packUniforms(p.uniforms, zeros(p)).byteLength } },
          ],
        });
      const gradBytes = Math.max(4, len * 4);
      const statsRange = { buffer: stats.buffer, offset: 0, size: STATS_BYTES };
      const bindGroups = {
        stats: group(programs.stats, [{ buffer: flat.buffer, offset: flat.offset + len * 4, size: gradBytes }, { buffer: partials.buffer, offset: 0, size: groups * 16 }], 0),
        finish: group(programs.finish, [{ buffer: partials.buffer, offset: 0, size: groups * 16 }, statsRange], 1),
        step: group(programs.step, [{ buffer: flat.buffer, offset: flat.offset, size: Math.max(4, len * sections * 4) }, statsRange], 2),
      };
      const opt = new GpuOptimizer(res, config, clip, len, programs, stats, partials, uniforms, groups, bindGroups);
      opt.leases.push(...leases);
      // Fresh (pooled) buffers hold stale bytes: the stats start clean.
      memory.upload(stats.buffer, 0, new Uint32Array(STATS_BYTES / 4));
      return opt;
    } catch (e) {
      for (const l of leases) memory.release(l);
      throw e;
    }
  }

  /** Where the forward pass must write the loss (a float32 scalar). */
  get lossRange(): GpuRange {
    return { buffer: this.stats.buffer, offset: 0, size: 4 };
  }

  /**
   * Writes this step's uniforms and records the three dispatches. `step` counts optimizer steps from 1 (bias
   * corrections, SGD's first momentum step); `lr` is the scheduled rate.
   */
  encode(encoder: GPUCommandEncoder, step: number, lr: number): void {
    const { ctx, memory } = this.res;
    const cfg = this.config;
    const align = ctx.limits.minUniformBufferOffsetAlignment;
    const [b1, b2] = cfg.kind === 'adam' || cfg.kind === 'adamw' ? (cfg.betas ?? [0.9, 0.999]) : [0, 0];
    const values: Uniforms = {
      len: this.len,
      first_step: step <= 1 ? 1 : 0,
      lr,
      weight_decay: cfg.weightDecay ?? 0,
      momentum: cfg.kind === 'sgd' || cfg.kind === 'rmsprop' ? (cfg.momentum ?? 0) : 0,
      dampening: cfg.kind === 'sgd' ? (cfg.dampening ?? 0) : 0,
      beta1: b1,
      beta2: b2,
      bias1: 1 - b1 ** step,
      bias2: 1 - b2 ** step,
      eps: cfg.kind === 'sgd' ? 0 : (cfg.eps ?? 1e-8),
      alpha: cfg.kind === 'rmsprop' ? (cfg.alpha ?? 0.99) : 0,
      clip_value: this.clip.value ?? 0,
      groups: this.groups,
      max_norm: this.clip.norm ?? 0,
    };
    const { stats, finish, step: update } = this.programs;
    memory.upload(this.uniforms.buffer, 0, new Uint8Array(packUniforms(stats.uniforms, values)));
    memory.upload(this.uniforms.buffer, align, new Uint8Array(packUniforms(finish.uniforms, values)));
    memory.upload(this.uniforms.buffer, 2 * align, new Uint8Array(packUniforms(update.uniforms, values)));
    const pass = encoder.beginComputePass({ label: 'edgekit-optimizer-step' });
    const pipelines = this.res.pipelines;
    pass.setPipeline(pipelines.getReady(stats));
    pass.setBindGroup(0, this.bindGroups.stats);
    pass.dispatchWorkgroups(this.groups);
    pass.setPipeline(pipelines.getReady(finish));
    pass.setBindGroup(0, this.bindGroups.finish);
    pass.dispatchWorkgroups(1);
    if (this.len > 0) {
      pass.setPipeline(pipelines.getReady(update));
      pass.setBindGroup(0, this.bindGroups.step);
      pass.dispatchWorkgroups(...dispatchLinear(this.len, WG));
    }
    pass.end();
  }

  /** Records the copy of the stats words into a staging buffer; `finish()` after the submit decodes them. */
  encodeReadback(encoder: GPUCommandEncoder): () => Promise<StepStats> {
    const read = this.res.memory.encodeReadback(encoder, this.stats.buffer, 0, STATS_WORDS * 4);
    return async () => {
      const bytes = await read();
      const w = new Uint32Array(bytes.buffer, bytes.byteOffset, STATS_WORDS);
      const f = new Float32Array(bytes.buffer, bytes.byteOffset, STATS_WORDS);
      const bad = w[STAT.bad] !== 0;
      const badIndex = w[STAT.badIndex]!;
      return {
        loss: f[STAT.loss]!,
        bad,
        lossBad: w[STAT.lossBad] !== 0,
        ...(badIndex !== NONE ? { badIndex, badValue: f[STAT.badBits]! } : {}),
        gradNorm: f[STAT.norm]!,
      };
    };
  }

  /** Dispatches a step records (grad-stats, grad-finish, step). */
  get dispatches(): number {
    return this.len > 0 ? 3 : 2;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const l of this.leases) this.res.memory.release(l);
    this.leases.length = 0;
  }
}

function zeros(p: ProgramSpec): Uniforms {
  const v: Uniforms = {};
  for (const u of p.uniforms) v[u.name] = u.length === undefined ? 0 : new Array<number>(u.length).fill(0);
  return v;
}

/** The checks of runtime/train/clip.ts, made when the trainer is created rather than at the first step. */
export function validateClip(clip: GpuClip): void {
  if (clip.value !== undefined && !(clip.value > 0)) throw new InvalidArgumentError(`Gradient clip value must be > 0, got ${clip.value}.`);
  if (clip.norm !== undefined && !(clip.norm > 0)) throw new InvalidArgumentError(`Gradient max norm must be > 0, got ${clip.norm}.`);
}
