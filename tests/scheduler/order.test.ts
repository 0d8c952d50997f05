import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../runtime/errors.js';
import { ManualClock, Scheduler, type RunInfo } from '../../runtime/scheduler/index.js';
import { Trace, failOnUnhandledRejections, flush, gate, outcome } from './helpers.js';

failOnUnhandledRejections();

describe('scheduler: order', () => {
  it('runs a lane first in, first out, one at a time', async () => {
    const s = new Scheduler({ clock: new ManualClock() });
    const lane = s.lane({ name: 'model' });
    const t = new Trace();
    const results = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((n) => lane.submit(t.task(n))));
    expect(results).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(t.events).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c', 'start d', 'end d', 'start e', 'end e']);
    expect(t.maxActive).toBe(1);
  });

  it('serialises the device by default, across lanes too', async () => {
    const s = new Scheduler();
    const t = new Trace();
    const lanes = [s.lane(), s.lane(), s.lane()];
    await Promise.all(lanes.flatMap((l, i) => [0, 1, 2].map((j) => l.submit(t.task(`${i}.${j}`)))));
    expect(t.maxActive).toBe(1);
    expect(t.started()).toHaveLength(9);
  });

  it('runs `concurrency` requests at once, but never two of one lane', async () => {
    const s = new Scheduler({ concurrency: 2 });
    const t = new Trace();
    const g = gate();
    const a = s.lane({ name: 'a' });
    const b = s.lane({ name: 'b' });
    const p = [a.submit(t.task('a1', g)), a.submit(t.task('a2', g)), b.submit(t.task('b1', g))];
    await flush();
    expect(t.started()).toEqual(['a1', 'b1']);
    expect(s.running).toBe(2);
    expect(s.pending).toBe(1);
    g.open();
    await Promise.all(p);
    expect(t.started()).toEqual(['a1', 'b1', 'a2']);
    expect(t.maxActive).toBe(2);
  });

  it('hands the task its lane, priority, signal and the time it waited on the clock', async () => {
    const clock = new ManualClock(1000);
    const s = new Scheduler({ clock });
    const lane = s.lane({ name: 'cam', priority: 'user-blocking' });
    const g = gate();
    const first = lane.submit(() => g.promise);
    const ac = new AbortController();
    const infos: RunInfo[] = [];
    const second = lane.submit((info) => infos.push(info), { priority: 'background', signal: ac.signal });
    await flush();
    clock.advance(37);
    g.open();
    await Promise.all([first, second]);
    expect(infos).toEqual([{ lane: 'cam', priority: 'background', waitedMs: 37, signal: ac.signal }]);
  });
});

describe('scheduler: priorities', () => {
  it('requests submitted in the same turn run by priority', async () => {
    const s = new Scheduler();
    const t = new Trace();
    const bg = s.lane({ name: 'train', priority: 'background' });
    const vis = s.lane({ name: 'cam', priority: 'user-visible' });
    const blk = s.lane({ name: 'click', priority: 'user-blocking' });
    await Promise.all([bg.submit(t.task('bg')), vis.submit(t.task('vis')), blk.submit(t.task('blk'))]);
    expect(t.started()).toEqual(['blk', 'vis', 'bg']);
  });

  it('a higher priority request overtakes waiting ones, not the running one', async () => {
    const s = new Scheduler();
    const t = new Trace();
    const g = gate();
    const lane = s.lane({ name: 'm', priority: 'background' });
    const other = s.lane({ name: 'o' });
    const p = [lane.submit(t.task('bg1', g)), lane.submit(t.task('bg2'))];
    await flush();
    p.push(other.submit(t.task('vis')), other.submit(t.task('blk'), { priority: 'user-blocking' }));
    await flush();
    expect(t.started()).toEqual(['bg1']);
    g.open();
    await Promise.all(p);
    expect(t.started()).toEqual(['bg1', 'blk', 'vis', 'bg2']);
  });

  it('within one lane, a request at a higher priority goes first; equal priorities stay FIFO', async () => {
    const s = new Scheduler();
    const t = new Trace();
    const g = gate();
    const lane = s.lane();
    const p = [lane.submit(t.task('first', g))];
    await flush();
    p.push(
      lane.submit(t.task('bg1'), { priority: 'background' }),
      lane.submit(t.task('vis1')),
      lane.submit(t.task('bg2'), { priority: 'background' }),
      lane.submit(t.task('blk'), { priority: 'user-blocking' }),
      lane.submit(t.task('vis2')),
    );
    await flush();
    g.open();
    await Promise.all(p);
    expect(t.started()).toEqual(['first', 'blk', 'vis1', 'vis2', 'bg1', 'bg2']);
  });

  it('an unknown priority is an InvalidArgumentError, for a lane and for a request', async () => {
    const s = new Scheduler();
    expect(() => s.lane({ priority: 'urgent' as never })).toThrow(InvalidArgumentError);
    const ran: string[] = [];
    await expect(s.lane().submit(() => ran.push('x'), { priority: 'high' as never })).rejects.toThrow(/user-blocking/);
    expect(ran).toEqual([]);
    expect(() => new Scheduler({ concurrency: 0 })).toThrow(InvalidArgumentError);
    expect(() => new Scheduler({ maxPending: 1.5 })).toThrow(InvalidArgumentError);
    expect(() => s.lane({ mode: 'newest' as never })).toThrow(InvalidArgumentError);
  });

  it('aging lets waiting background work overtake newer interactive work (ManualClock)', async () => {
    const order = async (agingMs: number | undefined) => {
      const clock = new ManualClock();
      const s = new Scheduler({ clock, agingMs });
      const t = new Trace();
      const g = gate();
      const busy = s.lane({ name: 'busy' });
      const train = s.lane({ name: 'train', priority: 'background' });
      const click = s.lane({ name: 'click', priority: 'user-blocking' });
      const p = [busy.submit(t.task('running', g))];
      await flush();
      p.push(train.submit(t.task('bg')));
      clock.advance(250); // two levels at 100 ms each: background -> user-blocking
      p.push(click.submit(t.task('blk')));
      await flush();
      g.open();
      await Promise.all(p);
      return t.started();
    };
    expect(await order(undefined)).toEqual(['running', 'blk', 'bg']);
    // Both compete at 'user-blocking' now; round robin serves the lane created first (train) before click.
    expect(await order(100)).toEqual(['running', 'bg', 'blk']);
  });
});

describe('scheduler: fairness', () => {
  it('round robin across lanes of one priority, FIFO within each', async () => {
    const s = new Scheduler();
    const t = new Trace();
    const g = gate();
    const [a, b, c] = [s.lane({ name: 'a' }), s.lane({ name: 'b' }), s.lane({ name: 'c' })];
    const p = [a.submit(t.task('a1', g)), a.submit(t.task('a2')), a.submit(t.task('a3')), a.submit(t.task('a4'))];
    p.push(b.submit(t.task('b1')), b.submit(t.task('b2')), c.submit(t.task('c1')));
    await flush();
    g.open();
    await Promise.all(p);
    expect(t.started()).toEqual(['a1', 'b1', 'c1', 'a2', 'b2', 'a3', 'a4']);
  });

  it('a busy lane cannot starve another one that submits later', async () => {
    const s = new Scheduler();
    const t = new Trace();
    const cam = s.lane({ name: 'cam' });
    const chat = s.lane({ name: 'chat' });
    const gates = [0, 1, 2, 3].map(() => gate());
    const p = gates.map((g, i) => cam.submit(t.task(`cam${i}`, g)));
    await flush(); // cam0 runs, cam1..3 wait
    const late = outcome(chat.submit(t.task('chat')));
    gates[0]!.open();
    await flush();
    // chat runs right after the cam request that was running when it arrived, not after all of cam's queue.
    expect(t.started()).toEqual(['cam0', 'chat', 'cam1']);
    for (const g of gates) g.open();
    await Promise.all(p);
    expect(late.value).toBe('chat');
  });

  it('`dispatch` decides when the next request is chosen: everything submitted before it competes', async () => {
    const picks: (() => void)[] = [];
    const s = new Scheduler({ dispatch: (pick) => picks.push(pick) });
    const t = new Trace();
    const bg = s.lane({ priority: 'background' });
    const p = [bg.submit(t.task('bg'))];
    await flush();
    expect(t.started()).toEqual([]); // not chosen yet, however many microtasks pass
    p.push(s.lane({ priority: 'user-blocking' }).submit(t.task('blk')));
    expect(picks).toHaveLength(1); // one pending choice, not one per submit
    picks.shift()!();
    expect(t.started()).toEqual(['blk']);
    await flush();
    picks.shift()!();
    await Promise.all(p);
    expect(t.started()).toEqual(['blk', 'bg']);
  });

  it('idle() resolves once nothing waits or runs', async () => {
    const s = new Scheduler();
    const g = gate();
    const lane = s.lane();
    const p = lane.submit(() => g.promise);
    let idle = false;
    void s.idle().then(() => (idle = true));
    await flush();
    expect(idle).toBe(false);
    g.open();
    await p;
    await flush();
    expect(idle).toBe(true);
  });
});
