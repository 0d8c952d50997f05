import type { UnsupportedNode } from '../../errors.js';
import type { Node } from '../../ir/graph.js';
import { GPU_REFUSALS, gpuKernelFor } from './kernels/index.js';
import { controlFlowBodiesSupported } from '../../ir/passes/control-flow.js';

/**
 * The load-time question for the WebGPU backend: can this node run once shapes are known? A plan is made per
 * input-shape signature with every shape concrete (ir/passes specialize), so a node runs on the GPU when
 *  - it has a kernel (which may read some inputs on the host at plan time: GpuKernel.hostInputs), or
 *  - it only reads shapes: Shape and Size are constants of every plan, folded when the plan is made. They read no
 *    tensor data, so they never need a kernel, whatever their input is; or
 *  - the WebGPU lowering replaces it by ops with kernels (NonMaxSuppression).
 * Whether a node's kernel accepts its dtypes and attributes is decided when a plan is made (the first one at load
 * time, see GpuSession.create), where every node that fails is listed in one UnsupportedOpError.
 */
export const PLAN_TIME_OPS: ReadonlySet<string> = new Set(['Shape', 'Size']);

/** Ops the WebGPU lowering rewrites into ops with kernels before a plan is made (lower-counts.ts). */
export const LOWERED_OPS: ReadonlySet<string> = new Set(['NonMaxSuppression']);

/**
 * Sequence and optional ops: resolved into tensor ops (Split, Concat, Identity, constants...) when a plan is made,
 * for the fed sequences' lengths (ir/passes/sequences.ts, backends/webgpu/sequence-session.ts). A position computed
 * from tensor data is refused then, naming the node.
 */
export const SEQUENCE_LOWERED_OPS: ReadonlySet<string> = new Set([
  'SequenceEmpty', 'SequenceConstruct', 'SequenceInsert', 'SequenceAt', 'SequenceErase', 'SequenceLength',
  'SplitToSequence', 'ConcatFromSequence', 'SequenceMap', 'Optional', 'OptionalHasElement', 'OptionalGetElement',
]);

export function gpuCanRun(node: Pick<Node, 'op' | 'domain'>): boolean {
  return (
    Boolean(gpuKernelFor(node)) ||
    (node.domain === '' && (PLAN_TIME_OPS.has(node.op) || LOWERED_OPS.has(node.op) || SEQUENCE_LOWERED_OPS.has(node.op)))
  );
}

/** Every node of `nodes` that can never run on the GPU, as UnsupportedOpError entries. */
export function nodesWithoutGpuSupport(nodes: readonly Node[], opset: number): UnsupportedNode[] {
  return nodes
    // If/Loop/Scan: lowered into the plan (ir/passes/control-flow.ts), so their bodies' nodes must run.
    .filter((n) => !gpuCanRun(n) && !controlFlowBodiesSupported(n, gpuCanRun))
    .map((n) => ({ op: n.op, domain: n.domain, opset: n.domain === '' ? opset : 1, node: n.name, reason: (n.domain === '' && Object.hasOwn(GPU_REFUSALS, n.op) && GPU_REFUSALS[n.op]) || 'no WebGPU kernel' }));
}
