import { afterEach, beforeEach, expect } from 'vitest';

/** A promise the test settles by hand: a task that "runs on the device" until the test says it is done. */
export interface Gate<T = void> {
  promise: Promise<T>;
  open(value: T): void;
  fail(error: unknown): void;
}

export function gate<T = void>(): Gate<T> {
  let open!: (v: T) => void;
  let fail!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    open = res;
    fail = rej;
  });
  return { promise, open, fail };
}

/** Lets every queued microtask and promise callback run (the scheduler picks in microtasks). */
export function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Records the order tasks start and end in, and how many ran at once. */
export class Trace {
  readonly events: string[] = [];
  active = 0;
  maxActive = 0;
  /** A task that logs its start, waits for `g` (if given), logs its end and returns `name`. */
  task<T = string>(name: string, g?: Gate<unknown>, result?: T): () => Promise<T> {
    return async () => {
      this.events.push(`start ${name}`);
      this.active++;
      this.maxActive = Math.max(this.maxActive, this.active);
      try {
        await g?.promise;
      } finally {
        this.active--;
        this.events.push(`end ${name}`);
      }
      return (result === undefined ? name : result) as T;
    };
  }
  started(): string[] {
    return this.events.filter((e) => e.startsWith('start ')).map((e) => e.slice(6));
  }
}

/** Settles a promise into a value the test can inspect without an unhandled rejection ever existing. */
export function outcome<T>(p: Promise<T>): { value?: T; error?: unknown; settled: boolean } {
  const o: { value?: T; error?: unknown; settled: boolean } = { settled: false };
  p.then(
    (v) => Object.assign(o, { value: v, settled: true }),
    (e) => Object.assign(o, { error: e, settled: true }),
  );
  return o;
}

/** Fails the test if any promise rejection went unhandled while it ran. */
export function failOnUnhandledRejections(): void {
  const seen: unknown[] = [];
  const onUnhandled = (reason: unknown) => seen.push(reason);
  beforeEach(() => {
    seen.length = 0;
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(async () => {
    await flush();
    await flush();
    process.off('unhandledRejection', onUnhandled);
    expect(seen).toEqual([]);
  });
}
