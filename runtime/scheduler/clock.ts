/**
 * The scheduler's notion of time, injectable so tests are deterministic: it times how long each request waited
 * (RunInfo.waitedMs) and drives priority aging. Nothing here sleeps or sets timers.
 */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
}

export const systemClock: Clock = { now: () => performance.now() };

/** A clock that moves only when told to: `advance(ms)`. For tests and simulations. */
export class ManualClock implements Clock {
  #t: number;
  constructor(start = 0) {
    this.#t = start;
  }
  now(): number {
    return this.#t;
  }
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`ManualClock.advance needs a non-negative number of ms, got ${ms}`);
    this.#t += ms;
  }
}
