/** The diffusion pipeline (docs/diffusion.md): schedulers as coefficient plans and the GPU-resident sampling loop. */
export { DiffusionPipeline, hostNoise } from './pipeline.js';
export type { DiffusionPipelineOptions, GenerateImageOptions, DiffusionResult, DiffusionProgress, DiffusionPreview } from './pipeline.js';
export { parseSchedulerConfig, planSampling, alphasCumprod, inferenceTimesteps, SCHEDULERS, DEFAULT_SCHEDULE } from './schedulers.js';
export type { SchedulerName, NoiseScheduleConfig, BetaSchedule, PredictionType, TimestepSpacing, SamplingPlan, StepPlan } from './schedulers.js';
