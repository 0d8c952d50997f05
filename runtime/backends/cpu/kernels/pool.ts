import type { CpuKernel } from '../kernel.js';

// CPU reference kernels for the pool family (owned by the math work stream).
export const kernels: Record<string, CpuKernel> = {};
