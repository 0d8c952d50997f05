import { CancelledError, InvalidArgumentError, SessionReleasedError } from '../errors.js';
import { checkPriority, priorityRank, type TaskPriority } from './priority.js';

export type LaneMode = 'fifo' | 'latest-only';

export interface LaneOptions {
  /** Shown in errors and passed to tasks. Default 'lane-<id>'. */
  name?: string;
  /** Priority of this lane's requests unless a request names its own. Default 'user-visible'. */
  priority?: TaskPriority;
  /**
   * 'fifo' (default): every request runs, in order. 'latest-only', for streams of frames: a new request replaces the
   * one still waiting, which rejects with CancelledError (reason 'superseded'); the running one is not affected.
   */
  mode?: LaneMode;
  /** Most requests waiting in this lane (the scheduler's maxPending bounds all lanes together). Default: no own bound. */
  maxPending?: number;
}

/** What a task is told when it starts. */
export interface RunInfo {
  lane: string;
  /** The priority it was submitted at. */
  priority: TaskPriority;
  /** Milliseconds between submit and start, on the scheduler's clock. */
  waitedMs: number;
  /** The request's signal: a long task may check it and stop early; its result is discarded anyway. */
  signal: AbortSignal | undefined;
}

export interface SubmitOptions<T> {
  priority?: TaskPriority;
  /** Aborting rejects the request with CancelledError: at once if it waits; if it runs, it finishes and the result is discarded. */
  signal?: AbortSignal;
  /** Receives a result nobody will see (cancelled while running, or the lane was disposed): free it here (tensors). */
  onDiscard?: (result: T) => void;
}

export interface StepOptions<Y> {
  /** Default 'background': interactive requests run between two steps. */
  priority?: TaskPriority;
  /** Aborting stops before the next step; the job rejects with CancelledError and the iterator is closed (return()). */
  signal?: AbortSignal;
  /** Called with each step's yielded value (progress), in order. A throw stops the job with that error. */
  onStep?: (value: Y, index: number) => void;
}

export type Steps<Y, R> = Iterator<Y, R, undefined> | AsyncIterator<Y, R, undefined> | Iterable<Y> | AsyncIterable<Y>;

/** @internal one waiting or running request, as the scheduler sees it. */
export interface QueuedRequest {
  readonly rank: number;
  readonly enqueuedAt: number;
  readonly signal: AbortSignal | undefined;
  task(info: RunInfo): unknown;
  /** Rejects the caller while the request waits (superseded, disposed). */
  fail(error: unknown): void;
  /** The task settled: hand the outcome to the caller, or discard it. */
  complete(ok: boolean, value: unknown, laneDisposed: boolean): void;
}

/** @internal a lane's queue, owned by its Scheduler. */
export interface LaneState {
  readonly id: number;
  readonly name: string;
  readonly rank: number;
  readonly latestOnly: boolean;
  readonly maxPending: number;
  readonly queue: QueuedRequest[];
  running: QueuedRequest | undefined;
  disposed: boolean;
  disposing: Promise<void> | undefined;
  /** Resolved when the running request finishes (dispose waits for it). */
  readonly drained: (() => void)[];
}

/** @internal what a Lane needs from its Scheduler. */
export interface LaneHost {
  enqueue(lane: LaneState, req: QueuedRequest, bypassBound: boolean): void;
  dequeue(lane: LaneState, req: QueuedRequest): boolean;
  dispose(lane: LaneState): Promise<void>;
  now(): number;
}

/** @internal */
export function createLaneState(id: number, o: LaneOptions): LaneState {
  const mode = o.mode ?? 'fifo';
  if (mode !== 'fifo' && mode !== 'latest-only') throw new InvalidArgumentError(`mode must be 'fifo' or 'latest-only', not ${JSON.stringify(mode)}.`);
  const maxPending = o.maxPending ?? Infinity;
  if (maxPending !== Infinity && !(Number.isInteger(maxPending) && maxPending >= 1)) {
    throw new InvalidArgumentError(`maxPending must be a positive integer, not ${String(maxPending)}.`);
  }
  const rank = priorityRank(checkPriority(o.priority ?? 'user-visible'));
  return { id, name: o.name ?? `lane-${id}`, rank, latestOnly: mode === 'latest-only', maxPending, queue: [], running: undefined, disposed: false, disposing: undefined, drained: [] };
}

/**
 * A queue on a Scheduler, usually one per model (session). Requests run one at a time per lane, in order; the
 * scheduler interleaves lanes by priority and round robin. After dispose() nothing of this lane runs.
 */
export class Lane {
  readonly #host: LaneHost;
  readonly #state: LaneState;

  /** @internal made by Scheduler.lane() */
  constructor(host: LaneHost, state: LaneState) {
    this.#host = host;
    this.#state = state;
  }

  get name(): string {
    return this.#state.name;
  }
  get mode(): LaneMode {
    return this.#state.latestOnly ? 'latest-only' : 'fifo';
  }
  /** Requests waiting in this lane. */
  get pending(): number {
    return this.#state.queue.length;
  }
  get busy(): boolean {
    return this.#state.running !== undefined;
  }
  get disposed(): boolean {
    return this.#state.disposed;
  }

  /**
   * Queues `task` and resolves with its result. Rejects with SessionReleasedError on a disposed lane, QueueFullError
   * when a bound is reached, CancelledError when the signal fires or a newer request supersedes it (latest-only),
   * and with the task's own error when it throws.
   */
  submit<T>(task: (info: RunInfo) => T | PromiseLike<T>, options: SubmitOptions<T> = {}): Promise<T> {
    return this.#submit(task, options, false);
  }

  /**
   * Runs a job made of steps, e.g. a training loop written as a generator: each `next()` call of the iterator is one
   * scheduled request (at 'background' priority by default), so other requests run between two steps. Resolves
   * with the iterator's return value. The first step obeys the queue bounds; later ones do not (the job holds one
   * place). If the lane is disposed, the iterator is not closed: closing would run its code on a disposed session.
   */
  async runSteps<Y, R = void>(steps: Steps<Y, R>, options: StepOptions<Y> = {}): Promise<R> {
    if (this.#state.latestOnly) throw new InvalidArgumentError("runSteps needs a 'fifo' lane: a 'latest-only' lane would drop steps.");
    const iter = toIterator(steps);
    const priority = options.priority ?? 'background';
    const close = () => {
      if (this.#state.disposed || !iter.return) return;
      this.#submit(() => iter.return!(), { priority }, true).catch(() => undefined);
    };
    for (let index = 0; ; index++) {
      let r: IteratorResult<Y, R>;
      try {
        r = await this.#submit(() => iter.next(), { priority, signal: options.signal }, index > 0);
      } catch (e) {
        // A throwing next() has finished the iterator already; a cancelled one is closed so its `finally` runs.
        if (e instanceof CancelledError) close();
        throw e;
      }
      if (r.done) return r.value;
      try {
        options.onStep?.(r.value, index);
      } catch (e) {
        close();
        throw e;
      }
    }
  }

  /**
   * Rejects every waiting request with SessionReleasedError, refuses new ones, and resolves once the running one
   * (if any) has finished; its result is discarded. Release the model's memory after this resolves. Idempotent.
   */
  dispose(): Promise<void> {
    return this.#host.dispose(this.#state);
  }

  #submit<T>(task: (info: RunInfo) => T | PromiseLike<T>, options: SubmitOptions<T>, bypassBound: boolean): Promise<T> {
    const st = this.#state;
    const host = this.#host;
    if (st.disposed) return Promise.reject(new SessionReleasedError());
    let rank: number;
    try {
      rank = options.priority === undefined ? st.rank : priorityRank(checkPriority(options.priority));
    } catch (e) {
      return Promise.reject(e);
    }
    const { signal, onDiscard } = options;
    if (signal?.aborted) return Promise.reject(new CancelledError('aborted', { lane: st.name, running: false }, { cause: signal.reason }));
    const discard = (v: unknown) => {
      try {
        onDiscard?.(v as T);
      } catch {
        // The caller's clean-up failing must not break the queue; there is nobody left to tell.
      }
    };
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const settle = () => {
        settled = true;
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        if (settled) return;
        const running = st.running === req;
        if (!running && !host.dequeue(st, req)) return;
        settle();
        reject(new CancelledError('aborted', { lane: st.name, running }, { cause: signal!.reason }));
      };
      const req: QueuedRequest = {
        rank,
        enqueuedAt: host.now(),
        signal,
        task,
        fail(error) {
          if (settled) return;
          settle();
          reject(error);
        },
        complete(ok, value, laneDisposed) {
          if (settled || laneDisposed) {
            if (ok) discard(value);
            if (!settled) {
              settle();
              reject(new SessionReleasedError());
            }
            return;
          }
          settle();
          if (ok) resolve(value as T);
          else reject(value);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      try {
        host.enqueue(st, req, bypassBound);
      } catch (e) {
        settle();
        reject(e);
      }
    });
  }
}

function toIterator<Y, R>(steps: Steps<Y, R>): Iterator<Y, R, undefined> | AsyncIterator<Y, R, undefined> {
  const s = steps as Partial<Iterator<Y, R, undefined>> & Partial<Iterable<Y>> & Partial<AsyncIterable<Y>>;
  if (typeof s.next === 'function') return steps as Iterator<Y, R, undefined>;
  if (typeof s[Symbol.asyncIterator] === 'function') return s[Symbol.asyncIterator]!() as AsyncIterator<Y, R, undefined>;
  if (typeof s[Symbol.iterator] === 'function') return s[Symbol.iterator]!() as Iterator<Y, R, undefined>;
  throw new InvalidArgumentError('runSteps needs an iterator, an iterable or an async iterable of steps (a generator works).');
}
