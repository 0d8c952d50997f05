import { DisposedTensorError, InvalidArgumentError } from '../errors.js';
import type { HostTensor } from '../ir/tensor.js';
import type { TrainingProgram } from './program.js';
import type { CpuTrainer, StepReport } from './trainer-cpu.js';
import type { Trainer, TrainerState } from './trainer.js';

/**
 * The CPU reference behind the backend-neutral async Trainer interface (trainer.ts), so the FineTuner drives the
 * CPU and WebGPU trainers through one code path. Every call runs synchronously and returns a settled promise.
 *
 * saveState copies the whole resumable state: the params section and every optimizer slot (layout order, padding
 * included), the applied-step counter (bias corrections, schedules) and the attempted-step counter (Dropout seeds).
 * loadState checks the state against this trainer's layout and optimizer before writing anything, then copies INTO
 * the existing sections: the forward/backward graphs hold views of the params section (bindParams), so the arrays
 * must never be replaced.
 */
export function asyncTrainer(cpu: CpuTrainer): Trainer {
  return new CpuAsyncTrainer(cpu);
}

class CpuAsyncTrainer implements Trainer {
  #cpu: CpuTrainer | undefined;

  constructor(cpu: CpuTrainer) {
    this.#cpu = cpu;
  }

  private get cpu(): CpuTrainer {
    if (!this.#cpu) throw new DisposedTensorError('trainer');
    return this.#cpu;
  }

  get program(): TrainingProgram {
    return this.cpu.program;
  }

  get stepCount(): number {
    return this.cpu.step;
  }

  async trainStep(batch: Record<string, HostTensor>): Promise<StepReport> {
    return this.cpu.trainStep(batch);
  }

  async evaluate(batch: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
    return this.cpu.evaluate(batch);
  }

  async parameters(): Promise<Record<string, HostTensor>> {
    return this.cpu.parameters();
  }

  async saveState(): Promise<TrainerState> {
    const { buffers, step, attempts } = this.cpu;
    return { params: buffers.params.slice(), slots: buffers.slots.map((s) => s.slice()), step, attempts };
  }

  async loadState(state: TrainerState): Promise<void> {
    const cpu = this.cpu;
    validateState(state, cpu.program.layout.length, cpu.buffers.slots.length, cpu.opts.optimizer.kind);
    cpu.buffers.params.set(state.params);
    state.slots.forEach((s, k) => cpu.buffers.slots[k]!.set(s));
    cpu.buffers.grads.fill(0);
    cpu.step = state.step;
    cpu.attempts = state.attempts;
  }

  dispose(): void {
    this.#cpu = undefined;
  }
}

/** Throws InvalidArgumentError naming the first way a TrainerState does not fit a trainer; writes nothing. */
export function validateState(state: TrainerState, length: number, slots: number, optimizer: string): void {
  const bad: (msg: string, details?: Record<string, unknown>) => never = (msg, details = {}) => {
    throw new InvalidArgumentError(`Cannot load this trainer state: ${msg}`, details);
  };
  if (!state || typeof state !== 'object') bad('expected { params, slots, step, attempts }.');
  if (!(state.params instanceof Float32Array)) bad('params must be a Float32Array.');
  if (state.params.length !== length) {
    bad(`it holds ${state.params.length} parameter floats, but this program's layout has ${length}; it was saved from a different model, cut or head.`, { expected: length, got: state.params.length });
  }
  if (!Array.isArray(state.slots)) bad('slots must be an array of Float32Array.');
  if (state.slots.length !== slots) {
    bad(`it has ${state.slots.length} optimizer slot(s), but ${optimizer} here keeps ${slots}; resume with the optimizer (and momentum/centered settings) it was saved with.`, { expected: slots, got: state.slots.length });
  }
  state.slots.forEach((s, k) => {
    if (!(s instanceof Float32Array) || s.length !== length) bad(`optimizer slot ${k} must be a Float32Array of ${length} floats.`, { slot: k });
  });
  for (const key of ['step', 'attempts'] as const) {
    const v = state[key];
    if (!Number.isSafeInteger(v) || v < 0) bad(`${key} must be a non-negative integer, got ${v}.`);
  }
  if (state.attempts < state.step) bad(`attempts (${state.attempts}) cannot be less than step (${state.step}).`);
}
