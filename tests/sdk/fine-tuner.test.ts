import { describe, expect, it } from 'vitest';
import { adam, FineTuner, Tensor, type StepProgress } from '../../sdk/node.js';
import { heldSet, images, int64, meta, session, trainImages, trainLabels } from './fine-tuner-helpers.js';

/**
 * The public FineTuner replaying the PyTorch-recorded transfer-learning run (tests/fixtures/transfer): the digits
 * CNN trained on digits 0-4 gets a new 64 -> 5 head for digits 5-9, trained with Adam on the exact batches PyTorch
 * used. Unlike tests/train/transfer-replay.test.ts (the training core on PyTorch's features), everything goes
 * through the public API: the session's optimized graph, EdgeKit's own trunk features, the label forms users pass.
 */
describe('FineTuner replays the recorded PyTorch transfer-learning run', () => {
  it('follows the recorded loss curve step by step and reaches the recorded held-out accuracy', async () => {
    const s = await session();
    const ht = meta.head_training;
    const tuner = await FineTuner.create(s, {
      newHead: { classes: 5 },
      loss: 'cross_entropy',
      optimizer: adam({ lr: ht.optimizer.lr, betas: ht.optimizer.betas, eps: ht.optimizer.eps }),
    });
    expect(tuner.trainFrom).toBe(meta.trunk.head_node);
    expect([...tuner.trainable].sort()).toEqual(['fc.bias', 'fc.weight']);
    // PyTorch's initial head (a seeded nn.Linear there), so both runs start from the same point.
    await tuner.setWeights({
      'fc.weight': new Tensor('float32', Float32Array.from(meta.initial.weight.flat()), [5, 64]),
      'fc.bias': new Tensor('float32', Float32Array.from(meta.initial.bias), [5]),
    });
    const before = await tuner.evaluate(heldSet());
    expect(Math.abs(before.accuracy! - meta.initial.heldout_accuracy)).toBeLessThanOrEqual(0.01);

    // One fit call per recorded epoch, examples in PyTorch's order; each epoch passes the data in another accepted form.
    const losses: number[] = [];
    const onProgress = (e: { type: string }) => {
      if (e.type === 'step') losses.push((e as StepProgress).loss);
    };
    for (let e = 0; e < ht.epochs; e++) {
      const order = ht.order[e]!;
      const ys = order.map((i) => trainLabels[i]!);
      const data =
        e === 0 ? { inputs: images(trainImages, order), labels: int64(ys) }
        : e === 1 ? { inputs: images(trainImages, order), labels: new Tensor('int32', Int32Array.from(ys), [ys.length]) }
        : { inputs: order.map((i) => images(trainImages, [i])), labels: ys }; // per-example [1, 1, 8, 8] tensors, plain ids
      const r = await tuner.fit(data, { epochs: 1, batchSize: ht.batch_size, shuffle: false, onProgress });
      expect(r.skippedSteps).toBe(0);
      expect(r.steps).toBe(order.length / ht.batch_size);
    }
    expect(losses).toHaveLength(ht.steps);
    const worst = Math.max(...losses.map((l, s) => Math.abs(l - meta.losses[s]!)));
    expect(worst).toBeLessThan(1e-3);
    expect(tuner.stepCount).toBe(ht.steps);
    expect(tuner.epochCount).toBe(ht.epochs);

    const w = await tuner.getWeights();
    const want = meta.final.weight.flat();
    const got = w['fc.weight']!.data as Float32Array;
    expect(Math.max(...want.map((v, i) => Math.abs(got[i]! - v)))).toBeLessThan(1e-3);

    const after = await tuner.evaluate(heldSet());
    expect(after.count).toBe(meta.data.heldout_size);
    expect(Math.abs(after.accuracy! - meta.final.heldout_accuracy)).toBeLessThanOrEqual(0.01);
    expect(after.loss).toBeLessThan(before.loss);
    tuner.dispose();
    await s.release();
  });
});
