import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { GpuResources } from '../../runtime/backends/webgpu/executor.js';
import { InferenceSession, OutOfMemoryError, Tensor } from '../../sdk/node.js';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { FIXTURES, readBytes, readF32 } from '../models/fixture-files.js';
import { injectOom } from './fault-injection.js';

/**
 * GPU out of memory (issue #14), injected through the device's error scopes (fault-injection.ts): while planning a
 * new input shape and while running an already planned one. Each gives OutOfMemoryError; the session then runs at
 * a smaller shape (and at the big one once memory is back), and no buffer of the failed attempt stays behind.
 */

const digits = readBytes(join(FIXTURES, 'digits', 'digits-cnn.onnx'));
const images = readF32(join(FIXTURES, 'digits', 'test-images.f32'), [360, 1, 8, 8]);
const batch = (n: number) => new Tensor('float32', (images.data as Float32Array).slice(0, n * 64), [n, 1, 8, 8]);

let res: GpuResources;
beforeAll(async () => {
  res = await gpuForTests();
});

async function reference(n: number): Promise<Float32Array> {
  const s = await InferenceSession.create(digits, { backend: 'cpu' });
  const r = await s.run({ input: batch(n) });
  await s.release();
  return r.logits!.data as Float32Array;
}

describe('GPU out of memory', () => {
  it('while planning a larger shape: OutOfMemoryError, then the session runs at a smaller shape and leaks nothing', async () => {
    const s = await InferenceSession.create(digits, { backend: 'webgpu' });
    await s.run({ input: batch(2) });
    await res.memory.trim();
    const before = res.memory.stats();
    // Any buffer of 256 KiB or more fails: batch 360's activations do, batch 4's do not.
    const oom = injectOom(res.ctx, (d) => d.size >= 256 * 1024);
    try {
      const e = await s.run({ input: batch(360) }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(OutOfMemoryError);
      expect((e as Error).message).toMatch(/out of memory/i);
      expect(oom.hits).toBeGreaterThan(0);
      // The failed plan gave back every buffer it leased.
      await res.memory.settle();
      expect(res.memory.stats().leasedBytes).toBe(before.leasedBytes);
      const small = await s.run({ input: batch(4) });
      const want4 = await reference(4);
      (small.logits!.data as Float32Array).forEach((v, i) => expect(v).toBeCloseTo(want4[i]!, 3));
    } finally {
      oom.restore();
    }
    const big = await s.run({ input: batch(360) });
    const want = await reference(360);
    (big.logits!.data as Float32Array).forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 3));
    await s.release();
  }, 120_000);

  it('while running a planned shape: OutOfMemoryError, the run leaves no leased buffer, and the next runs work', async () => {
    const s = await InferenceSession.create(digits, { backend: 'webgpu' });
    const first = await s.run({ input: batch(300) });
    await res.memory.trim();
    const before = res.memory.stats();
    // The run's own allocations: its readback staging buffer (and kept outputs), made inside the run's scope.
    const oom = injectOom(res.ctx, (d) => (d.label ?? '').startsWith('edgekit-readback') && d.size >= 4096);
    try {
      const e = await s.run({ input: batch(300) }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(OutOfMemoryError);
      expect(oom.hits).toBeGreaterThan(0);
      await res.memory.settle();
      expect(res.memory.stats().leasedBytes).toBe(before.leasedBytes);
      const small = await s.run({ input: batch(3) });
      expect(small.logits!.dims).toEqual([3, 10]);
    } finally {
      oom.restore();
    }
    const again = await s.run({ input: batch(300) });
    expect(Array.from(again.logits!.data as Float32Array)).toEqual(Array.from(first.logits!.data as Float32Array));
    await s.release();
  }, 120_000);
});
