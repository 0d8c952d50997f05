import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CancelledError } from '../../runtime/errors.js';
import { FineTuner, InferenceSession, Tensor, adam } from '../../sdk/node.js';
import { createWorker, type EdgeKitWorker, type WorkerSession } from '../../sdk/worker/client.js';
import { WorkerFineTuner } from '../../sdk/worker/tuner-client.js';
import { modelPath, range, trainSet, weightsOf } from '../sdk/fine-tuner-helpers.js';

/**
 * The worker's FineTuner has the main thread's state API: counters, getWeights/setWeights, checkpoints that move
 * between a worker tuner and a main-thread one, and an interrupted epoch's position.
 */
const ENTRY = new URL('./worker-entry.mjs', import.meta.url);
const OPTIONS = { trainFrom: '/conv2/Conv', newHead: { classes: 5 }, seed: 3, optimizer: adam({ lr: 2e-3 }) };
const FIT = { batchSize: 16 }; // 64 examples: 4 steps per epoch

describe('WorkerFineTuner state, against FineTuner on the main thread', () => {
  let worker: EdgeKitWorker;
  let ws: WorkerSession;
  let main: InferenceSession;
  beforeAll(async () => {
    worker = await createWorker({ url: ENTRY });
    ws = await worker.createSession(modelPath, { backend: 'cpu' });
    main = await InferenceSession.create(modelPath, { backend: 'cpu' });
  });
  afterAll(async () => {
    await main?.release();
    await worker?.terminate();
  });

  it('a checkpoint saved in the worker resumes on the main thread exactly, and back', async () => {
    const data = trainSet(range(64));
    const straight = await FineTuner.create(main, OPTIONS);
    await straight.fit(data, { ...FIT, epochs: 3 });

    const remote = await WorkerFineTuner.create(ws, OPTIONS);
    expect(remote.trainable).toEqual(straight.trainable);
    expect([remote.stepCount, remote.epochCount]).toEqual([0, 0]);
    await remote.fit(data, { ...FIT, epochs: 1 });
    expect([remote.stepCount, remote.epochCount]).toEqual([4, 1]);

    const local = await FineTuner.create(main, OPTIONS);
    await local.loadCheckpoint(await remote.saveCheckpoint());
    await local.fit(data, { ...FIT, epochs: 1 });
    // ... and back into the worker for the last epoch.
    const ckpt = await local.saveCheckpoint();
    await remote.loadCheckpoint(ckpt);
    expect(ckpt.length).toBeGreaterThan(0); // copied, not transferred
    expect([remote.stepCount, remote.epochCount]).toEqual([8, 2]);
    await remote.fit(data, { ...FIT, epochs: 1 });
    expect(remote.stepCount).toBe(straight.stepCount);
    expect(await weightsOf(remote)).toEqual(await weightsOf(straight));
    await remote.dispose();
    local.dispose();
    straight.dispose();
  }, 120_000);

  it('setWeights in the worker changes predictions as on the main thread', async () => {
    const remote = await WorkerFineTuner.create(ws, OPTIONS);
    const local = await FineTuner.create(main, OPTIONS);
    const w = await local.getWeights();
    const name = remote.trainable[remote.trainable.length - 1]!;
    const t = w[name]!;
    const zero = new Tensor('float32', new Float32Array(t.data.length), t.dims);
    await local.setWeights({ [name]: zero });
    await remote.setWeights({ [name]: zero });
    expect((zero.data as Float32Array).length).toBe(t.data.length); // the caller's tensor stays usable
    expect(await weightsOf(remote)).toEqual(await weightsOf(local));
    await remote.dispose();
    local.dispose();
  }, 60_000);

  it('an epoch interrupted by a signal reports its position; restartEpoch forgets it', async () => {
    const remote = await WorkerFineTuner.create(ws, OPTIONS);
    const ac = new AbortController();
    let steps = 0;
    const fit = remote.fit(trainSet(range(64)), {
      ...FIT,
      epochs: 1,
      signal: ac.signal,
      onProgress: (e) => {
        if (e.type === 'step' && ++steps === 2) ac.abort();
      },
    });
    await expect(fit).rejects.toBeInstanceOf(CancelledError);
    expect(remote.stepCount).toBe(2);
    expect(remote.epochPosition).toEqual({ batch: 2, batches: 4 });
    await remote.restartEpoch();
    expect(remote.epochPosition).toBeUndefined();
    expect(remote.epochCount).toBe(1);
    await remote.dispose();
  }, 60_000);
});
