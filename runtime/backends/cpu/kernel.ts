import type { Graph, Node } from '../../ir/graph.js';
import type { HostTensor } from '../../ir/tensor.js';

export interface CpuKernelContext {
  /** Largest element count any output may have (allocation-bomb guard); kernels pass it to sizeOf(). */
  maxElements: number;
  /**
   * Control flow (kernels/control-flow.ts): runs a body graph with the given inputs, the values of the graphs
   * around the node visible as its outer scope; returns the body's outputs in order. Set by the graph executor.
   */
  runBody?(body: Graph, feeds: Record<string, HostTensor>): HostTensor[];
  /** Most iterations one Loop may run before it throws (SessionOptions.maxLoopIterations). */
  maxLoopIterations?: number;
}

/**
 * A CPU reference kernel: clear, exact to the ONNX spec, not fast. `inputs[i]` is undefined where an optional
 * input is omitted. Returns one tensor per node output (trailing optional outputs may be omitted only if the node
 * does not name them). Kernels never mutate their inputs.
 */
export type CpuKernel = (inputs: (HostTensor | undefined)[], node: Node, ctx: CpuKernelContext) => HostTensor[];
