import type { GpuKernel } from '../program.js';
import { kernels as elementwise } from './elementwise.js';
import { kernels as matmul } from './matmul.js';
import { kernels as conv } from './conv.js';
import { kernels as movement } from './movement.js';
import { kernels as gatherPad } from './gather-pad.js';
import { kernels as cast } from './cast.js';

/** Every op with a WebGPU kernel, by IR op name (default domain). */
export const GPU_KERNELS: Readonly<Record<string, GpuKernel>> = Object.freeze({
  ...elementwise,
  ...matmul,
  ...conv,
  ...movement,
  ...gatherPad,
  ...cast,
});
