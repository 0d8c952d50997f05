import { UnsupportedOpError } from '../../errors.js';
import type { Graph, Node } from '../graph.js';
import { bodyOf, loopConditionAlwaysTrue, scanParams } from '../ops/control-flow.js';
import { isConcrete, normalizeAxis } from '../shape.js';
import { hostTensor, tensorFromNumbers, type HostTensor } from '../tensor.js';
import { renameBodyReads, subgraphsOf } from './subgraph-names.js';
import { runGraphCpu } from '../../backends/cpu/executor.js';
import { nodeReads } from '../validate.js';

/**
 * Control flow at plan time (for backends that run one static plan, i.e. WebGPU): with the input shapes bound and
 * constants folded (passes/index.ts specialize), an If whose condition is a constant is replaced by the nodes of the
 * branch it takes; a Loop whose iteration count is known at plan time (a constant trip count with a condition that
 * stays true, or a condition the body computes from constants, the iteration number and constant-started carried
 * values, evaluated on the CPU reference: plannedTrips) is unrolled, its carried values
 * flowing from one copy of the body to the next and its scan outputs stacked by Unsqueeze + Concat; a Scan whose
 * sequence length is concrete is unrolled the same way, each step a Gather along its scan axis (from the end where
 * its direction is 1) and each scan output stacked along its axis (reversed where its direction is 1). Copied nodes
 * get fresh names; reads of enclosing values keep theirs. What stays is either waiting for a value computed from
 * tensor data (an If on a computed flag, a computed trip count: the GPU session reads it back and plans again,
 * backends/webgpu/staged-plan.ts) or can never be planned statically, which `assertControlFlowLowered` reports.
 */

/** Most body-node copies one unrolled Loop or Scan may add to a plan. */
export const MAX_UNROLLED_NODES = 4096;
/** Most nodes a plan may hold once control flow is lowered: nested loops multiply their copies. */
export const MAX_LOWERED_PLAN_NODES = 65536;

const CONTROL_FLOW = new Set(['If', 'Loop', 'Scan']);

export function isControlFlow(n: Node): boolean {
  return n.domain === '' && CONTROL_FLOW.has(n.op);
}

/**
 * For the backends' load-time check: whether every node of the node's bodies (at any depth) can run, by `has`
 * (control-flow nodes inside a body are asked about recursively). False for a node that is not control flow.
 */
export function controlFlowBodiesSupported(node: Node, has: (n: Node) => boolean): boolean {
  if (!isControlFlow(node)) return false;
  return subgraphsOf(node).every(([, gs]) => gs.every((g) => g.nodes.every((n) => (isControlFlow(n) ? controlFlowBodiesSupported(n, has) : has(n)))));
}

/** Fresh value and node names for one graph: nothing already used in it or in its bodies. */
class Names {
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
class Splice {
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

const constScalar = (g: Graph, v: string | undefined): number | undefined => {
  const t = v ? g.initializers[v] : undefined;
  return t && t.data.length === 1 ? Number(t.data[0]) : undefined;
};

/** A lowering's nodes, or why the node cannot be lowered yet (`wait`: a value computed from data) or ever. */
type Outcome = { nodes: Node[] } | { wait: string } | { never: string };

function lowerIf(g: Graph, names: Names, n: Node): Outcome {
  const c = constScalar(g, n.inputs[0]);
  if (c === undefined) return { wait: `the If's condition '${n.inputs[0]}' is computed from tensor data, so the branch is not known when the plan is made` };
  const s = new Splice(g, names, n);
  s.inline(bodyOf(n, c ? 'then_branch' : 'else_branch'), [], c ? 'then' : 'else', n.outputs);
  return { nodes: s.nodes };
}

function lowerLoop(g: Graph, names: Names, n: Node): Outcome {
  const body = bodyOf(n, 'body');
  const [mName, condName, ...initial] = n.inputs;
  const m = mName ? constScalar(g, mName) : undefined;
  const cond = condName ? constScalar(g, condName) : 1;
  if ((mName && m === undefined) || cond === undefined) {
    return { wait: `the Loop's ${mName && m === undefined ? 'trip count' : 'condition'} is computed from tensor data` };
  }
  let trips: number;
  if (!cond) trips = 0;
  else if (loopConditionAlwaysTrue(n, { dtype: 'bool', shape: [], value: tensorFromNumbers('bool', [], [1]) }, false)) {
    if (m === undefined) return { never: 'the Loop has no trip count and its condition never turns false: it would not terminate' };
    trips = Math.max(0, m);
  } else {
    const t = plannedTrips(g, n, m ?? Infinity, Math.floor(MAX_UNROLLED_NODES / Math.max(1, body.nodes.length)));
    if (typeof t === 'string') return { never: t };
    trips = t;
  }
  const count = trips * body.nodes.length;
  if (count > MAX_UNROLLED_NODES) {
    return { never: `unrolling ${trips} iterations of a ${body.nodes.length}-node body would add ${count} nodes to the plan (at most ${MAX_UNROLLED_NODES})` };
  }
  const nCarried = initial.length;
  const k = body.outputs.length - 1 - nCarried;
  const s = new Splice(g, names, n);
  const yes = s.constant('cond', tensorFromNumbers('bool', [], [1]));
  let carried = initial as string[];
  const scans: string[][] = Array.from({ length: k }, () => []);
  for (let i = 0; i < trips; i++) {
    const iter = s.constant(`iteration${i}`, hostTensor('int64', [], BigInt64Array.of(BigInt(i))));
    // The last copy produces the node's carried outputs under their own names.
    const want = i === trips - 1 ? [undefined, ...n.outputs.slice(0, nCarried)] : [];
    const outs = s.inline(body, [iter, yes, ...carried], `iteration${i}`, want);
    carried = outs.slice(1, 1 + nCarried);
    for (let j = 0; j < k; j++) scans[j]!.push(outs[1 + nCarried + j]!);
  }
  if (trips === 0) n.outputs.slice(0, nCarried).forEach((o, j) => o && s.node('Identity', [initial[j]!], [o]));
  const empty = emptyOutputs(g, n.outputs.slice(nCarried), trips === 0);
  if (typeof empty === 'string') return { never: empty };
  scans.forEach((steps, j) => {
    const o = n.outputs[nCarried + j];
    if (o && trips > 0) s.stack(steps, 0, o);
  });
  return { nodes: s.nodes };
}

/**
 * The iteration count of a Loop whose body computes its condition from constants, the iteration number and
 * loop-carried values that start constant and are updated the same way (a counter, `i + 1 < n` with `n` constant):
 * that slice of the body is run on the CPU reference at plan time, iteration by iteration, as the Loop would run it.
 * Returns why not when the condition depends on anything else (tensor data) or stays true past `maxTrips`.
 */
function plannedTrips(g: Graph, n: Node, limit: number, maxTrips: number): number | string {
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
      return `the Loop's condition depends on '${v}', which is computed from tensor data; WebGPU plans unroll only loops whose iteration count is known when the plan is made`;
    }
    if (!nodes.has(p)) {
      nodes.add(p);
      stack.push(...nodeReads(p));
    }
  }
  const state = new Map<number, HostTensor>();
  for (const j of carried) {
    const init = g.initializers[n.inputs[2 + j]!];
    if (!init) return `the Loop's condition depends on loop-carried value '${body.inputs[2 + j]!.name}', whose initial value '${n.inputs[2 + j]}' is computed from tensor data`;
    state.set(j, init);
  }
  const condOut = body.outputs[0]!.name;
  const updates = [...carried].map((j) => [j, body.outputs[1 + j]!.name] as const);
  const slice: Graph = { ...body, nodes: body.nodes.filter((b) => nodes.has(b)), outputs: [], values: {} };
  const outer = (name: string) => g.initializers[name];
  let cond = true;
  let i = 0;
  for (; i < limit && cond; i++) {
    if (i >= maxTrips) return `the Loop runs more than ${maxTrips} iterations, more than a plan unrolls (at most ${MAX_UNROLLED_NODES} body-node copies)`;
    const feeds: Record<string, HostTensor> = {
      [body.inputs[0]!.name]: hostTensor('int64', [], BigInt64Array.of(BigInt(i))),
      [body.inputs[1]!.name]: tensorFromNumbers('bool', [], [1]),
    };
    for (const [j, t] of state) feeds[body.inputs[2 + j]!.name] = t;
    const out = runGraphCpu(slice, feeds, [condOut, ...updates.map(([, u]) => u)], { outer });
    cond = Boolean(out[condOut]!.data[0]);
    for (const [j, u] of updates) state.set(j, out[u]!);
  }
  return i;
}

/** Scan outputs of a zero-step Loop/Scan become empty constants of their inferred shape; else why they cannot. */
function emptyOutputs(g: Graph, outs: string[], zero: boolean): string | undefined {
  if (!zero) return undefined;
  for (const o of outs) {
    if (!o) continue;
    const info = g.values[o];
    if (!info || !isConcrete(info.shape)) return `output '${o}' has no steps and no known shape`;
    g.initializers[o] = hostTensor(info.dtype, info.shape);
  }
  return undefined;
}

function lowerScan(g: Graph, names: Names, n: Node): Outcome {
  const body = bodyOf(n, 'body');
  const { n: nState, m, k, inAxes, inDirs, outAxes, outDirs } = scanParams(n);
  const xs = n.inputs.slice(nState);
  const shapes = xs.map((x) => g.values[x]?.shape);
  if (!shapes.every(isConcrete)) return { wait: "the Scan's sequence length depends on shapes computed from tensor data" };
  const axes = shapes.map((sh, j) => normalizeAxis(inAxes[j]!, sh.length, `Scan input ${j}'s scan axis`));
  const T = shapes[0]![axes[0]!]!;
  const count = T * body.nodes.length;
  if (count > MAX_UNROLLED_NODES) {
    return { never: `unrolling ${T} steps of a ${body.nodes.length}-node body would add ${count} nodes to the plan (at most ${MAX_UNROLLED_NODES})` };
  }
  const s = new Splice(g, names, n);
  let state = n.inputs.slice(0, nState);
  const scans: string[][] = Array.from({ length: k }, () => []);
  for (let t = 0; t < T; t++) {
    const steps = xs.slice(0, m).map((x, j) => {
      const idx = s.constant(`step${t}_index${j}`, hostTensor('int64', [], BigInt64Array.of(BigInt(inDirs[j] ? T - 1 - t : t))));
      const v = names.fresh(`${x}_step${t}`);
      s.node('Gather', [x, idx], [v], { axis: { type: 'int', value: axes[j]! } });
      return v;
    });
    const want = t === T - 1 ? n.outputs.slice(0, nState) : [];
    const outs = s.inline(body, [...state, ...steps], `step${t}`, want);
    state = outs.slice(0, nState);
    for (let j = 0; j < k; j++) scans[j]!.push(outs[nState + j]!);
  }
  if (T === 0) n.outputs.slice(0, nState).forEach((o, j) => o && s.node('Identity', [n.inputs[j]!], [o]));
  const empty = emptyOutputs(g, n.outputs.slice(nState), T === 0);
  if (typeof empty === 'string') return { never: empty };
  scans.forEach((steps, j) => {
    const o = n.outputs[nState + j];
    if (!o || T === 0) return;
    const rank = (g.values[o]?.shape?.length ?? 1) - 1;
    s.stack(outDirs[j] ? [...steps].reverse() : steps, normalizeAxis(outAxes[j]!, rank + 1, `Scan output ${j}'s axis`), o);
  });
  return { nodes: s.nodes };
}

function lowerNode(g: Graph, names: Names, n: Node): Outcome {
  if (n.op === 'If') return lowerIf(g, names, n);
  if (n.op === 'Loop') return lowerLoop(g, names, n);
  return lowerScan(g, names, n);
}

/**
 * One pass over `g` (sorted, inferred, shapes bound): replaces every control-flow node that can be lowered now by
 * its nodes, in place. Returns how many were lowered; run inference (and constant folding, which often makes the
 * next condition constant) before calling again.
 */
export function lowerControlFlow(g: Graph): number {
  if (!g.nodes.some(isControlFlow)) return 0;
  const names = new Names(g);
  const out: Node[] = [];
  let lowered = 0;
  g.nodes.forEach((n, i) => {
    const r = isControlFlow(n) ? lowerNode(g, names, n) : undefined;
    if (r && 'nodes' in r) {
      out.push(...r.nodes);
      lowered++;
      if (out.length + g.nodes.length - i - 1 > MAX_LOWERED_PLAN_NODES) {
        throw new UnsupportedOpError(
          [{ op: n.op, domain: '', opset: 0, node: n.name, reason: `unrolling it (inside other unrolled control flow) takes the plan past ${MAX_LOWERED_PLAN_NODES} nodes` }],
          "Nested loops unroll into the product of their iteration counts; use { backend: 'cpu' } for this model.",
        );
      }
    } else out.push(n);
  });
  g.nodes = out;
  return lowered;
}

/**
 * After lowering: throws one UnsupportedOpError for the control-flow nodes that can never be planned statically
 * (see lowerLoop), and — where `dataDependent` is false (no read-back of computed values is available) — for those
 * waiting on a value computed from tensor data. Nodes left waiting are the GPU session's to stage.
 */
export function assertControlFlowLowered(g: Graph, opts: { dataDependent: boolean } = { dataDependent: true }): void {
  const names = new Names(g);
  const bad = [];
  for (const n of g.nodes) {
    if (!isControlFlow(n)) continue;
    // Probe on a scratch copy: lowering only writes fresh initializers, which the probe's copy keeps to itself.
    const probe = lowerNode({ ...g, initializers: { ...g.initializers } }, names, n);
    if ('never' in probe) bad.push({ op: n.op, domain: '', opset: 0, node: n.name, reason: probe.never });
    else if ('wait' in probe && !opts.dataDependent) bad.push({ op: n.op, domain: '', opset: 0, node: n.name, reason: probe.wait });
  }
  if (bad.length) {
    throw new UnsupportedOpError(bad, "WebGPU plans need control flow decided when the plan is made; use { backend: 'cpu' } for this model.");
  }
}
