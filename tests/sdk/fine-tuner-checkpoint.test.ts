import { describe, expect, it } from 'vitest';
import { adam, adamw, cosineLr, FineTuner, InvalidArgumentError, sgd, type FineTunerOptions } from '../../sdk/node.js';
import { otherModelPath, range, session, trainSet, weightsOf } from './fine-tuner-helpers.js';

/**
 * Checkpoints: save -> load into a NEW tuner -> continue must give bit-identical weights to an uninterrupted run
 * (weights, optimizer moments, step counter for the schedule, epoch counter for the shuffle stream), and a
 * checkpoint of another program must be rejected before anything changes.
 */
const data = trainSet(range(96, 200));
// The deeper cut: the second Conv (BatchNorm folded in), ReLU, MaxPool, Flatten and a new head all train.
const options = (o: Partial<FineTunerOptions> = {}): FineTunerOptions => ({
  trainFrom: '/conv2/Conv', newHead: { classes: 5 }, optimizer: adamw({ lr: 5e-3 }), seed: 11, ...o,
});
const fitOpts = { batchSize: 20, lrSchedule: cosineLr(5e-3, { totalSteps: 20 }), clipGradNorm: 1 }; // 5 batches per epoch, the last one partial

describe('FineTuner checkpoints', () => {
  it('resumes exactly: 2 epochs + save + load into a new tuner + 2 epochs == 4 epochs', async () => {
    const s = await session();
    const straight = await FineTuner.create(s, options());
    await straight.fit(data, { ...fitOpts, epochs: 4 });

    const first = await FineTuner.create(s, options());
    await first.fit(data, { ...fitOpts, epochs: 2 });
    const ckpt = await first.saveCheckpoint();
    first.dispose();
    expect(new TextDecoder().decode(ckpt.subarray(0, 8))).toBe('EKFTCKPT');

    // A different seed and a different head seed here: the checkpoint's seed and weights win.
    const resumed = await FineTuner.create(s, options({ seed: 99, newHead: { classes: 5, seed: 5 } }));
    await resumed.loadCheckpoint(ckpt);
    expect(resumed.stepCount).toBe(10);
    expect(resumed.epochCount).toBe(2);
    await resumed.fit(data, { ...fitOpts, epochs: 2 });

    expect(resumed.stepCount).toBe(straight.stepCount);
    expect(await weightsOf(resumed)).toEqual(await weightsOf(straight));
    // The optimizer state matches too: the next checkpoints are byte-identical.
    expect(await resumed.saveCheckpoint()).toEqual(await straight.saveCheckpoint());
    await s.release();
  });

  it('rejects checkpoints of another model, cut or optimizer, and damaged bytes, without changing anything', async () => {
    const s = await session();
    const tuner = await FineTuner.create(s, options());
    await tuner.fit(data, { epochs: 1, batchSize: 32 });
    const ckpt = await tuner.saveCheckpoint();
    const before = await weightsOf(tuner);

    const reject = async (target: FineTuner, bytes: unknown, reason: string, message: RegExp) => {
      const err = await target.loadCheckpoint(bytes as Uint8Array).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as InvalidArgumentError).details.reason).toBe(reason);
      expect((err as Error).message).toMatch(message);
    };

    const otherSession = await session(otherModelPath); // the 10-class digits CNN: same architecture, other weights
    const other = await FineTuner.create(otherSession, options());
    const otherBefore = await weightsOf(other);
    await reject(other, ckpt, 'model', /different model/);
    expect(await weightsOf(other)).toEqual(otherBefore);

    const headOnly = await FineTuner.create(s, options({ trainFrom: undefined }));
    await reject(headOnly, ckpt, 'model', /different cut or head.*trainFrom '\/conv2\/Conv'.*trainFrom '\/fc\/Gemm'/);
    await reject(await FineTuner.create(s, options({ optimizer: sgd({ lr: 0.1, momentum: 0.9 }) })), ckpt, 'optimizer', /adamw state \(2 slot\(s\)\).*sgd \(1\)/);

    const damaged = ckpt.slice();
    damaged[damaged.length - 40]! ^= 1;
    await reject(tuner, damaged, 'corrupt', /checksum/);
    await reject(tuner, ckpt.subarray(0, ckpt.length - 8), 'corrupt', /checksum/);
    await reject(tuner, new Uint8Array(64), 'not-a-checkpoint', /not an EdgeKit fine-tuning checkpoint/);
    await reject(tuner, 'ckpt', 'not-a-checkpoint', /Uint8Array/);
    expect(await weightsOf(tuner)).toEqual(before);

    // Same kind of optimizer with other hyper-parameters is fine: the state carries over, the new rates apply.
    const retuned = await FineTuner.create(s, options({ optimizer: adamw({ lr: 1e-4, weightDecay: 0 }) }));
    await retuned.loadCheckpoint(ckpt);
    expect(await weightsOf(retuned)).toEqual(before);
    await expect(FineTuner.create(s, options({ optimizer: adam() })).then((t) => t.loadCheckpoint(ckpt))).rejects.toThrow(/adamw state/);
    await otherSession.release();
    await s.release();
  });
});
