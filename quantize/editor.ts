import type { Graph, Node } from '../runtime/ir/graph.js';
import { inferShapes } from '../runtime/ir/infer.js';
import { cloneGraph } from '../runtime/ir/passes/index.js';
import type { HostTensor } from '../runtime/ir/tensor.js';
import { validateAndSort } from '../runtime/ir/validate.js';

/** A name not yet used by a value, initializer or node of g. */
export function fresh(g: Graph, base: string): string {
  const taken = (n: string) => n in g.values || n in g.initializers || g.nodes.some((x) => x.name === n || x.outputs.includes(n));
  let name = base;
  for (let i = 1; taken(name); i++) name = `${base}_${i}`;
  g.values[name] ??= { name, dtype: 'float32' }; // reserve; inferShapes fills the real type
  return name;
}

/**
 * Rewrites a copy of a graph: nodes are addressed by the source graph's node objects, new nodes go next to the
 * value they read (after its producer) or before the node that reads them, and finish() re-sorts and re-infers.
 */
export class GraphEditor {
  readonly graph: Graph;
  readonly #map = new Map<Node, Node>();
  readonly #removed = new Set<Node>();

  constructor(src: Graph) {
    this.graph = cloneGraph(src);
    src.nodes.forEach((n, i) => this.#map.set(n, this.graph.nodes[i]!));
  }

  /** The copy of a source node (or a node of the copy itself). */
  node(n: Node): Node {
    return this.#map.get(n) ?? n;
  }

  remove(n: Node): void {
    this.#removed.add(this.node(n));
  }

  addInitializer(base: string, t: HostTensor): string {
    const name = fresh(this.graph, base);
    this.graph.initializers[name] = t;
    this.graph.values[name] = { name, dtype: t.dtype, shape: [...t.shape] };
    return name;
  }

  /** Inserts after the producer of `after` (a graph input: at the start), or before `before`, or at the end. */
  addNode(n: Node, after?: string, before?: Node): Node {
    const nodes = this.graph.nodes;
    let at = nodes.length;
    if (after !== undefined) {
      const p = nodes.findIndex((x) => x.outputs.includes(after));
      at = p + 1;
    } else if (before) {
      const b = nodes.indexOf(this.node(before));
      if (b >= 0) at = b;
    }
    nodes.splice(at, 0, n);
    return n;
  }

  /** `infer` false: sort only, keeping the source's value types (for ops that have no IR schema in this runtime). */
  finish(infer = true): Graph {
    const g = this.graph;
    g.nodes = g.nodes.filter((n) => !this.#removed.has(n));
    // Initializers no node reads any more (the float weights that were replaced) leave the file.
    const read = new Set([...g.nodes.flatMap((n) => n.inputs), ...g.outputs.map((o) => o.name)]);
    for (const k of Object.keys(g.initializers)) if (!read.has(k)) delete g.initializers[k];
    if (!infer) return validateAndSort(g);
    // Values typed by the source graph may have changed type: inference recomputes every node output.
    const keep = new Set([...g.inputs.map((i) => i.name), ...Object.keys(g.initializers)]);
    g.values = Object.fromEntries(Object.entries(g.values).filter(([k]) => keep.has(k)));
    for (const i of g.inputs) g.values[i.name] = { ...i };
    return inferShapes(validateAndSort(g));
  }
}
