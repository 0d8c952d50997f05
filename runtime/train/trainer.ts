import type { HostTensor } from '../ir/tensor.js';
import type { TrainingProgram } from './program.js';
import type { StepReport } from './trainer-cpu.js';

/**
 * What the public FineTuner (sdk/fine-tuner.ts) drives, whatever the backend: the CPU reference (CpuTrainer,
 * wrapped by asyncTrainer) or the WebGPU trainer (runtime/backends/webgpu/trainer.ts). Both take the same
 * TrainingProgram and TrainerOptions and must give the same results within float tolerance.
 */
export interface Trainer {
  readonly program: TrainingProgram;
  /** Optimizer steps applied so far. */
  readonly stepCount: number;
  /** One step on a batch (the tail's inputs plus the target). Skips and reports a step whose loss or gradients are not finite. */
  trainStep(batch: Record<string, HostTensor>): Promise<StepReport>;
  /** Loss (when the target is fed) and model outputs in inference mode; no state changes. */
  evaluate(batch: Record<string, HostTensor>): Promise<Record<string, HostTensor>>;
  /** Copies of the current trainable parameters, by initializer name. */
  parameters(): Promise<Record<string, HostTensor>>;
  /** Everything needed to resume exactly: flat params and optimizer slots (layout order), step and attempt counters. */
  saveState(): Promise<TrainerState>;
  /** Restores a saveState() result taken from a trainer with the same program layout and optimizer. */
  loadState(state: TrainerState): Promise<void>;
  /** Frees backend memory (GPU buffers); idempotent. */
  dispose(): void;
}

export interface TrainerState {
  /** ParamLayout.length floats. */
  params: Float32Array;
  /** One ParamLayout.length-float array per optimizer slot (momentum, Adam's m and v, ...). */
  slots: Float32Array[];
  step: number;
  attempts: number;
}
