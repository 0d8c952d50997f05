import { DisposedTensorError, SessionReleasedError } from '../../runtime/errors.js';
import type { Lane, TaskPriority } from '../../runtime/scheduler/index.js';

/**
 * A FineTuner's hold on the device: its lane's turn on the session's scheduler, taken for one unit of training work
 * and given back between units, so fit() runs as a sequence of scheduled requests (the data preparation with the
 * first step, then one per step, and an epoch's validation) and the scheduler can run other requests in between:
 * a 'user-blocking' session.run issued during fit runs after the current step, not after the fit.
 *
 * The turn is a request whose task is a promise that resolves when the holder lets go. Callbacks of the caller
 * (onProgress) run while the turn is let go: they may await runs of any session, or the tuner's own evaluate()
 * or saveCheckpoint(), without a deadlock.
 */
export class Turn {
  #release: (() => void) | undefined;

  constructor(
    readonly lane: Lane,
    readonly priority: TaskPriority,
    readonly signal: AbortSignal | undefined,
    /** Why the lane refuses (it is disposed): the tuner was disposed, or its session released. */
    readonly refusal: () => Error,
  ) {}

  /**
   * Waits for the turn. Rejects with CancelledError when the signal fires while waiting (or has fired), and with
   * the tuner's refusal when its lane was disposed meanwhile.
   */
  acquire(): Promise<void> {
    return new Promise<void>((granted, refused) => {
      this.lane
        .submit(() => new Promise<void>((done) => ((this.#release = done), granted())), { priority: this.priority, signal: this.signal })
        // Once granted, a later rejection (the signal fired while holding) changes nothing: the next acquire sees it.
        .catch((e: unknown) => refused(e instanceof SessionReleasedError ? this.refusal() : e));
    });
  }

  letGo(): void {
    const r = this.#release;
    this.#release = undefined;
    r?.();
  }

  /**
   * Gives the turn back, runs `between` (the caller's callback, or nothing), and waits for the turn again. Asked for
   * again in the same synchronous turn when `between` returns no promise: the scheduler then chooses between this
   * holder and whatever was submitted meanwhile by priority, instead of starting the other request only because it
   * came first (a 'user-blocking' fit keeps the device against a 'background' run issued from its onProgress).
   */
  async yield(between?: () => unknown): Promise<void> {
    this.letGo();
    const r = between?.();
    if (typeof (r as PromiseLike<unknown> | undefined)?.then === 'function') await r;
    await this.acquire();
  }
}

/** The error a tuner's work gets after its lane was disposed: by dispose(), or by the session's release(). */
export function refusal(disposed: boolean): Error {
  return disposed ? new DisposedTensorError('FineTuner') : new SessionReleasedError();
}
