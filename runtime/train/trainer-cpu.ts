import { InvalidArgumentError } from '../errors.js';
import { hostTensor, tensorFromNumbers, tensorToNumbers, type HostTensor } from '../ir/tensor.js';
import { clipByGlobalNorm, clipByValue, globalNorm } from './clip.js';
import { allocateBuffers, writeSection, type TrainBuffers } from './layout.js';
import { mixSeed } from './ops/dropout.js';
import { optimizerStep, slotCount, validateOptimizer, type OptimizerConfig } from './optimizers.js';
import { bindParams, initialParams, type TrainingProgram } from './program.js';
import { runTrainGraphCpu } from './run-cpu.js';
import type { LrSchedule } from './schedules.js';

/**
 * The CPU reference training step over a TrainingProgram: forward (loss + saved tensors), backward (gradients into
 * the flat gradient section), NaN/Inf guard, clipping, scheduled optimizer step. It is the spec the WebGPU step is
 * checked against, and deterministic: the same program, options, seed and batches give the same weights bit for bit
 * (Dropout masks come from (seed, attempt) through SeededDropout's documented PRNG).
 *
 * NaN/Inf guard: when the loss or any gradient element is not finite the step is skipped, like PyTorch's GradScaler
 * skipping optimizer.step(): weights, optimizer state and the step count stay as they were, and the report says
 * which value was bad. The gradient section then holds the bad gradients, for inspection.
 */
export interface TrainerOptions {
  optimizer: OptimizerConfig;
  /** Overrides optimizer.lr per step. */
  schedule?: LrSchedule;
  /** Clip by value, then by global 2-norm, when given. */
  clip?: { value?: number; norm?: number };
  seed?: number;
  maxElements?: number;
}

export interface StepReport {
  /** Optimizer steps applied so far (after this one). */
  step: number;
  loss: number;
  lr: number;
  /** Global 2-norm of the gradient before clipping (NaN when non-finite). */
  gradNorm: number;
  skipped: boolean;
  reason?: string;
}

export class CpuTrainer {
  readonly buffers: TrainBuffers;
  /** Optimizer steps applied. */
  step = 0;
  /** Steps attempted (applied or skipped); seeds Dropout so a retried batch draws a new mask. */
  attempts = 0;
  private readonly seed: number;

  constructor(readonly program: TrainingProgram, readonly opts: TrainerOptions) {
    validateOptimizer(opts.optimizer);
    this.seed = (opts.seed ?? 0) >>> 0;
    const init = initialParams(program);
    this.buffers = allocateBuffers(program.layout, slotCount(opts.optimizer));
    for (const p of program.params) writeSection(program.layout, this.buffers.params, p, init[p]!);
    bindParams(program, this.buffers.params);
  }

  private run(graph: 'forward' | 'backward', feeds: Record<string, HostTensor>): Record<string, HostTensor> {
    return runTrainGraphCpu(this.program[graph], feeds, undefined, { maxElements: this.opts.maxElements });
  }

  /** One training step on a batch: feeds are the tail inputs plus the target. */
  trainStep(batch: Record<string, HostTensor>): StepReport {
    const { program, buffers } = this;
    const lr = this.opts.schedule ? this.opts.schedule(this.step) : this.opts.optimizer.lr;
    if (!(lr >= 0)) throw new InvalidArgumentError(`The learning-rate schedule gave ${lr} at step ${this.step}.`);
    const feeds = { ...batch };
    if (program.seedInput) feeds[program.seedInput] = tensorFromNumbers('uint32', [], [mixSeed(this.seed, this.attempts)]);
    this.attempts++;

    const fwd = this.run('forward', feeds);
    const loss = tensorToNumbers(fwd[program.loss]!)[0]!;
    const saved = Object.fromEntries(program.saved.map((v) => [v, fwd[v] ?? feeds[v]!]));
    const grads = this.run('backward', saved);
    buffers.grads.fill(0);
    for (const p of program.params) writeSection(program.layout, buffers.grads, p, grads[program.grads[p]!]!);

    const bad = !Number.isFinite(loss) ? `the loss is ${loss}` : this.nonFiniteGradient();
    if (bad) return { step: this.step, loss, lr, gradNorm: NaN, skipped: true, reason: `${bad}; the step was skipped and the weights kept` };

    const gradNorm = globalNorm(buffers.grads);
    if (this.opts.clip?.value !== undefined) clipByValue(buffers.grads, this.opts.clip.value);
    if (this.opts.clip?.norm !== undefined) clipByGlobalNorm(buffers.grads, this.opts.clip.norm);
    optimizerStep(this.opts.optimizer, buffers, this.step + 1, lr);
    this.step++;
    return { step: this.step, loss, lr, gradNorm, skipped: false };
  }

  private nonFiniteGradient(): string | undefined {
    const { layout } = this.program;
    for (const e of layout.entries) {
      for (let i = e.offset; i < e.offset + e.size; i++) {
        const v = this.buffers.grads[i]!;
        if (!Number.isFinite(v)) return `the gradient of '${e.name}' holds ${v} (element ${i - e.offset})`;
      }
    }
    return undefined;
  }

  /**
   * Loss and model outputs in inference mode (Dropout off); no state changes. Without the target in the feeds
   * only the model outputs are computed.
   */
  evaluate(batch: Record<string, HostTensor>): Record<string, HostTensor> {
    const g = this.program.evaluate;
    const outputs = g.outputs.map((o) => o.name).filter((o) => o !== this.program.loss || this.program.target in batch);
    return runTrainGraphCpu(g, batch, outputs, { maxElements: this.opts.maxElements });
  }

  /** Copies of the current parameter values. */
  parameters(): Record<string, HostTensor> {
    const out: Record<string, HostTensor> = {};
    for (const e of this.program.layout.entries) out[e.name] = hostTensor('float32', e.shape, this.buffers.params.slice(e.offset, e.offset + e.size));
    return out;
  }
}
