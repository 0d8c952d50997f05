import { runGraphCpu } from '../../backends/cpu/executor.js';
import type { Graph, Node } from '../graph.js';
import { bodyOf } from '../ops/control-flow.js';
import { hostTensor, tensorFromNumbers, type HostTensor } from '../tensor.js';
import { nodeReads } from '../validate.js';

/**
 * The iteration count of a Loop whose body computes its condition from constants, the iteration number and
 * loop-carried values that start constant and are updated the same way (a counter, `i + 1 < n` with `n` constant):
 * that slice of the body is run on the CPU reference at plan time, iteration by iteration, as the Loop would run it.
 * Returns why not when the condition depends on anything else (tensor data: the reason starts with DATA_DEPENDENT) or
 * stays true past `maxTrips`. `base` is the iteration number of the first iteration (a Loop left after peeling).
 */
/** How plannedTrips' reasons start when the condition depends on tensor data (a Loop that can still be peeled). */
export const DATA_DEPENDENT = "the Loop's condition depends on";

export function plannedTrips(g: Graph, n: Node, limit: number, maxTrips: number, base = 0): number | string {
  const body = bodyOf(n, 'body');
  const producer = new Map<string, Node>();
  for (const b of body.nodes) for (const o of b.outputs) if (o) producer.set(o, b);
  const inputIndex = new Map(body.inputs.map((inp, k) => [inp.name, k] as const));
  const nodes = new Set<Node>();
  const carried = new Set<number>();
  const stack = [body.outputs[0]!.name];
  const seen = new Set<string>();
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    const k = inputIndex.get(v);
    if (k !== undefined) {
      if (k >= 2 && !carried.has(k - 2)) {
        carried.add(k - 2);
        stack.push(body.outputs[k - 1]!.name); // the carried value's update
      }
      continue;
    }
    if (v in body.initializers) continue;
    const p = producer.get(v);
    if (!p) {
      if (v in g.initializers) continue;
      return `${DATA_DEPENDENT} '${v}', which is computed from tensor data`;
    }
    if (!nodes.has(p)) {
      nodes.add(p);
      stack.push(...nodeReads(p));
    }
  }
  const state = new Map<number, HostTensor>();
  for (const j of carried) {
    const init = g.initializers[n.inputs[2 + j]!];
    if (!init) return `${DATA_DEPENDENT} loop-carried value '${body.inputs[2 + j]!.name}', whose initial value '${n.inputs[2 + j]}' is computed from tensor data`;
    state.set(j, init);
  }
  const condOut = body.outputs[0]!.name;
  const updates = [...carried].map((j) => [j, body.outputs[1 + j]!.name] as const);
  const slice: Graph = { ...body, nodes: body.nodes.filter((b) => nodes.has(b)), outputs: [], values: {} };
  const outer = (name: string) => g.initializers[name];
  let cond = true;
  let i = 0;
  for (; i < limit && cond; i++) {
    if (i >= maxTrips) return `the Loop runs more than ${maxTrips} iterations, more than a plan unrolls of its body`;
    const feeds: Record<string, HostTensor> = {
      [body.inputs[0]!.name]: hostTensor('int64', [], BigInt64Array.of(BigInt(base + i))),
      [body.inputs[1]!.name]: tensorFromNumbers('bool', [], [1]),
    };
    for (const [j, t] of state) feeds[body.inputs[2 + j]!.name] = t;
    const out = runGraphCpu(slice, feeds, [condOut, ...updates.map(([, u]) => u)], { outer });
    cond = Boolean(out[condOut]!.data[0]);
    for (const [j, u] of updates) state.set(j, out[u]!);
  }
  return i;
}
