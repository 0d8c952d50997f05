import { CancelledError, InvalidArgumentError, QueueFullError, SessionReleasedError } from '../errors.js';
import { systemClock, type Clock } from './clock.js';
import { Lane, createLaneState, type LaneHost, type LaneOptions, type LaneState, type QueuedRequest, type RunInfo } from './lane.js';
import { PRIORITIES, effectiveRank } from './priority.js';

export interface SchedulerOptions {
  /** Requests running at once on the device. Default 1: GPU work is serialised per device. A lane never runs two at once. */
  concurrency?: number;
  /** Most requests waiting across all lanes; one more rejects with QueueFullError. Default 1024. */
  maxPending?: number;
  /** Time source for waiting times and aging; tests pass a ManualClock. Default: performance.now(). */
  clock?: Clock;
  /** A waiting request moves up one priority level per `agingMs` waited. Default: no aging (strict priorities). */
  agingMs?: number;
  /**
   * How the scheduler defers choosing what runs next after a submit or a completion. Default `queueMicrotask`:
   * requests submitted in one synchronous turn compete. A worker passes a macrotask (`setImmediate`) so that every
   * message already received (newer frames, cancellations) is queued before the choice.
   */
  dispatch?: (pick: () => void) => void;
}

export const DEFAULT_MAX_PENDING = 1024;

function positiveInt(v: unknown, name: string, allowInfinity = false): number {
  if (typeof v === 'number' && ((Number.isInteger(v) && v >= 1) || (allowInfinity && v === Infinity))) return v;
  throw new InvalidArgumentError(`${name} must be a positive integer${allowInfinity ? ' or Infinity' : ''}, not ${String(v)}.`, { [name]: v });
}

/**
 * One device's request queue. Each model (session) gets a Lane; the scheduler picks what runs next by priority,
 * then round robin across the lanes at that priority, then first-in first-out within a lane. Picking happens in a
 * microtask after a submit or a completion (see `dispatch`), so requests submitted in the same turn compete by priority.
 */
export class Scheduler {
  readonly concurrency: number;
  readonly maxPending: number;
  readonly #clock: Clock;
  readonly #agingMs: number | undefined;
  readonly #dispatch: (pick: () => void) => void;
  readonly #lanes: LaneState[] = [];
  /** Id of the lane last served at each (effective) priority rank: round robin resumes after it. */
  readonly #lastServed: number[] = PRIORITIES.map(() => -1);
  #nextLaneId = 0;
  #queued = 0;
  #running = 0;
  #pumpScheduled = false;
  #idleWaiters: (() => void)[] = [];
  #disposed = false;
  readonly #host: LaneHost;

  constructor(options: SchedulerOptions = {}) {
    this.concurrency = options.concurrency === undefined ? 1 : positiveInt(options.concurrency, 'concurrency');
    this.maxPending = options.maxPending === undefined ? DEFAULT_MAX_PENDING : positiveInt(options.maxPending, 'maxPending', true);
    if (options.agingMs !== undefined && !(options.agingMs > 0)) throw new InvalidArgumentError(`agingMs must be a positive number of milliseconds, not ${String(options.agingMs)}.`);
    this.#clock = options.clock ?? systemClock;
    this.#agingMs = options.agingMs;
    if (options.dispatch !== undefined && typeof options.dispatch !== 'function') throw new InvalidArgumentError('dispatch must be a function that calls its argument later.');
    // Wrapped: a bare `queueMicrotask` stored and called as a method throws "Illegal invocation" in browsers.
    this.#dispatch = options.dispatch ?? ((pick) => queueMicrotask(pick));
    this.#host = {
      enqueue: (lane, req, bypassBound) => this.#enqueue(lane, req, bypassBound),
      dequeue: (lane, req) => this.#dequeue(lane, req),
      dispose: (lane) => this.#disposeLane(lane),
      now: () => this.#clock.now(),
    };
  }

  /** A new queue, typically one per model. */
  lane(options: LaneOptions = {}): Lane {
    if (this.#disposed) throw new InvalidArgumentError('This scheduler was disposed; create a new Scheduler.');
    const state = createLaneState(this.#nextLaneId++, options);
    this.#lanes.push(state);
    return new Lane(this.#host, state);
  }

  /** Requests waiting (not yet running), over all lanes. */
  get pending(): number {
    return this.#queued;
  }

  get running(): number {
    return this.#running;
  }

  /** Resolves once nothing is waiting or running. */
  idle(): Promise<void> {
    if (this.#queued === 0 && this.#running === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Disposes every lane (waiting requests reject with SessionReleasedError); resolves when running work has finished. */
  async dispose(): Promise<void> {
    this.#disposed = true;
    await Promise.all([...this.#lanes].map((s) => this.#disposeLane(s)));
  }

  /** Throws QueueFullError when a bound refuses the request (the lane rejects the caller with it). */
  #enqueue(lane: LaneState, req: QueuedRequest, bypassBound: boolean): void {
    if (!bypassBound && lane.queue.length >= lane.maxPending) {
      throw new QueueFullError(lane.maxPending, { lane: lane.name, pending: lane.queue.length });
    }
    // A latest-only lane replaces its waiting request, so it never adds to the total beyond its first one.
    const grows = !(lane.latestOnly && lane.queue.length > 0);
    if (!bypassBound && grows && this.#queued >= this.maxPending) {
      throw new QueueFullError(this.maxPending, { lane: lane.name, pending: this.#queued, scope: 'scheduler' });
    }
    if (lane.latestOnly) {
      for (const old of lane.queue.splice(0)) {
        this.#queued--;
        old.fail(new CancelledError('superseded', { lane: lane.name, running: false }));
      }
    }
    lane.queue.push(req);
    this.#queued++;
    this.#schedulePump();
  }

  /** Takes a waiting request out (its signal fired). */
  #dequeue(lane: LaneState, req: QueuedRequest): boolean {
    const i = lane.queue.indexOf(req);
    if (i < 0) return false;
    lane.queue.splice(i, 1);
    this.#queued--;
    this.#checkIdle();
    return true;
  }

  #disposeLane(lane: LaneState): Promise<void> {
    if (lane.disposing) return lane.disposing;
    lane.disposed = true;
    const i = this.#lanes.indexOf(lane);
    if (i >= 0) this.#lanes.splice(i, 1);
    for (const r of lane.queue.splice(0)) {
      this.#queued--;
      r.fail(new SessionReleasedError());
    }
    this.#checkIdle();
    lane.disposing = lane.running ? new Promise((resolve) => lane.drained.push(resolve)) : Promise.resolve();
    return lane.disposing;
  }

  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    this.#dispatch(() => {
      this.#pumpScheduled = false;
      while (this.#running < this.concurrency) {
        const next = this.#pick();
        if (!next) break;
        this.#start(next.lane, next.req);
      }
    });
  }

  /** Highest effective priority first; round robin over the lanes tied at it; FIFO within the chosen lane. */
  #pick(): { lane: LaneState; req: QueuedRequest } | undefined {
    const now = this.#clock.now();
    let best = Infinity;
    let tied: { lane: LaneState; req: QueuedRequest }[] = [];
    for (const lane of this.#lanes) {
      if (lane.running || lane.queue.length === 0) continue;
      let rank = Infinity;
      let req: QueuedRequest | undefined;
      for (const r of lane.queue) {
        const e = effectiveRank(r.rank, now - r.enqueuedAt, this.#agingMs);
        if (e < rank) [rank, req] = [e, r];
      }
      if (rank < best) [best, tied] = [rank, []];
      if (rank === best) tied.push({ lane, req: req! });
    }
    if (tied.length === 0) return undefined;
    // Lanes are kept in creation order (ids increase), so "the first id after the last served one" is round robin.
    const last = this.#lastServed[best]!;
    const chosen = tied.find((t) => t.lane.id > last) ?? tied[0]!;
    this.#lastServed[best] = chosen.lane.id;
    return chosen;
  }

  #start(lane: LaneState, req: QueuedRequest): void {
    lane.queue.splice(lane.queue.indexOf(req), 1);
    this.#queued--;
    this.#running++;
    lane.running = req;
    const info: RunInfo = { lane: lane.name, priority: PRIORITIES[req.rank]!, waitedMs: this.#clock.now() - req.enqueuedAt, signal: req.signal };
    let result: Promise<unknown>;
    try {
      result = Promise.resolve(req.task(info));
    } catch (e) {
      result = Promise.reject(e);
    }
    result.then(
      (v) => this.#finish(lane, req, true, v),
      (e) => this.#finish(lane, req, false, e),
    );
  }

  #finish(lane: LaneState, req: QueuedRequest, ok: boolean, value: unknown): void {
    this.#running--;
    lane.running = undefined;
    req.complete(ok, value, lane.disposed);
    for (const resolve of lane.drained.splice(0)) resolve();
    this.#checkIdle();
    this.#schedulePump();
  }

  #checkIdle(): void {
    if (this.#queued !== 0 || this.#running !== 0) return;
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }
}
