import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CancelledError, InvalidArgumentError } from '../../runtime/errors.js';
import { FineTuner, InferenceSession, Tensor, rmsprop, type FitProgress } from '../../sdk/node.js';
import { createWorker, type EdgeKitWorker, type WorkerSession } from '../../sdk/worker/client.js';
import { WorkerFineTuner } from '../../sdk/worker/tuner-client.js';
import { heldSet, images, modelPath, range, trainImages, trainSet } from '../sdk/fine-tuner-helpers.js';

const ENTRY = new URL('./worker-entry.mjs', import.meta.url);
const OPTIONS = { trainFrom: '/conv2/Conv', newHead: { classes: 5 }, seed: 1, optimizer: rmsprop({ lr: 1e-3 }) };

describe('FineTuner in a worker (worker_threads), against the main thread', () => {
  let worker: EdgeKitWorker;
  let ws: WorkerSession;
  beforeAll(async () => {
    worker = await createWorker({ url: ENTRY });
    ws = await worker.createSession(modelPath, { backend: 'cpu' });
  });
  afterAll(async () => {
    await worker?.terminate();
  });

  it('trains to the same losses, metrics, predictions and exported model', async () => {
    const data = trainSet(range(64));
    const val = heldSet(range(32));
    const main = await InferenceSession.create(modelPath, { backend: 'cpu' });
    const local = await FineTuner.create(main, OPTIONS);
    const remote = await WorkerFineTuner.create(ws, OPTIONS);
    const lossesOf = async (fit: (o: { onProgress: (e: FitProgress) => void }) => Promise<unknown>) => {
      const losses: number[] = [];
      const result = await fit({ onProgress: (e) => void (e.type === 'step' && losses.push(e.loss)) });
      return { losses, result };
    };
    const a = await lossesOf((o) => local.fit(data, { epochs: 2, batchSize: 16, validation: val, ...o }));
    const b = await lossesOf((o) => remote.fit(data, { epochs: 2, batchSize: 16, validation: val, ...o }));
    expect(a.losses).toHaveLength(8);
    expect(b.losses).toEqual(a.losses);
    expect(b.result).toEqual(a.result);
    // The dataset was copied, not transferred: it is still usable here.
    expect((data.inputs.data as Float32Array).length).toBe(64 * 64);
    expect(await remote.evaluate(val)).toEqual(await local.evaluate(val));
    const x = images(trainImages, [1, 2, 3]);
    const [pa, pb] = [await local.predict(x), await remote.predict(x)];
    expect(Object.keys(pb)).toEqual(Object.keys(pa));
    for (const k of Object.keys(pa)) expect(Array.from(pb[k]!.data as Float32Array)).toEqual(Array.from(pa[k]!.data as Float32Array));
    expect(Array.from(await remote.exportOnnx())).toEqual(Array.from(await local.exportOnnx()));
    await remote.dispose();
    local.dispose();
    await main.release();
  });

  it('inference on the same session runs between two training steps', async () => {
    const tuner = await WorkerFineTuner.create(ws, OPTIONS);
    let served = -1;
    let expected: number[] = [];
    const x = () => new Tensor('float32', trainImages.slice(0, 64), [1, 1, 8, 8]);
    expected = Array.from((await ws.run({ [ws.inputNames[0]!]: x() }))[ws.outputNames[0]!]!.data as Float32Array);
    let steps = 0;
    await tuner.fit(trainSet(range(64)), {
      epochs: 1,
      batchSize: 8,
      onProgress: async (e) => {
        if (e.type !== 'step') return;
        steps++;
        // fit waits for this callback, which waits for a run: it completes only if the device is free between steps.
        if (steps === 3) {
          const out = await ws.run({ [ws.inputNames[0]!]: x() });
          expect(out[ws.outputNames[0]!]!.data.length).toBe(expected.length);
          served = steps;
        }
      },
    });
    expect(steps).toBe(8);
    expect(served).toBe(3);
    await tuner.dispose();
  }, 60_000); // if the lane were held while fit awaits its callback, this would deadlock: fail in a minute, not two

  it('a signal stops fit before the next step; the tuner stays usable; lrSchedule is refused', async () => {
    const tuner = await WorkerFineTuner.create(ws, OPTIONS);
    const ac = new AbortController();
    let steps = 0;
    const err = await tuner
      .fit(trainSet(range(64)), { epochs: 1, batchSize: 8, signal: ac.signal, onProgress: (e) => void (e.type === 'step' && ++steps === 2 && ac.abort()) })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledError);
    expect(steps).toBe(2);
    // The interrupted epoch resumes where it stopped (FineTuner's resume rule): the same data finishes its 6 batches.
    const r = await tuner.fit(trainSet(range(64)), { epochs: 1, batchSize: 8 });
    expect(r.steps).toBe(6);
    await expect(tuner.fit(trainSet(range(16)), { lrSchedule: () => 1e-3 } as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    await tuner.dispose();
    await expect(tuner.evaluate(heldSet(range(8)))).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('a signal cancels evaluate and predict: before they are sent, and while they wait behind a fit', async () => {
    const tuner = await WorkerFineTuner.create(ws, OPTIONS);
    const pre = new AbortController();
    pre.abort();
    await expect(tuner.evaluate(heldSet(range(8)), { signal: pre.signal })).rejects.toBeInstanceOf(CancelledError);
    await expect(tuner.predict(heldSet(range(8)).inputs, { signal: pre.signal })).rejects.toBeInstanceOf(CancelledError);
    // A 'user-blocking' fit takes the turn back after every step before a 'background' evaluate can have it, so the
    // evaluate waits in the worker until the abort (sent right after it) cancels it there.
    const ac = new AbortController();
    const fit = tuner.fit(trainSet(range(64)), { epochs: 1, batchSize: 8, priority: 'user-blocking' });
    const waiting = tuner.evaluate(heldSet(range(8)), { signal: ac.signal, priority: 'background' }).catch((e: unknown) => e);
    ac.abort();
    expect(await waiting).toBeInstanceOf(CancelledError);
    expect((await fit).steps).toBe(8);
    // Still usable, and an unaborted call answers.
    expect((await tuner.evaluate(heldSet(range(8)), { signal: new AbortController().signal })).count).toBe(8);
    await tuner.dispose();
  });
});
