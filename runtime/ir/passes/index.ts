import type { Dim, Graph } from '../graph.js';
import { inferShapes } from '../infer.js';
import { DEFAULT_MAX_ELEMENTS } from '../tensor.js';
import { foldConstants } from './constant-folding.js';
import { foldConvBatchNorm } from './conv-bn.js';
import { removeDeadCode } from './dead-code.js';
import { removeIdentities } from './identity.js';
import { assertControlFlowLowered, lowerControlFlow } from './control-flow.js';

export { foldConstants, foldConvBatchNorm, removeDeadCode, removeIdentities };

export interface OptimizeStats {
  folded: number;
  convBn: number;
  nodesBefore: number;
  nodesAfter: number;
}

/** Deep-enough copy that passes can rewrite nodes and initializer tables without touching the source graph. */
export function cloneGraph(g: Graph): Graph {
  return {
    ...g,
    inputs: g.inputs.map((i) => ({ ...i, shape: i.shape ? [...i.shape] : undefined })),
    outputs: g.outputs.map((o) => ({ ...o })),
    initializers: { ...g.initializers },
    nodes: g.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs], attrs: { ...n.attrs } })),
    values: { ...g.values },
  };
}

/**
 * The load-time pipeline over a sorted, inferred graph: Identity/Dropout removal, constant folding, Conv+BN folding,
 * dead code, and a final shape inference. Never mutates its argument.
 */
export interface OptimizeOptions {
  /**
   * For training (FineTuner): keep Dropout nodes (they are active while the tail trains) and BatchNormalization
   * nodes (their scale and bias train with frozen statistics; folded into the Conv they could not). Default false.
   */
  forTraining?: boolean;
}

export function optimize(src: Graph, maxElements = DEFAULT_MAX_ELEMENTS, opts: OptimizeOptions = {}): { graph: Graph; stats: OptimizeStats } {
  let g = cloneGraph(src);
  const nodesBefore = g.nodes.length;
  removeIdentities(g, { keepDropout: opts.forTraining });
  g = inferShapes(g);
  let folded = 0;
  for (let round = 0; round < 4; round++) {
    const n = foldConstants(g, maxElements);
    if (!n) break;
    folded += n;
    g = inferShapes(g);
  }
  const convBn = opts.forTraining ? 0 : foldConvBatchNorm(g);
  removeDeadCode(g);
  g = inferShapes(g);
  return { graph: g, stats: { folded, convBn, nodesBefore, nodesAfter: g.nodes.length } };
}

/**
 * Specializes a graph to concrete input shapes (the plan for one shape signature): binds the symbolic dims of the
 * inputs, re-infers, and folds everything that became constant (Shape chains in particular).
 */
export function specialize(
  src: Graph,
  inputShapes: Record<string, readonly number[]>,
  maxElements = DEFAULT_MAX_ELEMENTS,
  opts: SpecializeOptions = {},
): Graph {
  let g = cloneGraph(src);
  g.inputs = g.inputs.map((i) => (inputShapes[i.name] ? { ...i, shape: [...inputShapes[i.name]!] as Dim[] } : i));
  g = inferShapes(g);
  const lower = opts.controlFlow !== 'keep';
  for (let round = 0; round < 16; round++) {
    // Control flow decided by values now constant is lowered (passes/control-flow.ts); folding its nodes may decide
    // the next (an If inside an unrolled Loop tests the iteration number).
    const lowered = lower ? lowerControlFlow(g) : 0;
    if (lowered) g = inferShapes(g);
    if (!foldConstants(g, maxElements) && !lowered) break;
    g = inferShapes(g);
  }
  if (lower) assertControlFlowLowered(g);
  removeDeadCode(g);
  return inferShapes(g);
}

export interface SpecializeOptions {
  /**
   * 'lower' (default, for a static plan such as WebGPU's): If/Loop/Scan decided at plan time are inlined or
   * unrolled, those that never can be throw UnsupportedOpError, and those waiting on computed values stay for the
   * caller to stage. 'keep' (the CPU backend): they stay, and the executor runs their bodies nested.
   */
  controlFlow?: 'lower' | 'keep';
}
