import { InvalidArgumentError, SessionReleasedError } from '../../runtime/errors.js';
import { Scheduler, type Lane, type SchedulerOptions } from '../../runtime/scheduler/index.js';
import { sessionInternals } from '../internal.js';
import type { ModelSource } from '../model-source.js';
import { InferenceSession, type DispatchProfile, type SessionReport } from '../session.js';
import type { Tensor } from '../tensor.js';
import type { SessionValue } from '../values.js';
import { decodeValue, decodeWith, encodeValue, isWireImage, toWireError, type SessionInfo, type WireElement, type WireRunOptions, type WireValue, type WorkerSessionOptions } from './wire.js';
import type { TensorData } from '../tensor.js';
import { releaseProxy, transfer, type Remote } from 'comlink';
import type { LoadProgress } from '../loading/options.js';
import type { ExportOptions } from '../../importers/onnx/index.js';
import type { TaskPriority } from '../../runtime/scheduler/index.js';
import type { EvaluationMetrics, FineTunerOptions, FitResult } from '../fine-tuner/options.js';
import { HostedTuner, type ProgressCallback, type TunerStatus, type WireFitOptions } from './tuner-host.js';
import type { WireTree } from './wire.js';

interface Hosted {
  session: InferenceSession;
  lane: Lane;
  /** Buffers of the model's weights: an output that aliases one is copied, never transferred away. */
  weights: WeakSet<ArrayBufferLike>;
}

/** Runs `fn`; any error leaves as a WireError so the client re-creates its class. */
async function guarded<T>(fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw toWireError(e);
  }
}

/**
 * The worker side: InferenceSessions by id, each with its own lane on one Scheduler, so every session of this
 * worker shares the device one request at a time (by default), by priority and in turn. Exposed with comlink by
 * the worker entry; the client (client.ts) is its only caller.
 */
/**
 * The worker's scheduler picks in a macrotask: a CPU run blocks the worker's thread, and the messages that arrived
 * meanwhile (newer frames, cancellations, other sessions' runs) must all be queued before the next choice.
 */
const afterMessages: (pick: () => void) => void =
  typeof setImmediate === 'function' ? (pick) => void setImmediate(pick) : macrotaskThroughChannel();

/**
 * Browsers have no setImmediate, and nested setTimeout(0) is clamped to 4 ms: a message to ourselves runs after the
 * messages already queued, without the clamp.
 */
function macrotaskThroughChannel(): (pick: () => void) => void {
  const waiting: (() => void)[] = [];
  const channel = new MessageChannel();
  channel.port1.onmessage = () => waiting.shift()?.();
  return (pick) => {
    waiting.push(pick);
    channel.port2.postMessage(0);
  };
}

export class WorkerHost {
  #scheduler = new Scheduler({ dispatch: afterMessages });
  readonly #sessions = new Map<number, Hosted>();
  readonly #requests = new Map<number, AbortController>();
  readonly #tuners = new Map<number, HostedTuner>();
  /** Outputs kept in the worker (GPU tensors), by handle: they feed later runs until the client disposes them. */
  readonly #kept = new Map<number, Tensor>();
  #nextId = 1;

  /** Replaces the scheduler before any session exists (createWorker's options). */
  configure(options: SchedulerOptions): Promise<void> {
    return guarded(() => {
      if (this.#sessions.size) throw new InvalidArgumentError('configure() must come before the first session.');
      this.#scheduler = new Scheduler({ dispatch: afterMessages, ...options });
    });
  }

  createSession(model: ModelSource, options: WorkerSessionOptions = {}, onProgress?: Remote<(p: LoadProgress) => void>): Promise<SessionInfo> {
    return guarded(async () => {
      const id = this.#nextId++;
      // The session's lane is on this worker's scheduler, shared by every session here (sdk/queue.ts). Progress
      // goes back to the caller without waiting for it.
      const progress = onProgress ? (p: LoadProgress) => void Promise.resolve(onProgress(p)).catch(() => undefined) : undefined;
      let session: InferenceSession;
      try {
        session = await InferenceSession.create(model, { ...options, onProgress: progress, scheduler: this.#scheduler });
      } finally {
        onProgress?.[releaseProxy]();
      }
      const lane = sessionInternals(session).lane;
      const weights = new WeakSet<ArrayBufferLike>();
      for (const t of Object.values(sessionInternals(session).graph.initializers)) {
        if (!Array.isArray(t.data)) weights.add((t.data as Exclude<typeof t.data, string[]>).buffer);
      }
      this.#sessions.set(id, { session, lane, weights });
      return {
        id,
        backend: session.backend,
        inputNames: [...session.inputNames],
        outputNames: [...session.outputNames],
        inputMetadata: session.inputMetadata.map((m) => ({ ...m, shape: [...m.shape] })),
        outputMetadata: session.outputMetadata.map((m) => ({ ...m, shape: [...m.shape] })),
      };
    });
  }

  run(id: number, feeds: Record<string, WireValue>, options: WireRunOptions = {}): Promise<Record<string, WireValue>> {
    // Registered before the first await: a cancel() sent right after this call finds it (messages arrive in order).
    const controller = options.requestId === undefined ? undefined : new AbortController();
    if (controller) this.#requests.set(options.requestId!, controller);
    return guarded(async () => {
      try {
        const h = this.#get(id);
        const inputs: Record<string, SessionValue> = {};
        for (const [k, v] of Object.entries(feeds)) inputs[k] = decodeWith(v, (w) => this.#keptTensor(w.handle)) as SessionValue;
        const runOptions = { outputs: options.outputs, preferredOutputLocation: options.preferredOutputLocation };
        let out: Record<string, SessionValue>;
        try {
          out = await h.session.run<Record<string, SessionValue>>(inputs, { ...runOptions, priority: options.priority, signal: controller?.signal });
        } finally {
          // Frames that crossed (transferred or cloned) are this worker's: close them once the run has used them.
          for (const v of Object.values(feeds)) if (isWireImage(v)) (v.image as { close?(): void }).close?.();
        }
        const buffers = new Set<ArrayBuffer>();
        const wire: Record<string, WireValue> = {};
        const keep = (t: Tensor): WireElement => {
          const handle = this.#nextId++;
          this.#kept.set(handle, t);
          return { handle, type: t.type, dims: [...t.dims] };
        };
        for (const [k, v] of Object.entries(out)) {
          // GPU outputs stay here as handles; host ones cross, transferred unless they alias a weight.
          const gpu = (t: Tensor) => t.location === 'gpu-buffer';
          if (v !== null && !Array.isArray(v) && gpu(v)) wire[k] = keep(v);
          else if (Array.isArray(v) && v.some(gpu)) wire[k] = v.map((t, i) => (gpu(t) ? keep(t) : (encodeValue(t, `${k}[${i}]`, buffers, false, (b) => h.weights.has(b)) as WireElement)));
          else wire[k] = encodeValue(v, k, buffers, false, (b) => h.weights.has(b));
        }
        return transfer(wire, [...buffers]);
      } finally {
        if (options.requestId !== undefined) this.#requests.delete(options.requestId);
      }
    });
  }

  /** A kept tensor's data, copied out of the GPU and transferred. */
  readHandle(handle: number): Promise<TensorData> {
    return guarded(async () => {
      const data = await this.#keptTensor(handle).getData();
      return Array.isArray(data) ? data : transfer(data, [(data as Exclude<TensorData, string[]>).buffer as ArrayBuffer]);
    });
  }

  disposeHandle(handle: number): void {
    this.#kept.get(handle)?.dispose();
    this.#kept.delete(handle);
  }

  #keptTensor(handle: number): Tensor {
    const t = this.#kept.get(handle);
    if (!t) throw new InvalidArgumentError('This worker tensor was disposed (or its worker restarted).', { handle });
    return t;
  }

  /** Aborts a run the client gave a signal; unknown ids (already answered) are ignored. */
  cancel(requestId: number): void {
    this.#requests.get(requestId)?.abort();
  }

  report(id: number): Promise<SessionReport> {
    return guarded(() => this.#get(id).session.report());
  }

  /** Queued in the session's lane by InferenceSession.profile itself, like a run (priority, cancellation). */
  profile(id: number, feeds: Record<string, WireValue>, options: Pick<WireRunOptions, 'priority' | 'requestId'> = {}): Promise<DispatchProfile[]> {
    const controller = options.requestId === undefined ? undefined : new AbortController();
    if (controller) this.#requests.set(options.requestId!, controller);
    return guarded(async () => {
      try {
        const h = this.#get(id);
        const inputs: Record<string, Tensor> = {};
        for (const [k, v] of Object.entries(feeds)) inputs[k] = decodeValue(v) as Tensor;
        return await h.session.profile(inputs, { priority: options.priority, signal: controller?.signal });
      } finally {
        if (options.requestId !== undefined) this.#requests.delete(options.requestId);
      }
    });
  }

  /** Waiting runs reject with SessionReleasedError; the model's memory is freed once the running one finished. */
  release(id: number): Promise<void> {
    return guarded(async () => {
      const h = this.#sessions.get(id);
      if (!h) return;
      this.#sessions.delete(id);
      await h.lane.dispose();
      await h.session.release();
    });
  }

  /** A FineTuner on a hosted session; its work queues on this worker's scheduler (FineTuner). Returns the tuner's id. */
  createTuner(sessionId: number, options: FineTunerOptions): Promise<number> {
    return guarded(async () => {
      const h = this.#get(sessionId);
      const tuner = await HostedTuner.create(h.session, options);
      const id = this.#nextId++;
      this.#tuners.set(id, tuner);
      return id;
    });
  }

  /** fit() one step at a time at 'background' priority (by default): the session's other requests run between steps. */
  fit(tunerId: number, data: WireTree, o: WireFitOptions, onProgress?: ProgressCallback): Promise<FitResult> {
    return this.#withRequest(o.requestId, (signal) => this.#tuner(tunerId).fit(data, o, onProgress, signal));
  }

  evaluate(tunerId: number, data: WireTree, batchSize?: number, priority?: TaskPriority, requestId?: number): Promise<EvaluationMetrics> {
    return this.#withRequest(requestId, (signal) => this.#tuner(tunerId).evaluate(data, batchSize, priority, signal));
  }

  predict(tunerId: number, inputs: WireTree, batchSize?: number, priority?: TaskPriority, requestId?: number): Promise<Record<string, WireValue>> {
    return this.#withRequest(requestId, (signal) => this.#tuner(tunerId).predict(inputs, batchSize, priority, signal));
  }

  /** A call the caller can cancel by its request id (cancel()): the id's AbortController is registered before any await. */
  #withRequest<T>(requestId: number | undefined, f: (signal: AbortSignal | undefined) => Promise<T>): Promise<T> {
    const controller = requestId === undefined ? undefined : new AbortController();
    if (controller) this.#requests.set(requestId!, controller);
    return guarded(async () => {
      try {
        return await f(controller?.signal);
      } finally {
        if (requestId !== undefined) this.#requests.delete(requestId);
      }
    });
  }

  exportOnnx(tunerId: number, options: ExportOptions = {}): Promise<Uint8Array> {
    return guarded(() => this.#tuner(tunerId).exportOnnx(options));
  }

  tunerStatus(tunerId: number): Promise<TunerStatus> {
    return guarded(async () => this.#tuner(tunerId).status());
  }

  getWeights(tunerId: number): Promise<Record<string, WireValue>> {
    return guarded(() => this.#tuner(tunerId).getWeights());
  }

  setWeights(tunerId: number, weights: WireTree): Promise<TunerStatus> {
    return guarded(() => this.#tuner(tunerId).setWeights(weights));
  }

  saveCheckpoint(tunerId: number): Promise<Uint8Array> {
    return guarded(() => this.#tuner(tunerId).saveCheckpoint());
  }

  loadCheckpoint(tunerId: number, bytes: Uint8Array): Promise<TunerStatus> {
    return guarded(() => this.#tuner(tunerId).loadCheckpoint(bytes));
  }

  restartEpoch(tunerId: number): Promise<TunerStatus> {
    return guarded(() => this.#tuner(tunerId).restartEpoch());
  }

  disposeTuner(tunerId: number): Promise<void> {
    return guarded(async () => {
      const t = this.#tuners.get(tunerId);
      this.#tuners.delete(tunerId);
      t?.dispose();
    });
  }

  #tuner(id: number): HostedTuner {
    const t = this.#tuners.get(id);
    if (!t) throw new InvalidArgumentError('This FineTuner was disposed (or its worker restarted); create a new one.');
    return t;
  }

  #get(id: number): Hosted {
    const h = this.#sessions.get(id);
    if (!h) throw new SessionReleasedError();
    return h;
  }
}
