import type { CpuKernel } from '../kernel.js';

// CPU reference kernels for the matmul family (owned by the math work stream).
export const kernels: Record<string, CpuKernel> = {};
