import { describe, expect, it } from 'vitest';
import { exportOnnx } from '../../importers/onnx/index.js';
import { FineTuner, InferenceSession, sgd, Tensor } from '../../sdk/node.js';
import { buildGraph, f32, node } from '../helpers/ir-builder.js';
import { Rng } from '../helpers/random.js';

/**
 * Only weights train. A tail written the way exporters write it — a Constant node's value (x / 255 style scaling), a
 * single-number initializer (a threshold), ReLU6 as Clip(x, 0, 6) — trains its weight matrices; the constants stay
 * what the model says, and the Clip in front of the head passes gradients to the weights before it.
 */
function model(): Uint8Array {
  const rng = new Rng(5);
  const r = (n: number) => Array.from({ length: n }, () => rng.normal() * 0.5);
  const g = buildGraph({
    inputs: [['x', 'float32', ['N', 6]]],
    initializers: { w1: f32(r(6 * 8), [6, 8]), w2: f32(r(8 * 3), [8, 3]), shift: f32([0.25], []), lo: f32([0], []), hi: f32([6], []) },
    nodes: [
      node('Constant', [], ['scale'], { value: { type: 'tensor', value: f32([0.5], []) } }, 'scale_const'),
      node('MatMul', ['x', 'w1'], ['h'], {}, 'fc1'),
      node('Mul', ['h', 'scale'], ['hs'], {}, 'scale_mul'),
      node('Add', ['hs', 'shift'], ['hb'], {}, 'shift_add'),
      node('Clip', ['hb', 'lo', 'hi'], ['r'], {}, 'relu6'),
      node('MatMul', ['r', 'w2'], ['logits'], {}, 'fc2'),
    ],
    outputs: ['logits'],
  });
  return exportOnnx(g);
}

describe('FineTuner trains weights, never the model\'s constants', () => {
  it('freezes Constant-node values and single numbers, and trains through Clip', async () => {
    const s = await InferenceSession.create(model(), { backend: 'cpu' });
    const tuner = await FineTuner.create(s, { trainFrom: 'fc1', optimizer: sgd({ lr: 0.1 }) });
    expect([...tuner.trainable].sort()).toEqual(['w1', 'w2']);
    const frozen = Object.fromEntries(tuner.frozen.map((f) => [f.name, f.reason]));
    expect(frozen.scale).toMatch(/constant of the model/);
    expect(frozen.shift).toMatch(/single number/);
    const rng = new Rng(2);
    const inputs = new Tensor('float32', Float32Array.from({ length: 16 * 6 }, () => rng.normal()), [16, 6]);
    const labels = new Tensor('int64', BigInt64Array.from({ length: 16 }, (_, i) => BigInt(i % 3)), [16]);
    const before = await tuner.getWeights();
    await tuner.fit({ inputs, labels }, { epochs: 2, batchSize: 8 });
    const after = await tuner.getWeights();
    // w1 sits before the Clip: it moved only because Clip passes gradients.
    expect(Array.from(after.w1!.data as Float32Array)).not.toEqual(Array.from(before.w1!.data as Float32Array));
    expect(Object.keys(after).sort()).toEqual(['w1', 'w2']);
    tuner.dispose();
    await s.release();
  });
});
