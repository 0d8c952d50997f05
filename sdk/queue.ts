import { Scheduler, type TaskPriority } from '../runtime/scheduler/index.js';

/**
 * Where a session's runs queue. Every InferenceSession owns a Lane on a Scheduler (runtime/scheduler): by default
 * the one scheduler of this thread, so every session on the page (or Node thread) shares the device one run at a
 * time, by priority, in turn, with AbortSignal cancellation and latest-only queues, exactly as sessions in a worker
 * do. Pass `scheduler` to give a group of sessions its own queue (a worker's host does that with its own).
 */
export interface QueueOptions {
  /** Default priority of this session's runs ('user-blocking' | 'user-visible' | 'background'). Default 'user-visible'. */
  priority?: TaskPriority;
  /** 'latest-only' for streams of frames: a newer run replaces the waiting one (CancelledError 'superseded'). Default 'fifo'. */
  queue?: 'fifo' | 'latest-only';
  /** Most runs of this session waiting at once; one more rejects with QueueFullError. Default: no bound of its own. */
  maxPending?: number;
  /** The scheduler this session's lane is on. Default: this thread's shared scheduler (threadScheduler()). */
  scheduler?: Scheduler;
}

let shared: Scheduler | undefined;

/**
 * The scheduler main-thread sessions share unless given another. Unbounded in total (a page that fires many runs
 * is not refused; bound a session with maxPending) and one run at a time: GPU work is serialised per device anyway,
 * and a CPU run blocks the thread.
 */
export function threadScheduler(): Scheduler {
  return (shared ??= new Scheduler({ maxPending: Infinity }));
}
