import { InvalidArgumentError } from '../../runtime/errors.js';
import type { LossSpec } from '../../runtime/train/losses.js';
import { adam, validateOptimizer, type OptimizerConfig } from '../../runtime/train/optimizers.js';
import type { LrSchedule } from '../../runtime/train/schedules.js';
import { PRIORITIES, type TaskPriority } from '../../runtime/scheduler/index.js';
import type { StepReport } from '../../runtime/train/trainer-cpu.js';
import type { Tensor } from '../tensor.js';

/** The public option and result types of FineTuner (docs/fine-tuning.md), and their validation. */

export type LossName = 'cross_entropy' | 'mse' | 'bce_with_logits';
export type LossOption =
  | LossName
  | { type: 'cross_entropy'; labelSmoothing?: number; targets?: 'indices' | 'probabilities' }
  | { type: 'mse' }
  | { type: 'bce_with_logits' };

export interface NewHeadOptions {
  /** Number of output classes of the fresh classifier. */
  classes: number;
  /** Seeds the head's initialization (default: the tuner's seed). */
  seed?: number;
}

export interface FineTunerOptions {
  /**
   * Where training starts: a node name, value name or initializer name. That node (or the readers of that value or
   * initializer) and everything after it train; everything before is frozen. Default with `newHead`: the head node.
   */
  trainFrom?: string;
  /** Replace the final classifier (the Gemm or MatMul(+Add) producing the logits) with a fresh seeded one. */
  newHead?: NewHeadOptions;
  /** Default 'cross_entropy'. */
  loss?: LossOption;
  /** Default adam() (lr 1e-3). Hyper-parameters are fixed at creation; fit's lrSchedule overrides the rate. */
  optimizer?: OptimizerConfig;
  /** The model output the loss reads (default: the first output). */
  output?: string;
  /** Seeds shuffling and the new head (default 0). */
  seed?: number;
  /** Gradient clipping for every fit: by value, then by global 2-norm. */
  clip?: { value?: number; norm?: number };
  /**
   * Cache the frozen trunk's outputs (default true): the trunk runs once per example per fit() call and later epochs
   * cost only the tail. Memory: examples x (elements of the cut values per example) x 4 bytes, for the training and
   * the validation set. With false the trunk runs again on every batch.
   */
  cacheFeatures?: boolean;
  /**
   * The scheduler priority of this tuner's work (fit's steps, evaluate, predict and the weight and checkpoint
   * calls; each call may override it). Default 'background': a session's runs on the same device (its scheduler)
   * go first, between two steps of a fit.
   */
  priority?: TaskPriority;
}

/** Where a FineTuner call queues, besides the tuner's default (FineTunerOptions.priority). */
export interface TunerCallOptions {
  /** This call's priority on the session's scheduler; default the tuner's (FineTunerOptions.priority). */
  priority?: TaskPriority;
  /**
   * Aborting rejects the call with CancelledError: at once while it waits for the device; fit() stops before its
   * next step (the steps done stay applied, and epochPosition says where the epoch stopped).
   */
  signal?: AbortSignal;
}

/** Batch-first tensors ([N, ...]), arrays of per-example tensors, or either by model input name. */
export type ExampleInputs = Tensor | readonly Tensor[] | Readonly<Record<string, Tensor | readonly Tensor[]>>;
/** Class ids (int64/int32 [N] or a number array) for cross-entropy; float32 targets [N, ...] (or per example) otherwise. */
export type ExampleLabels = Tensor | readonly Tensor[] | readonly number[];

export interface Dataset {
  inputs: ExampleInputs;
  labels: ExampleLabels;
}

export type EarlyStoppingMetric = 'val_loss' | 'val_accuracy' | 'loss';

export interface EarlyStoppingOptions {
  /** Epochs without improvement before stopping (default 3). */
  patience?: number;
  /** Default 'val_loss' with a validation set, else 'loss' (the epoch's mean training loss). */
  metric?: EarlyStoppingMetric;
  /** Smallest change that counts as an improvement (default 0). */
  minDelta?: number;
  /** At the end of fit, restore the full training state (weights, optimizer, counters) of the best epoch. Default false. */
  restoreBest?: boolean;
}

export interface FitOptions extends TunerCallOptions {
  /** Default 1. */
  epochs?: number;
  /** Default 32. The last batch of an epoch may be smaller unless dropLast. */
  batchSize?: number;
  /** Reshuffle every epoch with the seeded PRNG (default true). */
  shuffle?: boolean;
  dropLast?: boolean;
  /** Evaluated after every epoch. */
  validation?: Dataset;
  /** Overrides the tuner's clip.norm for this call. */
  clipGradNorm?: number;
  /** Learning rate as a function of the tuner's global step (optimizer steps applied since creation). */
  lrSchedule?: LrSchedule;
  earlyStopping?: EarlyStoppingOptions;
  /** Called after every step and every epoch; fit awaits a returned promise. */
  onProgress?: (event: FitProgress) => void | Promise<void>;
}

/** A step's progress event: the trainer's report of the step (loss, lr, gradient norm, skipped and why) and where it fell. */
export interface StepProgress extends StepReport {
  type: 'step';
  /** Epoch index within this fit call (0-based), and its batch index. */
  epoch: number;
  batch: number;
  batches: number;
  /** The tuner's global count of applied optimizer steps after this one. */
  step: number;
}

export interface EpochMetrics {
  /** Epoch index within this fit call (0-based). */
  epoch: number;
  /** Mean training loss over the epoch's applied steps, weighted by batch size (NaN when every step was skipped). */
  loss: number;
  steps: number;
  skippedSteps: number;
  valLoss?: number;
  valAccuracy?: number;
}

export type FitProgress = StepProgress | ({ type: 'epoch'; epochs: number } & EpochMetrics);

export interface FitResult {
  /** Epochs run by this call (fewer than asked when early stopping fired). */
  epochs: number;
  /** Optimizer steps applied and skipped (non-finite loss or gradient) by this call. */
  steps: number;
  skippedSteps: number;
  stoppedEarly: boolean;
  /** With early stopping: the epoch with the best metric. */
  bestEpoch?: number;
  history: EpochMetrics[];
  /** Bytes held by the trunk-feature cache during this call (0 without caching). */
  cachedFeatureBytes: number;
}

export interface EvaluationMetrics {
  /** Mean loss over the examples. */
  loss: number;
  /** Fraction correct: argmax for cross-entropy, logit > 0 vs target >= 0.5 per element for bce_with_logits. */
  accuracy?: number;
  count: number;
}

/** The runtime loss spec for a public loss option. */
export function lossSpec(loss: LossOption | undefined): LossSpec {
  const o = loss ?? 'cross_entropy';
  const type = typeof o === 'string' ? o : o?.type;
  switch (type) {
    case 'cross_entropy': {
      const ce = typeof o === 'string' ? {} : (o as { labelSmoothing?: number; targets?: 'indices' | 'probabilities' });
      const ls = ce.labelSmoothing ?? 0;
      if (!(ls >= 0 && ls <= 1)) throw new InvalidArgumentError(`labelSmoothing must lie in [0, 1], got ${ls}.`);
      const targets = ce.targets ?? 'indices';
      if (targets !== 'indices' && targets !== 'probabilities') throw new InvalidArgumentError(`cross_entropy targets must be 'indices' or 'probabilities', got '${targets}'.`);
      return { kind: 'cross-entropy', labelSmoothing: ls, targets };
    }
    case 'mse': return { kind: 'mse' };
    case 'bce_with_logits': return { kind: 'bce-with-logits' };
    default:
      throw new InvalidArgumentError(`Unknown loss ${JSON.stringify(type ?? o)}. Use 'cross_entropy', 'mse' or 'bce_with_logits'.`, { loss: type });
  }
}

const positiveInt = (v: unknown, what: string): number => {
  if (!Number.isSafeInteger(v) || (v as number) < 1) throw new InvalidArgumentError(`${what} must be a positive integer, got ${String(v)}.`);
  return v as number;
};

export function checkCreateOptions(o: FineTunerOptions): { optimizer: OptimizerConfig; seed: number } {
  if (!o || typeof o !== 'object') throw new InvalidArgumentError("FineTuner.create expects options, e.g. { trainFrom: 'fc', optimizer: adam({ lr: 1e-3 }) }.");
  if (o.trainFrom !== undefined && (typeof o.trainFrom !== 'string' || !o.trainFrom)) throw new InvalidArgumentError('trainFrom must be a node, value or initializer name.');
  if (o.trainFrom === undefined && !o.newHead) {
    throw new InvalidArgumentError("Say where training starts: trainFrom (a node, value or initializer name, e.g. the classifier's node), or newHead to train a fresh classifier.");
  }
  if (o.newHead) positiveInt(o.newHead.classes, 'newHead.classes');
  const seed = o.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new InvalidArgumentError(`seed must be a non-negative integer, got ${seed}.`);
  if (o.newHead?.seed !== undefined && (!Number.isSafeInteger(o.newHead.seed) || o.newHead.seed < 0)) {
    throw new InvalidArgumentError(`newHead.seed must be a non-negative integer, got ${o.newHead.seed}.`);
  }
  const optimizer = o.optimizer ?? adam();
  if (!optimizer || typeof optimizer !== 'object' || !['sgd', 'adam', 'adamw', 'rmsprop'].includes(optimizer.kind)) {
    throw new InvalidArgumentError('optimizer must come from sgd(), adam(), adamw() or rmsprop().');
  }
  validateOptimizer(optimizer);
  checkClip(o.clip?.value, 'clip.value');
  checkClip(o.clip?.norm, 'clip.norm');
  lossSpec(o.loss);
  checkPriority(o.priority, 'priority');
  return { optimizer, seed };
}

/** A call's priority must be one of the scheduler's, checked before anything is queued. */
export function checkPriority(v: unknown, what: string): void {
  if (v !== undefined && !PRIORITIES.includes(v as TaskPriority)) {
    throw new InvalidArgumentError(`${what} must be ${PRIORITIES.map((p) => `'${p}'`).join(', ')}, got ${JSON.stringify(v)}.`);
  }
}

/** A call's signal must be an AbortSignal (a typo such as { signal: controller } would otherwise never cancel). */
export function checkCallOptions(o: TunerCallOptions): void {
  checkPriority(o.priority, 'priority');
  if (o.signal !== undefined && (typeof o.signal !== 'object' || o.signal === null || typeof o.signal.aborted !== 'boolean' || typeof o.signal.addEventListener !== 'function')) {
    throw new InvalidArgumentError('signal must be an AbortSignal (controller.signal).');
  }
}

function checkClip(v: number | undefined, what: string): void {
  if (v !== undefined && !(v > 0)) throw new InvalidArgumentError(`${what} must be > 0, got ${v}.`);
}

export interface ResolvedFit {
  epochs: number;
  batchSize: number;
  shuffle: boolean;
  dropLast: boolean;
  early?: Required<Omit<EarlyStoppingOptions, 'metric'>> & { metric: EarlyStoppingMetric };
}

export function checkFitOptions(o: FitOptions, hasValidation: boolean): ResolvedFit {
  checkCallOptions(o);
  const epochs = positiveInt(o.epochs ?? 1, 'epochs');
  const batchSize = positiveInt(o.batchSize ?? 32, 'batchSize');
  checkClip(o.clipGradNorm, 'clipGradNorm');
  if (o.lrSchedule !== undefined && typeof o.lrSchedule !== 'function') throw new InvalidArgumentError('lrSchedule must be a function of the step, e.g. cosineLr(1e-3, { totalSteps }).');
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw new InvalidArgumentError('onProgress must be a function.');
  let early: ResolvedFit['early'];
  if (o.earlyStopping) {
    const e = o.earlyStopping;
    const metric = e.metric ?? (hasValidation ? 'val_loss' : 'loss');
    if (!['val_loss', 'val_accuracy', 'loss'].includes(metric)) throw new InvalidArgumentError(`earlyStopping.metric must be 'val_loss', 'val_accuracy' or 'loss', got '${metric}'.`);
    if (metric.startsWith('val_') && !hasValidation) throw new InvalidArgumentError(`earlyStopping.metric '${metric}' needs a validation set: pass fit(..., { validation }).`);
    const patience = e.patience ?? 3;
    if (!Number.isSafeInteger(patience) || patience < 0) throw new InvalidArgumentError(`earlyStopping.patience must be a non-negative integer, got ${patience}.`);
    const minDelta = e.minDelta ?? 0;
    if (!(minDelta >= 0)) throw new InvalidArgumentError(`earlyStopping.minDelta must be >= 0, got ${minDelta}.`);
    early = { metric, patience, minDelta, restoreBest: e.restoreBest ?? false };
  }
  return { epochs, batchSize, shuffle: o.shuffle ?? true, dropLast: o.dropLast ?? false, early };
}
