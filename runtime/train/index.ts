/** The training core (backend-independent) and its CPU reference. */
export { splitGraph, type SplitResult } from './split.js';
export { buildBackward, type BackwardGraphs, type BackwardOptions } from './autodiff.js';
export { attachLoss, type LossSpec, type LossOptions, type LossGraph } from './losses.js';
export { createLayout, allocateBuffers, sectionView, writeSection, PARAM_ALIGNMENT, type ParamLayout, type ParamEntry, type TrainBuffers } from './layout.js';
export { sgd, adam, adamw, rmsprop, optimizerStep, slotCount, validateOptimizer, type OptimizerConfig } from './optimizers.js';
export { clipByValue, clipByGlobalNorm, globalNorm } from './clip.js';
export { constantLr, stepLr, cosineLr, warmup, type LrSchedule } from './schedules.js';
export { createTrainingProgram, bindParams, type TrainingProgram, type TrainingProgramOptions } from './program.js';
export { CpuTrainer, type TrainerOptions, type StepReport } from './trainer-cpu.js';
export type { Trainer, TrainerState } from './trainer.js';
export { asyncTrainer, validateState } from './trainer-async.js';
export { runTrainGraphCpu, runTrainNodeCpu } from './run-cpu.js';
export { inferTrainShapes } from './infer.js';
export { TRAIN_DOMAIN, TRAIN_SCHEMAS, TRAIN_CPU_KERNELS } from './ops/index.js';
export { GRAD_RULES, TRAIN_GRAD_RULES, gradRuleFor, type GradRule, type GradContext } from './grads/index.js';
