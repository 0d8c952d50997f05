import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DeviceError } from '../../runtime/errors.js';
import { createWorker } from '../../sdk/worker/client.js';

// Decision (sdk/worker/node-entry.ts): no WebGPU inside Node worker_threads. A Dawn session there ran, but in the
// full suite terminating the worker aborted the test process (FATAL ERROR: napi_throw from Dawn's bindings in the
// dying thread). The worker refuses WebGPU with a typed error before loading Dawn, keeps serving CPU sessions, and
// terminates cleanly.
const MODEL = fileURLToPath(new URL('../fixtures/digits/digits-cnn.onnx', import.meta.url));
const ENTRY = new URL('./worker-entry.mjs', import.meta.url);

describe('WebGPU in a Node worker_threads worker', () => {
  it('is refused with DeviceError NO_WEBGPU naming the way out; CPU sessions in the same worker work', async () => {
    const worker = await createWorker({ url: ENTRY });
    try {
      const refused = await worker.createSession(MODEL, { backend: 'webgpu' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(refused).toBeInstanceOf(DeviceError);
      expect((refused as DeviceError).code).toBe('NO_WEBGPU');
      expect((refused as Error).message).toMatch(/worker_threads.*main thread/);
      const s = await worker.createSession(MODEL, { backend: 'cpu' });
      expect(s.inputNames.length).toBeGreaterThan(0);
      await s.release();
    } finally {
      await worker.terminate();
    }
  }, 120_000);
});
