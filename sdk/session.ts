import { importOnnx, type ImportedModel } from '../importers/onnx/index.js';
import { CpuSession } from '../runtime/backends/cpu/cpu-session.js';
import { CPU_KERNELS } from '../runtime/backends/cpu/kernels/index.js';
import { DeviceError, InvalidArgumentError, SessionReleasedError, UnsupportedOpError } from '../runtime/errors.js';
import { bytesPerElement, type DType } from '../runtime/ir/dtype.js';
import type { Dim, Graph, ValueInfo, ValueKind } from '../runtime/ir/graph.js';
import { optimize, type OptimizeStats } from '../runtime/ir/passes/index.js';
import { DEFAULT_MAX_ELEMENTS } from '../runtime/ir/tensor.js';
import { acquireDevice } from '../runtime/backends/webgpu/device.js';
import { gpuResources, type GpuResources } from '../runtime/backends/webgpu/executor.js';
import { GpuSession, type GpuFeed } from '../runtime/backends/webgpu/gpu-session.js';
import { nodesWithoutGpuSupport } from '../runtime/backends/webgpu/support.js';
import type { HostTensor } from '../runtime/ir/tensor.js';
import { validateFeeds } from './feeds.js';
import { toSessionValue, type SessionValue } from './values.js';
import { kindOf, type HostValue } from '../runtime/ir/value.js';
import { SEQUENCE_KERNELS } from '../runtime/backends/cpu/kernels/sequences.js';
import { SequenceGpuSession } from '../runtime/backends/webgpu/sequence-session.js';
import { hasNonTensorValues } from '../runtime/ir/passes/sequences.js';
import { setSessionInternals } from './internal.js';
import { getNodePlatform } from './platform.js';
import { loadModelSource, type ModelSource } from './model-source.js';
import { SessionStream, type StreamOptions } from './stream.js';
import { Tensor } from './tensor.js';
import { threadScheduler, type QueueOptions } from './queue.js';
import type { LoadOptions } from './loading/options.js';
import { observeCompiles } from './loading/compile-progress.js';
import { resolveImageFeeds } from './vision/image-feeds.js';
import type { Lane, Scheduler, TaskPriority } from '../runtime/scheduler/index.js';

export type Backend = 'cpu' | 'webgpu';

export interface SessionOptions extends QueueOptions, LoadOptions {
  /** Where the model runs. 'cpu' is the reference backend. Default: 'webgpu'. There is never a silent fallback. */
  backend?: Backend;
  /** onnxruntime-web style alternative to `backend`: the first entry decides ('cpu' | 'wasm' → cpu, 'webgpu'). */
  executionProviders?: (string | { name: string })[];
  /** External data files by location, for models loaded from bytes. */
  externalData?: Record<string, Uint8Array>;
  /** Largest element count of any one tensor (allocation-bomb guard). Default 2^30. */
  maxTensorElements?: number;
  /**
   * Where outputs are returned (onnxruntime-web's option): 'cpu' (default) reads them back; 'gpu-buffer' keeps them
   * on the GPU as tensors with `location === 'gpu-buffer'`, which can feed the next run without leaving the GPU.
   * Per output: { logits: 'gpu-buffer' }. WebGPU sessions only.
   */
  preferredOutputLocation?: OutputLocation | Record<string, OutputLocation>;
  /**
   * WebGPU: the precision weights are kept in on the GPU. 'float32' (default) keeps the model's values exactly.
   * 'float16' stores the large float32 weights of Conv, ConvTranspose, Gemm and MatMul (256 elements or more, all
   * within float16's range) in half precision: their GPU memory halves, each value is rounded to float16 (a relative
   * change of at most 2^-11), and every computation stays float32. Biases, small tensors and everything else stay
   * float32. Nothing changes on the CPU backend, which rejects the option.
   */
  weightPrecision?: 'float32' | 'float16';
  /**
   * Fixes symbolic input dims by name at load (onnxruntime-web's option), e.g. `{ batch: 1, sequence: 128 }`:
   * `inputMetadata` shows the numbers, feeds of any other size are refused with a ShapeError, and on WebGPU the
   * plan for those shapes (pipelines, arena, weights) is made inside `create`, so the first run costs no more than
   * the next. A name the model's inputs do not use is an InvalidArgumentError (it is most likely a typo).
   */
  freeDimensionOverrides?: Record<string, number>;
  /**
   * Most iterations one ONNX Loop may run on the CPU backend before the run throws an InvalidArgumentError (a loop
   * whose condition never turns false must not hang the caller). Default 1,000,000. On WebGPU loops are unrolled
   * into the plan when their iteration count is known at plan time, at most 4096 body-node copies (an
   * UnsupportedOpError beyond).
   */
  maxLoopIterations?: number;
}

export type OutputLocation = 'cpu' | 'gpu-buffer';

export interface RunOptions {
  /** Names of the outputs to compute; default all. */
  outputs?: readonly string[];
  /** Overrides the session's preferredOutputLocation for this run. */
  preferredOutputLocation?: OutputLocation | Record<string, OutputLocation>;
  /** This run's priority in the session's scheduler; default the session's (SessionOptions.priority). */
  priority?: TaskPriority;
  /** Aborting rejects the run with CancelledError: at once while it waits; a running one finishes and its result is dropped. */
  signal?: AbortSignal;
}

/**
 * onnxruntime-web's ValueMetadata shape. Sequences and optionals (sdk/values.ts) have `isTensor: false`; their
 * `type` and `shape` describe the elements (an optional: what it holds), and `kind` says which they are.
 */
export interface ValueMetadata {
  name: string;
  isTensor: boolean;
  type: DType;
  shape: Dim[];
  kind: ValueKind;
}

export interface NodeReport {
  name: string;
  op: string;
  backend: Backend;
  outputs: { name: string; dtype: DType; shape?: Dim[] }[];
  /** WebGPU: the pipelines (kernel keys) the node dispatches, and its outputs' GPU storage (f32, f16, i32...). */
  kernels?: string[];
  storage?: string[];
}

/** What the WebGPU plan of the last run (or of load time) needs and uses. */
export interface GpuPlanSummary {
  /** Input shapes (and baked input values) the plan was made for. */
  signature: string;
  dispatches: number;
  /** Bytes of the intermediate arena (planned peak activation bytes) and the liveness lower bound. */
  activationBytes: number;
  activationLowerBound: number;
  pipelines: number;
  /**
   * Plans run one after another per run, and the GPU-to-host synchronisations between them: 1 and 0 unless a shape
   * depends on values the model computes (a Range to a computed length, NonZero), whose values are read back at a
   * stage boundary (runtime/backends/webgpu/staged-plan.ts). `readbackValues` names them.
   */
  stages: number;
  readbacks: number;
  readbackValues: string[];
  /**
   * Bytes this plan uploaded for itself: constants folded for its input shapes and kernel tables specific to them.
   * The model's weights, and tables derived only from them (an RNN's transposed matrices), are shared by every plan
   * and counted once in the report's `weightBytes`.
   */
  planConstantBytes: number;
  requiredLimits: Record<string, number>;
  features: string[];
  /** The device's memory manager: live and peak bytes of every EdgeKit GPU buffer on it. */
  liveBytes: number;
  peakBytes: number;
  /** Bytes read back from the GPU to the host on this device so far, by every session (outputs, stage boundaries). */
  readbackBytes: number;
  /**
   * Bytes of GPU-resident inputs ('gpu-buffer' tensors) copied into the plan's buffers, and of 'gpu-buffer' outputs
   * copied out of them, on this device so far. A fed GPU tensor is bound as it is, and a kept output is written in
   * its own buffer, wherever the plan allows: a generation loop's KV cache then costs 0 here per step.
   */
  inputCopyBytes: number;
  outputCopyBytes: number;
  adapter: { vendor: string; architecture: string; description: string; f16: boolean };
  /**
   * What the plan fused (docs/fusion.md): each fused node's kind ('LayerNorm', 'SkipLayerNorm', 'Gelu', 'QKV',
   * 'MatMul+Bias+Gelu'...), its name in `nodes`, and the model's nodes it replaces.
   */
  fusions: { kind: string; node: string; nodes: string[] }[];
}

export interface SessionReport {
  backend: Backend;
  opset: number;
  producer: string;
  nodes: NodeReport[];
  /** Bytes of the model's weights (host copies; for WebGPU, what is resident on the GPU). */
  weightBytes: number;
  optimizations: OptimizeStats;
  gpu?: GpuPlanSummary;
}

/** One GPU dispatch of a profiled run (InferenceSession.profile). */
export interface DispatchProfile {
  /** The node it computes (a fused node carries the name of the chain's first node). */
  node: string;
  op: string;
  /** The kernel's cache key: program, tiling, fused epilogue. */
  kernel: string;
  workgroups: [number, number, number];
  /** GPU time of the dispatch, from timestamp queries, in milliseconds. */
  ms: number;
}

function chooseBackend(o: SessionOptions): Backend {
  if (o.backend && o.executionProviders) throw new InvalidArgumentError('Pass either backend or executionProviders, not both.');
  if (o.backend) {
    if (o.backend !== 'cpu' && o.backend !== 'webgpu') throw new InvalidArgumentError(`Unknown backend '${o.backend}'. Use 'webgpu' or 'cpu'.`);
    return o.backend;
  }
  const first = o.executionProviders?.[0];
  const name = typeof first === 'string' ? first : first?.name;
  if (name === undefined || name === 'webgpu') return 'webgpu';
  if (name === 'cpu' || name === 'wasm') return 'cpu';
  throw new InvalidArgumentError(`Unknown execution provider '${name}'. Use 'webgpu' or 'cpu'.`);
}

/** Loads an ONNX model and runs it. The API follows onnxruntime-web's InferenceSession. */
export class InferenceSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata: readonly ValueMetadata[];
  readonly outputMetadata: readonly ValueMetadata[];
  readonly backend: Backend;
  readonly #model: ImportedModel;
  readonly #graph: Graph;
  readonly #stats: OptimizeStats;
  #cpu: CpuSession | undefined;
  #gpu: GpuSession | SequenceGpuSession | undefined;
  #res: GpuResources | undefined;
  readonly #outputLocation: SessionOptions['preferredOutputLocation'];
  /** Where this session's runs queue (sdk/queue.ts). */
  readonly #lane: Lane;
  #released = false;

  private constructor(
    { lane, scheduler }: { lane: Lane; scheduler: Scheduler },
    model: ImportedModel,
    graph: Graph,
    stats: OptimizeStats,
    backend: Backend,
    maxElements: number,
    gpu?: { session: GpuSession | SequenceGpuSession; res: GpuResources },
    outputLocation?: SessionOptions['preferredOutputLocation'],
    maxLoopIterations?: number,
  ) {
    this.#lane = lane;
    this.#model = model;
    this.#graph = graph;
    this.#stats = stats;
    this.backend = backend;
    this.inputNames = Object.freeze(graph.inputs.map((i) => i.name));
    this.outputNames = Object.freeze(graph.outputs.map((o) => o.name));
    const meta = (v: ValueInfo): ValueMetadata => ({ name: v.name, isTensor: kindOf(v) === 'tensor', type: v.dtype, shape: [...(v.shape ?? [])], kind: kindOf(v) });
    this.inputMetadata = Object.freeze(graph.inputs.map(meta));
    this.outputMetadata = Object.freeze(graph.outputs.map((o) => meta(graph.values[o.name] ?? o)));
    if (backend === 'cpu') this.#cpu = new CpuSession(graph, { maxElements, maxLoopIterations });
    this.#gpu = gpu?.session;
    this.#res = gpu?.res;
    this.#outputLocation = outputLocation;
    let trainingGraph: Graph | undefined;
    setSessionInternals(this, {
      graph,
      opset: model.opset,
      backend,
      maxElements,
      gpu: async () => this.#res ?? gpuResourcesNow(),
      modelConstants: new Set(model.constants),
      trainingGraph: () => (trainingGraph ??= optimize(model.graph, maxElements, { forTraining: true }).graph),
      released: () => this.#released,
      lane,
      scheduler,
      runUnqueued: (feeds, fetches) => this.#run(feeds, fetches),
    });
  }

  static async create(model: ModelSource, options: SessionOptions = {}): Promise<InferenceSession> {
    const backend = chooseBackend(options);
    const maxElements = options.maxTensorElements ?? DEFAULT_MAX_ELEMENTS;
    checkOutputLocation(options.preferredOutputLocation, backend);
    if (options.weightPrecision !== undefined && options.weightPrecision !== 'float32' && options.weightPrecision !== 'float16') {
      throw new InvalidArgumentError(`weightPrecision must be 'float32' or 'float16', not '${String(options.weightPrecision)}'.`);
    }
    if (options.weightPrecision === 'float16' && backend !== 'webgpu') {
      throw new InvalidArgumentError("weightPrecision 'float16' applies to the webgpu backend; the CPU backend keeps the model's float32 weights.");
    }
    const loops = options.maxLoopIterations;
    if (loops !== undefined && (!Number.isInteger(loops) || loops < 1)) throw new InvalidArgumentError(`maxLoopIterations must be a positive integer, not ${String(loops)}.`);
    // The lane first: bad queue options fail before anything is loaded.
    const scheduler = options.scheduler ?? threadScheduler();
    const lane = scheduler.lane({ priority: options.priority, mode: options.queue, maxPending: options.maxPending });
    try {
      return await InferenceSession.#load({ lane, scheduler }, model, options, backend, maxElements);
    } catch (e) {
      void lane.dispose();
      throw e;
    }
  }

  static async #load(queue: { lane: Lane; scheduler: Scheduler }, model: ModelSource, options: SessionOptions, backend: Backend, maxElements: number): Promise<InferenceSession> {
    const { bytes, externalData, checkIntegrityUsed } = await loadModelSource(model, options.externalData, options);
    const imported = await importOnnx(bytes, { externalData, maxTensorElements: maxElements });
    checkIntegrityUsed();
    // Can every node run once shapes are known? (For WebGPU: a kernel, or a plan-time op such as Shape.)
    const missing =
      backend === 'cpu'
        ? imported.graph.nodes.filter((n) => !CPU_KERNELS[n.op] && !SEQUENCE_KERNELS[n.op]).map((n) => ({ op: n.op, domain: n.domain, opset: imported.opset, node: n.name, reason: 'no CPU kernel' }))
        : nodesWithoutGpuSupport(imported.graph.nodes, imported.opset);
    if (missing.length) {
      throw new UnsupportedOpError(missing, backend === 'webgpu' ? "EdgeKit never falls back to the CPU per node: use { backend: 'cpu' } for this model, or replace these ops." : '');
    }
    if (options.freeDimensionOverrides) fixFreeDimensions(imported.graph, options.freeDimensionOverrides);
    const { graph, stats } = optimize(imported.graph, maxElements);
    if (backend === 'cpu') return new InferenceSession(queue, imported, graph, stats, backend, maxElements, undefined, options.preferredOutputLocation, options.maxLoopIterations);
    const res = await gpuResourcesNow();
    // Pipelines compiled while the plan is made are reported as 'compile' progress (sdk/loading/compile-progress.ts).
    const stopObserving = observeCompiles(res.pipelines, options.onProgress);
    // Sequences and optionals: planned per fed layout as tensor graphs (runtime/backends/webgpu/sequence-session.ts).
    const gpuOpts = { maxElements, opset: imported.opset, weightPrecision: options.weightPrecision };
    let session: GpuSession | SequenceGpuSession;
    try {
      session = hasNonTensorValues(graph) ? await SequenceGpuSession.create(res, graph, gpuOpts) : await GpuSession.create(res, graph, gpuOpts);
    } finally {
      stopObserving();
    }
    return new InferenceSession(queue, imported, graph, stats, backend, maxElements, { session, res }, options.preferredOutputLocation);
  }

  /**
   * Runs the model. `feeds` maps input names to tensors. The second argument is either onnxruntime-web's fetches
   * (an array of output names) or `{ outputs }`. Returns the requested outputs by name. Sequence inputs take arrays
   * of Tensors, optional inputs a Tensor, an array or null, and such outputs come back the same way (sdk/values.ts);
   * type them with `run<Record<string, SessionValue>>(...)`.
   */
  async run<O extends Record<string, SessionValue> = Record<string, Tensor>>(feeds: Record<string, SessionValue>, fetches?: readonly string[] | RunOptions): Promise<O> {
    if (this.#released) throw new SessionReleasedError();
    const opts = Array.isArray(fetches) ? {} : ((fetches ?? {}) as RunOptions);
    // Queued in the session's lane (sdk/queue.ts); a result nobody will see (aborted while running) is freed.
    return this.#lane.submit(() => this.#run<O>(feeds, fetches), { priority: opts.priority, signal: opts.signal, onDiscard: disposeOutputs });
  }

  async #run<O extends Record<string, SessionValue> = Record<string, Tensor>>(feeds: Record<string, SessionValue>, fetches?: readonly string[] | RunOptions): Promise<O> {
    if (this.#released) throw new SessionReleasedError();
    // Image feeds (Tensor.fromImage) become tensors on the GPU first (sdk/vision/image-feeds.ts).
    const images = await resolveImageFeeds(feeds, async () => this.#res ?? gpuResourcesNow(), this.#cpu !== undefined);
    try {
      return await this.#runTensors<O>(images.feeds, fetches);
    } finally {
      for (const t of images.temps) t.dispose();
    }
  }

  async #runTensors<O extends Record<string, SessionValue>>(feeds: Record<string, SessionValue>, fetches?: readonly string[] | RunOptions): Promise<O> {
    const opts = Array.isArray(fetches) ? {} : ((fetches ?? {}) as RunOptions);
    const outputs = Array.isArray(fetches) ? fetches : opts.outputs ?? this.outputNames;
    for (const o of outputs) {
      if (!this.outputNames.includes(o)) {
        throw new InvalidArgumentError(`Unknown output '${o}'. This model's outputs are ${this.outputNames.map((n) => `'${n}'`).join(', ')}.`, { output: o });
      }
    }
    const location = opts.preferredOutputLocation ?? this.#outputLocation;
    checkOutputLocation(location, this.backend);
    const feedsIn = validateFeeds(this.#graph.inputs, feeds);
    const out: Record<string, SessionValue> = {};
    if (this.#cpu) {
      const host: Record<string, HostValue> = {};
      for (const [k, v] of Object.entries(feedsIn)) {
        // A sequence's elements (sdk/values.ts) must be on the CPU too.
        for (const t of v === null ? [] : Array.isArray(v) ? v : [v]) {
          if ('onGpu' in t) throw new InvalidArgumentError(`Input '${k}' lives on the GPU; a CPU session needs it on the CPU (await tensor.getData()).`, { input: k });
        }
        host[k] = v as HostValue;
      }
      const result = this.#cpu.run(host, outputs);
      for (const o of outputs) out[o] = toSessionValue(result[o]!, Tensor.fromHost);
      return out as O;
    }
    const gpu = this.#gpu!;
    const res = this.#res!;
    for (const [k, v] of Object.entries(feeds)) {
      const m = v instanceof Tensor ? v.gpuMemory() : Array.isArray(v) ? v.map((t) => t.gpuMemory()).find((x) => x && x !== res.memory) : undefined;
      if (m && m !== res.memory) throw new InvalidArgumentError(`Input '${k}' is a GPU tensor from another device (or from before a device loss); read it with getData() and feed a CPU tensor.`, { input: k });
    }
    const onGpu = (o: string) => (typeof location === 'string' ? location === 'gpu-buffer' : location?.[o] === 'gpu-buffer');
    const keep = outputs.filter(onGpu);
    const fetch = outputs.filter((o) => !onGpu(o));
    const r = gpu instanceof SequenceGpuSession ? await gpu.run(feedsIn, fetch, keep) : await gpu.run(feedsIn as Record<string, GpuFeed>, fetch, keep);
    // Kept sequence outputs (sequence-session.ts): arrays of GPU tensors (host ones where an element is shared).
    const seqs = 'gpuSequences' in r ? r.gpuSequences : {};
    if (this.#released) {
      for (const g of [...Object.values(r.gpu), ...Object.values(seqs).flat()]) if ('lease' in g) res.memory.release(g.lease);
      throw new SessionReleasedError();
    }
    for (const o of outputs) {
      const g = r.gpu[o];
      if (g) out[o] = Tensor.fromGpu(g, res.memory);
      else if (seqs[o]) out[o] = seqs[o]!.map((e) => ('lease' in e ? Tensor.fromGpu(e, res.memory) : Tensor.fromHost(e)));
      else out[o] = toSessionValue(r.host[o]!, Tensor.fromHost);
    }
    return out as O;
  }

  /**
   * Placement, dtypes and sizes of every node, before the first run. WebGPU sessions also report the plan of the
   * last run (at load time: the plan for the model's declared input shapes, symbolic dims as 1): the kernels per
   * node, dispatch count, planned activation bytes against the liveness lower bound, and the limits it needs.
   */
  report(): SessionReport {
    let weightBytes = 0;
    for (const t of Object.values(this.#graph.initializers)) weightBytes += t.data.length * bytesPerElement(t.dtype);
    const g = this.#gpu?.report();
    const planned = this.#gpu?.plannedGraph();
    const nodes: NodeReport[] = (planned ?? this.#graph).nodes.map((n) => {
      const values = planned ? planned.values : this.#graph.values;
      const k = g?.nodes.find((x) => x.name === n.name);
      return {
        name: n.name,
        op: n.op,
        backend: this.backend,
        outputs: n.outputs.filter(Boolean).map((o) => ({ name: o, dtype: values[o]!.dtype, shape: values[o]!.shape })),
        ...(k ? { kernels: k.kernels, storage: k.storage } : {}),
      };
    });
    const ctx = this.#res?.ctx;
    return {
      backend: this.backend,
      opset: this.#model.opset,
      producer: this.#model.producer,
      weightBytes: g ? g.residentWeightBytes : weightBytes,
      optimizations: { ...this.#stats },
      nodes,
      ...(g && ctx
        ? {
            gpu: {
              signature: g.signature,
              dispatches: g.dispatches,
              activationBytes: g.arenaBytes,
              activationLowerBound: g.lowerBound,
              pipelines: g.pipelines.length,
              stages: g.stages,
              readbacks: g.readbacks,
              readbackValues: [...g.readbackValues],
              planConstantBytes: g.weightBytes,
              requiredLimits: { ...g.requiredLimits },
              features: g.features,
              liveBytes: g.memory.liveBytes,
              peakBytes: g.memory.peakBytes,
              readbackBytes: g.memory.readbackBytes,
              inputCopyBytes: g.memory.inputCopyBytes,
              outputCopyBytes: g.memory.outputCopyBytes,
              adapter: { ...ctx.adapterInfo, f16: ctx.hasF16 },
              fusions: g.fusions.map((f) => ({ ...f, nodes: [...f.nodes] })),
            },
          }
        : {}),
    };
  }

  /**
   * Runs the model once with a GPU timestamp around every dispatch and returns their times in execution order
   * (webgpu sessions on an adapter with 'timestamp-query'; others get a typed error). Each dispatch runs in its
   * own compute pass here, so the sum is close to, not equal to, a normal run. Outputs are not returned.
   * Queued in the session's lane like run() (same `priority` and `signal` options): a profile shares the device
   * with every other request and never overlaps one, which would distort its timings.
   */
  async profile(feeds: Record<string, Tensor>, options: Pick<RunOptions, 'priority' | 'signal'> = {}): Promise<DispatchProfile[]> {
    if (this.#released) throw new SessionReleasedError();
    // Checked before queueing: a wrong call fails at once, not after the requests ahead of it.
    if (!this.#gpu) throw new InvalidArgumentError("profile() times GPU dispatches; this session runs on the CPU (create it with { backend: 'webgpu' }).");
    return this.#lane.submit(() => this.#profile(feeds), { priority: options.priority, signal: options.signal });
  }

  async #profile(feeds: Record<string, Tensor>): Promise<DispatchProfile[]> {
    if (this.#released) throw new SessionReleasedError();
    if (!this.#gpu) throw new InvalidArgumentError("profile() times GPU dispatches; this session runs on the CPU (create it with { backend: 'webgpu' }).");
    const host: Record<string, HostTensor> = {};
    for (const [k, v] of Object.entries(validateFeeds(this.#graph.inputs, feeds))) {
      if (v === null || Array.isArray(v)) throw new InvalidArgumentError(`profile() needs tensor inputs; input '${k}' is a sequence or optional.`, { input: k });
      if ('onGpu' in v) throw new InvalidArgumentError(`profile() needs CPU tensors; input '${k}' lives on the GPU (await tensor.getData()).`, { input: k });
      host[k] = v;
    }
    const timings = await this.#gpu.profile(host);
    return timings.map((t) => ({ node: t.node, op: t.op, kernel: t.kernel, workgroups: t.workgroups, ms: t.ns / 1e6 }));
  }

  /**
   * A stream for a stateful model run one chunk at a time: `state` maps each state input to the output that feeds
   * it on the next chunk, e.g. `session.createStream({ state: { h0: 'hn', c0: 'cn' } })`. The state starts at zeros,
   * stays on the GPU between chunks (WebGPU), and `reset()` starts over. See sdk/stream.ts.
   */
  createStream(options: StreamOptions): SessionStream {
    if (this.#released) throw new SessionReleasedError();
    return new SessionStream(this, options);
  }

  /**
   * Frees the model's memory; later runs throw SessionReleasedError, runs still waiting in the queue reject with it,
   * and a running one finishes first (its result is discarded). Idempotent.
   */
  async release(): Promise<void> {
    this.#released = true;
    await this.#lane.dispose();
    this.#cpu = undefined;
    this.#gpu?.dispose();
    this.#gpu = undefined;
  }
}

function disposeOutputs(out: Record<string, SessionValue>): void {
  for (const v of Object.values(out)) for (const t of v === null ? [] : Array.isArray(v) ? v : [v]) t.dispose();
}

/** The shared device's resources; in Node the `webgpu` package comes from the Node entry's platform hooks. */
async function gpuResourcesNow(): Promise<GpuResources> {
  return gpuResources(await acquireDevice({ gpu: await getNodePlatform()?.getGpu?.() }));
}

function checkOutputLocation(loc: SessionOptions['preferredOutputLocation'], backend: Backend): void {
  if (loc === undefined) return;
  const values = typeof loc === 'string' ? [loc] : typeof loc === 'object' && loc ? Object.values(loc) : [loc];
  for (const v of values) {
    if (v !== 'cpu' && v !== 'gpu-buffer') throw new InvalidArgumentError(`preferredOutputLocation must be 'cpu' or 'gpu-buffer', got ${JSON.stringify(v)}.`);
    if (v === 'gpu-buffer' && backend !== 'webgpu') throw new InvalidArgumentError("preferredOutputLocation 'gpu-buffer' needs a WebGPU session ({ backend: 'webgpu' }).");
  }
}

/** Replaces the named symbolic dims of the graph's inputs (freeDimensionOverrides), in place, before optimizing. */
function fixFreeDimensions(graph: Graph, overrides: Record<string, number>): void {
  const used = new Set(graph.inputs.flatMap((i) => (i.shape ?? []).filter((d): d is string => typeof d === 'string')));
  for (const [name, n] of Object.entries(overrides)) {
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`freeDimensionOverrides.${name} must be a non-negative integer, got ${String(n)}.`);
    if (!used.has(name)) {
      const known = [...used].map((d) => `'${d}'`).join(', ');
      throw new InvalidArgumentError(`freeDimensionOverrides names '${name}', which no input of this model uses; its symbolic dims are ${known || 'none (every input shape is fixed)'}.`);
    }
  }
  graph.inputs = graph.inputs.map((i) => ({ ...i, shape: i.shape?.map((d) => (typeof d === 'string' && d in overrides ? overrides[d]! : d)) }));
}
