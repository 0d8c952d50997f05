import type { OpSchema } from './schema.js';
import { schemas as elementwise } from './elementwise.js';
import { schemas as matmul } from './matmul.js';
import { schemas as conv } from './conv.js';
import { schemas as pool } from './pool.js';
import { schemas as normalization } from './normalization.js';
import { schemas as reduce } from './reduce.js';
import { schemas as shapeOps } from './shape-ops.js';
import { schemas as movement } from './movement.js';
import { schemas as resize } from './resize.js';
import { schemas as dataDependent } from './data-dependent.js';
import { schemas as nms } from './nms.js';
import { schemas as unique } from './unique.js';
import { schemas as indexing } from './indexing.js';
import { schemas as controlFlow } from './control-flow.js';
import { schemas as rnn } from './rnn.js';
import { schemas as loss } from './loss.js';
import { schemas as sequences } from './sequences.js';
import { schemas as optimizers } from './optimizers.js';
import { schemas as text } from './text.js';
import { schemas as random } from './random.js';
import { schemas as einsum } from './einsum.js';
import { schemas as layoutMath } from './layout-math.js';
import { schemas as vision } from './vision.js';
import { schemas as signal } from './signal.js';
import { schemas as contrib } from './contrib.js';
import { schemas as quantize } from './quantize.js';
import { schemas as attention } from './attention.js';
import { schemas as quantizeContrib } from './quantize-contrib.js';
import { schemas as histogram } from './histogram.js';

/** Every IR op EdgeKit knows, by name (default ONNX domain, newest-opset semantics). */
export const OP_SCHEMAS: Readonly<Record<string, OpSchema>> = Object.freeze({
  ...dataDependent,
  ...nms,
  ...unique,
  ...elementwise, ...matmul, ...conv, ...pool, ...normalization, ...reduce, ...shapeOps, ...movement, ...resize, ...rnn,
  ...controlFlow,
  ...indexing,
  ...loss,
  ...sequences,
  ...optimizers,
  ...text,
  ...random,
  ...einsum,
  ...layoutMath,
  ...vision,
  ...signal,
  ...contrib,
  ...quantize,
  ...attention,
  ...quantizeContrib,
  ...histogram,
});

export type { OpSchema, InferContext, InferInput, InferredOutput } from './schema.js';
