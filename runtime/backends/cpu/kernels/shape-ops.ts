import type { CpuKernel } from '../kernel.js';

// CPU reference kernels for the shape-ops family (owned by the data-movement work stream).
export const kernels: Record<string, CpuKernel> = {};
