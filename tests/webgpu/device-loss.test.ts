import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DeviceError, InferenceSession, Tensor } from '../../sdk/node.js';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { FIXTURES, readBytes, readF32 } from '../models/fixture-files.js';

/**
 * Device loss (its own file: it destroys the process's shared device). Pending and later runs reject with
 * DeviceError('DEVICE_LOST'); a session created afterwards gets a new device and runs.
 */

const digits = readBytes(join(FIXTURES, 'digits', 'digits-cnn.onnx'));
const images = readF32(join(FIXTURES, 'digits', 'test-images.f32'), [360, 1, 8, 8]);

beforeAll(async () => {
  await gpuForTests();
});

describe('WebGPU device loss', () => {
  it('rejects pending and later runs with DEVICE_LOST; a new session recovers', async () => {
    const x = new Tensor('float32', images.data as Float32Array, [360, 1, 8, 8]);
    const s = await InferenceSession.create(digits, { backend: 'webgpu' });
    const before = await s.run({ input: x });
    const { acquireDevice } = await import('../../runtime/backends/webgpu/device.js');
    const ctx = await acquireDevice();
    // Destroying the device with work in flight aborts the process inside SwiftShader (a driver bug:
    // "The futex facility returned an unexpected error code"), so the loss happens between runs here; a run
    // pending at the loss is rejected by GpuContext.guard (tests/webgpu/device-memory.test.ts covers the guard).
    await ctx.device.queue.onSubmittedWorkDone();
    ctx.device.destroy();
    await ctx.device.lost;
    const e2 = await s.run({ input: x }).catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(DeviceError);
    expect((e2 as DeviceError).code).toBe('DEVICE_LOST');
    expect((e2 as Error).message).toMatch(/create the session again/i);
    // A new shared device, exercised once before the session loads on it. (Loading straight after the loss
    // sometimes aborted the process inside SwiftShader, "std::system_error: Invalid argument"; with the device
    // warmed up first it has not, in repeated runs. Real drivers are not known to need this.)
    const ctx2 = await acquireDevice();
    const { gpuResources } = await import('../../runtime/backends/webgpu/executor.js');
    const r2 = gpuResources(ctx2);
    const l = r2.memory.acquire(1024);
    expect(ctx2).not.toBe(ctx);
    r2.memory.upload(l.buffer, 0, new Float32Array(256));
    await ctx2.device.queue.onSubmittedWorkDone();
    r2.memory.release(l);
    const again = await InferenceSession.create(digits, { backend: 'webgpu' });
    const after = await again.run({ input: x });
    expect(Array.from(after.logits!.data as Float32Array)).toEqual(Array.from(before.logits!.data as Float32Array));
    await again.release();
    await s.release();
  }, 60_000);
});
