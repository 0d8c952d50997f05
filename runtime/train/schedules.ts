import { InvalidArgumentError } from '../errors.js';

/**
 * Learning-rate schedules as pure functions of the step: `schedule(t)` is the rate for the optimizer step that
 * follows t completed steps (t = 0 for the first). Being pure, a schedule can be evaluated on the CPU and passed
 * to a GPU step as a uniform, and resuming training needs only t. Closed forms of the torch.optim.lr_scheduler
 * classes, stepped once per optimizer step.
 */
export type LrSchedule = (step: number) => number;

export const constantLr = (lr: number): LrSchedule => () => lr;

/** StepLR: lr * gamma^floor(t / stepSize). */
export function stepLr(lr: number, opts: { stepSize: number; gamma?: number }): LrSchedule {
  if (!(opts.stepSize >= 1)) throw new InvalidArgumentError(`stepLr stepSize must be >= 1, got ${opts.stepSize}.`);
  const gamma = opts.gamma ?? 0.1;
  return (t) => lr * gamma ** Math.floor(t / opts.stepSize);
}

/**
 * CosineAnnealingLR's closed form: minLr + (lr - minLr) (1 + cos(pi t / totalSteps)) / 2, held at minLr after
 * totalSteps (PyTorch's formula would climb back up; a fine-tuning run wants it to stay down).
 */
export function cosineLr(lr: number, opts: { totalSteps: number; minLr?: number }): LrSchedule {
  if (!(opts.totalSteps >= 1)) throw new InvalidArgumentError(`cosineLr totalSteps must be >= 1, got ${opts.totalSteps}.`);
  const min = opts.minLr ?? 0;
  return (t) => min + ((lr - min) * (1 + Math.cos((Math.PI * Math.min(t, opts.totalSteps)) / opts.totalSteps))) / 2;
}

/**
 * Linear warm-up in front of another schedule (LinearLR then the base schedule, as SequentialLR chains them): for
 * t < steps the rate is base(0) * (startFactor + (1 - startFactor) t / steps); afterwards base(t - steps).
 * startFactor defaults to LinearLR's 1/3.
 */
export function warmup(base: LrSchedule, opts: { steps: number; startFactor?: number }): LrSchedule {
  if (!(opts.steps >= 0)) throw new InvalidArgumentError(`warmup steps must be >= 0, got ${opts.steps}.`);
  const start = opts.startFactor ?? 1 / 3;
  return (t) => (t < opts.steps ? base(0) * (start + ((1 - start) * t) / opts.steps) : base(t - opts.steps));
}
