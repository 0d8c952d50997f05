import { binOf, histogramParams, HISTOGRAM_OP } from '../../../ir/ops/histogram.js';
import { hostTensor } from '../../../ir/tensor.js';
import type { CpuKernel } from '../kernel.js';

/**
 * edgekit.Histogram, the reference the WebGPU kernel is checked against (exactly: both apply binOf from the op's
 * schema, runtime/ir/ops/histogram.ts). Counts wrap at 2^32 as the GPU's u32 atomics do.
 */
const histogram: CpuKernel = ([x, acc], node) => {
  const p = histogramParams(node);
  const out = new Uint32Array(p.bins);
  if (acc) out.set(acc.data as Uint32Array);
  const v = x!.data as Float32Array;
  for (let i = 0; i < v.length; i++) {
    const b = binOf(p.abs ? Math.abs(v[i]!) : v[i]!, p);
    if (b >= 0) out[b] = (out[b]! + 1) >>> 0;
  }
  return [hostTensor('uint32', [p.bins], out)];
};

export const kernels: Record<string, CpuKernel> = { [HISTOGRAM_OP]: histogram };
