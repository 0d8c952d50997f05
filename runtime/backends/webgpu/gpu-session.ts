import { EdgeKitError, UnsupportedOpError } from '../../errors.js';
import type { Graph } from '../../ir/graph.js';
import { specialize } from '../../ir/passes/index.js';
import { DEFAULT_MAX_ELEMENTS, type HostTensor } from '../../ir/tensor.js';
import type { GpuDispatchTiming, GpuResources, GpuTensorRef } from './executor.js';
import { planGpuGraph, type GpuRunnable, type GpuStagedReport } from './staged-plan.js';
import { nodesWithoutGpuSupport } from './support.js';
import type { GpuBufferLease, MemoryStats } from './memory.js';
import { bindValueInputs, valueInputs, valueKey } from './value-inputs.js';
import { GpuSharedBuffers } from './shared-buffers.js';
import { GpuWeightStore } from './weights.js';

export interface GpuSessionOptions {
  maxElements?: number;
  /** The model's opset, named in errors. */
  opset?: number;
  /** Plans (input-shape signatures) kept at once; the least recently used is disposed beyond it. Default 8. */
  maxPlans?: number;
  /** GpuPlanOptions.weightPrecision. */
  weightPrecision?: 'float32' | 'float16';
}

/** Per-run feed: host tensors, or GPU-resident ones from an earlier run's kept outputs. */
export type GpuFeed = HostTensor | (GpuTensorRef & { onGpu: true });

export interface GpuSessionReport extends GpuStagedReport {
  /** The signature (input shapes, baked values) of the plan reported. */
  signature: string;
  /** Bytes of weights resident on the GPU (shared by all plans). */
  residentWeightBytes: number;
  /** Bytes of the buffers all plans share (activation arena, graph inputs and outputs, scratch: shared-buffers.ts). */
  sharedBytes: number;
  plans: number;
  memory: MemoryStats;
}

/**
 * The WebGPU backend for one model: a GpuGraphPlan per input-shape signature (plus the values of inputs that shape
 * the computation, see value-inputs.ts), cached LRU; weights uploaded once into a store every plan shares, and the
 * buffers that live only inside a run (activation arena, graph inputs and outputs, scratch) one set for all plans,
 * each sized to the largest plan's need (shared-buffers.ts), so a decoder's plan per past length costs its bind
 * groups and uniforms, not another arena and KV cache's worth of input and output buffers. When the
 * model's inputs are static (symbolic dims taken as 1), the first plan is made at load time, so pipelines compile
 * and every kernel validates its node's types and attributes before the first run.
 */
export class GpuSession {
  readonly #res: GpuResources;
  readonly #graph: Graph;
  readonly #opts: Required<GpuSessionOptions>;
  readonly #valueNames: string[];
  readonly #plans = new Map<string, Promise<GpuRunnable>>();
  readonly #weights: GpuWeightStore;
  /** The arena, input/output and scratch buffers every plan of the session uses (runs are one submit each). */
  readonly #shared: GpuSharedBuffers;
  /** Runs in flight per plan: an evicted plan is disposed only after its last run (disposal frees its buffers). */
  readonly #inflight = new Map<GpuRunnable, number>();
  readonly #retired = new Set<GpuRunnable>();
  #lastKey = '';
  #last: GpuRunnable | undefined;
  #disposed = false;

  private constructor(res: GpuResources, graph: Graph, opts: GpuSessionOptions) {
    this.#res = res;
    this.#graph = graph;
    this.#opts = { maxElements: opts.maxElements ?? DEFAULT_MAX_ELEMENTS, opset: opts.opset ?? 0, maxPlans: opts.maxPlans ?? 8, weightPrecision: opts.weightPrecision ?? 'float32' };
    this.#valueNames = valueInputs(graph);
    this.#weights = new GpuWeightStore(res.memory);
    this.#shared = new GpuSharedBuffers(res.memory);
  }

  /**
   * Checks every node has a WebGPU kernel (one UnsupportedOpError listing all that lack one, before any upload),
   * then plans for the default signature when the graph allows it.
   */
  static async create(res: GpuResources, graph: Graph, opts: GpuSessionOptions = {}): Promise<GpuSession> {
    res.ctx.assertAlive();
    const missing = nodesWithoutGpuSupport(graph.nodes, opts.opset ?? 0);
    if (missing.length) {
      throw new UnsupportedOpError(missing, "These ops have no WebGPU kernel; EdgeKit does not fall back to the CPU per node. Use { backend: 'cpu' } for this model, or replace the ops.");
    }
    const s = new GpuSession(res, graph, opts);
    if (!s.#valueNames.length) {
      // Symbolic dims are taken as 1 for the load-time plan. When every dim is fixed (by the model or by
      // freeDimensionOverrides) this is the plan the runs use; otherwise it still validates every kernel against
      // the model's types and attributes and compiles the pipelines. A guessed 1 can be a shape the model rejects
      // (a Reshape that needs an even length): that plan is then skipped, not the model, and the first run plans.
      const guessed = graph.inputs.some((i) => (i.shape ?? []).some((d) => typeof d !== 'number'));
      const shapes = Object.fromEntries(graph.inputs.map((i) => [i.name, (i.shape ?? []).map((d) => (typeof d === 'number' ? d : 1))]));
      try {
        s.#last = await s.#planFor(shapes, {});
      } catch (e) {
        const shapeOnly = guessed && e instanceof EdgeKitError && !(e instanceof UnsupportedOpError) && (e.code === 'SHAPE_MISMATCH' || e.code === 'INVALID_ARGUMENT');
        if (!shapeOnly) {
          s.dispose();
          throw e;
        }
        s.#lastKey = '';
      }
    }
    return s;
  }

  #key(shapes: Record<string, readonly number[]>, feeds: Record<string, HostTensor>): string {
    const sig = this.#graph.inputs.map((i) => (shapes[i.name] ? `[${shapes[i.name]!.join(',')}]` : '-')).join(' ');
    return this.#valueNames.length ? `${sig} | ${valueKey(feeds, this.#valueNames)}` : sig;
  }

  #planFor(shapes: Record<string, readonly number[]>, feeds: Record<string, HostTensor>): Promise<GpuRunnable> {
    const key = this.#key(shapes, feeds);
    let p = this.#plans.get(key);
    if (p) {
      this.#plans.delete(key); // LRU: re-insert as the newest
      this.#plans.set(key, p);
    } else {
      const bound = bindValueInputs(this.#graph, feeds, this.#valueNames);
      const inputShapes: Record<string, readonly number[]> = {};
      for (const i of bound.inputs) if (shapes[i.name]) inputShapes[i.name] = shapes[i.name]!;
      const { maxElements, opset, weightPrecision } = this.#opts;
      p = (async () => planGpuGraph(this.#res, specialize(bound, inputShapes, maxElements), { maxElements, opset, weights: this.#weights, weightPrecision, shared: this.#shared }))();
      this.#plans.set(key, p);
      p.catch(() => this.#plans.get(key) === p && this.#plans.delete(key));
      while (this.#plans.size > this.#opts.maxPlans) {
        const [oldest, old] = this.#plans.entries().next().value!;
        this.#plans.delete(oldest);
        old.then((x) => this.#retire(x), () => {});
      }
    }
    this.#lastKey = key;
    return p;
  }

  /**
   * Runs the model: host outputs for `fetch`, GPU-resident outputs (caller-owned leases) for `keep`. Inputs whose
   * values shape the computation must be fed from the host.
   */
  async run(
    feeds: Record<string, GpuFeed>,
    fetch: readonly string[],
    keep: readonly string[] = [],
  ): Promise<{ host: Record<string, HostTensor>; gpu: Record<string, GpuTensorRef & { lease: GpuBufferLease }> }> {
    const host: Record<string, HostTensor> = {};
    const gpu: Record<string, GpuTensorRef> = {};
    const shapes: Record<string, readonly number[]> = {};
    for (const [k, v] of Object.entries(feeds)) {
      shapes[k] = v.shape;
      if ('onGpu' in v) gpu[k] = v;
      else host[k] = v;
    }
    for (const n of this.#valueNames) {
      if (gpu[n]) throw new UnsupportedOpError([], `Input '${n}' shapes the computation (its values are read when planning); feed it as a CPU tensor.`);
    }
    const plan = await this.#planFor(shapes, host);
    this.#last = plan;
    const baked = new Set(this.#valueNames);
    const planHost = Object.fromEntries(Object.entries(host).filter(([k]) => !baked.has(k)));
    // Baked inputs (and constants) asked for as outputs come straight from the feeds.
    const direct: Record<string, HostTensor> = {};
    for (const o of [...fetch, ...keep]) if (baked.has(o) && host[o]) direct[o] = host[o]!;
    // An output that is a fed input or a folded constant has no buffer of the plan's: it comes back on the host.
    const keepable = (o: string) => !direct[o] && !(o in plan.graph.initializers) && !(o in host) && !(o in gpu);
    const r = await this.#using(plan, () =>
      plan.execute(planHost, gpu, [...fetch, ...keep.filter((o) => !keepable(o))].filter((o) => !direct[o]), keep.filter(keepable)),
    );
    return { host: { ...direct, ...r.host }, gpu: r.gpu };
  }

  /** One profiled run (GpuGraphPlan.profile) of the plan for these host feeds: GPU time per dispatch. */
  async profile(feeds: Record<string, HostTensor>): Promise<GpuDispatchTiming[]> {
    const shapes = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, v.shape]));
    const plan = await this.#planFor(shapes, feeds);
    this.#last = plan;
    const baked = new Set(this.#valueNames);
    return this.#using(plan, () => plan.profile(Object.fromEntries(Object.entries(feeds).filter(([k]) => !baked.has(k)))));
  }

  /** Runs `work` on `plan` counted as in flight, so a plan evicted meanwhile is disposed only after it. */
  async #using<T>(plan: GpuRunnable, work: () => Promise<T>): Promise<T> {
    this.#inflight.set(plan, (this.#inflight.get(plan) ?? 0) + 1);
    try {
      return await work();
    } finally {
      const left = this.#inflight.get(plan)! - 1;
      if (left) this.#inflight.set(plan, left);
      else {
        this.#inflight.delete(plan);
        if (this.#retired.delete(plan)) plan.dispose();
      }
    }
  }

  #retire(plan: GpuRunnable): void {
    if (this.#inflight.has(plan)) this.#retired.add(plan);
    else plan.dispose();
  }

  /** The plan of the last run (or the load-time plan): dispatches, arena vs. lower bound, weights, pipelines. */
  report(): GpuSessionReport | undefined {
    const plan = this.#last;
    if (!plan) return undefined;
    return { ...plan.report(), signature: this.#lastKey, residentWeightBytes: this.#weights.bytes, sharedBytes: this.#shared.bytes, plans: this.#plans.size, memory: this.#res.memory.stats() };
  }

  /** The graph the last plan runs (fused, specialized). */
  plannedGraph(): Graph | undefined {
    return this.#last?.graph;
  }

  get memory() {
    return this.#res.memory;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const p of this.#plans.values()) p.then((x) => this.#retire(x), () => {});
    this.#plans.clear();
    this.#weights.dispose();
    this.#shared.dispose();
  }
}
