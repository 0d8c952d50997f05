/**
 * EdgeKit's public API. Everything a user may import is exported here by name; deep imports are not part of the API.
 */
export { InferenceSession } from './session.js';
export type { Backend, SessionOptions, RunOptions, ValueMetadata, SessionReport, NodeReport, DispatchProfile } from './session.js';
export { SessionStream } from './stream.js';
export type { StreamOptions } from './stream.js';
export { Tensor } from './tensor.js';
export type { SessionValue } from './values.js';
export type { TensorType, TensorData, TensorLocation } from './tensor.js';
export type { ImageCrop, ImageSource, ImageTensorOptions } from './vision/image.js';
export type { QueueOptions } from './queue.js';
export type { LoadOptions, LoadProgress, ModelCacheOptions } from './loading/options.js';
export type { ModelSource } from './model-source.js';
export {
  EdgeKitError, ModelFormatError, InvalidGraphError, UnsupportedOpError, ShapeError, DTypeError, InvalidArgumentError,
  AllocationLimitError, OutOfMemoryError, DisposedTensorError, SessionReleasedError, DeviceError, InternalError,
} from '../runtime/errors.js';
export type { EdgeKitErrorCode, UnsupportedNode } from '../runtime/errors.js';
export { FineTuner } from './fine-tuner.js';
export type {
  FineTunerOptions, NewHeadOptions, LossName, LossOption, Dataset, ExampleInputs, ExampleLabels, FitOptions, FitResult, FitProgress,
  StepProgress, EpochMetrics, EvaluationMetrics, EarlyStoppingOptions, EarlyStoppingMetric, TunerCallOptions,
} from './fine-tuner/options.js';
export { sgd, adam, adamw, rmsprop } from '../runtime/train/optimizers.js';
export type { OptimizerConfig, SgdConfig, AdamConfig, RmsPropConfig } from '../runtime/train/optimizers.js';
export { constantLr, stepLr, cosineLr, warmup } from '../runtime/train/schedules.js';
export type { LrSchedule } from '../runtime/train/schedules.js';
export { CancelledError, QueueFullError } from '../runtime/errors.js';
export type { CancelReason } from '../runtime/errors.js';
export { Scheduler, Lane } from '../runtime/scheduler/index.js';
export type { SchedulerOptions, LaneOptions, LaneMode, RunInfo, SubmitOptions, StepOptions, TaskPriority } from '../runtime/scheduler/index.js';
export { createWorker, EdgeKitWorker, WorkerSession } from './worker/client.js';
export type { CreateWorkerOptions, WorkerRunOptions, WorkerLike } from './worker/client.js';
export type { WorkerSessionOptions } from './worker/wire.js';
export { WorkerFineTuner } from './worker/tuner-client.js';
export type { WorkerFitOptions } from './worker/tuner-client.js';
export { RemoteTensor } from './worker/remote-tensor.js';
export type { WorkerValue } from './worker/remote-tensor.js';
export { quantize } from './quantize.js';
export type { QuantizeOptions, QuantizeFeeds } from './quantize.js';
export { formatReport } from '../quantize/index.js';
export type { QuantizeResult, QuantizeReport, LayerReport, KeptNode, QuantizeMode, CalibrationMethod } from '../quantize/index.js';
export {
  TextGenerator, SentenceEncoder, loadTokenizer, ModelLayoutError, ContextLengthError, VocabularyMismatchError, NonFiniteLogitsError,
} from './text/index.js';
export type {
  TextGeneratorOptions, GenerateOptions, GeneratedToken, GeneratedRow, GenerationResult, Prompt, SentenceEncoderOptions, EmbedOptions,
  Classification, TextTokenizer, ChatMessage, ChatTemplateOptions, LoadTokenizerOptions, DecoderLayout, LayerCache,
} from './text/index.js';
export { DiffusionPipeline, parseSchedulerConfig, planSampling, hostNoise, SCHEDULERS } from './diffusion/index.js';
export { LatentDiffusionPipeline, DiffusionLayoutError, projectLatents } from './diffusion/index.js';
export type {
  LatentDecoding, LatentDiffusionComponents, LoadLatentDiffusionOptions, GenerateFromPromptOptions, LatentDiffusionResult,
} from './diffusion/index.js';
export type {
  DiffusionPipelineOptions, GenerateImageOptions, DiffusionResult, DiffusionProgress, DiffusionPreview, SchedulerName, NoiseScheduleConfig,
} from './diffusion/index.js';
