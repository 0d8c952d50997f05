import { EdgeKitError, InternalError, UnsupportedOpError } from '../../errors.js';
import type { Graph, Node } from '../../ir/graph.js';
import { nodeReads } from '../../ir/validate.js';
import { DEFAULT_MAX_ELEMENTS, type HostTensor } from '../../ir/tensor.js';
import type { CpuKernelContext } from './kernel.js';
import { CPU_KERNELS } from './kernels/index.js';

export interface CpuRunOptions {
  maxElements?: number;
  /** Values of the enclosing graphs, for a control-flow body (Graph.outerScope). */
  outer?: (name: string) => HostTensor | undefined;
  /** CpuKernelContext.maxLoopIterations. */
  maxLoopIterations?: number;
}

/** Runs one node on the CPU reference. Errors are re-thrown with the node named. */
export function runNodeCpu(node: Node, inputs: (HostTensor | undefined)[], ctx: CpuKernelContext): HostTensor[] {
  const kernel = CPU_KERNELS[node.op];
  if (!kernel || node.domain !== '') {
    throw new UnsupportedOpError([{ op: node.op, domain: node.domain, opset: 0, node: node.name, reason: 'no CPU kernel' }]);
  }
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
    throw new InternalError(`CPU kernel ${node.op} failed at node '${node.name}': ${(e as Error)?.message ?? e}`, { node: node.name }, { cause: e });
  }
}

/**
 * Executes a sorted graph on the CPU. Intermediates are dropped as soon as their last reader ran, so peak host
 * memory follows liveness. `feeds` must already be validated against the graph inputs.
 */
export function runGraphCpu(
  g: Graph,
  feeds: Record<string, HostTensor>,
  outputs: readonly string[] = g.outputs.map((o) => o.name),
  opts: CpuRunOptions = {},
): Record<string, HostTensor> {
  const env = new Map<string, HostTensor>();
  for (const [k, t] of Object.entries(g.initializers)) env.set(k, t);
  for (const [k, t] of Object.entries(feeds)) env.set(k, t);
  const lookup = (v: string) => env.get(v) ?? opts.outer?.(v);
  const ctx: CpuKernelContext = {
    maxElements: opts.maxElements ?? DEFAULT_MAX_ELEMENTS,
    maxLoopIterations: opts.maxLoopIterations,
    // A body runs nested, seeing this graph's live values and, through them, every enclosing scope.
    runBody: (body, bodyFeeds) => {
      const names = body.outputs.map((o) => o.name);
      const r = runGraphCpu(body, bodyFeeds, names, { ...opts, outer: lookup });
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
      if (!t) throw new InternalError(`Value '${v}' read by node '${node.name}' was not computed.`);
      return t;
    });
    const outs = runNodeCpu(node, ins, ctx);
    node.outputs.forEach((name, k) => {
      if (!name) return;
      const t = outs[k];
      if (!t) throw new InternalError(`${node.op} kernel returned no tensor for output ${k} ('${name}').`);
      env.set(name, t);
    });
    for (const v of nodeReads(node)) {
      if (v && lastUse.get(v) === i && !wanted.has(v) && !(v in g.initializers) && !(v in feeds)) env.delete(v);
    }
  });

  const result: Record<string, HostTensor> = {};
  for (const o of outputs) {
    const t = lookup(o);
    if (!t) throw new InternalError(`Output '${o}' was not computed.`);
    result[o] = t;
  }
  return result;
}
