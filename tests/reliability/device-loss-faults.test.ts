import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { acquireDevice } from '../../runtime/backends/webgpu/device.js';
import { adam, DeviceError, FineTuner, InferenceSession, Tensor } from '../../sdk/node.js';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { Rng } from '../helpers/random.js';
import { FIXTURES, readBytes, readF32 } from '../models/fixture-files.js';
import { modelPath, trainSet } from '../sdk/fine-tuner-helpers.js';
import { loseAfterSubmit } from './fault-injection.js';

/**
 * Device loss with work in flight (issue #14), at seeded random points: right after the n-th queue.submit of a
 * run (its dispatches and readback in flight), after a random delay while runs are queued, and in the middle of a
 * FineTuner epoch on the GPU. Every pending promise settles: with the right result (it finished first) or with
 * DeviceError('DEVICE_LOST'); nothing else, and the process survives. A session created afterwards gets a new
 * device and matches the CPU. (Its own file: it destroys the process's shared device, repeatedly.)
 */

const digits = readBytes(join(FIXTURES, 'digits', 'digits-cnn.onnx'));
const images = readF32(join(FIXTURES, 'digits', 'test-images.f32'), [360, 1, 8, 8]);
const batch = (n: number) => new Tensor('float32', (images.data as Float32Array).slice(0, n * 64), [n, 1, 8, 8]);

beforeAll(async () => {
  await gpuForTests();
});

let want: Float32Array;
async function reference(): Promise<Float32Array> {
  if (want) return want;
  const s = await InferenceSession.create(digits, { backend: 'cpu' });
  want = (await s.run({ input: batch(64) })).logits!.data as Float32Array;
  await s.release();
  return want;
}

function expectLostOrRight(outcome: unknown, right: Float32Array): 'lost' | 'ran' {
  if (outcome instanceof Error) {
    expect(outcome, `${outcome.name}: ${outcome.message}`).toBeInstanceOf(DeviceError);
    expect((outcome as DeviceError).code).toBe('DEVICE_LOST');
    return 'lost';
  }
  const got = (outcome as { logits: Tensor }).logits.data as Float32Array;
  got.forEach((v, i) => expect(v).toBeCloseTo(right[i]!, 3));
  return 'ran';
}

async function recovers(): Promise<void> {
  const s = await InferenceSession.create(digits, { backend: 'webgpu' });
  const r = await s.run({ input: batch(64) });
  expectLostOrRight(r, await reference());
  expect(expectLostOrRight(r, await reference())).toBe('ran');
  await s.release();
}

describe('device lost with work in flight', () => {
  const rng = new Rng(1414);
  const points = Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? { kind: 'submit' as const, n: rng.int(1, 3) } : { kind: 'delay' as const, ms: rng.int(0, 25) }));

  for (const p of points) {
    it(`during runs: ${p.kind === 'submit' ? `lost right after submit #${p.n}` : `lost ${p.ms} ms after three runs were issued`}`, async () => {
      const right = await reference();
      const s = await InferenceSession.create(digits, { backend: 'webgpu' });
      await s.run({ input: batch(64) }); // planned and warm
      const ctx = await acquireDevice();
      const inject = p.kind === 'submit' ? loseAfterSubmit(ctx, p.n) : undefined;
      const runs = [0, 1, 2].map(() => s.run({ input: batch(64) }).then((r) => r, (e: unknown) => e));
      if (p.kind === 'delay') {
        await new Promise((r) => setTimeout(r, p.ms));
        ctx.device.destroy();
      }
      const outcomes = (await Promise.all(runs)).map((o) => expectLostOrRight(o, right));
      inject?.restore();
      expect(outcomes).toContain('lost');
      // Later runs of the old session fail the same typed way.
      expect(expectLostOrRight(await s.run({ input: batch(64) }).catch((e: unknown) => e), right)).toBe('lost');
      await s.release();
      await recovers();
    }, 120_000);
  }

  it('during a training step: fit() rejects with DEVICE_LOST mid-epoch; a new tuner on a new session trains', async () => {
    const data = trainSet([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    const s = await InferenceSession.create(modelPath, { backend: 'webgpu' });
    const tuner = await FineTuner.create(s, { newHead: { classes: 5 }, optimizer: adam({ lr: 1e-3 }) });
    await tuner.fit(data, { epochs: 1, batchSize: 4 });
    const ctx = await acquireDevice();
    const inject = loseAfterSubmit(ctx, rng.int(2, 5));
    const e = await tuner.fit(data, { epochs: 2, batchSize: 4 }).then(() => undefined, (x: unknown) => x);
    inject.restore();
    expect(e).toBeInstanceOf(DeviceError);
    expect((e as DeviceError).code).toBe('DEVICE_LOST');
    expect(await tuner.getWeights().catch((x: unknown) => (x as DeviceError).code)).toBe('DEVICE_LOST');
    tuner.dispose();
    await s.release();
    const s2 = await InferenceSession.create(modelPath, { backend: 'webgpu' });
    const t2 = await FineTuner.create(s2, { newHead: { classes: 5 }, optimizer: adam({ lr: 1e-3 }) });
    const r = await t2.fit(data, { epochs: 1, batchSize: 4 });
    expect(r.steps).toBe(4);
    t2.dispose();
    await s2.release();
    await recovers();
  }, 180_000);
});
