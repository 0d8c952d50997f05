import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import { createWorker } from '../../sdk/worker/client.js';
// Imported for its side effect: VK_ICD_FILENAMES points at SwiftShader before any worker starts.
import '../helpers/webgpu-env.js';

// Dawn (the `webgpu` package) inside a Node worker_threads worker: a WebGPU session there (SwiftShader, through
// VK_ICD_FILENAMES, which the worker inherits from this process) against a main-thread CPU session.
const MODEL = fileURLToPath(new URL('../fixtures/digits/digits-cnn.onnx', import.meta.url));
const ENTRY = new URL('./worker-entry.mjs', import.meta.url);

describe('WebGPU (Dawn) in a worker_threads worker', () => {
  it('runs the digits model on WebGPU in the worker as the CPU does on the main thread', async () => {
    const b = readFileSync(fileURLToPath(new URL('../fixtures/digits/test-images.f32', import.meta.url)));
    const pixels = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    const input = () => new Tensor('float32', pixels.slice(0, 64 * 32), [32, 1, 8, 8]);
    const cpu = await InferenceSession.create(MODEL, { backend: 'cpu' });
    const expected = (await cpu.run({ input: input() })).logits!.data as Float32Array;
    const worker = await createWorker({ url: ENTRY });
    try {
      const s = await worker.createSession(MODEL, { backend: 'webgpu' });
      const report = await s.report();
      // A WebGPU plan exists in the worker: its dispatches ran on the worker's own Dawn device.
      expect(report.gpu?.dispatches).toBeGreaterThan(0);
      const got = (await s.run({ input: input() })).logits!.data as Float32Array;
      let diff = 0;
      for (let i = 0; i < expected.length; i++) diff = Math.max(diff, Math.abs(got[i]! - expected[i]!));
      expect(diff).toBeLessThan(1e-4);
      expect(report.backend).toBe('webgpu');
      await s.release();
    } finally {
      await worker.terminate();
      await cpu.release();
    }
  }, 120_000);
});
