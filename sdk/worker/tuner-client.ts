import { proxy } from 'comlink';
import { CancelledError, InvalidArgumentError } from '../../runtime/errors.js';
import type { TaskPriority } from '../../runtime/scheduler/index.js';
import type { ExportOptions } from '../../importers/onnx/index.js';
import type { Dataset, EvaluationMetrics, ExampleInputs, FineTunerOptions, FitOptions, FitProgress, FitResult } from '../fine-tuner/options.js';
import type { Tensor } from '../tensor.js';
import { workerSessionLink, type WorkerSession } from './client.js';
import { call, type Connection } from './connection.js';
import { decodeValue, encodeTree } from './wire.js';

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

  private constructor(c: Connection, id: number) {
    this.#c = c;
    this.#id = id;
  }

  static async create(session: WorkerSession, options: FineTunerOptions): Promise<WorkerFineTuner> {
    const { c, id } = workerSessionLink(session);
    const tunerId = await call(c, () => c.remote.createTuner(id, options));
    return new WorkerFineTuner(c, tunerId);
  }

  async fit(data: Dataset, options: WorkerFitOptions = {}): Promise<FitResult> {
    this.#check();
    if ('lrSchedule' in options && (options as FitOptions).lrSchedule !== undefined) {
      throw new InvalidArgumentError("lrSchedule is a function and cannot run in the worker; pass the optimizer's lr, or fine-tune on the main thread.");
    }
    const { onProgress, signal, priority, ...rest } = options;
    if (signal?.aborted) throw new CancelledError('aborted', { running: false }, { cause: signal.reason });
    const buffers = new Set<ArrayBuffer>();
    const wireData = encodeTree(data, 'data', buffers, true);
    const wireOptions = encodeTree(rest, 'options', buffers, true);
    const requestId = signal ? this.#c.nextRequest() : undefined;
    const onAbort = () => void this.#c.remote.cancel(requestId!).catch(() => undefined);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await call(this.#c, () =>
        this.#c.remote.fit(this.#id, wireData, { options: wireOptions, priority, requestId }, onProgress ? proxy(async (e: FitProgress) => void (await onProgress(e))) : undefined),
      );
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async evaluate(data: Dataset, options: { batchSize?: number; priority?: TaskPriority } = {}): Promise<EvaluationMetrics> {
    this.#check();
    const wire = encodeTree(data, 'data', new Set(), true);
    return call(this.#c, () => this.#c.remote.evaluate(this.#id, wire, options.batchSize, options.priority));
  }

  async predict(inputs: ExampleInputs, options: { batchSize?: number; priority?: TaskPriority } = {}): Promise<Record<string, Tensor>> {
    this.#check();
    const wire = encodeTree(inputs, 'inputs', new Set(), true);
    const out = await call(this.#c, () => this.#c.remote.predict(this.#id, wire, options.batchSize, options.priority));
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
