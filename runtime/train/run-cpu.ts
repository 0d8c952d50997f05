import { InternalError, InvalidArgumentError, UnsupportedOpError } from '../errors.js';
import type { Graph, Node } from '../ir/graph.js';
import { DEFAULT_MAX_ELEMENTS, type HostTensor } from '../ir/tensor.js';
import { callKernel, runNodeCpu, type CpuRunOptions } from '../backends/cpu/executor.js';
import type { CpuKernelContext } from '../backends/cpu/kernel.js';
import { TRAIN_CPU_KERNELS, TRAIN_DOMAIN } from './ops/index.js';

/**
 * Runs IR graphs that mix default-domain ops with the training ops (forward tail + loss, backward graphs) on the
 * CPU reference. Default-domain nodes go through runNodeCpu (CPU_KERNELS); 'edgekit.train' nodes through
 * TRAIN_CPU_KERNELS. Like runGraphCpu, intermediates are dropped after their last reader so host memory follows
 * liveness. Once the lead merges TRAIN_CPU_KERNELS into CPU_KERNELS this becomes a thin alias of runGraphCpu.
 */

export function runTrainNodeCpu(node: Node, inputs: (HostTensor | undefined)[], ctx: CpuKernelContext): HostTensor[] {
  if (node.domain !== TRAIN_DOMAIN) return runNodeCpu(node, inputs, ctx);
  const kernel = TRAIN_CPU_KERNELS[node.op];
  if (!kernel) throw new UnsupportedOpError([{ op: node.op, domain: node.domain, opset: 0, node: node.name, reason: 'no CPU kernel for this training op' }]);
  return callKernel(kernel, inputs, node, ctx, 'Training kernel');
}

/**
 * Executes a sorted graph; returns the requested values (graph outputs by default). Only the nodes those values
 * depend on run, and only the graph inputs they read must be fed (predictions without a target, for one).
 */
export function runTrainGraphCpu(
  g: Graph,
  feeds: Record<string, HostTensor>,
  outputs: readonly string[] = g.outputs.map((o) => o.name),
  opts: CpuRunOptions = {},
): Record<string, HostTensor> {
  const ctx: CpuKernelContext = { maxElements: opts.maxElements ?? DEFAULT_MAX_ELEMENTS };
  const needed = new Set(outputs);
  const nodes: Node[] = [];
  for (let k = g.nodes.length - 1; k >= 0; k--) {
    const n = g.nodes[k]!;
    if (!n.outputs.some((o) => o && needed.has(o))) continue;
    nodes.unshift(n);
    for (const v of n.inputs) if (v) needed.add(v);
  }
  const env = new Map<string, HostTensor>();
  for (const [k, t] of Object.entries(g.initializers)) env.set(k, t);
  for (const i of g.inputs) {
    const t = feeds[i.name];
    if (t) env.set(i.name, t);
    else if (needed.has(i.name)) throw new InvalidArgumentError(`Graph '${g.name}' needs input '${i.name}', which was not fed.`, { input: i.name });
  }
  const keep = new Set([...outputs, ...Object.keys(g.initializers), ...g.inputs.map((i) => i.name)]);
  const lastUse = new Map<string, number>();
  nodes.forEach((n, i) => n.inputs.forEach((v) => v && lastUse.set(v, i)));

  nodes.forEach((node, i) => {
    const ins = node.inputs.map((v) => {
      if (v === '') return undefined;
      const t = env.get(v);
      if (!t) throw new InternalError(`Value '${v}' read by node '${node.name}' was not computed.`);
      return t;
    });
    const outs = runTrainNodeCpu(node, ins, ctx);
    node.outputs.forEach((name, k) => {
      if (!name) return;
      const t = outs[k];
      if (!t) throw new InternalError(`${node.op} kernel returned no tensor for output ${k} ('${name}').`);
      env.set(name, t);
    });
    for (const v of node.inputs) if (v && lastUse.get(v) === i && !keep.has(v)) env.delete(v);
  });

  const result: Record<string, HostTensor> = {};
  for (const o of outputs) {
    const t = env.get(o);
    if (!t) throw new InternalError(`Output '${o}' was not computed.`);
    result[o] = t;
  }
  return result;
}
