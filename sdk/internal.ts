import type { GpuResources } from '../runtime/backends/webgpu/executor.js';
import { InvalidArgumentError, SessionReleasedError } from '../runtime/errors.js';
import type { Graph } from '../runtime/ir/graph.js';
import type { Lane, Scheduler } from '../runtime/scheduler/index.js';
import type { SessionValue } from './values.js';

/**
 * What other SDK modules (the fine-tuner) may see of an InferenceSession without it becoming public API: the
 * optimized graph, the backend and the GPU resources it runs on. Kept in a WeakMap so nothing leaks onto the object.
 */
export interface SessionInternals {
  /** The imported, optimized graph (symbolic shapes; not specialized). Treat as read-only. */
  graph: Graph;
  /**
   * The graph training starts from: optimized like `graph` but with Dropout and BatchNormalization kept (see
   * OptimizeOptions.forTraining), made on first use. Treat as read-only.
   */
  trainingGraph(): Graph;
  /** Initializers that are constants of the model, not weights (ImportedModel.constants): never trained. */
  modelConstants: ReadonlySet<string>;
  opset: number;
  backend: 'cpu' | 'webgpu';
  maxElements: number;
  /** The device resources the session runs on (webgpu sessions; acquires the shared device on first call). */
  gpu(): Promise<GpuResources>;
  released(): boolean;
  /** The session's queue on its scheduler (sdk/queue.ts). */
  lane: Lane;
  /** The scheduler the session's lane is on (its device's queue): a FineTuner takes its own lane there. */
  scheduler: Scheduler;
  /** run() without queueing, for a caller that already holds the session's turn in its lane. */
  runUnqueued(feeds: Record<string, SessionValue>, fetches?: readonly string[] | { outputs?: readonly string[] }): Promise<Record<string, SessionValue>>;
}

const internals = new WeakMap<object, SessionInternals>();

export function setSessionInternals(session: object, i: SessionInternals): void {
  internals.set(session, i);
}

export function sessionInternals(session: unknown): SessionInternals {
  const i = typeof session === 'object' && session !== null ? internals.get(session) : undefined;
  if (!i) throw new InvalidArgumentError('Expected an EdgeKit InferenceSession (from InferenceSession.create).');
  if (i.released()) throw new SessionReleasedError();
  return i;
}
