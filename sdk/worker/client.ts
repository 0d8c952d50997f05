import { proxy, transfer, wrap, type Endpoint } from 'comlink';
import type { LoadProgress } from '../loading/options.js';
import { CancelledError, InvalidArgumentError, SessionReleasedError } from '../../runtime/errors.js';
import type { SchedulerOptions, TaskPriority } from '../../runtime/scheduler/index.js';
import type { ModelSource } from '../model-source.js';
import type { Backend, DispatchProfile, RunOptions, SessionReport, ValueMetadata } from '../session.js';
import { Tensor, type TensorData } from '../tensor.js';
import { SessionStream, type StreamHost, type StreamOptions } from '../stream.js';
import type { SessionValue } from '../values.js';
import { call, type Connection } from './connection.js';
import { RemoteTensor, type WorkerValue } from './remote-tensor.js';
import { nodeEndpoint, type NodeMessagePort } from './node-endpoint.js';
import type { WorkerHost } from './host.js';
import { decodeWith, encodeImage, encodeValue, type SessionInfo, type WireElement, type WireValue, type WorkerSessionOptions } from './wire.js';

export { call, type Connection } from './connection.js';

export interface WorkerRunOptions extends RunOptions {
  /** This run's priority; default the session's ('user-visible' unless createSession said otherwise). */
  priority?: TaskPriority;
  /** Aborting rejects the run with CancelledError (a running one finishes in the worker; its result is dropped). */
  signal?: AbortSignal;
  /**
   * Inputs are transferred by default: each fed tensor's ArrayBuffer moves to the worker and is detached here (the
   * Tensor's data becomes empty; a buffer shared with other arrays is detached for them too). Image tensors
   * (Tensor.fromImage) move their ImageBitmap or VideoFrame to the worker, which closes it once converted: the
   * caller's bitmap is detached (width 0) and its frame closed. `copy: true` sends copies (clones of bitmaps and
   * frames) and leaves the caller's tensors and frames intact, still the caller's to close.
   */
  copy?: boolean;
}

/** A browser Worker, a MessagePort, or a Node worker_threads Worker (or anything with their messaging shape). */
export type WorkerLike = Endpoint | (NodeMessagePort & { terminate?(): unknown; once?(event: 'exit', l: () => void): unknown });

export interface CreateWorkerOptions extends Pick<SchedulerOptions, 'concurrency' | 'maxPending' | 'agingMs'> {
  /** A worker already started on EdgeKit's worker entry. Default: start one on `url`. */
  worker?: WorkerLike;
  /** The worker entry to start. Default: `worker.js` beside the SDK's build (dist/node/ or dist/browser/). */
  url?: string | URL;
}

/** @internal The connection and id behind a WorkerSession (for WorkerFineTuner). */
const links = new WeakMap<object, { c: Connection; id: number; released: () => boolean }>();

export function workerSessionLink(session: unknown): { c: Connection; id: number } {
  const link = typeof session === 'object' && session !== null ? links.get(session) : undefined;
  if (!link) throw new InvalidArgumentError('Expected a WorkerSession (from EdgeKitWorker.createSession).');
  if (link.released()) throw new SessionReleasedError();
  return link;
}

/**
 * An InferenceSession that lives in a worker: the same members (inputNames, inputMetadata, run, profile, release),
 * except that report() returns a Promise. Runs queue in the worker's scheduler with the other sessions there.
 * Outputs are CPU tensors whose buffers were transferred from the worker, or RemoteTensor handles for outputs kept
 * on the worker's GPU (preferredOutputLocation 'gpu-buffer').
 */
export class WorkerSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata: readonly ValueMetadata[];
  readonly outputMetadata: readonly ValueMetadata[];
  readonly backend: Backend;
  readonly #c: Connection;
  readonly #id: number;
  #released = false;

  /** @internal made by EdgeKitWorker.createSession */
  constructor(c: Connection, info: SessionInfo) {
    this.#c = c;
    this.#id = info.id;
    this.backend = info.backend;
    this.inputNames = Object.freeze(info.inputNames);
    this.outputNames = Object.freeze(info.outputNames);
    this.inputMetadata = Object.freeze(info.inputMetadata);
    this.outputMetadata = Object.freeze(info.outputMetadata);
    links.set(this, { c, id: info.id, released: () => this.#released });
  }

  /**
   * As InferenceSession.run; fed tensors are transferred (detached here) unless `{ copy: true }`. Outputs asked
   * for with preferredOutputLocation 'gpu-buffer' stay in the worker and come back as RemoteTensor handles, which
   * feed later runs on this worker without crossing; dispose them when done.
   */
  async run<O extends Record<string, WorkerValue> = Record<string, Tensor>>(feeds: Record<string, WorkerValue>, fetches?: readonly string[] | WorkerRunOptions): Promise<O> {
    if (this.#released) throw new SessionReleasedError();
    const opts: WorkerRunOptions = Array.isArray(fetches) ? { outputs: fetches } : ((fetches ?? {}) as WorkerRunOptions);
    const { signal } = opts;
    if (signal?.aborted) throw new CancelledError('aborted', { running: false }, { cause: signal.reason });
    const buffers = new Set<Transferable>();
    const wire: Record<string, WireValue> = {};
    const copy = opts.copy ?? false;
    const element = (t: Tensor | RemoteTensor, name: string): WireElement =>
      t instanceof RemoteTensor
        ? { handle: t.handleFor(this.#c, name), type: t.type, dims: [...t.dims] }
        : t.location === 'image'
          ? encodeImage(t, name, buffers, copy)
          : (encodeValue(t, name, buffers as Set<ArrayBuffer>, copy) as WireElement);
    // Encode everything before sending: a bad feed must not leave some buffers detached.
    for (const [k, v] of Object.entries(feeds)) {
      if (v instanceof RemoteTensor || (v instanceof Tensor && v.location === 'image')) wire[k] = element(v, k);
      else if (Array.isArray(v)) wire[k] = v.map((t, i) => element(t, `${k}[${i}]`));
      else wire[k] = encodeValue(v, k, buffers as Set<ArrayBuffer>, copy);
    }
    const requestId = signal ? this.#c.nextRequest() : undefined;
    const onAbort = () => void this.#c.remote.cancel(requestId!).catch(() => undefined);
    signal?.addEventListener('abort', onAbort, { once: true });
    const location = opts.preferredOutputLocation;
    try {
      const out = await call(this.#c, () =>
        this.#c.remote.run(this.#id, transfer(wire, [...buffers]), {
          outputs: opts.outputs ? [...opts.outputs] : undefined,
          preferredOutputLocation: typeof location === 'object' && location !== null ? { ...location } : location,
          priority: opts.priority,
          requestId,
        }),
      );
      const result: Record<string, WorkerValue> = {};
      for (const [k, v] of Object.entries(out)) result[k] = decodeWith(v, (h) => new RemoteTensor(this.#c, h.handle, h.type, h.dims)) as WorkerValue;
      return result as O;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * As InferenceSession.createStream: a stateful model run chunk by chunk (sdk/stream.ts). On WebGPU the state stays
   * on the worker's GPU between chunks (as RemoteTensors); on the CPU it crosses with each chunk. State fed to a
   * chunk is copied, so a failed chunk leaves the held state usable; the chunk's other feeds are transferred.
   */
  createStream(options: StreamOptions): SessionStream {
    if (this.#released) throw new SessionReleasedError();
    const stateInputs = new Set(Object.keys(options?.state ?? {}));
    const host: StreamHost = {
      backend: this.backend,
      inputMetadata: this.inputMetadata,
      outputMetadata: this.outputMetadata,
      run: (feeds, o) => {
        const sent: Record<string, WorkerValue> = {};
        for (const [k, t] of Object.entries(feeds as Record<string, Tensor | RemoteTensor>)) {
          sent[k] = stateInputs.has(k) && t instanceof Tensor && t.location === 'cpu' ? new Tensor(t.type, copyOf(t.data), t.dims) : t;
        }
        return this.run(sent, o);
      },
    };
    return new SessionStream(host, options);
  }

  /** As InferenceSession.report, but asynchronous (it is computed in the worker). */
  async report(): Promise<SessionReport> {
    if (this.#released) throw new SessionReleasedError();
    return call(this.#c, () => this.#c.remote.report(this.#id));
  }

  /** As InferenceSession.profile: queued in the worker like a run, with `priority` and `signal`. Feeds are copied. */
  async profile(feeds: Record<string, Tensor>, options: Pick<RunOptions, 'priority' | 'signal'> = {}): Promise<DispatchProfile[]> {
    if (this.#released) throw new SessionReleasedError();
    const { signal } = options;
    if (signal?.aborted) throw new CancelledError('aborted', { running: false }, { cause: signal.reason });
    const buffers = new Set<ArrayBuffer>();
    const wire: Record<string, WireValue> = {};
    for (const [k, v] of Object.entries(feeds)) wire[k] = encodeValue(v, k, buffers, true);
    const requestId = signal ? this.#c.nextRequest() : undefined;
    const onAbort = () => void this.#c.remote.cancel(requestId!).catch(() => undefined);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await call(this.#c, () => this.#c.remote.profile(this.#id, transfer(wire, [...buffers]), { priority: options.priority, requestId }));
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Frees the model in the worker; runs still waiting reject with SessionReleasedError. Idempotent. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    await call(this.#c, () => this.#c.remote.release(this.#id)).catch((e: unknown) => {
      if (!(e instanceof SessionReleasedError)) throw e;
    });
  }
}

function copyOf(d: TensorData): TensorData {
  return (Array.isArray(d) ? [...d] : (d as Exclude<TensorData, string[]>).slice()) as TensorData;
}

/** A worker hosting sessions behind one scheduler (one device shared by its models). */
export class EdgeKitWorker {
  readonly #c: Connection;
  readonly #terminate: () => Promise<void>;

  /** @internal made by createWorker */
  constructor(c: Connection, terminate: () => Promise<void>) {
    this.#c = c;
    this.#terminate = terminate;
  }

  /**
   * Loads a model in the worker. Bytes are transferred (the caller's ArrayBuffer is detached); paths and URLs are
   * read by the worker (fetched and cached there, with `integrity` checked there). `priority`, `queue` ('fifo' |
   * 'latest-only') and `maxPending` set this session's queue. `onProgress` is called here, on the caller's thread.
   */
  async createSession(model: ModelSource, options: WorkerSessionOptions = {}): Promise<WorkerSession> {
    const src = model instanceof URL ? model.href : model;
    const buffers = src instanceof Uint8Array ? [src.buffer as ArrayBuffer] : src instanceof ArrayBuffer ? [src] : [];
    // A function cannot be cloned: onProgress crosses as a comlink proxy the worker calls back through.
    const { onProgress, ...rest } = options;
    if (onProgress !== undefined && typeof onProgress !== 'function') throw new InvalidArgumentError('onProgress must be a function.');
    const progress = onProgress ? proxy((p: LoadProgress) => onProgress(p)) : undefined;
    const info = await call(this.#c, () => this.#c.remote.createSession(buffers.length ? transfer(src, buffers) : src, rest, progress as never));
    return new WorkerSession(this.#c, info);
  }

  /** Stops the worker; calls still pending reject with SessionReleasedError. */
  terminate(): Promise<void> {
    return this.#terminate();
  }
}

function isNodePort(w: WorkerLike): w is NodeMessagePort {
  return typeof (w as NodeMessagePort).on === 'function' && typeof (w as Endpoint).addEventListener !== 'function';
}

/**
 * Starts a worker (a worker_threads Worker in Node, a module Worker in browsers) that hosts sessions behind one
 * scheduler; `concurrency`, `maxPending` and `agingMs` configure it (runtime/scheduler). In Node a live worker keeps
 * the process running: call terminate() when done.
 */
export async function createWorker(options: CreateWorkerOptions = {}): Promise<EdgeKitWorker> {
  const { worker: given, url, concurrency, maxPending, agingMs } = options;
  const schedulerOptions = { concurrency, maxPending, agingMs };
  let worker = given;
  if (!worker) {
    const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';
    const entry = url ?? new URL('./worker.js', import.meta.url);
    if (isNode) {
      // Not a static import: the browser bundle must not contain node:* modules.
      const specifier = 'node:worker_threads';
      const wt = (await import(/* @vite-ignore */ specifier)) as typeof import('node:worker_threads');
      worker = new wt.Worker(entry instanceof URL ? entry : new URL(entry, `file://${process.cwd()}/`)) as unknown as WorkerLike;
    } else {
      worker = new Worker(entry, { type: 'module' }) as unknown as WorkerLike;
    }
  }
  const endpoint = isNodePort(worker) ? nodeEndpoint(worker) : worker;
  let markGone!: (e: unknown) => void;
  const gone = new Promise<never>((_, reject) => (markGone = reject));
  gone.catch(() => undefined);
  const w = worker as { once?(event: string, l: (...a: unknown[]) => void): unknown; addEventListener?(t: string, l: (e: unknown) => void): unknown; terminate?(): unknown };
  // A worker that crashed (its entry failed to load, an uncaught error) rejects every call with that error; one
  // that exited or was terminated, with SessionReleasedError: its sessions are gone.
  if (typeof w.once === 'function') {
    w.once('error', (e) => markGone(e));
    w.once('exit', () => markGone(new SessionReleasedError()));
  } else if (typeof w.addEventListener === 'function') {
    w.addEventListener('error', (e) => markGone(new Error(`The EdgeKit worker failed: ${(e as { message?: string }).message ?? 'unknown error'}`)));
  }
  let request = 0;
  const c: Connection = { remote: wrap<WorkerHost>(endpoint), gone, nextRequest: () => ++request };
  const terminate = async () => {
    markGone(new SessionReleasedError());
    await w.terminate?.();
  };
  try {
    await call(c, () => c.remote.configure(schedulerOptions));
  } catch (e) {
    await terminate();
    throw e;
  }
  return new EdgeKitWorker(c, terminate);
}
