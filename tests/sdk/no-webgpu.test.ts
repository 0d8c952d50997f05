import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { registerNodePlatform, getNodePlatform } from '../../sdk/platform.js';
import { DeviceError, InferenceSession } from '../../sdk/node.js';

/**
 * Without a usable GPU a WebGPU session is a typed DeviceError at load time, never a silent CPU run. (Its own
 * file: it replaces the Node platform's WebGPU entry with one whose adapter request finds nothing.)
 */
const modelPath = fileURLToPath(new URL('../fixtures/digits/digits-cnn.onnx', import.meta.url));

describe('no WebGPU adapter', () => {
  it('is a DeviceError (NO_ADAPTER) naming the way out', async () => {
    const real = getNodePlatform()!;
    registerNodePlatform({ ...real, getGpu: async () => ({ requestAdapter: async () => null }) as unknown as GPU });
    try {
      const err = await InferenceSession.create(modelPath, { backend: 'webgpu' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DeviceError);
      expect((err as DeviceError).code).toBe('NO_ADAPTER');
      expect((err as Error).message).toMatch(/CPU backend/);
      const cpu = await InferenceSession.create(modelPath, { backend: 'cpu' });
      await cpu.release();
    } finally {
      registerNodePlatform(real);
    }
  });
});
