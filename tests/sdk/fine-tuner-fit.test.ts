import { describe, expect, it } from 'vitest';
import type { Graph } from '../../runtime/ir/graph.js';
import { tensorFromNumbers } from '../../runtime/ir/tensor.js';
import { adam, FineTuner, rmsprop, sgd, Tensor, type FitProgress, type StepProgress } from '../../sdk/node.js';
import { mlp, toyData } from '../train/model-fixtures.js';
import { heldSet, images, int64, range, session, sessionOf, trainImages, trainLabels, trainSet, weightsOf } from './fine-tuner-helpers.js';

/** fit() behaviour on the CPU backend: the new head, determinism, validation, early stopping, NaN steps, other losses. */
describe('FineTuner.fit', () => {
  const small = trainSet(range(64));
  const val = heldSet(range(48));

  it('newHead: a fresh [classes, fan_in] Linear-initialized head, the same for the same seed', async () => {
    const s = await session();
    const make = (seed: number, headSeed?: number) => FineTuner.create(s, { newHead: { classes: 7, seed: headSeed }, seed });
    const a = await weightsOf(await make(3));
    const b = await weightsOf(await make(3));
    const c = await weightsOf(await make(3, 4));
    const d = await weightsOf(await make(4, 3)); // newHead.seed wins over the tuner's seed
    expect(a['fc.weight']).toHaveLength(7 * 64);
    expect(a['fc.bias']).toHaveLength(7);
    expect(a).toEqual(b);
    expect(a).toEqual(d);
    expect(c['fc.weight']).not.toEqual(a['fc.weight']);
    // torch.nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
    const all = [...a['fc.weight']!, ...a['fc.bias']!];
    expect(Math.max(...all.map(Math.abs))).toBeLessThanOrEqual(1 / 8);
    expect(Math.max(...all.map(Math.abs))).toBeGreaterThan(0.1);
    expect(Math.abs(all.reduce((x, y) => x + y, 0) / all.length)).toBeLessThan(0.02);
    const logits = (await (await make(3)).predict(images(trainImages, [0, 1]))).logits!;
    expect(logits.dims).toEqual([2, 7]);
    // predict batches internally; the batch size does not change the outputs.
    const tuner = await make(3);
    const whole = (await tuner.predict(images(trainImages, range(23)))).logits!;
    const inFives = (await tuner.predict(images(trainImages, range(23)), { batchSize: 5 })).logits!;
    expect(inFives.dims).toEqual([23, 7]);
    expect(Array.from(inFives.data as Float32Array)).toEqual(Array.from(whole.data as Float32Array));
    // Labels are checked against the new class count.
    const t = await make(3);
    await expect(t.fit({ inputs: images(trainImages, [0, 1]), labels: [0, 7] })).rejects.toThrow(/labels\[1\] is class 7, outside \[0, 7\)/);
    await s.release();
  });

  it('is deterministic for a seed: same shuffles, losses and weights; another seed shuffles differently', async () => {
    const s = await session();
    const run = async (seed: number) => {
      const t = await FineTuner.create(s, { trainFrom: '/conv2/Conv', newHead: { classes: 5 }, seed, optimizer: rmsprop({ lr: 1e-3 }) });
      const losses: number[] = [];
      await t.fit(small, { epochs: 2, batchSize: 16, onProgress: (e) => { if (e.type === 'step') losses.push(e.loss); } });
      return { losses, weights: await weightsOf(t) };
    };
    const a = await run(1);
    const b = await run(1);
    const c = await run(2);
    expect(a.losses).toEqual(b.losses);
    expect(a.weights).toEqual(b.weights);
    expect(c.losses).not.toEqual(a.losses);
    // Caching the trunk's features is an optimization only: the same run without it is bit-identical.
    const t = await FineTuner.create(s, { trainFrom: '/conv2/Conv', newHead: { classes: 5 }, seed: 1, optimizer: rmsprop({ lr: 1e-3 }), cacheFeatures: false });
    const r = await t.fit(small, { epochs: 2, batchSize: 16 });
    expect(r.cachedFeatureBytes).toBe(0);
    expect(await weightsOf(t)).toEqual(a.weights);
    await s.release();
  });

  it('clips gradients: clipGradNorm in fit equals clip.norm at creation, and applies to that call only', async () => {
    const s = await session();
    const opts = { trainFrom: '/conv2/Conv', newHead: { classes: 5 }, optimizer: sgd({ lr: 0.5 }), seed: 3 } as const;
    const norms: number[] = [];
    const created = await FineTuner.create(s, { ...opts, clip: { norm: 0.05 } });
    await created.fit(small, { batchSize: 16, onProgress: (e) => { if (e.type === 'step') norms.push(e.gradNorm); } });
    expect(Math.min(...norms)).toBeGreaterThan(0.05); // so the clip was active on every step
    const perFit = await FineTuner.create(s, opts);
    await perFit.fit(small, { batchSize: 16, clipGradNorm: 0.05 });
    expect(await weightsOf(perFit)).toEqual(await weightsOf(created));
    const unclipped = await FineTuner.create(s, opts);
    await unclipped.fit(small, { batchSize: 16 });
    expect(await weightsOf(unclipped)).not.toEqual(await weightsOf(created));
    // The next fit without the option does not clip: same as an unclipped tuner's second epoch.
    await perFit.fit(small, { batchSize: 16 });
    await created.fit(small, { batchSize: 16, clipGradNorm: 1e9 });
    expect(await weightsOf(perFit)).toEqual(await weightsOf(created));
    await s.release();
  });

  it('reports validation metrics per epoch, the same as evaluate()', async () => {
    const s = await session();
    const tuner = await FineTuner.create(s, { newHead: { classes: 5 }, optimizer: adam({ lr: 0.02 }) });
    const events: FitProgress[] = [];
    const r = await tuner.fit(trainSet(range(320)), { epochs: 3, batchSize: 32, validation: val, onProgress: (e) => { events.push(e); } });
    expect(r.epochs).toBe(3);
    expect(r.steps).toBe(30);
    expect(r.skippedSteps).toBe(0);
    expect(r.cachedFeatureBytes).toBe((320 + 48) * 64 * 4); // the Flatten features [N, 64] of both sets
    expect(events.filter((e) => e.type === 'step')).toHaveLength(30);
    const epochs = events.filter((e) => e.type === 'epoch');
    expect(epochs.map((e) => e.epoch)).toEqual([0, 1, 2]);
    expect(r.history.map((h) => h.valLoss)).toEqual(epochs.map((e) => (e as { valLoss?: number }).valLoss));
    const last = r.history[2]!;
    const direct = await tuner.evaluate(val, { batchSize: 32 });
    expect(last.valLoss).toBeCloseTo(direct.loss, 6);
    expect(last.valAccuracy).toBe(direct.accuracy);
    expect(direct.count).toBe(48);
    expect(last.valAccuracy!).toBeGreaterThan(0.7);
    expect(r.history[2]!.loss).toBeLessThan(r.history[0]!.loss);
    // Step events carry the global step and the batch position.
    const steps = events.filter((e): e is StepProgress => e.type === 'step');
    expect(steps.map((e) => e.step)).toEqual(range(30, 1));
    expect(steps[10]).toMatchObject({ epoch: 1, batch: 0, batches: 10, skipped: false, lr: 0.02 });
    await s.release();
  });

  it('stops early when the metric stops improving, and can restore the best epoch', async () => {
    const s = await session();
    // lr 0: nothing ever improves after the first epoch, so patience 2 stops after epoch 2.
    const frozen = await FineTuner.create(s, { newHead: { classes: 5 }, optimizer: sgd({ lr: 0 }) });
    const r = await frozen.fit(small, { epochs: 10, batchSize: 32, validation: val, earlyStopping: { patience: 2 } });
    expect(r).toMatchObject({ epochs: 3, stoppedEarly: true, bestEpoch: 0 });
    expect(r.history).toHaveLength(3);
    expect(frozen.epochCount).toBe(3);

    // A minDelta no epoch can beat: stops after `patience` epochs; restoreBest rewinds to the state after epoch 0.
    const opts = { newHead: { classes: 5 }, optimizer: adam({ lr: 0.01 }), seed: 2 } as const;
    const once = await FineTuner.create(s, opts);
    await once.fit(small, { epochs: 1, batchSize: 16 });
    const t = await FineTuner.create(s, opts);
    const r2 = await t.fit(small, { epochs: 6, batchSize: 16, earlyStopping: { metric: 'loss', minDelta: 100, patience: 1, restoreBest: true } });
    expect(r2).toMatchObject({ epochs: 2, stoppedEarly: true, bestEpoch: 0 });
    expect(await weightsOf(t)).toEqual(await weightsOf(once));
    expect(t.stepCount).toBe(4);

    // val_accuracy is maximized; it needs a validation set.
    const r3 = await (await FineTuner.create(s, opts)).fit(small, { epochs: 2, batchSize: 16, validation: val, earlyStopping: { metric: 'val_accuracy', patience: 5 } });
    expect(r3.stoppedEarly).toBe(false);
    await expect(t.fit(small, { earlyStopping: { metric: 'val_accuracy' } })).rejects.toThrow(/needs a validation set/);
    await s.release();
  });

  it('skips a step with a non-finite loss, reports it, and keeps the weights', async () => {
    const s = await session();
    const tuner = await FineTuner.create(s, { newHead: { classes: 5 }, optimizer: adam({ lr: 0.01 }) });
    const poisoned = images(trainImages, range(32));
    (poisoned.data as Float32Array)[64 * 20 + 5] = NaN; // example 20
    const before = await weightsOf(tuner);
    const events: StepProgress[] = [];
    const r = await tuner.fit({ inputs: poisoned, labels: int64(range(32).map((i) => trainLabels[i]!)) }, {
      batchSize: 32, onProgress: (e) => { if (e.type === 'step') events.push(e); },
    });
    expect(r).toMatchObject({ steps: 0, skippedSteps: 1 });
    expect(r.history[0]!.loss).toBeNaN();
    expect(events[0]).toMatchObject({ skipped: true, step: 0 });
    expect(events[0]!.reason).toMatch(/loss is NaN.*skipped/);
    expect(await weightsOf(tuner)).toEqual(before);
    expect(tuner.stepCount).toBe(0);

    // Mixed: of 4 batches of 8 (no shuffle) only the one holding example 20 is skipped; the others train.
    const r2 = await tuner.fit({ inputs: poisoned, labels: int64(range(32).map((i) => trainLabels[i]!)) }, { batchSize: 8, shuffle: false, epochs: 2 });
    expect(r2).toMatchObject({ steps: 6, skippedSteps: 2 });
    expect(r2.history.map((h) => h.skippedSteps)).toEqual([1, 1]);
    expect(Number.isFinite(r2.history[1]!.loss)).toBe(true);
    expect(tuner.stepCount).toBe(6);
    await s.release();
  });

  it('trains with mse and bce_with_logits losses on float targets, and a MatMul + Add head', async () => {
    const data = toyData(5, 64);
    const x = Tensor.fromHost(data.x);
    const y = Array.from(data.labels.data as BigInt64Array, Number);
    const oneHot = new Tensor('float32', Float32Array.from(y.flatMap((v) => (v ? [0, 1] : [1, 0]))), [64, 2]);
    const s = await sessionOf(mlp(7, { hidden: 16, dropout: 0.1 }));

    const mse = await FineTuner.create(s, { trainFrom: 'fc2', loss: 'mse', optimizer: adam({ lr: 0.05 }) });
    const m0 = await mse.evaluate({ inputs: x, labels: oneHot });
    await mse.fit({ inputs: x, labels: oneHot }, { epochs: 20, batchSize: 16 });
    const m1 = await mse.evaluate({ inputs: x, labels: oneHot });
    expect(m1.loss).toBeLessThan(0.5 * m0.loss);
    expect(m1.accuracy).toBeUndefined();

    const bce = await FineTuner.create(s, { trainFrom: 'h', loss: 'bce_with_logits', optimizer: adam({ lr: 0.05 }) });
    expect([...bce.trainable].sort()).toEqual(['fc2.bias', 'fc2.weight']); // cut at a value: its producer fc1 stays frozen
    const b0 = await bce.evaluate({ inputs: x, labels: oneHot });
    await bce.fit({ inputs: x, labels: [...range(64).map((i) => oneHot.toHost().data.slice(2 * i, 2 * i + 2))].map((r) => new Tensor('float32', r as Float32Array, [2])) }, { epochs: 20, batchSize: 16 });
    const b1 = await bce.evaluate({ inputs: x, labels: oneHot });
    expect(b1.loss).toBeLessThan(b0.loss);
    expect(b1.accuracy!).toBeGreaterThan(0.85);

    // Cross-entropy on probability targets: accuracy compares the argmaxes.
    const soft = await FineTuner.create(s, { trainFrom: 'fc2', loss: { type: 'cross_entropy', targets: 'probabilities' }, optimizer: adam({ lr: 0.05 }) });
    await soft.fit({ inputs: x, labels: oneHot }, { epochs: 20, batchSize: 16 });
    const hard = await FineTuner.create(s, { trainFrom: 'fc2', optimizer: adam({ lr: 0.05 }) });
    await hard.fit({ inputs: x, labels: y }, { epochs: 20, batchSize: 16 });
    const sm = await soft.evaluate({ inputs: x, labels: oneHot });
    const hm = await hard.evaluate({ inputs: x, labels: y });
    expect(sm.accuracy).toBe(hm.accuracy); // one-hot probabilities are class ids: the same training, the same predictions
    expect(sm.loss).toBeCloseTo(hm.loss, 5);
    await expect(soft.fit({ inputs: x, labels: y })).rejects.toThrow(/number array works when one example is one number; here each is \[2\]/);
    await expect(soft.fit({ inputs: x, labels: Tensor.fromHost(data.labels) })).rejects.toThrow(/data.labels must be float32, got int64/);

    // A MatMul + Add classifier is a head too.
    const g = matmulHead();
    const tuner = await FineTuner.create(await sessionOf(g), { newHead: { classes: 3 }, loss: { type: 'cross_entropy', labelSmoothing: 0.1 } });
    expect(tuner.trainFrom).toBe('head_mm');
    expect(Object.fromEntries(Object.entries(await tuner.getWeights()).map(([k, t]) => [k, t.dims]))).toEqual({ W: [2, 3], b: [3] });
    const r = await tuner.fit({ inputs: x, labels: y }, { epochs: 2, batchSize: 32 });
    expect(r.steps).toBe(4);
  });
});

/** x [N, 2] -> MatMul(W [2, 4]) -> Add(b [4]) -> logits. */
function matmulHead(): Graph {
  return {
    name: 'mm', inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 2] }], outputs: [{ name: 'logits', dtype: 'float32' }],
    initializers: { W: tensorFromNumbers('float32', [2, 4], [1, 2, 3, 4, 5, 6, 7, 8]), b: tensorFromNumbers('float32', [4], [0, 0, 0, 0]) },
    nodes: [
      { name: 'head_mm', op: 'MatMul', domain: '', inputs: ['x', 'W'], outputs: ['xw'], attrs: {} },
      { name: 'head_add', op: 'Add', domain: '', inputs: ['xw', 'b'], outputs: ['logits'], attrs: {} },
    ],
    values: {},
  };
}
