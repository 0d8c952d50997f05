import { InvalidGraphError } from '../errors.js';
import type { Graph, Node } from './graph.js';

/**
 * Checks that every value a node reads is produced exactly once (by a graph input, an initializer, an outer scope
 * or one node), that graph outputs exist, and puts the nodes in topological order. A cycle or a dangling value is
 * an InvalidGraphError naming the node and value. Returns the graph with nodes sorted (Kahn's algorithm, stable:
 * nodes keep their file order wherever the file order is already valid).
 */
export function validateAndSort(g: Graph): Graph {
  const producer = new Map<string, number>(); // value -> node index, -1 for inputs/initializers/outer scope
  for (const v of g.outerScope ?? []) producer.set(v, -1);
  for (const i of g.inputs) producer.set(i.name, -1);
  for (const k of Object.keys(g.initializers)) producer.set(k, -1);
  g.nodes.forEach((n, idx) => {
    for (const o of n.outputs) {
      if (!o) continue;
      const prev = producer.get(o);
      if (prev !== undefined && prev >= 0) {
        throw new InvalidGraphError(`Value '${o}' is produced by two nodes ('${g.nodes[prev]!.name}' and '${n.name}'); ONNX graphs must be in SSA form.`, { value: o });
      }
      producer.set(o, idx);
    }
  });
  const indeg = new Array<number>(g.nodes.length).fill(0);
  const users: number[][] = g.nodes.map(() => []);
  g.nodes.forEach((n, idx) => {
    const deps = new Set<number>();
    for (const v of nodeReads(n)) {
      const p = producer.get(v);
      if (p === undefined) {
        throw new InvalidGraphError(`Node '${n.name}' (${n.op}) reads '${v}', which no input, initializer or node produces.`, { node: n.name, value: v });
      }
      if (p >= 0 && !deps.has(p)) {
        deps.add(p);
        users[p]!.push(idx);
        indeg[idx]!++;
      }
    }
  });
  for (const o of g.outputs) {
    if (!producer.has(o.name)) throw new InvalidGraphError(`Graph output '${o.name}' is not produced by any node, input or initializer.`, { value: o.name });
  }
  // Kahn's algorithm with a min-heap-free approach: repeatedly take the lowest ready index (graphs are small).
  const ready: number[] = [];
  indeg.forEach((d, i) => d === 0 && ready.push(i));
  const order: Node[] = [];
  while (ready.length) {
    ready.sort((a, b) => a - b);
    const i = ready.shift()!;
    order.push(g.nodes[i]!);
    for (const u of users[i]!) if (--indeg[u]! === 0) ready.push(u);
  }
  if (order.length !== g.nodes.length) {
    const stuck = g.nodes.filter((_, i) => indeg[i]! > 0).map((n) => n.name);
    throw new InvalidGraphError(`The graph has a cycle through node(s) ${stuck.slice(0, 5).map((s) => `'${s}'`).join(', ')}.`, { nodes: stuck });
  }
  return { ...g, nodes: order };
}

/** Every value a node reads, including values its subgraph bodies read from the enclosing scope. */
export function nodeReads(n: Node): string[] {
  const out = n.inputs.filter((v) => v !== '');
  for (const a of Object.values(n.attrs)) {
    const gs = a.type === 'graph' ? [a.value] : a.type === 'graphs' ? a.value : [];
    for (const sg of gs) out.push(...(sg.outerScope ?? []));
  }
  return out;
}
