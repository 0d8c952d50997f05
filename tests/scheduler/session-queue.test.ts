import { describe, expect, it } from 'vitest';
import { CancelledError, InvalidArgumentError, QueueFullError, SessionReleasedError } from '../../runtime/errors.js';
import { Scheduler } from '../../runtime/scheduler/index.js';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import { encodeModel } from '../helpers/onnx-model.js';

// Main-thread sessions queue in a Lane on a Scheduler (sdk/queue.ts) like worker sessions do: priorities, AbortSignal,
// latest-only, bounds and release, through the public InferenceSession API on the CPU backend.
const x = { dtype: 'float32' as const, shape: [4], data: new Float32Array(4) };
const NEG = encodeModel({ nodes: [{ op: 'Neg', inputs: ['x'], outputs: ['y'] }], inputs: { x }, outputs: ['y'] });
const feed = (v: number) => ({ x: new Tensor('float32', new Float32Array(4).fill(v), [4]) });
const first = (o: Record<string, Tensor>) => (o.y!.data as Float32Array)[0];

async function sessions(n: number, options: Parameters<typeof InferenceSession.create>[1][] = []) {
  const scheduler = new Scheduler();
  return {
    scheduler,
    s: await Promise.all(Array.from({ length: n }, (_, i) => InferenceSession.create(NEG, { backend: 'cpu', scheduler, ...options[i] }))),
  };
}

describe('main-thread sessions go through the scheduler', () => {
  it('runs submitted together go by priority, then in turn across sessions, each with its own result', async () => {
    const { s: [a, b] } = await sessions(2, [{ priority: 'background' }, {}]);
    const order: string[] = [];
    const track = (name: string, p: Promise<Record<string, Tensor>>) => p.then((o) => order.push(`${name}=${first(o)}`));
    await Promise.all([
      track('a1', a!.run(feed(1))),
      track('b1', b!.run(feed(2))),
      track('a2', a!.run(feed(3), { priority: 'user-blocking' })),
      track('b2', b!.run(feed(4))),
      track('a3', a!.run(feed(5))),
    ]);
    // a2 outranks all; b1, b2 ('user-visible', the session default) beat a1, a3 ('background', a's default).
    expect(order).toEqual(['a2=-3', 'b1=-2', 'b2=-4', 'a1=-1', 'a3=-5']);
  });

  it('the thread’s shared scheduler serves sessions created without one', async () => {
    const a = await InferenceSession.create(NEG, { backend: 'cpu' });
    const b = await InferenceSession.create(NEG, { backend: 'cpu', priority: 'user-blocking' });
    const order: string[] = [];
    await Promise.all([a.run(feed(1)).then(() => order.push('a')), b.run(feed(1)).then(() => order.push('b'))]);
    expect(order).toEqual(['b', 'a']);
    await Promise.all([a.release(), b.release()]);
  });

  it('a signal cancels a waiting run with CancelledError; an already aborted one is refused', async () => {
    const { s: [a] } = await sessions(1);
    const ac = new AbortController();
    const ran = a!.run(feed(1));
    const waiting = a!.run(feed(2), { signal: ac.signal });
    ac.abort();
    await expect(waiting).rejects.toMatchObject({ name: 'CancelledError', reason: 'aborted' });
    expect(first(await ran)).toBe(-1);
    await expect(a!.run(feed(3), { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(CancelledError);
    expect(first(await a!.run(feed(4)))).toBe(-4);
  });

  it("a 'latest-only' session computes only the newest waiting frame; older ones are superseded", async () => {
    const { s: [cam] } = await sessions(1, [{ queue: 'latest-only' }]);
    const runs = [1, 2, 3, 4].map((v) => cam!.run(feed(v)));
    const outcomes = await Promise.all(runs.map((p) => p.then(first, (e: CancelledError) => `${e.name}:${e.reason}`)));
    expect(outcomes).toEqual(['CancelledError:superseded', 'CancelledError:superseded', 'CancelledError:superseded', -4]);
  });

  it('maxPending bounds a session’s queue with QueueFullError; bad queue options fail at create', async () => {
    const { s: [a] } = await sessions(1, [{ maxPending: 2 }]);
    const runs = [1, 2, 3].map((v) => a!.run(feed(v)));
    const outcomes = await Promise.all(runs.map((p) => p.then(first, (e: Error) => e)));
    expect(outcomes.slice(0, 2)).toEqual([-1, -2]);
    expect(outcomes[2]).toBeInstanceOf(QueueFullError);
    await expect(InferenceSession.create(NEG, { backend: 'cpu', queue: 'lifo' as never })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(InferenceSession.create(NEG, { backend: 'cpu', priority: 'urgent' as never })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('release() rejects waiting runs with SessionReleasedError and refuses later ones', async () => {
    const { scheduler, s: [a] } = await sessions(1);
    const runs = [1, 2, 3].map((v) => a!.run(feed(v)).then(first, (e: Error) => e));
    await a!.release();
    for (const o of await Promise.all(runs)) expect(o).toBeInstanceOf(SessionReleasedError);
    await expect(a!.run(feed(4))).rejects.toBeInstanceOf(SessionReleasedError);
    expect(scheduler.pending).toBe(0);
  });
});
