import { UnsupportedOpError } from '../../errors.js';
import { attrInt, type Graph, type Node } from '../graph.js';
import { bodyOf, loopConditionAlwaysTrue, scanParams } from '../ops/control-flow.js';
import { isConcrete, normalizeAxis } from '../shape.js';
import { hostTensor, tensorFromNumbers } from '../tensor.js';
import { Names, Splice } from './control-flow-splice.js';
import { DATA_DEPENDENT, plannedTrips } from './control-flow-trips.js';
import { hasSubgraphs, subgraphsOf } from './subgraph-names.js';
import { kindOf } from '../value.js';

/**
 * Control flow at plan time (for backends that run one static plan, i.e. WebGPU), with the input shapes bound and
 * constants folded (passes/index.ts specialize):
 *  - an If whose condition is a constant is replaced by the nodes of the branch it takes; an If on data whose small
 *    branches give equal shapes runs both and selects with Where (predicateIf);
 *  - a Loop whose iteration count is known at plan time (a constant trip count with a condition that stays true, or
 *    a condition the body computes from constants, the iteration number and constant-started carried values,
 *    evaluated on the CPU reference: plannedTrips) is unrolled, carried values flowing from one copy of the body to
 *    the next, scan outputs stacked by Unsqueeze + Concat; a Loop whose condition is data runs one iteration per
 *    stage (peelIteration);
 *  - a Scan whose sequence length is concrete is unrolled the same way, each step a Gather along its scan axis (from
 *    the end where its direction is 1), each scan output stacked along its axis (reversed where its direction is 1).
 * Copied nodes get fresh names; reads of enclosing values keep theirs. What stays is waiting for a value computed
 * from tensor data (an If on a computed flag with branches of different shapes, a computed trip count or condition:
 * the GPU session reads it back and plans the rest, backends/webgpu/staged-plan.ts) or can never be planned
 * statically, which `assertControlFlowLowered` reports.
 */

/** Most body-node copies one unrolled Loop or Scan may add to a plan. */
export const MAX_UNROLLED_NODES = 4096;
/** Most nodes a plan may hold once control flow is lowered: nested loops multiply their copies. */
export const MAX_LOWERED_PLAN_NODES = 65536;
/** Most nodes (both branches) of an If on data that is computed both ways and selected rather than read back. */
export const MAX_PREDICATED_NODES = 64;
/** Most iterations of a Loop whose condition is computed from data (each one a stage with a readback). */
export const MAX_PEELED_ITERATIONS = 256;
/** Internal attribute of a Loop left after peeling: the iteration number its first iteration has. */
const ITERATION_BASE = 'edgekit_iteration_base';

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

const constScalar = (g: Graph, v: string | undefined): number | undefined => {
  const t = v ? g.initializers[v] : undefined;
  return t && t.data.length === 1 ? Number(t.data[0]) : undefined;
};

/** A lowering's nodes, or why the node cannot be lowered yet (`wait`: a value computed from data) or ever. */
type Outcome = { nodes: Node[] } | { wait: string } | { never: string };

function lowerIf(g: Graph, names: Names, n: Node): Outcome {
  const c = constScalar(g, n.inputs[0]);
  if (c === undefined) {
    return predicateIf(g, names, n) ?? { wait: `the If's condition '${n.inputs[0]}' is computed from tensor data, so the branch is not known when the plan is made` };
  }
  const s = new Splice(g, names, n);
  s.inline(bodyOf(n, c ? 'then_branch' : 'else_branch'), [], c ? 'then' : 'else', n.outputs);
  return { nodes: s.nodes };
}

/**
 * An If on data whose branches are small, hold no control flow, and give outputs of the same concrete shapes: both
 * branches run and Where(cond, then, else) picks each output, in the same submit, instead of a readback at a stage
 * boundary. The branch not taken computes on values it was not meant for; its results are dropped (Where never
 * propagates the unselected operand, NaN included), and GPU kernels do not trap.
 */
function predicateIf(g: Graph, names: Names, n: Node): Outcome | undefined {
  const branches = [bodyOf(n, 'then_branch'), bodyOf(n, 'else_branch')];
  if (branches.reduce((a, b) => a + b.nodes.length, 0) > MAX_PREDICATED_NODES) return undefined;
  if (branches.some((b) => b.nodes.some(hasSubgraphs))) return undefined;
  // Tensors only: a sequence or optional branch (an OptionalGetElement of None) must not run when not taken.
  if (branches.some((b) => Object.values(b.values).some((v) => kindOf(v) !== 'tensor'))) return undefined;
  const tensors = n.outputs.every((o) => !o || (g.values[o] && kindOf(g.values[o]!) === 'tensor' && isConcrete(g.values[o]!.shape)));
  if (!tensors) return undefined; // differing branch shapes merge to symbols
  const s = new Splice(g, names, n);
  const then = s.inline(branches[0]!, [], 'then');
  const els = s.inline(branches[1]!, [], 'else');
  n.outputs.forEach((o, i) => o && s.node('Where', [n.inputs[0]!, then[i]!, els[i]!], [o]));
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
  const base = attrInt(n, ITERATION_BASE, 0);
  let trips: number;
  if (!cond || (m !== undefined && m <= 0)) trips = 0;
  else if (loopConditionAlwaysTrue(n, { dtype: 'bool', shape: [], value: tensorFromNumbers('bool', [], [1]) }, false)) {
    if (m === undefined) return { never: 'the Loop has no trip count and its condition never turns false: it would not terminate' };
    trips = m;
  } else {
    const t = plannedTrips(g, n, m ?? Infinity, Math.floor(MAX_UNROLLED_NODES / Math.max(1, body.nodes.length)), base);
    // A condition computed from data: run one iteration, and leave the rest for after its condition is read back.
    if (typeof t === 'string') return t.startsWith(DATA_DEPENDENT) ? peelIteration(g, names, n, m, base) : { never: t };
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
    const iter = s.constant(`iteration${base + i}`, hostTensor('int64', [], BigInt64Array.of(BigInt(base + i))));
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
 * A while-loop whose condition is computed from data, one iteration at a time: the first iteration's nodes, then the
 * same Loop for the rest (one fewer trip, the condition and carried values that iteration computed, iteration numbers
 * from `base + 1`), and each scan output as the first step concatenated with the rest's. The rest's condition is
 * then a value computed from data, which the GPU session reads back at a stage boundary (staged-plan.ts) before it
 * plans the rest, which peels again or, its condition false, ends. One readback per iteration, up to
 * MAX_PEELED_ITERATIONS.
 */
function peelIteration(g: Graph, names: Names, n: Node, m: number | undefined, base: number): Outcome {
  if (base >= MAX_PEELED_ITERATIONS) {
    return { never: `the Loop's condition is computed from tensor data and it ran past ${MAX_PEELED_ITERATIONS} iterations, each read back on its own; WebGPU plans run at most that many` };
  }
  const body = bodyOf(n, 'body');
  const nCarried = n.inputs.length - 2;
  const k = body.outputs.length - 1 - nCarried;
  const s = new Splice(g, names, n);
  const iter = s.constant(`iteration${base}`, hostTensor('int64', [], BigInt64Array.of(BigInt(base))));
  const yes = s.constant('cond', tensorFromNumbers('bool', [], [1]));
  const outs = s.inline(body, [iter, yes, ...n.inputs.slice(2)], `iteration${base}`);
  const restScans = n.outputs.slice(nCarried).map((o) => (o ? names.fresh(`${o}_rest`) : ''));
  // Exporters write INT64_MAX for "no limit": beyond 2^53 the count is kept as it is (one fewer changes nothing).
  const left = m === undefined ? '' : m > Number.MAX_SAFE_INTEGER ? n.inputs[0]! : s.constant('trips_left', hostTensor('int64', [], BigInt64Array.of(BigInt(m - 1))));
  s.nodes.push({
    ...n,
    inputs: [left, outs[0]!, ...outs.slice(1, 1 + nCarried)],
    outputs: [...n.outputs.slice(0, nCarried), ...restScans],
    attrs: { ...n.attrs, [ITERATION_BASE]: { type: 'int', value: base + 1 } },
  });
  for (let j = 0; j < k; j++) {
    const o = n.outputs[nCarried + j];
    if (!o) continue;
    const axes = s.constant('axes', tensorFromNumbers('int64', [1], [0]));
    const first = names.fresh(`${o}_first`);
    s.node('Unsqueeze', [outs[1 + nCarried + j]!, axes], [first]);
    s.node('Concat', [first, restScans[j]!], [o], { axis: { type: 'int', value: 0 } });
  }
  return { nodes: s.nodes };
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
