import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { argmaxRows, relativeError } from '../helpers/compare.js';
import { runModelOrt } from '../helpers/run-model.js';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { FIXTURES, readBytes, readF32, readJson, readU8, requireGenerated, seededNormal } from '../models/fixture-files.js';

/**
 * The fixture models through the public SDK on the WebGPU backend (SwiftShader when there is no GPU): outputs within
 * 1e-3 relative of onnxruntime-node (max|edgekit - ort| / max|ort| over the output), and the digits CNN classifies
 * its held-out split exactly as PyTorch did at training time.
 */

const REL_TOL = 1e-3;
const matched: string[] = [];

async function runGpu(session: InferenceSession, feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
  const tensors: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(feeds)) tensors[k] = new Tensor(t.dtype, t.data, t.shape);
  const out = await session.run(tensors);
  return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.toHost()]));
}

beforeAll(async () => {
  await gpuForTests(); // sets up SwiftShader (or fails loudly) before the SDK asks for a device
});

describe('fixture models on WebGPU (public SDK)', () => {
  it('digits CNN: the recorded test accuracy, logits within 1e-3 of onnxruntime-node', async () => {
    const dir = join(FIXTURES, 'digits');
    const meta = readJson<{ split: { test_size: number }; test_correct: number }>(join(dir, 'meta.json'));
    const n = meta.split.test_size;
    const bytes = readBytes(join(dir, 'digits-cnn.onnx'));
    const images = readF32(join(dir, 'test-images.f32'), [n, 1, 8, 8]);
    const labels = readU8(join(dir, 'test-labels.u8'));
    const session = await InferenceSession.create(bytes, { backend: 'webgpu' });
    try {
      expect(session.backend).toBe('webgpu');
      const { logits } = await runGpu(session, { input: images });
      const ref = await runModelOrt(bytes, { input: images });
      const correct = argmaxRows(logits!).filter((p, i) => p === labels[i]).length;
      expect(correct).toBe(meta.test_correct);
      expect(relativeError(logits!, ref.logits!)).toBeLessThan(REL_TOL);
      // A second shape signature (batch 1) gets its own plan; weights are not uploaded again.
      const before = session.report().weightBytes;
      const one: HostTensor = { dtype: 'float32', shape: [1, 1, 8, 8], data: (images.data as Float32Array).slice(0, 64) };
      const single = await runGpu(session, { input: one });
      const ref1 = await runModelOrt(bytes, { input: one });
      expect(relativeError(single.logits!, ref1.logits!)).toBeLessThan(REL_TOL);
      expect(session.report().weightBytes).toBe(before);
      matched.push('digits');
    } finally {
      await session.release();
    }
  });

  (['mobilenet_v2', 'resnet18', 'squeezenet1_1'] as const).forEach((name, k) => {
    it(`${name} matches onnxruntime-node within 1e-3`, async () => {
      const bytes = readBytes(requireGenerated(name));
      const input: HostTensor = { dtype: 'float32', shape: [1, 3, 224, 224], data: seededNormal(3 * 224 * 224, 1234 + k) };
      const session = await InferenceSession.create(bytes, { backend: 'webgpu' });
      try {
        const rep = session.report();
        // The plan made at load time: every node on the GPU, an arena at or above the liveness lower bound.
        expect(rep.gpu!.dispatches).toBeGreaterThan(10);
        expect(rep.gpu!.activationBytes).toBeGreaterThanOrEqual(rep.gpu!.activationLowerBound);
        expect(rep.nodes.every((n) => n.backend === 'webgpu' && (n.kernels?.length ?? 0) > 0 || n.op === 'Reshape' || n.op === 'Flatten')).toBe(true);
        const ours = await runGpu(session, { input });
        const ref = await runModelOrt(bytes, { input });
        const err = relativeError(ours.output!, ref.output!);
        expect(err, `${name}: relative error ${err}`).toBeLessThan(REL_TOL);
        matched.push(`${name} ${err.toExponential(1)}`);
      } finally {
        await session.release();
      }
    }, 120_000);
  });

  it("weightPrecision 'float16': half the resident weight bytes, same top-1 as onnxruntime-node, arithmetic float32", async () => {
    const bytes = readBytes(requireGenerated('resnet18'));
    const input: HostTensor = { dtype: 'float32', shape: [1, 3, 224, 224], data: seededNormal(3 * 224 * 224, 1235) };
    const full = await InferenceSession.create(bytes, { backend: 'webgpu' });
    const half = await InferenceSession.create(bytes, { backend: 'webgpu', weightPrecision: 'float16' });
    try {
      const fr = full.report();
      const hr = half.report();
      // Conv and Gemm weights halve; biases stay float32. resnet18's weights are almost all conv/fc kernels.
      expect(hr.weightBytes).toBeLessThan(fr.weightBytes * 0.51);
      expect(hr.weightBytes).toBeGreaterThan(fr.weightBytes * 0.49);
      const ours = await runGpu(half, { input });
      const ref = await runModelOrt(bytes, { input });
      const err = relativeError(ours.output!, ref.output!);
      // float16 weights (relative rounding <= 2^-11 each): measured 1e-3 here; bounded at 1e-2.
      expect(err, `relative error ${err}`).toBeLessThan(1e-2);
      expect(argmaxRows(ours.output!)).toEqual(argmaxRows(ref.output!));
      console.log(`resnet18 with float16 weights: resident weights ${(hr.weightBytes / 2 ** 20).toFixed(1)} MiB (float32: ${(fr.weightBytes / 2 ** 20).toFixed(1)} MiB), relative error ${err.toExponential(1)}`);
    } finally {
      await full.release();
      await half.release();
    }
    await expect(InferenceSession.create(bytes, { backend: 'cpu', weightPrecision: 'float16' })).rejects.toThrow(/webgpu backend/);
  }, 120_000);

  afterAll(() => {
    console.log(`models (webgpu): ${matched.length}/4 match onnxruntime-node within ${REL_TOL} (${matched.join(', ')})`);
  });
});
