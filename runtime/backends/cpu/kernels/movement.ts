import type { CpuKernel } from '../kernel.js';

// CPU reference kernels for the movement family (owned by the data-movement work stream).
export const kernels: Record<string, CpuKernel> = {};
