import { DTypeError, EdgeKitError, InternalError, UnsupportedOpError } from '../../errors.js';
import type { Graph, Node } from '../../ir/graph.js';
import { nodeReads } from '../../ir/validate.js';
import { DEFAULT_MAX_ELEMENTS, type HostTensor } from '../../ir/tensor.js';
import type { CpuKernelContext } from './kernel.js';
import { CPU_KERNELS } from './kernels/index.js';
import { SEQUENCE_KERNELS } from './kernels/sequences.js';
import type { HostValue } from '../../ir/value.js';

export interface CpuRunOptions {
  maxElements?: number;
  /** Values of the enclosing graphs, for a control-flow body (Graph.outerScope). */
  outer?: (name: string) => HostValue | undefined;
  /** CpuKernelContext.maxLoopIterations. */
  maxLoopIterations?: number;
}

/**
 * Calls a CPU kernel (the tensor, sequence or training tables): an EdgeKitError gets the node named (once), anything
 * else becomes an InternalError naming the kernel and node.
 */
export function callKernel<I, O>(kernel: (inputs: I, node: Node, ctx: CpuKernelContext) => O, inputs: I, node: Node, ctx: CpuKernelContext, what = 'CPU kernel'): O {
  try {
    return kernel(inputs, node, ctx);
  } catch (e) {
    if (e instanceof EdgeKitError) {
      if (!('node' in e.details)) {
        e.message = `${node.op} node '${node.name}': ${e.message}`;
        Object.assign(e.details, { node: node.name, op: node.op });
      }
      throw e;
    }
    throw new InternalError(`${what} ${node.op} failed at node '${node.name}': ${(e as Error)?.message ?? e}`, { node: node.name }, { cause: e });
  }
}

/** Runs one node on the CPU reference. Errors are re-thrown with the node named. */
export function runNodeCpu(node: Node, inputs: (HostTensor | undefined)[], ctx: CpuKernelContext): HostTensor[] {
  const kernel = CPU_KERNELS[node.op];
  if (!kernel || node.domain !== '') {
    throw new UnsupportedOpError([{ op: node.op, domain: node.domain, opset: 0, node: node.name, reason: 'no CPU kernel' }]);
  }
  return callKernel(kernel, inputs, node, ctx);
}

/**
 * Runs one node whose inputs or outputs may be sequences or optionals (ir/value.ts): the sequence/optional ops
 * through their own kernels; control flow and Identity move such values without reading them, so they take them
 * as they are (Identity of a sequence or empty optional returns it); every other kernel gets tensors only (shape inference refuses anything else before a run).
 */
export function runValueNodeCpu(node: Node, inputs: (HostValue | undefined)[], ctx: CpuKernelContext): HostValue[] {
  const kernel = node.domain === '' ? SEQUENCE_KERNELS[node.op] : undefined;
  if (!kernel) {
    if (node.op === 'Identity' && node.domain === '' && (inputs[0] === null || Array.isArray(inputs[0]))) return [inputs[0]];
    const opaque = node.domain === '' && PASS_THROUGH.has(node.op);
    const bad = opaque ? -1 : inputs.findIndex((v) => v === null || Array.isArray(v));
    if (bad >= 0) throw new DTypeError(`${node.op} node '${node.name}': input ${bad} ('${node.inputs[bad]}') is a sequence or optional; ${node.op} takes tensors.`, { node: node.name, op: node.op });
    return runNodeCpu(node, inputs as (HostTensor | undefined)[], ctx);
  }
  return callKernel(kernel, inputs, node, ctx);
}

/** Control-flow kernels pass values to and from their bodies without reading them: any HostValue goes. */
const PASS_THROUGH = new Set(['If', 'Loop', 'Scan']);

/**
 * Executes a sorted graph on the CPU. Intermediates are dropped as soon as their last reader ran, so peak host
 * memory follows liveness. `feeds` must already be validated against the graph inputs.
 */
export function runGraphCpu(
  g: Graph,
  feeds: Record<string, HostTensor>,
  outputs?: readonly string[],
  opts?: CpuRunOptions,
): Record<string, HostTensor>;
export function runGraphCpu(g: Graph, feeds: Record<string, HostValue>, outputs?: readonly string[], opts?: CpuRunOptions): Record<string, HostValue>;
export function runGraphCpu(
  g: Graph,
  feeds: Record<string, HostValue>,
  outputs: readonly string[] = g.outputs.map((o) => o.name),
  opts: CpuRunOptions = {},
): Record<string, HostValue> {
  // Values may be sequences or empty optionals (null): `has`, not truthiness, says whether one was computed.
  const env = new Map<string, HostValue>();
  for (const [k, t] of Object.entries(g.initializers)) env.set(k, t);
  for (const [k, t] of Object.entries(feeds)) env.set(k, t);
  const lookup = (v: string): HostValue | undefined => (env.has(v) ? env.get(v) : opts.outer?.(v));
  const bodyOpts: CpuRunOptions = { ...opts, outer: lookup };
  const ctx: CpuKernelContext = {
    maxElements: opts.maxElements ?? DEFAULT_MAX_ELEMENTS,
    maxLoopIterations: opts.maxLoopIterations,
    // A body runs nested, seeing this graph's live values and, through them, every enclosing scope.
    runBody: (body, bodyFeeds) => {
      const names = body.outputs.map((o) => o.name);
      const r = runGraphCpu(body, bodyFeeds, names, bodyOpts);
      return names.map((n) => r[n]!);
    },
  };

  const wanted = new Set(outputs);
  const lastUse = new Map<string, number>();
  // nodeReads: a value a body reads from this graph stays alive until its control-flow node ran.
  g.nodes.forEach((n, i) => nodeReads(n).forEach((v) => lastUse.set(v, i)));

  g.nodes.forEach((node, i) => {
    const ins = node.inputs.map((v) => {
      if (v === '') return undefined;
      const t = lookup(v);
      if (t === undefined) throw new InternalError(`Value '${v}' read by node '${node.name}' was not computed.`);
      return t;
    });
    const outs = runValueNodeCpu(node, ins, ctx);
    node.outputs.forEach((name, k) => {
      if (!name) return;
      const t = outs[k];
      if (t === undefined) throw new InternalError(`${node.op} kernel returned no value for output ${k} ('${name}').`);
      env.set(name, t);
    });
    for (const v of nodeReads(node)) {
      if (v && lastUse.get(v) === i && !wanted.has(v) && !(v in g.initializers) && !(v in feeds)) env.delete(v);
    }
  });

  const result: Record<string, HostValue> = {};
  for (const o of outputs) {
    const t = lookup(o);
    if (t === undefined) throw new InternalError(`Output '${o}' was not computed.`);
    result[o] = t;
  }
  return result;
}
