import { describe, expect, it } from 'vitest';
import { CancelledError, InvalidArgumentError, QueueFullError, SessionReleasedError } from '../../runtime/errors.js';
import { Scheduler } from '../../runtime/scheduler/index.js';
import { Trace, failOnUnhandledRejections, flush, gate, outcome, type Gate } from './helpers.js';

failOnUnhandledRejections();

/** A training loop as a generator: each step logs, waits for its gate (the GPU work) and yields its "loss". */
function* training(t: Trace, gates: Gate[], closed: string[]): Generator<number, string, undefined> {
  try {
    for (let i = 0; i < gates.length; i++) {
      t.events.push(`start step${i}`);
      yield 1 / (i + 1);
    }
    return 'trained';
  } finally {
    closed.push('closed');
  }
}

/** The same as an async generator whose steps really wait (the GPU step takes time). */
async function* asyncTraining(t: Trace, gates: Gate[]): AsyncGenerator<number, string, undefined> {
  for (let i = 0; i < gates.length; i++) {
    t.events.push(`start step${i}`);
    await gates[i]!.promise;
    t.events.push(`end step${i}`);
    yield i;
  }
  return 'done';
}

describe('scheduler: training as background steps', () => {
  it('interactive requests run between two steps', async () => {
    const s = new Scheduler();
    const t = new Trace();
    const model = s.lane({ name: 'model' });
    const head = s.lane({ name: 'head' });
    const gates = [gate(), gate(), gate()];
    const progress: [number, number][] = [];
    const job = head.runSteps(asyncTraining(t, gates), { onStep: (v, i) => progress.push([v, i]) });
    await flush();
    expect(t.started()).toEqual(['step0']);
    // A click and a frame arrive while step 0 runs on the device.
    const click = model.submit(t.task('infer1'));
    const frame = model.submit(t.task('infer2'));
    gates[0]!.open();
    await Promise.all([click, frame]);
    gates[1]!.open();
    gates[2]!.open();
    expect(await job).toBe('done');
    expect(t.started()).toEqual(['step0', 'infer1', 'infer2', 'step1', 'step2']);
    expect(progress).toEqual([[0, 0], [1, 1], [2, 2]]);
  });

  it('each step is one scheduled unit: a request that arrives mid-job runs before the next step', async () => {
    const s = new Scheduler();
    const t = new Trace();
    const head = s.lane({ name: 'head' });
    const model = s.lane({ name: 'model', priority: 'user-blocking' });
    const closed: string[] = [];
    const job = head.runSteps(training(t, [gate(), gate(), gate(), gate()], closed), {
      onStep: (_, i) => {
        if (i === 1) void model.submit(t.task('infer'));
      },
    });
    expect(await job).toBe('trained');
    expect(t.started()).toEqual(['step0', 'step1', 'infer', 'step2', 'step3']);
    expect(closed).toEqual(['closed']);
  });

  it('two training jobs at background share the device round robin', async () => {
    const s = new Scheduler();
    const t = new Trace();
    const a = s.lane({ name: 'a' });
    const b = s.lane({ name: 'b' });
    const steps = (name: string) => (function* () {
      for (let i = 0; i < 3; i++) {
        t.events.push(`start ${name}${i}`);
        yield i;
      }
    })();
    await Promise.all([a.runSteps(steps('a')), b.runSteps(steps('b'))]);
    expect(t.started()).toEqual(['a0', 'b0', 'a1', 'b1', 'a2', 'b2']);
  });

  it('aborting stops before the next step, rejects with CancelledError and closes the generator', async () => {
    const s = new Scheduler();
    const t = new Trace();
    const head = s.lane();
    const ac = new AbortController();
    const closed: string[] = [];
    const job = outcome(head.runSteps(training(t, [gate(), gate(), gate(), gate()], closed), {
      signal: ac.signal,
      onStep: (_, i) => {
        if (i === 1) ac.abort();
      },
    }));
    await s.idle();
    await flush();
    expect(job.error).toBeInstanceOf(CancelledError);
    expect(t.started()).toEqual(['step0', 'step1']);
    expect(closed).toEqual(['closed']);
  });

  it('a failing step rejects the job with its error; other lanes go on', async () => {
    const s = new Scheduler();
    const head = s.lane();
    const model = s.lane();
    const failing = (function* () {
      yield 1;
      throw new RangeError('loss is NaN');
    })();
    const job = head.runSteps(failing);
    const infer = model.submit(() => 'ok');
    await expect(job).rejects.toThrow(RangeError);
    expect(await infer).toBe('ok');
  });

  it('a throwing onStep stops the job with that error and closes the generator', async () => {
    const s = new Scheduler();
    const closed: string[] = [];
    const t = new Trace();
    const job = s.lane().runSteps(training(t, [gate(), gate(), gate()], closed), {
      onStep: () => {
        throw new Error('progress handler failed');
      },
    });
    await expect(job).rejects.toThrow('progress handler failed');
    await s.idle();
    expect(t.started()).toEqual(['step0']);
    expect(closed).toEqual(['closed']);
  });

  it('disposing the lane mid-job runs no further step (and no generator code)', async () => {
    const s = new Scheduler();
    const t = new Trace();
    const head = s.lane();
    const gates = [gate(), gate(), gate()];
    const job = outcome(head.runSteps(asyncTraining(t, gates)));
    await flush();
    const d = head.dispose();
    gates[0]!.open();
    await d;
    await flush();
    expect(job.error).toBeInstanceOf(SessionReleasedError);
    expect(t.events).toEqual(['start step0', 'end step0']);
  });

  it('takes iterables too, obeys the bound for its first step only, and refuses latest-only lanes', async () => {
    const s = new Scheduler({ maxPending: 1 });
    expect(await s.lane().runSteps([1, 2, 3])).toBeUndefined();
    const g = gate();
    const busy = s.lane();
    const running = busy.submit(() => g.promise);
    await flush();
    const waiting = busy.submit(() => 'w');
    await expect(s.lane().runSteps([1])).rejects.toBeInstanceOf(QueueFullError);
    await expect(s.lane({ mode: 'latest-only' }).runSteps([1])).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(s.lane().runSteps(42 as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    g.open();
    await Promise.all([running, waiting]);
  });
});
