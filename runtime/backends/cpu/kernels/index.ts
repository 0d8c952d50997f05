import type { CpuKernel } from '../kernel.js';
import { kernels as elementwise } from './elementwise.js';
import { kernels as matmul } from './matmul.js';
import { kernels as conv } from './conv.js';
import { kernels as pool } from './pool.js';
import { kernels as normalization } from './normalization.js';
import { kernels as reduce } from './reduce.js';
import { kernels as shapeOps } from './shape-ops.js';
import { kernels as movement } from './movement.js';
import { kernels as resize } from './resize.js';
import { kernels as dataDependent } from './data-dependent.js';
import { kernels as nms } from './nms.js';
import { kernels as unique } from './unique.js';
import { kernels as indexing } from './indexing.js';
import { kernels as rnn } from './rnn.js';
import { kernels as controlFlow } from './control-flow.js';
import { kernels as loss } from './loss.js';
import { kernels as optimizers } from './optimizers.js';
import { kernels as text } from './text.js';
import { kernels as random } from './random.js';
import { kernels as einsum } from './einsum.js';
import { kernels as layoutMath } from './layout-math.js';
import { kernels as vision } from './vision.js';
import { kernels as signal } from './signal.js';
import { kernels as contrib } from './contrib.js';
import { kernels as quantize } from './quantize.js';
import { kernels as attention } from './attention.js';
import { kernels as quantizeContrib } from './quantize-contrib.js';
import { kernels as histogram } from './histogram.js';

export const CPU_KERNELS: Readonly<Record<string, CpuKernel>> = Object.freeze({
  ...dataDependent,
  ...nms,
  ...unique,
  ...elementwise, ...matmul, ...conv, ...pool, ...normalization, ...reduce, ...shapeOps, ...movement, ...resize, ...rnn,
  ...indexing,
  ...controlFlow,
  ...loss,
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
