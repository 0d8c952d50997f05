import type { GpuKernel } from '../../program.js';

/**
 * WebGPU kernels of the training ops (domain 'edgekit.train', schemas and CPU twins in runtime/train/ops), by op
 * name. The executor looks nodes of that domain up here (kernels/index.ts gpuKernelFor).
 */
export const GPU_TRAIN_KERNELS: Readonly<Record<string, GpuKernel>> = Object.freeze({});
