import { expect } from 'vitest';
import { CPU_KERNELS } from '../../runtime/backends/cpu/kernels/index.js';
import { runGraphCpu } from '../../runtime/backends/cpu/executor.js';
import { GpuGraphPlan, runNodeGpu, type GpuPlanReport, type GpuResources } from '../../runtime/backends/webgpu/executor.js';
import type { Graph, Node } from '../../runtime/ir/graph.js';
import { DEFAULT_MAX_ELEMENTS, type HostTensor } from '../../runtime/ir/tensor.js';
import { allClose, type CloseOptions } from '../helpers/compare.js';

/** Runs `node` on the GPU and on the CPU reference and checks the outputs agree. */
export async function checkAgainstCpu(
  res: GpuResources,
  node: Node,
  inputs: (HostTensor | undefined)[],
  tol: CloseOptions = { rtol: 1e-5, atol: 1e-6 },
  opts: { constInputs?: number[]; cpuAdapter?: boolean } = {},
): Promise<HostTensor[]> {
  const cpu = CPU_KERNELS[node.op];
  if (!cpu) throw new Error(`no CPU kernel for ${node.op}`);
  const expected = cpu(inputs, node, { maxElements: DEFAULT_MAX_ELEMENTS });
  const actual = await runNodeGpu(res, node, inputs, opts);
  expected.forEach((e, i) => {
    if (!node.outputs[i]) return; // an omitted optional output
    const r = allClose(actual[i]!, e, tol);
    if (!r.ok) {
      const shapes = inputs.map((t) => (t ? `${t.dtype}[${t.shape.join(',')}]` : '-')).join(' ');
      expect.fail(`${node.op} (${shapes}) output ${i}: ${r.message}`);
    }
  });
  return actual;
}

/** Plans and runs a whole graph on the GPU and on the CPU reference; outputs must agree. Returns the plan report. */
export async function checkGraphAgainstCpu(
  res: GpuResources,
  graph: Graph,
  feeds: Record<string, HostTensor>,
  tol: CloseOptions = { rtol: 1e-5, atol: 1e-6 },
  opts: { cpuAdapter?: boolean } = {},
): Promise<GpuPlanReport> {
  const expected = runGraphCpu(graph, feeds);
  const plan = await GpuGraphPlan.create(res, graph, opts);
  try {
    const actual = await plan.run(feeds);
    for (const [name, e] of Object.entries(expected)) {
      const r = allClose(actual[name]!, e, tol);
      if (!r.ok) expect.fail(`graph output '${name}': ${r.message}`);
    }
    return plan.report();
  } finally {
    plan.dispose();
  }
}
