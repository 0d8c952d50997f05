import { describe, expect, it } from 'vitest';
import { CancelledError, DisposedTensorError, InvalidArgumentError, SessionReleasedError } from '../../runtime/errors.js';
import { Scheduler, type TaskPriority } from '../../runtime/scheduler/index.js';
import { FineTuner, InferenceSession, type FitProgress } from '../../sdk/node.js';
import { images, modelPath, range, trainImages, trainSet } from './fine-tuner-helpers.js';

/**
 * A main-thread FineTuner queues on its session's scheduler like the session's runs (sdk/fine-tuner/turn.ts): fit()
 * takes the device one step at a time at 'background' priority, so a run issued during a fit runs between two steps;
 * evaluate and predict queue too; a signal stops a fit before its next step; nothing runs after dispose or release.
 * CPU backend; tests/sdk/fine-tuner-queue-webgpu.test.ts does the same on WebGPU.
 */
const data = trainSet(range(320)); // 5 steps of 64
const feed = () => ({ input: images(trainImages, [0, 1]) });

async function setup(priority?: TaskPriority) {
  const scheduler = new Scheduler();
  const s = await InferenceSession.create(modelPath, { backend: 'cpu', scheduler });
  const tuner = await FineTuner.create(s, { newHead: { classes: 5 }, ...(priority ? { priority } : {}) });
  return { scheduler, s, tuner };
}

/** fit() with a run of `s` issued (not awaited) from the progress event of step 1; returns the order of events. */
async function runIssuedMidFit(s: InferenceSession, tuner: FineTuner, runPriority: TaskPriority): Promise<string[]> {
  const log: string[] = [];
  let run: Promise<unknown> | undefined;
  await tuner.fit(data, {
    batchSize: 64,
    onProgress: (e: FitProgress) => {
      log.push(e.type === 'step' ? `step${e.batch}` : 'epoch');
      if (e.type === 'step' && e.batch === 1) run = s.run(feed(), { priority: runPriority }).then(() => log.push('run'));
    },
  });
  log.push('fit done');
  await run;
  return log;
}

/** A request on a lane of its own that holds the device until open() is called; resolves once it holds it. */
async function holdDevice(scheduler: Scheduler) {
  let release!: () => void;
  const held = scheduler.lane({ name: 'blocker' }).submit(() => new Promise<void>((r) => (release = r)));
  await new Promise((r) => setTimeout(r, 0)); // the blocker has the device
  return { held, open: () => release() };
}

describe('FineTuner work goes through the session’s scheduler', () => {
  it("a 'user-blocking' run issued during fit runs between two steps of a 'background' fit", async () => {
    const { s, tuner } = await setup();
    const log = await runIssuedMidFit(s, tuner, 'user-blocking');
    expect(log).toEqual(['step0', 'step1', 'run', 'step2', 'step3', 'step4', 'epoch', 'fit done']);
    tuner.dispose();
    await s.release();
  });

  it("with the tuner at 'user-blocking', a 'background' run waits for the end of the fit", async () => {
    const { s, tuner } = await setup('user-blocking');
    const log = await runIssuedMidFit(s, tuner, 'background');
    expect(log.indexOf('run')).toBeGreaterThan(log.indexOf('epoch'));
    expect(log.slice(0, 6)).toEqual(['step0', 'step1', 'step2', 'step3', 'step4', 'epoch']);
    tuner.dispose();
    await s.release();
  });

  it("on a 'latest-only' session, frames supersede each other but never the tuner's steps (the tuner has its own lane)", async () => {
    const scheduler = new Scheduler();
    const s = await InferenceSession.create(modelPath, { backend: 'cpu', scheduler, queue: 'latest-only', priority: 'user-blocking' });
    const tuner = await FineTuner.create(s, { newHead: { classes: 5 } });
    const frames: Promise<unknown>[] = [];
    const r = await tuner.fit(data, {
      batchSize: 64,
      onProgress: (e) => {
        if (e.type === 'step' && e.batch < 3) frames.push(s.run(feed()).then(() => 'ran', (err: unknown) => (err as CancelledError).reason));
        if (e.type === 'step' && e.batch < 3) frames.push(s.run(feed()).then(() => 'ran', (err: unknown) => (err as CancelledError).reason));
      },
    });
    expect(r.steps).toBe(5);
    expect(await Promise.all(frames)).toEqual(['superseded', 'ran', 'superseded', 'ran', 'superseded', 'ran']);
    tuner.dispose();
    await s.release();
  });

  it('fit waits while another request holds the device; a per-call priority overrides the tuner’s', async () => {
    const { scheduler, s, tuner } = await setup();
    const { held, open } = await holdDevice(scheduler);
    const order: string[] = [];
    let steps = 0;
    const fit = tuner.fit(data, { batchSize: 64, epochs: 1, onProgress: (e) => void (e.type === 'step' && steps++) }).then(() => order.push('fit'));
    const run = s.run(feed()).then(() => order.push('run')); // 'user-visible', the session's default
    const urgent = tuner.predict(images(trainImages, [2]), { priority: 'user-blocking' }).then(() => order.push('predict'));
    await new Promise((r) => setTimeout(r, 50));
    expect(steps).toBe(0); // nothing of the tuner ran while the device was taken
    expect(order).toEqual([]);
    open();
    await Promise.all([held, fit, run, urgent]);
    expect(order).toEqual(['predict', 'run', 'fit']);
    tuner.dispose();
    await s.release();
  });

  it('evaluate and predict queue behind higher-priority runs at the tuner’s default priority', async () => {
    const { scheduler, s, tuner } = await setup();
    const { held, open } = await holdDevice(scheduler);
    const order: string[] = [];
    const ev = tuner.evaluate(data).then(() => order.push('evaluate'));
    const pr = tuner.predict(images(trainImages, [3])).then(() => order.push('predict'));
    const run = s.run(feed()).then(() => order.push('run'));
    open();
    await Promise.all([held, ev, pr, run]);
    expect(order).toEqual(['run', 'evaluate', 'predict']);
    tuner.dispose();
    await s.release();
  });

  it('a signal stops fit before its next step; the steps done stay and the next fit resumes the epoch', async () => {
    const { s, tuner } = await setup();
    await expect(tuner.fit(data, { batchSize: 64, signal: AbortSignal.abort() })).rejects.toBeInstanceOf(CancelledError);
    expect(tuner.stepCount).toBe(0);
    const ac = new AbortController();
    const seen: number[] = [];
    const fit = tuner.fit(data, {
      batchSize: 64, shuffle: false, signal: ac.signal,
      onProgress: (e) => {
        if (e.type !== 'step') return;
        seen.push(e.batch);
        if (e.batch === 2) ac.abort();
      },
    });
    await expect(fit).rejects.toMatchObject({ name: 'CancelledError', reason: 'aborted' });
    expect(seen).toEqual([0, 1, 2]);
    expect(tuner.stepCount).toBe(3);
    expect(tuner.epochPosition).toEqual({ batch: 3, batches: 5 });
    const rest: number[] = [];
    const r = await tuner.fit(data, { batchSize: 64, shuffle: false, onProgress: (e) => void (e.type === 'step' && rest.push(e.batch)) });
    expect(rest).toEqual([3, 4]);
    expect(r.steps).toBe(2);
    expect(tuner.stepCount).toBe(5);
    await expect(tuner.evaluate(data, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(CancelledError);
    await expect(tuner.fit(data, { priority: 'urgent' as TaskPriority })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(FineTuner.create(s, { newHead: { classes: 5 }, priority: 'soon' as TaskPriority })).rejects.toBeInstanceOf(InvalidArgumentError);
    tuner.dispose();
    await s.release();
  });

  it('a tuner disposed during fit runs no further step: fit and later calls reject with DisposedTensorError', async () => {
    const { s, tuner } = await setup();
    const seen: number[] = [];
    const fit = tuner.fit(data, {
      batchSize: 64,
      onProgress: (e) => {
        if (e.type !== 'step') return;
        seen.push(e.batch);
        if (e.batch === 1) tuner.dispose();
      },
    });
    await expect(fit).rejects.toBeInstanceOf(DisposedTensorError);
    expect(seen).toEqual([0, 1]);
    await expect(tuner.evaluate(data)).rejects.toBeInstanceOf(DisposedTensorError);
    await expect(tuner.fit(data)).rejects.toBeInstanceOf(DisposedTensorError);
    expect(first(await s.run(feed()))).toBeTypeOf('number'); // the session is not affected
    await s.release();
  });

  it('a session released during fit: no further step runs, and its waiting tuner work rejects with SessionReleasedError', async () => {
    const { s, tuner } = await setup();
    const seen: number[] = [];
    const fit = tuner.fit(data, {
      batchSize: 64,
      onProgress: (e) => {
        if (e.type !== 'step') return;
        seen.push(e.batch);
        if (e.batch === 1) void s.release();
      },
    });
    await expect(fit).rejects.toBeInstanceOf(SessionReleasedError);
    expect(seen).toEqual([0, 1]);
    await expect(tuner.predict(images(trainImages, [0]))).rejects.toBeInstanceOf(SessionReleasedError);
    await expect(FineTuner.create(s, { newHead: { classes: 5 } })).rejects.toBeInstanceOf(SessionReleasedError);
    tuner.dispose();
  });
});

const first = (o: Record<string, { data: unknown }>) => (Object.values(o)[0]!.data as Float32Array)[0];
