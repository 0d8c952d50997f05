import { InternalError, UnsupportedOpError } from '../../errors.js';
import type { Graph, Node, ValueInfo } from '../../ir/graph.js';
import { specialize } from '../../ir/passes/index.js';
import { isConcrete } from '../../ir/shape.js';
import { nodeReads } from '../../ir/validate.js';
import type { HostTensor } from '../../ir/tensor.js';
import { GpuGraphPlan, type GpuDispatchTiming, type GpuPlanOptions, type GpuPlanReport, type GpuResources, type GpuTensorRef } from './executor.js';
import { gpuKernelFor } from './kernels/index.js';
import type { GpuBufferLease } from './memory.js';
import { sizeOfShape } from './program.js';
import { decodeFromGpu, storageBytes } from './storage.js';
import { lowerCounts } from './lower-counts.js';
import { valueKey } from './value-inputs.js';

/**
 * Data-dependent shapes on WebGPU: read back at a stage boundary.
 *
 * A GPU plan fixes every shape and dispatch, so it needs every shape concrete and every value a kernel reads on the
 * host (GpuKernel.hostInputs: Reshape's shape, Range's limit, Slice's starts, ConstantOfShape's shape, an If's
 * condition...) constant. specialize() makes most of them constants from the input shapes: exporters' Shape
 * arithmetic folds away. What is left is computed from tensor DATA: Range(0, ReduceMax(lengths)), a Reshape to a
 * size computed by the model, an If on a computed flag, a Loop whose trip count is computed.
 *
 * Such a graph runs in stages. Stage 1 is every node that can be planned now (its output shapes concrete, its
 * host-read inputs constant, its inputs available), as one ordinary plan: one submit. Its run keeps on the GPU every
 * value the rest consumes (the boundary, copied into buffers the stage owns, never read back) and reads back only
 * the values the rest needs on the host: small integer tensors, in the same submit's readback. Stage 2 is the rest of
 * the graph with those values as constants and the boundary as GPU-resident inputs, specialized again (its shapes are
 * now concrete) and planned the same way, which may stage again.
 *
 * Cost, per run: one GPU-to-host synchronisation per stage boundary (`readbacks` in report()), one submit per
 * stage, and a buffer-to-buffer copy of each boundary tensor. A later stage's plan is cached by the values read
 * back (up to MAX_REST_PLANS, least recently used evicted): when those values repeat (a fixed sequence length, the
 * same flag) later runs cost only the syncs; when they change every run, every run plans (pipelines stay cached,
 * so that is buffer allocation and bind groups, not shader compilation). A graph that needs no values from its
 * data is one plan with no sync, as before.
 */

const MAX_REST_PLANS = 8;

/** Inputs (by index) that control-flow ops without a kernel need on the host to be planned: an If's condition, a Loop's trip count and condition. */
const CONTROL_HOST_INPUTS: Readonly<Record<string, readonly number[]>> = { If: [0], Loop: [0, 1] };

/** What both a single plan and a staged one offer GpuSession. */
export interface GpuRunnable {
  readonly graph: Graph;
  execute(
    feeds: Readonly<Record<string, HostTensor>>,
    gpuFeeds: Readonly<Record<string, GpuTensorRef>>,
    fetch: readonly string[],
    keep: readonly string[],
  ): Promise<{ host: Record<string, HostTensor>; gpu: Record<string, GpuTensorRef & { lease: GpuBufferLease }> }>;
  profile(feeds: Readonly<Record<string, HostTensor>>): Promise<GpuDispatchTiming[]>;
  report(): GpuStagedReport;
  dispose(): void;
}

export interface GpuStagedReport extends GpuPlanReport {
  /** Plans run one after another (1 when nothing depends on tensor data). */
  stages: number;
  /** GPU-to-host synchronisations per run before the outputs' own readback (stages - 1). */
  readbacks: number;
  /** The values read back at each boundary, by name. */
  readbackValues: string[];
}

/** The split of a specialized graph at its first data-dependent boundary (see the file comment). */
export interface StageSplit {
  /** Nodes that can be planned now. */
  first: Node[];
  /** Values the rest needs on the host: produced by `first`, or graph inputs. */
  hostValues: string[];
  /** Values produced by `first` that the rest reads on the GPU. */
  boundary: string[];
  /** Nodes left for later stages. */
  rest: Node[];
}

function hostReadInputs(n: Node): readonly number[] {
  return gpuKernelFor(n)?.hostInputs ?? (n.domain === '' ? CONTROL_HOST_INPUTS[n.op] ?? [] : []);
}

/** Splits `g` (specialized) into what can be planned now and the rest; undefined when every node can. */
export function splitStages(g: Graph): StageSplit | undefined {
  const available = new Set<string>([...g.inputs.map((i) => i.name), ...Object.keys(g.initializers)]);
  const first: Node[] = [];
  const rest: Node[] = [];
  for (const n of g.nodes) {
    const ready =
      Boolean(gpuKernelFor(n)) &&
      n.inputs.every((v) => !v || available.has(v)) &&
      hostReadInputs(n).every((i) => !n.inputs[i] || n.inputs[i]! in g.initializers) &&
      n.outputs.every((o) => !o || isConcrete(g.values[o]?.shape));
    if (ready) {
      first.push(n);
      for (const o of n.outputs) if (o) available.add(o);
    } else rest.push(n);
  }
  if (!rest.length) return undefined;
  const producedFirst = new Set(first.flatMap((n) => n.outputs.filter(Boolean)));
  const inputNames = new Set(g.inputs.map((i) => i.name));
  const hostValues = new Set<string>();
  for (const n of rest) {
    for (const i of hostReadInputs(n)) {
      const v = n.inputs[i];
      if (v && (producedFirst.has(v) || inputNames.has(v))) hostValues.add(v);
    }
  }
  const boundary = new Set<string>();
  // nodeReads: a control-flow node's bodies read values of this graph by name too.
  for (const n of rest) for (const v of nodeReads(n)) if (v && producedFirst.has(v) && !hostValues.has(v)) boundary.add(v);
  if (!hostValues.size) {
    // Nothing to learn from the data, yet nodes cannot be planned: their shapes are unknown for another reason.
    throw new UnsupportedOpError(
      rest.map((n) => ({ op: n.op, domain: n.domain, opset: 0, node: n.name, reason: 'its output shape cannot be determined from the input shapes or any value the model computes' })),
      'These nodes cannot be planned on the GPU.',
    );
  }
  return { first, hostValues: [...hostValues], boundary: [...boundary], rest };
}

/** The graph of one stage: `nodes`, reading `inputs`, producing `outputs`, sharing `g`'s initializers. */
function stageGraph(g: Graph, nodes: Node[], inputs: ValueInfo[], outputs: string[], initializers = g.initializers): Graph {
  const names = new Set([...inputs.map((i) => i.name), ...outputs, ...nodes.flatMap((n) => [...nodeReads(n), ...n.outputs])]);
  const values: Graph['values'] = {};
  for (const v of names) if (v && g.values[v]) values[v] = g.values[v]!;
  for (const i of inputs) values[i.name] = i;
  return {
    ...g,
    nodes,
    inputs,
    outputs: outputs.map((name) => ({ name, dtype: g.values[name]!.dtype, shape: g.values[name]!.shape })),
    initializers,
    values,
  };
}

/** A plan for a specialized graph: one GpuGraphPlan, or stages when shapes depend on computed values. */
export async function planGpuGraph(res: GpuResources, specialized: Graph, opts: GpuPlanOptions): Promise<GpuRunnable> {
  const graph = lowerCounts(specialized);
  const split = splitStages(graph);
  if (!split) return single(await GpuGraphPlan.create(res, graph, opts));
  return StagedPlan.create(res, graph, split, opts);
}

function single(plan: GpuGraphPlan): GpuRunnable {
  return {
    graph: plan.graph,
    execute: (f, gf, fetch, keep) => plan.execute(f, gf, fetch, keep),
    profile: (f) => plan.profile(f),
    report: () => ({ ...plan.report(), stages: 1, readbacks: 0, readbackValues: [] }),
    dispose: () => plan.dispose(),
  };
}

class StagedPlan implements GpuRunnable {
  readonly #rest = new Map<string, Promise<GpuRunnable>>();
  readonly #inflight = new Map<Promise<GpuRunnable>, number>();
  readonly #retired = new Set<Promise<GpuRunnable>>();
  #lastRest: GpuRunnable | undefined;
  #disposed = false;

  private constructor(
    private readonly res: GpuResources,
    readonly graph: Graph,
    private readonly split: StageSplit,
    /** Stage 1, or undefined when it has no nodes (the host values are all graph inputs). */
    private readonly first: GpuGraphPlan | undefined,
    private readonly firstOutputs: Set<string>,
    private readonly opts: GpuPlanOptions,
  ) {}

  static async create(res: GpuResources, g: Graph, split: StageSplit, opts: GpuPlanOptions): Promise<StagedPlan> {
    const produced = new Set(split.first.flatMap((n) => n.outputs.filter(Boolean)));
    const outs = new Set([...split.hostValues.filter((v) => produced.has(v)), ...split.boundary]);
    for (const o of g.outputs) if (produced.has(o.name)) outs.add(o.name);
    let first: GpuGraphPlan | undefined;
    if (split.first.length) {
      const used = new Set(split.first.flatMap((n) => n.inputs));
      first = await GpuGraphPlan.create(res, stageGraph(g, split.first, g.inputs.filter((i) => used.has(i.name)), [...outs]), opts);
    }
    return new StagedPlan(res, g, split, first, outs, opts);
  }

  /** The plan of the rest for these host values (cached by their values). */
  #restFor(values: Record<string, HostTensor>): Promise<GpuRunnable> {
    const key = valueKey(values, this.split.hostValues);
    let p = this.#rest.get(key);
    if (p) {
      this.#rest.delete(key);
      this.#rest.set(key, p);
      return p;
    }
    const g = this.graph;
    const restNodes = this.split.rest;
    const used = new Set(restNodes.flatMap((n) => nodeReads(n)));
    const inputs: ValueInfo[] = [
      ...g.inputs.filter((i) => used.has(i.name) && !(i.name in values)),
      ...this.split.boundary.map((name) => ({ name, dtype: g.values[name]!.dtype, shape: [...g.values[name]!.shape!] })),
    ];
    const produced = new Set(restNodes.flatMap((n) => n.outputs.filter(Boolean)));
    const outputs = g.outputs.map((o) => o.name).filter((o) => produced.has(o));
    const restGraph = stageGraph(g, restNodes, inputs, outputs, { ...g.initializers, ...values });
    const shapes = Object.fromEntries(inputs.map((i) => [i.name, i.shape as number[]]));
    p = planGpuGraph(this.res, specialize(restGraph, shapes, this.opts.maxElements), this.opts);
    this.#rest.set(key, p);
    p.catch(() => this.#rest.get(key) === p && this.#rest.delete(key));
    while (this.#rest.size > MAX_REST_PLANS) {
      const [oldest, old] = this.#rest.entries().next().value!;
      this.#rest.delete(oldest);
      this.#retire(old);
    }
    return p;
  }

  #retire(p: Promise<GpuRunnable>): void {
    if (this.#inflight.has(p)) this.#retired.add(p);
    else p.then((x) => x.dispose(), () => {});
  }

  /** Stage 1's run: its outputs the caller asked for, the host values, and the boundary kept on the GPU. */
  async #runFirst(
    feeds: Readonly<Record<string, HostTensor>>,
    gpuFeeds: Readonly<Record<string, GpuTensorRef>>,
    fetch: readonly string[],
    keep: readonly string[],
  ): Promise<{ host: Record<string, HostTensor>; gpu: Record<string, GpuTensorRef & { lease: GpuBufferLease }>; values: Record<string, HostTensor> }> {
    const hostValues = this.split.hostValues;
    const fetch1 = [...new Set([...fetch.filter((o) => this.firstOutputs.has(o)), ...hostValues.filter((v) => this.firstOutputs.has(v))])];
    const keep1 = [...new Set([...keep.filter((o) => this.firstOutputs.has(o)), ...this.split.boundary])];
    const r = this.first ? await this.first.execute(feeds, gpuFeeds, fetch1, keep1) : { host: {}, gpu: {} };
    const values: Record<string, HostTensor> = {};
    for (const v of hostValues) {
      if (r.host[v]) values[v] = r.host[v]!;
      else if (feeds[v]) values[v] = feeds[v]!;
      else if (gpuFeeds[v]) {
        const t = gpuFeeds[v]!;
        const bytes = await this.res.memory.readback(t.buffer, t.offset, storageBytes(t.storage, sizeOfShape(t.shape)));
        values[v] = decodeFromGpu(bytes, t.storage, t.dtype, [...t.shape]);
      } else throw new InternalError(`staged plan: value '${v}' needed on the host was not computed`);
    }
    return { ...r, values };
  }

  async execute(
    feeds: Readonly<Record<string, HostTensor>>,
    gpuFeeds: Readonly<Record<string, GpuTensorRef>>,
    fetch: readonly string[],
    keep: readonly string[],
  ): Promise<{ host: Record<string, HostTensor>; gpu: Record<string, GpuTensorRef & { lease: GpuBufferLease }> }> {
    if (this.#disposed) throw new InternalError('run() on a disposed GPU plan');
    const memory = this.res.memory;
    const one = await this.#runFirst(feeds, gpuFeeds, fetch, keep);
    const userKept = new Set(keep);
    const releaseBoundary = () => {
      for (const b of this.split.boundary) if (!userKept.has(b) && one.gpu[b]) memory.release(one.gpu[b]!.lease);
    };
    const host: Record<string, HostTensor> = {};
    const gpu: Record<string, GpuTensorRef & { lease: GpuBufferLease }> = {};
    for (const o of fetch) if (one.host[o]) host[o] = one.host[o]!;
    for (const o of keep) if (one.gpu[o]) gpu[o] = one.gpu[o]!;
    const fetch2 = fetch.filter((o) => !(o in host));
    const keep2 = keep.filter((o) => !(o in gpu));
    if (!fetch2.length && !keep2.length) {
      releaseBoundary();
      return { host, gpu };
    }
    const p = this.#restFor(one.values);
    this.#inflight.set(p, (this.#inflight.get(p) ?? 0) + 1);
    try {
      const rest = await p;
      this.#lastRest = rest;
      const boundary = Object.fromEntries(this.split.boundary.map((b) => [b, one.gpu[b]!]));
      const r = await rest.execute(feeds, { ...gpuFeeds, ...boundary }, fetch2, keep2);
      return { host: { ...host, ...r.host }, gpu: { ...gpu, ...r.gpu } };
    } catch (e) {
      for (const o of keep) if (gpu[o]) memory.release(gpu[o]!.lease);
      throw e;
    } finally {
      releaseBoundary();
      const left = this.#inflight.get(p)! - 1;
      if (left) this.#inflight.set(p, left);
      else {
        this.#inflight.delete(p);
        if (this.#retired.delete(p)) p.then((x) => x.dispose(), () => {});
      }
    }
  }

  /** Stage 1 profiled, its boundary read back to the host, then the rest profiled on it. */
  async profile(feeds: Readonly<Record<string, HostTensor>>): Promise<GpuDispatchTiming[]> {
    const timings = this.first ? await this.first.profile(feeds) : [];
    const one = await this.#runFirst(feeds, {}, this.split.boundary, []);
    const rest = await this.#restFor(one.values);
    const boundary = Object.fromEntries(this.split.boundary.map((b) => [b, one.host[b]!]));
    return [...timings, ...(await rest.profile({ ...feeds, ...boundary }))];
  }

  report(): GpuStagedReport {
    const a = this.first?.report();
    const b = this.#lastRest?.report();
    const parts = [a, b].filter((x): x is GpuPlanReport => x !== undefined);
    return {
      dispatches: parts.reduce((s, p) => s + p.dispatches, 0),
      arenaBytes: Math.max(0, ...parts.map((p) => p.arenaBytes)),
      lowerBound: Math.max(0, ...parts.map((p) => p.lowerBound)),
      weightBytes: parts.reduce((s, p) => s + p.weightBytes, 0),
      pipelines: [...new Set(parts.flatMap((p) => p.pipelines))],
      nodes: parts.flatMap((p) => p.nodes),
      requiredLimits: {
        maxStorageBufferBindingSize: Math.max(0, ...parts.map((p) => p.requiredLimits.maxStorageBufferBindingSize)),
        maxStorageBuffersPerShaderStage: Math.max(0, ...parts.map((p) => p.requiredLimits.maxStorageBuffersPerShaderStage)),
      },
      features: [...new Set(parts.flatMap((p) => p.features))],
      fusions: parts.flatMap((p) => p.fusions),
      stages: 1 + (b?.stages ?? 1),
      readbacks: 1 + (b?.readbacks ?? 0),
      readbackValues: [...this.split.hostValues, ...(b?.readbackValues ?? [])],
    };
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.first?.dispose();
    for (const p of this.#rest.values()) this.#retire(p);
    this.#rest.clear();
  }
}
