import { describe, expect, it } from 'vitest';
import { adamw, cosineLr, FineTuner, InferenceSession, InvalidArgumentError, type FineTunerOptions } from '../../sdk/node.js';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { modelPath, range, trainSet, weightsOf } from '../sdk/fine-tuner-helpers.js';

/**
 * Fine-tuning interrupted mid-epoch (issue #14): a checkpoint saved after any step — here from onProgress, right
 * before the callback throws to stop fit() — loaded into a new tuner resumes at the next batch of the same
 * shuffled epoch, and ends with the weights (and optimizer state) of the uninterrupted run, bit for bit.
 */

const data = trainSet(range(96, 200));
const BATCHES = 5; // 96 examples in batches of 20: four full and one of 16
const EPOCHS = 3;
const options = (o: Partial<FineTunerOptions> = {}): FineTunerOptions => ({ trainFrom: '/conv2/Conv', newHead: { classes: 5 }, optimizer: adamw({ lr: 5e-3 }), seed: 11, ...o });
const fitOpts = { batchSize: 20, lrSchedule: cosineLr(5e-3, { totalSteps: 15 }), clipGradNorm: 1 };

class Stop extends Error {}

async function interruptedAt(backend: 'cpu' | 'webgpu', step: number): Promise<{ weights: Record<string, number[]>; ckpt: Uint8Array; resumed: FineTuner; s: InferenceSession }> {
  const s = await InferenceSession.create(modelPath, { backend });
  const first = await FineTuner.create(s, options());
  let ckpt: Uint8Array | undefined;
  let done = 0;
  const err = await first
    .fit(data, {
      ...fitOpts, epochs: EPOCHS,
      onProgress: async (p) => {
        if (p.type !== 'step' || ++done < step) return;
        ckpt = await first.saveCheckpoint();
        throw new Stop('interrupted');
      },
    })
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(Stop);
  first.dispose();
  const resumed = await FineTuner.create(s, options({ seed: 5 }));
  await resumed.loadCheckpoint(ckpt!);
  expect(resumed.stepCount).toBe(step);
  const inEpoch = step % BATCHES;
  expect(resumed.epochPosition).toEqual(inEpoch ? { batch: inEpoch, batches: BATCHES } : undefined);
  // The interrupted epoch is the first epoch of this call.
  await resumed.fit(data, { ...fitOpts, epochs: EPOCHS - Math.floor(step / BATCHES) });
  return { weights: await weightsOf(resumed), ckpt: await resumed.saveCheckpoint(), resumed, s };
}

describe('fine-tuning interrupted mid-epoch', () => {
  it('a checkpoint saved after step 1, 3, 4, 5, 6, 9, 11 or 14 of 15 resumes to the uninterrupted weights (CPU)', async () => {
    const s = await InferenceSession.create(modelPath, { backend: 'cpu' });
    const straight = await FineTuner.create(s, options());
    await straight.fit(data, { ...fitOpts, epochs: EPOCHS });
    const want = await weightsOf(straight);
    const wantCkpt = await straight.saveCheckpoint();
    for (const step of [1, 3, 4, 5, 6, 9, 11, 14]) {
      const r = await interruptedAt('cpu', step);
      expect(r.resumed.stepCount, `interrupted after step ${step}`).toBe(15);
      expect(r.resumed.epochCount).toBe(EPOCHS);
      expect(r.weights, `interrupted after step ${step}`).toEqual(want);
      expect(r.ckpt, `optimizer state after step ${step}`).toEqual(wantCkpt);
      r.resumed.dispose();
      await r.s.release();
    }
    await s.release();
  }, 300_000);

  it('the same on WebGPU (training steps on the GPU), interrupted mid-epoch', async () => {
    await gpuForTests();
    const s = await InferenceSession.create(modelPath, { backend: 'webgpu' });
    const straight = await FineTuner.create(s, options());
    await straight.fit(data, { ...fitOpts, epochs: EPOCHS });
    const r = await interruptedAt('webgpu', 7);
    expect(r.weights).toEqual(await weightsOf(straight));
    r.resumed.dispose();
    await r.s.release();
    await s.release();
  }, 300_000);

  it('continuing with other data or batch size is refused; restartEpoch() starts a fresh epoch instead', async () => {
    const s = await InferenceSession.create(modelPath, { backend: 'cpu' });
    const t = await FineTuner.create(s, options());
    await t.fit(data, { ...fitOpts, epochs: 1, onProgress: (p) => { if (p.type === 'step' && p.batch === 1) throw new Stop('stop'); } }).catch(() => {});
    expect(t.epochPosition).toEqual({ batch: 2, batches: BATCHES });
    const e = await t.fit(data, { ...fitOpts, batchSize: 32, epochs: 1 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect((e as Error).message).toMatch(/stopped at batch 2 of 5 .* same data and batchSize/);
    t.restartEpoch();
    expect(t.epochPosition).toBeUndefined();
    expect(t.epochCount).toBe(1);
    await t.fit(data, { ...fitOpts, batchSize: 32, epochs: 1 });
    expect(t.epochCount).toBe(2);
    t.dispose();
    await s.release();
  }, 120_000);
});
