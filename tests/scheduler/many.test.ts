import { describe, expect, it } from 'vitest';
import { CancelledError } from '../../runtime/errors.js';
import { ManualClock, Scheduler, type TaskPriority } from '../../runtime/scheduler/index.js';
import { failOnUnhandledRejections, flush } from './helpers.js';

failOnUnhandledRejections();

/** A small deterministic generator (mulberry32), so the mix of requests is the same on every run. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

describe('scheduler: many callers', () => {
  it('1,000 requests from four models and several callers are each answered once, with their own result', async () => {
    const rnd = random(12);
    const s = new Scheduler({ clock: new ManualClock(), concurrency: 2 });
    const priorities: TaskPriority[] = ['user-blocking', 'user-visible', 'background'];
    const lanes = [0, 1, 2, 3].map((i) => s.lane({ name: `model${i}`, priority: priorities[i % 3] }));
    const runsPerLane = [0, 0, 0, 0];
    const active = [false, false, false, false];
    const answered = new Map<number, number>();
    const expected = new Map<number, 'ok' | 'cancelled' | 'error'>();
    const all: Promise<void>[] = [];
    for (let id = 0; id < 1000; id++) {
      const li = Math.floor(rnd() * 4);
      const ac = new AbortController();
      const kind = rnd();
      const fails = kind < 0.05;
      const task = async () => {
        if (active[li]) throw new Error('two requests of one lane ran at once');
        active[li] = true;
        runsPerLane[li]!++;
        for (let k = Math.floor(rnd() * 3); k > 0; k--) await Promise.resolve();
        active[li] = false;
        if (fails) throw new Error(`fail ${id}`);
        return id * 3;
      };
      const p = lanes[li]!.submit(task, { signal: ac.signal, priority: rnd() < 0.2 ? 'user-blocking' : undefined });
      all.push(
        p.then(
          (v) => {
            expect(v).toBe(id * 3);
            answered.set(id, (answered.get(id) ?? 0) + 1);
            expected.set(id, 'ok');
          },
          (e: unknown) => {
            answered.set(id, (answered.get(id) ?? 0) + 1);
            if (e instanceof CancelledError) expected.set(id, 'cancelled');
            else {
              expect((e as Error).message).toBe(`fail ${id}`);
              expected.set(id, 'error');
            }
          },
        ),
      );
      if (kind > 0.9) ac.abort();
      else if (kind > 0.85) queueMicrotask(() => ac.abort());
      if (id % 50 === 49) await flush(); // callers arrive in bursts
    }
    await Promise.all(all);
    await s.idle();
    await flush();
    expect(answered.size).toBe(1000);
    expect([...answered.values()].every((n) => n === 1)).toBe(true);
    const counts = { ok: 0, cancelled: 0, error: 0 };
    for (const v of expected.values()) counts[v]++;
    expect(counts.ok).toBeGreaterThan(700);
    expect(counts.cancelled).toBeGreaterThan(50);
    expect(counts.error).toBeGreaterThan(10);
    expect(s.pending + s.running).toBe(0);
  });
});
