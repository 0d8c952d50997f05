import type { CpuKernel } from '../kernel.js';

// CPU reference kernels for the elementwise family (owned by the math work stream).
export const kernels: Record<string, CpuKernel> = {};
