import { beforeAll, describe, expect, it } from 'vitest';
import { acquireDevice, createDevice } from '../../runtime/backends/webgpu/device.js';
import { gpuResources, GpuGraphPlan, runNodeGpu, type GpuResources } from '../../runtime/backends/webgpu/executor.js';
import { GpuMemory, sizeClass } from '../../runtime/backends/webgpu/memory.js';
import { DeviceError } from '../../runtime/errors.js';
import { inferShapes } from '../../runtime/ir/infer.js';
import { validateAndSort } from '../../runtime/ir/validate.js';
import { node } from '../helpers/ir-builder.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { gpuForTests } from '../helpers/webgpu-env.js';

let res: GpuResources;
beforeAll(async () => {
  res = await gpuForTests();
});

describe('device', () => {
  it('is shared: one device per process, with features and limits recorded', async () => {
    const again = await acquireDevice();
    expect(again).toBe(res.ctx);
    expect(res.ctx.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 2 ** 20);
    expect(res.ctx.limits.minStorageBufferOffsetAlignment).toBeGreaterThan(0);
    expect(res.ctx.hasF16).toBe(res.ctx.features.has('shader-f16'));
  });

  it('throws LIMIT_EXCEEDED naming the limit when a model needs more than the adapter has', async () => {
    const err = await acquireDevice({ requiredLimits: { maxStorageBufferBindingSize: 2 ** 50 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceError);
    expect((err as DeviceError).code).toBe('LIMIT_EXCEEDED');
    expect((err as DeviceError).message).toContain('maxStorageBufferBindingSize');
    const err2 = await createDevice({ requiredLimits: { maxComputeWorkgroupStorageSize: 2 ** 40 } }).catch((e: unknown) => e);
    expect((err2 as DeviceError).code).toBe('LIMIT_EXCEEDED');
  });

  it('throws MISSING_FEATURE for a feature the device lacks', () => {
    expect(() => res.ctx.check({}, ['no-such-feature'])).toThrow(/no-such-feature/);
  });

  it('throws NO_ADAPTER when WebGPU offers no adapter', async () => {
    const fakeGpu = { requestAdapter: async () => null } as unknown as GPU;
    const err = await createDevice({ gpu: fakeGpu }).catch((e: unknown) => e);
    expect((err as DeviceError).code).toBe('NO_ADAPTER');
  });

  it('a lost device rejects pending and later work with DEVICE_LOST', async () => {
    const ctx = await createDevice();
    const r = gpuResources(ctx);
    const lease = r.memory.acquire(1024);
    r.memory.upload(lease.buffer, 0, new Float32Array(256));
    const pending = r.memory.readback(lease.buffer, 0, 1024);
    ctx.destroy();
    const err = await pending.then(() => undefined, (e: unknown) => e);
    // The readback may have finished before the loss; either way every later call must fail with DEVICE_LOST.
    if (err) expect((err as DeviceError).code).toBe('DEVICE_LOST');
    await expect.poll(() => ctx.lost).toBe(true);
    expect(() => r.memory.acquire(16)).toThrow(/lost/);
    const x = randomTensor(new Rng(1), 'float32', [4]);
    const e2 = await runNodeGpu(r, node('Relu', ['x'], ['y']), [x]).catch((e: unknown) => e);
    expect((e2 as DeviceError).code).toBe('DEVICE_LOST');
  });
});

describe('memory', () => {
  it('size classes cover the request with at most 25 % slack', () => {
    for (const n of [1, 4, 255, 256, 257, 4096, 4097, 10_000, 1 << 20, (1 << 20) + 1, 123_456_789]) {
      const c = sizeClass(n);
      expect(c).toBeGreaterThanOrEqual(n);
      if (n > 4096) expect(c / n).toBeLessThanOrEqual(1.25);
    }
  });

  it('pools released buffers only after the GPU work submitted before the release is done', async () => {
    const mem = new GpuMemory(res.ctx);
    const a = mem.acquire(1000);
    mem.release(a);
    mem.release(a); // idempotent
    const b = mem.acquire(1000); // a is still pending: a new buffer
    expect(b.buffer).not.toBe(a.buffer);
    await mem.settle();
    const c = mem.acquire(1000);
    expect(c.buffer).toBe(a.buffer);
    mem.release(b);
    mem.release(c);
    await mem.trim();
    expect(mem.stats()).toMatchObject({ liveBytes: 0, leasedBytes: 0, pooledBytes: 0, buffers: 0 });
    expect(mem.stats().peakBytes).toBe(2 * sizeClass(1000));
  });

  it('destroys pooled buffers no acquisition wanted for maxIdleAcquisitions, and keeps the ones reused', async () => {
    const mem = new GpuMemory(res.ctx, undefined, 4);
    const stale = mem.acquire(100_000); // a size class nothing asks for again (a KV cache that grew past it)
    mem.release(stale);
    const hot = mem.acquire(1000);
    mem.release(hot);
    await mem.settle();
    expect(mem.stats().pooledBytes).toBe(sizeClass(100_000) + sizeClass(1000));
    for (let i = 0; i < 6; i++) {
      const l = mem.acquire(1000);
      expect(l.buffer).toBe(hot.buffer); // reused every time: never ages out
      mem.release(l);
      await mem.settle();
    }
    expect(mem.stats()).toMatchObject({ pooledBytes: sizeClass(1000), liveBytes: sizeClass(1000), buffers: 1 });
    await mem.trim();
    expect(mem.stats()).toMatchObject({ liveBytes: 0, leasedBytes: 0, pooledBytes: 0, buffers: 0 });
  });

  it('uploads ragged byte lengths (padded to 4) and reads them back', async () => {
    const mem = new GpuMemory(res.ctx);
    const lease = mem.acquire(16);
    mem.upload(lease.buffer, 0, new Uint8Array([1, 2, 3, 4, 5, 6, 7]));
    const back = await mem.readback(lease.buffer, 0, 7);
    expect(Array.from(back)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    mem.release(lease);
    await mem.trim();
    expect(mem.stats().liveBytes).toBe(0);
  });

  it('live bytes return to their baseline after a plan is disposed', async () => {
    await res.memory.trim();
    const baseline = res.memory.stats();
    const rng = new Rng(3);
    const g = inferShapes(validateAndSort({
      name: 't', inputs: [{ name: 'x', dtype: 'float32', shape: [4, 16] }], outputs: [{ name: 'z', dtype: 'float32' }],
      initializers: { w: randomTensor(rng, 'float32', [16]) },
      nodes: [node('Mul', ['x', 'w'], ['a']), node('Tanh', ['a'], ['b']), node('Add', ['b', 'x'], ['z'])], values: {},
    }));
    const plan = await GpuGraphPlan.create(res, g);
    expect(res.memory.stats().leasedBytes).toBeGreaterThan(baseline.leasedBytes);
    await plan.run({ x: randomTensor(rng, 'float32', [4, 16]) });
    const report = plan.report();
    expect(report.dispatches).toBe(3);
    expect(report.arenaBytes).toBeGreaterThanOrEqual(report.lowerBound);
    plan.dispose();
    plan.dispose();
    await res.memory.settle();
    expect(res.memory.stats().leasedBytes).toBe(baseline.leasedBytes);
    await res.memory.trim();
    expect(res.memory.stats().liveBytes).toBe(baseline.liveBytes);
  });

  it('refuses a buffer larger than maxBufferSize with LIMIT_EXCEEDED', () => {
    expect(() => res.memory.acquire(res.ctx.limits.maxBufferSize + 1)).toThrow(/maxBufferSize/);
  });
});
