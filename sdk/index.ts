/**
 * EdgeKit's public API. Everything a user may import is exported here by name; deep imports are not part of the API.
 */
export { InferenceSession } from './session.js';
export type { Backend, SessionOptions, RunOptions, ValueMetadata, SessionReport, NodeReport } from './session.js';
export { Tensor } from './tensor.js';
export type { TensorType, TensorData, TensorLocation } from './tensor.js';
export type { ModelSource } from './model-source.js';
export {
  EdgeKitError, ModelFormatError, InvalidGraphError, UnsupportedOpError, ShapeError, DTypeError, InvalidArgumentError,
  AllocationLimitError, OutOfMemoryError, DisposedTensorError, SessionReleasedError, DeviceError, InternalError,
} from '../runtime/errors.js';
export type { EdgeKitErrorCode, UnsupportedNode } from '../runtime/errors.js';
