import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// The built Node entry (dist/node, made by `npm run build`, the test script's pretest): createWorker() with no
// arguments starts dist/node/worker.js, and the results match a main-thread session of the same build.
const DIST = new URL('../../dist/node/index.js', import.meta.url);
const MODEL = new URL('../fixtures/digits/digits-cnn.onnx', import.meta.url).pathname;

describe('createWorker() from the built package', () => {
  it('starts the packaged worker entry and matches the main thread', async () => {
    expect(existsSync(new URL('../../dist/node/worker.js', import.meta.url)), 'run `npm run build` first').toBe(true);
    const sdk = (await import(/* @vite-ignore */ DIST.href)) as typeof import('../../sdk/node.js');
    const worker = await sdk.createWorker();
    try {
      const ws = await worker.createSession(MODEL, { backend: 'cpu' });
      const main = await sdk.InferenceSession.create(MODEL, { backend: 'cpu' });
      const x = () => new sdk.Tensor('float32', Float32Array.from({ length: 128 }, (_, i) => (i % 17) / 16), [2, 1, 8, 8]);
      const a = (await main.run({ input: x() })).logits!.data as Float32Array;
      const b = (await ws.run({ input: x() })).logits!.data as Float32Array;
      expect(Array.from(b)).toEqual(Array.from(a));
      const err = await ws.run({ input: new sdk.Tensor('float32', new Float32Array(3), [3]) }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(sdk.ShapeError);
      await main.release();
    } finally {
      await worker.terminate();
    }
  });
});
