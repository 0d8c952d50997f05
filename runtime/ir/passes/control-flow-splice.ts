import type { Graph, Node } from '../graph.js';
import { tensorFromNumbers, type HostTensor } from '../tensor.js';
import { renameBodyReads, subgraphsOf } from './subgraph-names.js';

/**
 * The splicing machinery of control-flow lowering (control-flow.ts): fresh names, and copies of a body's nodes
 * with its inputs bound to values of the graph the control-flow node stands in.
 */

/** Fresh value and node names for one graph: nothing already used in it or in its bodies. */
export class Names {
  readonly #used = new Set<string>();
  constructor(g: Graph) {
    const addGraph = (x: Graph) => {
      for (const i of x.inputs) this.#used.add(i.name);
      for (const k of Object.keys(x.initializers)) this.#used.add(k);
      for (const o of x.outputs) this.#used.add(o.name);
      for (const v of x.outerScope ?? []) this.#used.add(v);
      for (const n of x.nodes) {
        this.#used.add(n.name);
        for (const v of [...n.inputs, ...n.outputs]) if (v) this.#used.add(v);
        for (const [, gs] of subgraphsOf(n)) gs.forEach(addGraph);
      }
    };
    addGraph(g);
    for (const k of Object.keys(g.values)) this.#used.add(k);
  }
  fresh(hint: string): string {
    let name = hint;
    for (let i = 1; this.#used.has(name); i++) name = `${hint}_${i}`;
    this.#used.add(name);
    return name;
  }
}

/** Emits the nodes of one lowering; the nodes replace the control-flow node where it stood. */
export class Splice {
  readonly nodes: Node[] = [];
  constructor(readonly g: Graph, readonly names: Names, readonly at: Node) {}

  constant(hint: string, t: HostTensor): string {
    const name = this.names.fresh(`${this.at.name}/${hint}`);
    this.g.initializers[name] = t;
    return name;
  }

  node(op: string, inputs: string[], outputs: string[], attrs: Node['attrs'] = {}): void {
    this.nodes.push({ name: this.names.fresh(`${this.at.name}/${op}`), op, domain: '', inputs, outputs, attrs });
  }

  /**
   * Copies `body`'s nodes with its inputs bound to `bind` (parent value names) and returns the parent names of its
   * outputs. `want[i]`, when given, is the name output i must have (an output of the control-flow node): the body
   * node producing it is renamed so, or an Identity is added where the output is not produced in the body.
   */
  inline(body: Graph, bind: string[], tag: string, want: (string | undefined)[] = []): string[] {
    const map = new Map<string, string>();
    body.inputs.forEach((inp, i) => map.set(inp.name, bind[i]!));
    for (const [k, t] of Object.entries(body.initializers)) map.set(k, this.constant(`${tag}/${k}`, t));
    const producedInBody = new Set(body.nodes.flatMap((n) => n.outputs.filter(Boolean)));
    const claimed = new Set<string>();
    body.outputs.forEach((o, i) => {
      const w = want[i];
      if (w && producedInBody.has(o.name) && !claimed.has(o.name)) {
        map.set(o.name, w);
        claimed.add(o.name);
      }
    });
    for (const n of body.nodes) for (const o of n.outputs) if (o && !map.has(o)) map.set(o, this.names.fresh(`${this.at.name}/${tag}/${o}`));
    const r = (v: string) => (v ? map.get(v) ?? v : v); // unmapped: a value of an enclosing scope, same name
    for (const n of body.nodes) {
      this.nodes.push({ ...n, name: this.names.fresh(`${this.at.name}/${tag}/${n.name}`), inputs: n.inputs.map(r), outputs: n.outputs.map(r), attrs: renameBodyReads(n, r) });
    }
    return body.outputs.map((o, i) => {
      const v = r(o.name);
      const w = want[i];
      if (w && v !== w) {
        this.node('Identity', [v], [w]);
        return w;
      }
      return v;
    });
  }

  /** Stacks per-step values along a new `axis` into `out` (Unsqueeze each, then one Concat). */
  stack(steps: string[], axis: number, out: string): void {
    const axes = this.constant('axes', tensorFromNumbers('int64', [1], [axis]));
    const parts = steps.map((s) => {
      const u = this.names.fresh(`${s}_unsqueezed`);
      this.node('Unsqueeze', [s, axes], [u]);
      return u;
    });
    this.node('Concat', parts, [out], { axis: { type: 'int', value: axis } });
  }
}
