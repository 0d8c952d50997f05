import type { Graph } from '../graph.js';
import { nodeReads } from '../validate.js';

/** Drops nodes none of whose outputs reach a graph output, and initializers nothing reads. */
export function removeDeadCode(g: Graph): Graph {
  const live = new Set(g.outputs.map((o) => o.name));
  const keep: boolean[] = new Array(g.nodes.length).fill(false);
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i]!;
    if (n.outputs.some((o) => o && live.has(o))) {
      keep[i] = true;
      for (const v of nodeReads(n)) live.add(v);
    }
  }
  g.nodes = g.nodes.filter((_, i) => keep[i]);
  for (const k of Object.keys(g.initializers)) if (!live.has(k)) delete g.initializers[k];
  // A kept node still writes its unread outputs (DynamicQuantizeLinear's scale when only its codes are read): their
  // types stay, for the backends that allocate every output.
  const written = new Set(g.nodes.flatMap((n) => n.outputs));
  for (const k of Object.keys(g.values)) if (!live.has(k) && !written.has(k) && !g.inputs.some((i) => i.name === k)) delete g.values[k];
  return g;
}
