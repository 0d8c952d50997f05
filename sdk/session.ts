import { importOnnx, type ImportedModel } from '../importers/onnx/index.js';
import { CpuSession } from '../runtime/backends/cpu/cpu-session.js';
import { CPU_KERNELS } from '../runtime/backends/cpu/kernels/index.js';
import { DeviceError, InvalidArgumentError, SessionReleasedError, UnsupportedOpError } from '../runtime/errors.js';
import { bytesPerElement, type DType } from '../runtime/ir/dtype.js';
import type { Dim, Graph } from '../runtime/ir/graph.js';
import { optimize, type OptimizeStats } from '../runtime/ir/passes/index.js';
import { DEFAULT_MAX_ELEMENTS } from '../runtime/ir/tensor.js';
import { acquireDevice } from '../runtime/backends/webgpu/device.js';
import { gpuResources } from '../runtime/backends/webgpu/executor.js';
import { validateFeeds } from './feeds.js';
import { setSessionInternals } from './internal.js';
import { getNodePlatform } from './platform.js';
import { loadModelSource, type ModelSource } from './model-source.js';
import { Tensor } from './tensor.js';

export type Backend = 'cpu' | 'webgpu';

export interface SessionOptions {
  /** Where the model runs. 'cpu' is the reference backend. Default: 'webgpu'. There is never a silent fallback. */
  backend?: Backend;
  /** onnxruntime-web style alternative to `backend`: the first entry decides ('cpu' | 'wasm' → cpu, 'webgpu'). */
  executionProviders?: (string | { name: string })[];
  /** External data files by location, for models loaded from bytes. */
  externalData?: Record<string, Uint8Array>;
  /** Largest element count of any one tensor (allocation-bomb guard). Default 2^30. */
  maxTensorElements?: number;
}

export interface RunOptions {
  /** Names of the outputs to compute; default all. */
  outputs?: readonly string[];
}

/** onnxruntime-web's ValueMetadata shape. */
export interface ValueMetadata {
  name: string;
  isTensor: true;
  type: DType;
  shape: Dim[];
}

export interface NodeReport {
  name: string;
  op: string;
  backend: Backend;
  outputs: { name: string; dtype: DType; shape?: Dim[] }[];
}

export interface SessionReport {
  backend: Backend;
  opset: number;
  producer: string;
  nodes: NodeReport[];
  weightBytes: number;
  optimizations: OptimizeStats;
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
  #released = false;

  private constructor(model: ImportedModel, graph: Graph, stats: OptimizeStats, backend: Backend, maxElements: number) {
    this.#model = model;
    this.#graph = graph;
    this.#stats = stats;
    this.backend = backend;
    this.inputNames = Object.freeze(graph.inputs.map((i) => i.name));
    this.outputNames = Object.freeze(graph.outputs.map((o) => o.name));
    const meta = (v: { name: string; dtype: DType; shape?: Dim[] }): ValueMetadata => ({ name: v.name, isTensor: true, type: v.dtype, shape: [...(v.shape ?? [])] });
    this.inputMetadata = Object.freeze(graph.inputs.map(meta));
    this.outputMetadata = Object.freeze(graph.outputs.map((o) => meta(graph.values[o.name] ?? o)));
    if (backend === 'cpu') this.#cpu = new CpuSession(graph, { maxElements });
    setSessionInternals(this, {
      graph,
      opset: model.opset,
      backend,
      maxElements,
      gpu: async () => gpuResources(await acquireDevice({ gpu: await getNodePlatform()?.getGpu?.() })),
      released: () => this.#released,
    });
  }

  static async create(model: ModelSource, options: SessionOptions = {}): Promise<InferenceSession> {
    const backend = chooseBackend(options);
    const maxElements = options.maxTensorElements ?? DEFAULT_MAX_ELEMENTS;
    const { bytes, externalData } = await loadModelSource(model, options.externalData);
    const imported = await importOnnx(bytes, { externalData, maxTensorElements: maxElements });
    if (backend === 'webgpu') {
      throw new DeviceError('NO_WEBGPU', "EdgeKit's WebGPU backend is not available in this version yet; create the session with { backend: 'cpu' }.");
    }
    const missing = imported.graph.nodes.filter((n) => !CPU_KERNELS[n.op]);
    if (missing.length) {
      throw new UnsupportedOpError(missing.map((n) => ({ op: n.op, domain: n.domain, opset: imported.opset, node: n.name, reason: `no ${backend} kernel` })));
    }
    const { graph, stats } = optimize(imported.graph, maxElements);
    return new InferenceSession(imported, graph, stats, backend, maxElements);
  }

  /**
   * Runs the model. `feeds` maps input names to tensors. The second argument is either onnxruntime-web's fetches
   * (an array of output names) or `{ outputs }`. Returns the requested outputs by name.
   */
  async run(feeds: Record<string, Tensor>, fetches?: readonly string[] | RunOptions): Promise<Record<string, Tensor>> {
    if (this.#released) throw new SessionReleasedError();
    const outputs = Array.isArray(fetches) ? fetches : (fetches as RunOptions | undefined)?.outputs ?? this.outputNames;
    for (const o of outputs) {
      if (!this.outputNames.includes(o)) {
        throw new InvalidArgumentError(`Unknown output '${o}'. This model's outputs are ${this.outputNames.map((n) => `'${n}'`).join(', ')}.`, { output: o });
      }
    }
    const hostFeeds = validateFeeds(this.#graph.inputs, feeds);
    const result = this.#cpu!.run(hostFeeds, outputs);
    const out: Record<string, Tensor> = {};
    for (const o of outputs) out[o] = Tensor.fromHost(result[o]!);
    return out;
  }

  /** Placement, dtypes and sizes of every node, before the first run. */
  report(): SessionReport {
    let weightBytes = 0;
    for (const t of Object.values(this.#graph.initializers)) weightBytes += t.data.length * bytesPerElement(t.dtype);
    return {
      backend: this.backend,
      opset: this.#model.opset,
      producer: this.#model.producer,
      weightBytes,
      optimizations: { ...this.#stats },
      nodes: this.#graph.nodes.map((n) => ({
        name: n.name,
        op: n.op,
        backend: this.backend,
        outputs: n.outputs.filter(Boolean).map((o) => ({ name: o, dtype: this.#graph.values[o]!.dtype, shape: this.#graph.values[o]!.shape })),
      })),
    };
  }

  /** Frees the model's memory; later runs throw SessionReleasedError. Idempotent. */
  async release(): Promise<void> {
    this.#released = true;
    this.#cpu = undefined;
  }
}
