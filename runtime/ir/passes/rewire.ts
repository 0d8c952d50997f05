import type { Graph } from '../graph.js';
import { hasSubgraphs, renameBodyReads } from './subgraph-names.js';

/** Replaces every read of value `from` by `to` (node inputs and subgraph outer-scope reads). */
export function replaceUses(g: Graph, from: string, to: string): void {
  for (const n of g.nodes) {
    n.inputs = n.inputs.map((v) => (v === from ? to : v));
    // Bodies read it by name too (their nodes and outerScope), at any depth: renamed copies (subgraph-names.ts).
    if (hasSubgraphs(n)) n.attrs = renameBodyReads(n, (v) => (v === from ? to : v));
  }
}

/** Number of readers of each value (graph outputs count as readers). */
export function useCounts(g: Graph): Map<string, number> {
  const uses = new Map<string, number>();
  const add = (v: string) => v && uses.set(v, (uses.get(v) ?? 0) + 1);
  for (const n of g.nodes) {
    n.inputs.forEach(add);
    for (const a of Object.values(n.attrs)) {
      const gs = a.type === 'graph' ? [a.value] : a.type === 'graphs' ? a.value : [];
      for (const sg of gs) (sg.outerScope ?? []).forEach(add);
    }
  }
  for (const o of g.outputs) add(o.name);
  return uses;
}
