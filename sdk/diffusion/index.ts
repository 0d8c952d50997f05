/** The diffusion pipeline (docs/diffusion.md): schedulers as coefficient plans and the GPU-resident sampling loop. */
export { DiffusionPipeline, hostNoise, projectLatents } from './pipeline.js';
export type { DiffusionPipelineOptions, GenerateImageOptions, DiffusionResult, DiffusionProgress, DiffusionPreview, LatentDecoding } from './pipeline.js';
export { LatentDiffusionPipeline, DiffusionLayoutError } from './latent.js';
export type { LatentDiffusionComponents, LoadLatentDiffusionOptions, GenerateFromPromptOptions, LatentDiffusionResult } from './latent.js';
export { parseSchedulerConfig, planSampling, alphasCumprod, inferenceTimesteps, SCHEDULERS, DEFAULT_SCHEDULE } from './schedulers.js';
export type { SchedulerName, NoiseScheduleConfig, BetaSchedule, PredictionType, TimestepSpacing, SamplingPlan, StepPlan } from './schedulers.js';
