import { describe, expect, it } from 'vitest';
import { FineTuner, sgd, Tensor } from '../../sdk/node.js';
import { buildGraph, f32, node } from '../helpers/ir-builder.js';
import { Rng } from '../helpers/random.js';
import { sessionOf } from './fine-tuner-helpers.js';

/**
 * Dropout in the trainable tail is active while training, with a mask drawn from the tuner's seed, and off in
 * evaluate(): the session's inference-time removal of Dropout does not reach the training graph.
 */
function mlpWithDropout() {
  const rng = new Rng(3);
  const r = (n: number) => Array.from({ length: n }, () => rng.normal() * 0.5);
  return buildGraph({
    inputs: [['x', 'float32', ['N', 8]]],
    initializers: { w1: f32(r(8 * 16), [8, 16]), b1: f32(r(16), [16]), w2: f32(r(16 * 3), [16, 3]), b2: f32(r(3), [3]), ratio: f32([0.5], []) },
    nodes: [
      node('MatMul', ['x', 'w1'], ['h0'], {}, 'fc1'),
      node('Add', ['h0', 'b1'], ['h'], {}, 'fc1_bias'),
      node('Relu', ['h'], ['r'], {}, 'relu'),
      node('Dropout', ['r', 'ratio'], ['d'], {}, 'drop'),
      node('MatMul', ['d', 'w2'], ['z0'], {}, 'fc2'),
      node('Add', ['z0', 'b2'], ['logits'], {}, 'fc2_bias'),
    ],
    outputs: ['logits'],
  });
}

describe('FineTuner with Dropout in the tail', () => {
  it('drops units while training (seeded), never in evaluate()', async () => {
    const s = await sessionOf(mlpWithDropout());
    const rng = new Rng(9);
    const n = 32;
    const inputs = new Tensor('float32', Float32Array.from({ length: n * 8 }, () => rng.normal()), [n, 8]);
    const labels = new Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(i % 3)), [n]);
    // lr 0: the weights never move, so any difference between losses comes from Dropout alone.
    const trainLoss = async (seed: number) => {
      const t = await FineTuner.create(s, { trainFrom: 'fc1', optimizer: sgd({ lr: 0 }), seed });
      expect(t.trainable).toEqual(expect.arrayContaining(['w1', 'b1', 'w2', 'b2']));
      const r = await t.fit({ inputs, labels }, { epochs: 1, batchSize: n, shuffle: false });
      const ev = await t.evaluate({ inputs, labels });
      t.dispose();
      return { train: r.history[0]!.loss, evaluate: ev.loss };
    };
    const a = await trainLoss(1);
    const b = await trainLoss(1);
    const c = await trainLoss(2);
    expect(a.train).toBe(b.train); // the same seed draws the same mask
    expect(a.train).not.toBe(a.evaluate); // Dropout was active in training
    expect(c.train).not.toBe(a.train); // another seed, another mask
    expect(c.evaluate).toBe(a.evaluate); // evaluation never drops
    await s.release();
  });
});
