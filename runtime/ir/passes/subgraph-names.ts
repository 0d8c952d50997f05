import type { Attr, Graph, Node } from '../graph.js';

/**
 * Renaming the reads of enclosing-scope values inside control-flow bodies (If/Loop/Scan graph attributes), at any
 * depth. A body's own names (inputs, initializers, node outputs) shadow the enclosing ones and are left alone.
 * Returns new graphs; the bodies passed in (often shared with the graph a pass was cloned from) are not touched.
 */

/** The graph attributes of a node, by attribute name. */
export function subgraphsOf(n: Node): [string, Graph[]][] {
  const out: [string, Graph[]][] = [];
  for (const [k, a] of Object.entries(n.attrs)) {
    if (a.type === 'graph') out.push([k, [a.value]]);
    else if (a.type === 'graphs') out.push([k, a.value]);
  }
  return out;
}

export function hasSubgraphs(n: Node): boolean {
  return Object.values(n.attrs).some((a) => a.type === 'graph' || a.type === 'graphs');
}

/** The node's attributes with every body's outer reads renamed through `rename` (undefined: attrs unchanged). */
export function renameBodyReads(n: Node, rename: (v: string) => string): Node['attrs'] {
  const attrs: Record<string, Attr> = { ...n.attrs };
  for (const [k, gs] of subgraphsOf(n)) {
    const renamed = gs.map((g) => renameOuterReads(g, rename));
    attrs[k] = n.attrs[k]!.type === 'graph' ? { type: 'graph', value: renamed[0]! } : { type: 'graphs', value: renamed };
  }
  return attrs;
}

/** `g` with its reads of enclosing values renamed through `rename` (identity for names it keeps). */
export function renameOuterReads(g: Graph, rename: (v: string) => string): Graph {
  const local = new Set<string>([...g.inputs.map((i) => i.name), ...Object.keys(g.initializers), ...g.nodes.flatMap((n) => n.outputs)]);
  const r = (v: string) => (v && !local.has(v) ? rename(v) : v);
  return {
    ...g,
    outputs: g.outputs.map((o) => ({ ...o, name: r(o.name) })),
    nodes: g.nodes.map((n) => ({ ...n, inputs: n.inputs.map(r), attrs: renameBodyReads(n, r) })),
    outerScope: g.outerScope?.map(r),
  };
}
