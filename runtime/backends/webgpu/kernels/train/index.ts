import type { GpuKernel } from '../../program.js';
import { kernels as activationGrad } from './activation-grad.js';
import { kernels as convGrad } from './conv-grad.js';
import { kernels as dropout } from './dropout.js';
import { kernels as losses } from './losses.js';
import { kernels as normGrad } from './norm-grad.js';
import { kernels as poolGrad } from './pool-grad.js';
import { kernels as sumToShape } from './sum-to-shape.js';

/**
 * WebGPU kernels of the training ops (domain 'edgekit.train', schemas and CPU twins in runtime/train/ops), by op
 * name. The executor looks nodes of that domain up here (kernels/index.ts gpuKernelFor).
 */
export const GPU_TRAIN_KERNELS: Readonly<Record<string, GpuKernel>> = Object.freeze({
  ...sumToShape,
  ...activationGrad,
  ...convGrad,
  ...normGrad,
  ...poolGrad,
  ...dropout,
  ...losses,
});
