import { InvalidArgumentError, UnsupportedOpError } from '../../errors.js';
import type { Dim, Graph, Node } from '../../ir/graph.js';
import { sequenceMapBody } from '../../ir/ops/sequences.js';
import { inferShapes } from '../../ir/infer.js';
import { cloneGraph, specialize } from '../../ir/passes/index.js';
import { finishSequenceLowering, flattenSequenceInputs, lowerSequences, type FedLayout, type Flattened } from '../../ir/passes/sequences.js';
import { DEFAULT_MAX_ELEMENTS, type HostTensor } from '../../ir/tensor.js';
import { kindOf, type HostValue } from '../../ir/value.js';
import type { GpuDispatchTiming, GpuResources, GpuTensorRef } from './executor.js';
import { GpuSession, type GpuFeed, type GpuSessionOptions, type GpuSessionReport } from './gpu-session.js';
import type { GpuBufferLease } from './memory.js';
import { gpuKernelFor } from './kernels/index.js';
import { bindValueInputs, valueInputs } from './value-inputs.js';
import { nodesWithoutGpuSupport } from './support.js';

/**
 * The WebGPU backend for a model with sequence or optional values (ir/value.ts). A GPU plan holds tensors only, so
 * per run signature (each fed sequence's length and element shapes, each optional's presence, every tensor's
 * shape, and the values of small integer/bool inputs that decide control flow or positions) the graph is made into
 * a tensor graph by ir/passes/sequences.ts, interleaved with shape specialization and control-flow lowering
 * (passes/index.ts specialize), and run by a GpuSession of its own. Sequence and optional outputs come back as
 * arrays / null, their elements on the host or (gpu-buffer) on the GPU. Sessions are kept LRU (MAX_SIGNATURES); each holds
 * its own weights, which is what a model with sequences (small glue graphs, in practice) can afford.
 */

const MAX_SIGNATURES = 4;
const MAX_ROUNDS = 16;
const SMALL = 64;

/** A fed value as the GPU backend takes it: a tensor, a sequence of tensors, or null (an empty optional). */
export type GpuValueFeed = GpuFeed | GpuFeed[] | null;

interface Lowered {
  session: Promise<GpuSession>;
  /** Graph input → flattened tensor inputs; graph output → flattened tensor outputs. */
  feeds: Record<string, Flattened>;
  outputs: Record<string, Flattened>;
  baked: Set<string>;
}

export class SequenceGpuSession {
  readonly #res: GpuResources;
  readonly #graph: Graph;
  readonly #opts: GpuSessionOptions;
  readonly #sessions = new Map<string, Lowered>();
  #last: GpuSession | undefined;
  #disposed = false;

  private constructor(res: GpuResources, graph: Graph, opts: GpuSessionOptions) {
    this.#res = res;
    this.#graph = graph;
    this.#opts = opts;
  }

  /**
   * Checks every node can run once lowered (one UnsupportedOpError for all that cannot); plans at load when the
   * inputs are fixed-shape tensors, else at the first run of each signature.
   */
  static async create(res: GpuResources, graph: Graph, opts: GpuSessionOptions = {}): Promise<SequenceGpuSession> {
    res.ctx.assertAlive();
    // SequenceMap bodies are unrolled into the plan, so their nodes must run too (at any depth).
    const bodies = (nodes: readonly Node[]): Node[] =>
      nodes.flatMap((n) => (n.op === 'SequenceMap' && n.domain === '' ? [...sequenceMapBody(n).nodes, ...bodies(sequenceMapBody(n).nodes)] : []));
    const missing = nodesWithoutGpuSupport([...graph.nodes, ...bodies(graph.nodes)], opts.opset ?? 0);
    if (missing.length) {
      throw new UnsupportedOpError(missing, "These ops have no WebGPU kernel; EdgeKit does not fall back to the CPU per node. Use { backend: 'cpu' } for this model, or replace the ops.");
    }
    const s = new SequenceGpuSession(res, graph, opts);
    // Sequences built inside a model whose inputs are tensors of fixed shape: plan at load, as GpuSession does, so
    // every rewrite and kernel is checked (and pipelines compile) before the first run.
    const fixed = graph.inputs.every((i) => kindOf(i) === 'tensor' && i.shape?.every((d) => typeof d === 'number'));
    const flat = fixed ? flattenSequenceInputs(graph, {}) : undefined;
    if (flat && !bakedInputs(flat.graph).length) {
      try {
        s.#last = await s.#plan({}, flat.graph, flat.feeds, Object.fromEntries(graph.inputs.map((i) => [i.name, i.shape as number[]])), {}).session;
      } catch (e) {
        s.dispose();
        throw e;
      }
    }
    return s;
  }

  async run(
    feeds: Record<string, GpuValueFeed>,
    fetch: readonly string[],
    keep: readonly string[] = [],
  ): Promise<{
    host: Record<string, HostValue>;
    gpu: Record<string, GpuTensorRef & { lease: GpuBufferLease }>;
    /** Kept (gpu-buffer) sequence outputs: each element on the GPU (caller-owned lease), or on the host where shared. */
    gpuSequences: Record<string, (HostTensor | (GpuTensorRef & { lease: GpuBufferLease }))[]>;
  }> {
    if (this.#disposed) throw new InvalidArgumentError('This WebGPU session was disposed.');
    const layout: Record<string, FedLayout> = {};
    for (const i of this.#graph.inputs) {
      const v = feeds[i.name];
      const kind = kindOf(i);
      if (kind === 'sequence') layout[i.name] = { kind: 'sequence', length: Array.isArray(v) ? v.length : 0 };
      else if (kind !== 'tensor') layout[i.name] = v === null || v === undefined ? { kind: 'optional', present: false } : { kind: 'optional', present: true, ...(Array.isArray(v) ? { length: v.length } : {}) };
    }
    const { graph: flat, feeds: where } = flattenSequenceInputs(this.#graph, layout);
    // The flattened graph's tensor feeds.
    const tensors: Record<string, GpuFeed> = {};
    for (const i of this.#graph.inputs) {
      const v = feeds[i.name];
      const w = kindOf(i) === 'tensor' ? i.name : where[i.name];
      if (v === null || v === undefined || w === null || w === undefined) continue;
      if (Array.isArray(w)) (v as GpuFeed[]).forEach((t, k) => (tensors[w[k]!] = t));
      else tensors[w] = v as GpuFeed;
    }
    const baked = bakedInputs(flat).filter((n) => tensors[n]);
    for (const n of baked) {
      if ('onGpu' in tensors[n]!) throw new UnsupportedOpError([], `Input '${n}' decides the model's control flow or sequence positions (its value is read when planning); feed it as a CPU tensor.`);
    }
    const host = Object.fromEntries(baked.map((n) => [n, tensors[n] as HostTensor]));
    const shapes = Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, t.shape]));
    const lowered = this.#plan(layout, flat, where, shapes, host);
    const session = await lowered.session;
    this.#last = session;
    const names = (o: string): string[] => {
      const f = lowered!.outputs[o];
      return f === undefined ? [o] : f === null ? [] : Array.isArray(f) ? f : [f];
    };
    const runFeeds = Object.fromEntries(Object.entries(tensors).filter(([k]) => !lowered!.baked.has(k)));
    // Kept (gpu-buffer) outputs stay on the GPU element by element. A lease has one owner: an element that two kept
    // values share, or that a fetched output also needs, comes back on the host.
    const keepTensor = keep.filter((o) => lowered!.outputs[o] === undefined);
    const keepValues = keep.filter((o) => lowered!.outputs[o] !== undefined);
    const fetchNames = new Set(fetch.flatMap(names));
    const uses = new Map<string, number>();
    for (const t of [...keepTensor, ...keepValues.flatMap(names)]) uses.set(t, (uses.get(t) ?? 0) + 1);
    const keepNames = [...uses].filter(([t, n]) => n === 1 && !fetchNames.has(t)).map(([t]) => t);
    const hostNames = [...new Set([...fetchNames, ...[...uses.keys()].filter((t) => !keepNames.includes(t))])];
    const r = hostNames.length || keepNames.length ? await session.run(runFeeds, hostNames, keepNames) : { host: {}, gpu: {} };
    const value = (t: string): HostTensor => r.host[t] ?? host[t] ?? (tensors[t] as HostTensor);
    const out: Record<string, HostValue> = {};
    const gpu: Record<string, GpuTensorRef & { lease: GpuBufferLease }> = {};
    const gpuSequences: Record<string, (HostTensor | (GpuTensorRef & { lease: GpuBufferLease }))[]> = {};
    for (const o of fetch) {
      const f = lowered.outputs[o];
      out[o] = f === undefined ? value(o) : f === null ? null : Array.isArray(f) ? f.map(value) : value(f);
    }
    for (const o of keep) {
      const f = lowered.outputs[o];
      const t = f === undefined ? o : f;
      if (t === null) out[o] = null;
      else if (Array.isArray(t)) gpuSequences[o] = t.map((e) => r.gpu[e] ?? value(e));
      else if (r.gpu[t]) gpu[o] = r.gpu[t]!;
      else out[o] = value(t);
    }
    return { host: out, gpu, gpuSequences };
  }

  /** The lowered plan (and its GpuSession) for one signature: cached LRU, made on a miss. */
  #plan(layout: Record<string, FedLayout>, flat: Graph, where: Record<string, Flattened>, shapes: Record<string, readonly number[]>, host: Record<string, HostTensor>): Lowered {
    const baked = Object.keys(host);
    const key = JSON.stringify([layout, flat.inputs.map((i) => shapes[i.name] ?? null), baked.map((n) => [n, Array.from(host[n]!.data as ArrayLike<unknown>, String)])]);
    let lowered = this.#sessions.get(key);
    if (lowered) this.#sessions.delete(key);
    else {
      const g = lowerForPlan(bindValueInputs(flat, host, baked), shapes, this.#opts);
      const outputs = finishSequenceLowering(g, this.#opts.opset ?? 0);
      const session = GpuSession.create(this.#res, g, this.#opts);
      const made: Lowered = { session, feeds: where, outputs, baked: new Set(baked) };
      session.catch(() => this.#sessions.get(key) === made && this.#sessions.delete(key));
      while (this.#sessions.size >= MAX_SIGNATURES) {
        const [oldest, old] = this.#sessions.entries().next().value!;
        this.#sessions.delete(oldest);
        old.session.then((s) => s.dispose(), () => {});
      }
      lowered = made;
    }
    this.#sessions.set(key, lowered);
    return lowered;
  }

  async profile(_feeds: Record<string, HostTensor>): Promise<GpuDispatchTiming[]> {
    throw new InvalidArgumentError('profile() is not available for models with sequence or optional values; time session.run instead.');
  }

  report(): GpuSessionReport | undefined {
    return this.#last?.report();
  }

  plannedGraph(): Graph | undefined {
    return this.#last?.plannedGraph();
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const l of this.#sessions.values()) l.session.then((s) => s.dispose(), () => {});
    this.#sessions.clear();
  }
}

/**
 * Inputs whose values a plan of this graph needs: the GPU session's value inputs (small integers that shape the
 * computation) and small bool/integer inputs read by a node without a kernel (an If's condition, a Loop's trip
 * count and condition, a sequence position), which decide what the sequences hold.
 */
function bakedInputs(g: Graph): string[] {
  const names = new Set(valueInputs(g));
  const small = new Set(
    g.inputs
      .filter((i) => ['bool', 'int32', 'int64'].includes(i.dtype) && i.shape && i.shape.every((d): d is number => typeof d === 'number') && (i.shape as number[]).reduce((a, b) => a * b, 1) <= SMALL)
      .map((i) => i.name),
  );
  for (const n of g.nodes) if (!gpuKernelFor(n)) for (const v of n.inputs) if (small.has(v)) names.add(v);
  return [...names];
}

/**
 * Alternates sequence lowering with specialization (shapes bound, constants folded, control flow lowered) until
 * neither changes the graph: an unrolled Loop's body copies hold sequence ops whose positions only then are
 * constants, and a SequenceLength only then becomes a Loop's trip count.
 */
function lowerForPlan(src: Graph, shapes: Record<string, readonly number[]>, opts: GpuSessionOptions): Graph {
  const maxElements = opts.maxElements ?? DEFAULT_MAX_ELEMENTS;
  let g = cloneGraph(src);
  g.inputs = g.inputs.map((i) => (shapes[i.name] ? { ...i, shape: [...shapes[i.name]!] as Dim[] } : i));
  g = inferShapes(g);
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const before = g.nodes.length;
    const lowered = lowerSequences(g);
    if (lowered) g = inferShapes(g);
    g = specialize(g, shapes, maxElements);
    if (!lowered && g.nodes.length === before) break;
  }
  return g;
}
