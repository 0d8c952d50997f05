/** ONNX ↔ IR. Opsets never leak past this folder: the IR is newest-opset form. */
export { importOnnx } from './import.js';
export type { ImportOptions, ImportedModel } from './import.js';
export { exportOnnx } from './export.js';
export type { ExportOptions } from './export.js';
export { tensorFromProto, decodeTensorProtoBytes, tensorToProto } from './tensor.js';
export { memoryExternalDataResolver } from './external-data.js';
export type { ExternalDataResolver } from './external-data.js';
export { listSupportedOps, MAX_OPSET, MIN_OPSET } from './ops/index.js';
