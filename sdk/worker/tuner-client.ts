import { proxy, transfer } from 'comlink';
import { CancelledError, InvalidArgumentError } from '../../runtime/errors.js';
import type { TaskPriority } from '../../runtime/scheduler/index.js';
import type { ExportOptions } from '../../importers/onnx/index.js';
import type { Dataset, EvaluationMetrics, ExampleInputs, FineTunerOptions, FitOptions, FitProgress, FitResult } from '../fine-tuner/options.js';
import type { Tensor } from '../tensor.js';
import { workerSessionLink, type WorkerSession } from './client.js';
import { call, type Connection } from './connection.js';
import type { TunerStatus } from './tuner-host.js';
import { decodeValue, encodeTree, type WireTree } from './wire.js';

/** `w` sent with `buffers` (fresh copies made for the wire) transferred rather than cloned again. */
function moved<T>(w: T, buffers: Set<ArrayBuffer>): T {
  return typeof w === 'object' && w !== null && buffers.size ? transfer(w, [...buffers]) : w;
}

export interface WorkerFitOptions extends Omit<FitOptions, 'lrSchedule'> {
  /** Default 'background': the worker's other requests (this session's runs too) go between two steps. */
  priority?: TaskPriority;
  /** Stops before the next step; fit rejects with CancelledError. */
  signal?: AbortSignal;
}

/**
 * A FineTuner whose model lives in a worker (FineTuner's methods, asynchronous). fit() runs as one scheduled unit
 * per step (and per epoch's validation) at 'background' priority, so inference on the same worker is served
 * between two steps. Datasets are copied to the worker (they are usually reused); `lrSchedule`, a function, cannot
 * cross the boundary and is refused.
 */
export class WorkerFineTuner {
  readonly #c: Connection;
  readonly #id: number;
  #disposed = false;
  #status: TunerStatus;
  /** The trainable weights' names, as FineTuner.trainable. */
  readonly trainable: readonly string[];

  private constructor(c: Connection, id: number, status: TunerStatus) {
    this.#c = c;
    this.#id = id;
    this.#status = status;
    this.trainable = Object.freeze([...status.trainable]);
  }

  static async create(session: WorkerSession, options: FineTunerOptions): Promise<WorkerFineTuner> {
    const { c, id } = workerSessionLink(session);
    const tunerId = await call(c, () => c.remote.createTuner(id, options));
    return new WorkerFineTuner(c, tunerId, await call(c, () => c.remote.tunerStatus(tunerId)));
  }

  /**
   * FineTuner's counters. They live in the worker; this side keeps the values sent back after each fit,
   * setWeights, loadCheckpoint and restartEpoch (fit's progress events carry the step as it goes).
   */
  get stepCount(): number {
    return this.#status.stepCount;
  }

  get epochCount(): number {
    return this.#status.epochCount;
  }

  get epochPosition(): { batch: number; batches: number } | undefined {
    const p = this.#status.epochPosition;
    return p ? { ...p } : undefined;
  }

  async fit(data: Dataset, options: WorkerFitOptions = {}): Promise<FitResult> {
    this.#check();
    if ('lrSchedule' in options && (options as FitOptions).lrSchedule !== undefined) {
      throw new InvalidArgumentError("lrSchedule is a function and cannot run in the worker; pass the optimizer's lr, or fine-tune on the main thread.");
    }
    const { onProgress, signal, priority, ...rest } = options;
    // The dataset is copied once here and the copies are transferred, not cloned a second time by postMessage; a
    // validation set that is the training set itself (the same object) crosses once (structured clone keeps the
    // shared reference). Both matter on the caller's thread: a 30-image 64x64 set took 35 ms of a page's main
    // thread to send when it was copied, cloned, and sent twice (tests/browser/transfer-demo.test.ts).
    const buffers = new Set<ArrayBuffer>();
    const wireData = encodeTree(data, 'data', buffers, true);
    const { validation, ...others } = rest;
    const wireOptions = encodeTree(others, 'options', buffers, true) as { [k: string]: WireTree };
    if (validation !== undefined) wireOptions.validation = validation === data ? wireData : encodeTree(validation, 'options.validation', buffers, true);
    try {
      return await this.#cancellable(signal, (requestId) => call(this.#c, () =>
        this.#c.remote.fit(this.#id, moved(wireData, buffers), { options: wireOptions, priority, requestId }, onProgress ? proxy(async (e: FitProgress) => void (await onProgress(e))) : undefined),
      ));
    } finally {
      // Also after a cancelled or failed fit: the steps it applied count.
      await this.#refresh();
    }
  }

  /**
   * Runs a worker call that `signal` can cancel: the call carries a request id, and an abort sends cancel(id), which
   * aborts the host's AbortController for it (sdk/worker/host.ts), so the tuner's turn rejects with CancelledError.
   */
  async #cancellable<T>(signal: AbortSignal | undefined, start: (requestId: number | undefined) => Promise<T>): Promise<T> {
    if (signal?.aborted) throw new CancelledError('aborted', { running: false }, { cause: signal.reason });
    const requestId = signal ? this.#c.nextRequest() : undefined;
    const onAbort = () => void this.#c.remote.cancel(requestId!).catch(() => undefined);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await start(requestId);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Host copies of the trainable weights (transferred from the worker). */
  async getWeights(): Promise<Record<string, Tensor>> {
    this.#check();
    const out = await call(this.#c, () => this.#c.remote.getWeights(this.#id));
    const result: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(out)) result[k] = decodeValue(v) as Tensor;
    return result;
  }

  /** As FineTuner.setWeights; the tensors are copied to the worker (the caller's stay usable). */
  async setWeights(weights: Record<string, Tensor>): Promise<void> {
    this.#check();
    const buffers = new Set<ArrayBuffer>();
    const wire = encodeTree(weights, 'weights', buffers, true);
    this.#status = await call(this.#c, () => this.#c.remote.setWeights(this.#id, moved(wire, buffers)));
  }

  /** As FineTuner.saveCheckpoint: bytes that loadCheckpoint (here or on a main-thread FineTuner) resumes from. */
  async saveCheckpoint(): Promise<Uint8Array> {
    this.#check();
    return call(this.#c, () => this.#c.remote.saveCheckpoint(this.#id));
  }

  /** As FineTuner.loadCheckpoint. The bytes are copied (the caller's array stays usable). */
  async loadCheckpoint(bytes: Uint8Array): Promise<void> {
    this.#check();
    if (!(bytes instanceof Uint8Array)) throw new InvalidArgumentError('loadCheckpoint expects the Uint8Array saveCheckpoint returned.');
    this.#status = await call(this.#c, () => this.#c.remote.loadCheckpoint(this.#id, bytes.slice()));
  }

  /** As FineTuner.restartEpoch: the next fit() starts a fresh epoch instead of finishing an interrupted one. */
  async restartEpoch(): Promise<void> {
    this.#check();
    this.#status = await call(this.#c, () => this.#c.remote.restartEpoch(this.#id));
  }

  async #refresh(): Promise<void> {
    if (this.#disposed) return;
    try {
      this.#status = await call(this.#c, () => this.#c.remote.tunerStatus(this.#id));
    } catch {
      // The worker is gone or the tuner disposed: the caller sees that error from the call that failed.
    }
  }

  /** As FineTuner.evaluate; `signal` cancels it while it waits for the device (CancelledError), as on the main thread. */
  async evaluate(data: Dataset, options: { batchSize?: number; priority?: TaskPriority; signal?: AbortSignal } = {}): Promise<EvaluationMetrics> {
    this.#check();
    const buffers = new Set<ArrayBuffer>();
    const wire = encodeTree(data, 'data', buffers, true);
    return this.#cancellable(options.signal, (requestId) =>
      call(this.#c, () => this.#c.remote.evaluate(this.#id, moved(wire, buffers), options.batchSize, options.priority, requestId)));
  }

  /** As FineTuner.predict; `signal` as in evaluate. */
  async predict(inputs: ExampleInputs, options: { batchSize?: number; priority?: TaskPriority; signal?: AbortSignal } = {}): Promise<Record<string, Tensor>> {
    this.#check();
    const buffers = new Set<ArrayBuffer>();
    const wire = encodeTree(inputs, 'inputs', buffers, true);
    const out = await this.#cancellable(options.signal, (requestId) =>
      call(this.#c, () => this.#c.remote.predict(this.#id, moved(wire, buffers), options.batchSize, options.priority, requestId)));
    const result: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(out)) result[k] = decodeValue(v) as Tensor;
    return result;
  }

  async exportOnnx(options: ExportOptions = {}): Promise<Uint8Array> {
    this.#check();
    return call(this.#c, () => this.#c.remote.exportOnnx(this.#id, options));
  }

  /** Frees the tuner in the worker (after its running or waiting work). Idempotent. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    await call(this.#c, () => this.#c.remote.disposeTuner(this.#id));
  }

  #check(): void {
    if (this.#disposed) throw new InvalidArgumentError('This FineTuner was disposed; create a new one.');
  }
}
