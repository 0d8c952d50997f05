import { describe, expect, it } from 'vitest';
import { CancelledError, EdgeKitError, QueueFullError, SessionReleasedError, ShapeError, errorFromPlain, errorToPlain } from '../../runtime/errors.js';
import { Scheduler } from '../../runtime/scheduler/index.js';
import { Trace, failOnUnhandledRejections, flush, gate, outcome } from './helpers.js';

failOnUnhandledRejections();

describe('scheduler: cancellation through AbortSignal', () => {
  it('a waiting request rejects with CancelledError at once and never runs', async () => {
    const s = new Scheduler();
    const t = new Trace();
    const g = gate();
    const lane = s.lane({ name: 'm' });
    const ac = new AbortController();
    const first = lane.submit(t.task('first', g));
    const victim = outcome(lane.submit(t.task('victim'), { signal: ac.signal }));
    const after = lane.submit(t.task('after'));
    await flush();
    expect(s.pending).toBe(2);
    ac.abort(new Error('user left'));
    await flush();
    expect(victim.error).toBeInstanceOf(CancelledError);
    const e = victim.error as CancelledError;
    expect([e.code, e.reason, e.details.running, e.details.lane]).toEqual(['CANCELLED', 'aborted', false, 'm']);
    expect((e.cause as Error).message).toBe('user left');
    expect(s.pending).toBe(1);
    g.open();
    expect(await Promise.all([first, after])).toEqual(['first', 'after']);
    expect(t.started()).toEqual(['first', 'after']);
  });

  it('an already aborted signal rejects without queueing', async () => {
    const s = new Scheduler();
    const ran: number[] = [];
    const err = await s.lane().submit(() => ran.push(1), { signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledError);
    expect(s.pending).toBe(0);
    await flush();
    expect(ran).toEqual([]);
  });

  it('a running request finishes, the caller gets CancelledError and the result goes to onDiscard', async () => {
    const s = new Scheduler();
    const t = new Trace();
    const g = gate();
    const lane = s.lane();
    const ac = new AbortController();
    const discarded: string[] = [];
    const running = outcome(lane.submit(t.task('running', g, 'result'), { signal: ac.signal, onDiscard: (r) => discarded.push(r) }));
    const next = lane.submit(t.task('next'));
    await flush();
    ac.abort();
    await flush();
    // The caller is told at once...
    expect(running.error).toBeInstanceOf(CancelledError);
    expect((running.error as CancelledError).details.running).toBe(true);
    // ...but the device is still busy with it: nothing else starts until it ends.
    expect(t.started()).toEqual(['running']);
    expect(s.running).toBe(1);
    g.open();
    expect(await next).toBe('next');
    expect(t.events).toEqual(['start running', 'end running', 'start next', 'end next']);
    expect(discarded).toEqual(['result']);
  });

  it('a task that fails after being cancelled does not surface its error anywhere', async () => {
    const s = new Scheduler();
    const g = gate();
    const ac = new AbortController();
    const r = outcome(s.lane().submit(() => g.promise.then(() => { throw new Error('late failure'); }), { signal: ac.signal }));
    await flush();
    ac.abort();
    g.open();
    await s.idle();
    await flush();
    expect(r.error).toBeInstanceOf(CancelledError);
  });

  it('aborting after the result was delivered changes nothing', async () => {
    const s = new Scheduler();
    const ac = new AbortController();
    expect(await s.lane().submit(() => 7, { signal: ac.signal })).toBe(7);
    ac.abort();
    await flush();
    expect(s.pending + s.running).toBe(0);
  });
});

describe('scheduler: latest-only lanes', () => {
  it('a newer frame replaces the waiting one, which rejects as superseded; the running frame is kept', async () => {
    const s = new Scheduler();
    const t = new Trace();
    const g = gate();
    const cam = s.lane({ name: 'camera', mode: 'latest-only' });
    expect(cam.mode).toBe('latest-only');
    const f1 = outcome(cam.submit(t.task('f1', g)));
    await flush();
    const f2 = outcome(cam.submit(t.task('f2')));
    const f3 = outcome(cam.submit(t.task('f3')));
    const f4 = outcome(cam.submit(t.task('f4')));
    await flush();
    expect(cam.pending).toBe(1);
    expect(s.pending).toBe(1);
    for (const f of [f2, f3]) {
      expect(f.error).toBeInstanceOf(CancelledError);
      expect((f.error as CancelledError).reason).toBe('superseded');
    }
    expect(f4.settled).toBe(false);
    g.open();
    await s.idle();
    await flush();
    expect([f1.value, f4.value]).toEqual(['f1', 'f4']);
    expect(t.started()).toEqual(['f1', 'f4']);
  });

  it('does not supersede across lanes, and a fifo lane keeps every request', async () => {
    const s = new Scheduler();
    const t = new Trace();
    const g = gate();
    const camA = s.lane({ mode: 'latest-only' });
    const camB = s.lane({ mode: 'latest-only' });
    const fifo = s.lane();
    const p = [camA.submit(t.task('a1', g)), camB.submit(t.task('b1')), fifo.submit(t.task('x1')), fifo.submit(t.task('x2'))];
    await flush();
    g.open();
    await Promise.all(p);
    expect(t.started().sort()).toEqual(['a1', 'b1', 'x1', 'x2']);
  });
});

describe('scheduler: backpressure', () => {
  it('rejects with QueueFullError beyond maxPending waiting requests, and accepts again once they drain', async () => {
    const s = new Scheduler({ maxPending: 3 });
    const g = gate();
    const a = s.lane({ name: 'a' });
    const b = s.lane({ name: 'b' });
    const running = a.submit(() => g.promise);
    await flush(); // running does not count as pending
    const waiting = [a.submit(() => 1), b.submit(() => 2), b.submit(() => 3)];
    const err = await b.submit(() => 4).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QueueFullError);
    expect(err).toBeInstanceOf(EdgeKitError);
    expect((err as QueueFullError).code).toBe('QUEUE_FULL');
    expect((err as QueueFullError).details).toMatchObject({ limit: 3, pending: 3, lane: 'b' });
    g.open();
    await running;
    expect(await Promise.all(waiting)).toEqual([1, 2, 3]);
    expect(await b.submit(() => 5)).toBe(5);
  });

  it('a lane can have its own, smaller bound', async () => {
    const s = new Scheduler();
    const g = gate();
    const small = s.lane({ name: 'small', maxPending: 1 });
    const other = s.lane();
    const p = [small.submit(() => g.promise)];
    await flush(); // running: it no longer waits
    p.push(small.submit(() => 'queued'));
    await expect(small.submit(() => 'x')).rejects.toBeInstanceOf(QueueFullError);
    const o = other.submit(() => 'other lane is not bounded by it');
    g.open();
    await Promise.all([...p, o]);
  });

  it('a latest-only lane replaces instead of filling the queue', async () => {
    const s = new Scheduler({ maxPending: 1 });
    const g = gate();
    const cam = s.lane({ mode: 'latest-only' });
    const first = cam.submit(() => g.promise);
    await flush();
    const frames = [1, 2, 3, 4].map((i) => outcome(cam.submit(() => i)));
    await flush();
    expect(frames.slice(0, 3).map((f) => (f.error as CancelledError).reason)).toEqual(['superseded', 'superseded', 'superseded']);
    await expect(s.lane().submit(() => 0)).rejects.toBeInstanceOf(QueueFullError);
    g.open();
    await first;
    await s.idle();
    await flush();
    expect(frames[3]!.value).toBe(4);
  });
});

describe('scheduler: disposal', () => {
  it('nothing runs on a disposed lane: waiting requests reject, the running one finishes and is discarded', async () => {
    const s = new Scheduler();
    const t = new Trace();
    const g = gate();
    const lane = s.lane({ name: 'm' });
    const other = s.lane();
    const discarded: string[] = [];
    const running = outcome(lane.submit(t.task('running', g), { onDiscard: (r) => discarded.push(r) }));
    const waiting = [outcome(lane.submit(t.task('w1'))), outcome(lane.submit(t.task('w2')))];
    await flush();
    let disposed = false;
    const d = lane.dispose().then(() => (disposed = true));
    expect(lane.disposed).toBe(true);
    await flush();
    for (const w of waiting) expect(w.error).toBeInstanceOf(SessionReleasedError);
    expect(disposed).toBe(false); // still running: the model's memory must not be released yet
    const late = await lane.submit(t.task('late')).catch((e: unknown) => e);
    expect(late).toBeInstanceOf(SessionReleasedError);
    g.open();
    await d;
    expect(running.error).toBeInstanceOf(SessionReleasedError);
    expect(discarded).toEqual(['running']);
    expect(await other.submit(t.task('other'))).toBe('other');
    expect(t.started()).toEqual(['running', 'other']);
    expect(s.pending).toBe(0);
    await lane.dispose(); // idempotent
  });

  it('Scheduler.dispose disposes every lane and refuses new ones', async () => {
    const s = new Scheduler();
    const a = s.lane();
    const b = s.lane();
    const g = gate();
    const pa = outcome(a.submit(() => g.promise));
    const pb = outcome(b.submit(() => 'b'));
    const d = s.dispose();
    g.open();
    await d;
    await flush();
    expect(pa.error).toBeInstanceOf(SessionReleasedError);
    expect(pb.error).toBeInstanceOf(SessionReleasedError);
    expect(() => s.lane()).toThrow(/disposed/);
  });
});

describe('scheduler: errors', () => {
  it("a task's error (thrown or rejected) reaches its caller unchanged, and the queue goes on", async () => {
    const s = new Scheduler();
    const lane = s.lane();
    const boom = new ShapeError('bad shape', { input: 'x' });
    const sync = lane.submit(() => {
      throw boom;
    });
    const async = lane.submit(async () => {
      await flush();
      throw new TypeError('async failure');
    });
    const ok = lane.submit(() => 'still fine');
    await expect(sync).rejects.toBe(boom);
    await expect(async).rejects.toThrow(TypeError);
    expect(await ok).toBe('still fine');
  });

  it('the new errors cross a worker boundary as the same classes', () => {
    for (const e of [new CancelledError('superseded', { lane: 'cam' }), new QueueFullError(8, { lane: 'm', pending: 8 })]) {
      const back = errorFromPlain(JSON.parse(JSON.stringify(errorToPlain(e))));
      expect(back).toBeInstanceOf(e.constructor);
      expect(back.message).toBe(e.message);
      expect((back as EdgeKitError).details).toEqual(e.details);
    }
    const c = errorFromPlain(errorToPlain(new CancelledError('aborted', { running: true }))) as CancelledError;
    expect([c.name, c.code, c.reason]).toEqual(['CancelledError', 'CANCELLED', 'aborted']);
  });
});
