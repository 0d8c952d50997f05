import type { Graph } from '../graph.js';

/** Replaces every read of value `from` by `to` (node inputs and subgraph outer-scope reads). */
export function replaceUses(g: Graph, from: string, to: string): void {
  for (const n of g.nodes) {
    n.inputs = n.inputs.map((v) => (v === from ? to : v));
    for (const a of Object.values(n.attrs)) {
      const gs = a.type === 'graph' ? [a.value] : a.type === 'graphs' ? a.value : [];
      for (const sg of gs) if (sg.outerScope) sg.outerScope = sg.outerScope.map((v) => (v === from ? to : v));
    }
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
