import type { GpuKernel } from '../program.js';
import { kernels as elementwise } from './elementwise.js';
import { kernels as matmul } from './matmul.js';
import { kernels as conv } from './conv.js';
import { kernels as pool } from './pool.js';
import { kernels as reduce } from './reduce.js';
import { kernels as normalization } from './normalization.js';
import { kernels as movement } from './movement.js';
import { kernels as gatherPad } from './gather-pad.js';
import { kernels as cast } from './cast.js';
import { kernels as resize } from './resize.js';
import { kernels as convTranspose } from './conv-transpose.js';
import { kernels as topK } from './top-k.js';

/** Every op with a WebGPU kernel, by IR op name (default domain). One file per op family. */
export const GPU_KERNELS: Readonly<Record<string, GpuKernel>> = Object.freeze({
  ...elementwise,
  ...matmul,
  ...conv,
  ...pool,
  ...reduce,
  ...normalization,
  ...movement,
  ...gatherPad,
  ...cast,
  ...resize,
  ...convTranspose,
  ...topK,
});
