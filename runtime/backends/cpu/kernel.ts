import type { Node } from '../../ir/graph.js';
import type { HostTensor } from '../../ir/tensor.js';

export interface CpuKernelContext {
  /** Largest element count any output may have (allocation-bomb guard); kernels pass it to sizeOf(). */
  maxElements: number;
}

/**
 * A CPU reference kernel: clear, exact to the ONNX spec, not fast. `inputs[i]` is undefined where an optional
 * input is omitted. Returns one tensor per node output (trailing optional outputs may be omitted only if the node
 * does not name them). Kernels never mutate their inputs.
 */
export type CpuKernel = (inputs: (HostTensor | undefined)[], node: Node, ctx: CpuKernelContext) => HostTensor[];
