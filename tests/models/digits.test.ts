import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { argmaxRows, relativeError } from '../helpers/compare.js';
import { runModelCpu, runModelOrt } from '../helpers/run-model.js';
import { FIXTURES, readBytes, readF32, readJson, readU8 } from './fixture-files.js';

/**
 * The digits CNN trained by scripts/fixtures/make_fixtures.py on sklearn's load_digits: EdgeKit must classify the
 * held-out test split exactly as PyTorch did at training time (meta.json), and its logits must match
 * onnxruntime-node. "Relative" error here is max|edgekit - ort| / max|ort| over the whole logits tensor.
 */

const REL_TOL = 1e-4;

interface DigitsMeta {
  split: { test_size: number };
  test_correct: number;
  test_accuracy: number;
}

describe('digits CNN (tests/fixtures/digits)', () => {
  const dir = join(FIXTURES, 'digits');
  const meta = readJson<DigitsMeta>(join(dir, 'meta.json'));
  const n = meta.split.test_size;
  const bytes = readBytes(join(dir, 'digits-cnn.onnx'));
  const images = readF32(join(dir, 'test-images.f32'), [n, 1, 8, 8]);
  const labels = readU8(join(dir, 'test-labels.u8'));

  it('reaches exactly the test accuracy PyTorch recorded, and matches onnxruntime-node', async () => {
    expect(labels.length).toBe(n);
    const { logits } = await runModelCpu(bytes, { input: images });
    expect(logits!.shape).toEqual([n, 10]);
    const predicted = argmaxRows(logits!);
    const correct = predicted.filter((p, i) => p === labels[i]).length;
    expect(correct).toBe(meta.test_correct);
    expect(correct / n).toBe(meta.test_accuracy);
    expect(correct / n).toBeGreaterThanOrEqual(0.95);

    const ref = await runModelOrt(bytes, { input: images });
    expect(argmaxRows(ref.logits!)).toEqual(predicted);
    expect(relativeError(logits!, ref.logits!)).toBeLessThan(REL_TOL);
  });

  it('gives the same logits for one image as for that image inside the batch (dynamic batch axis)', async () => {
    const one = { dtype: 'float32' as const, shape: [1, 1, 8, 8], data: (images.data as Float32Array).slice(64 * 7, 64 * 8) };
    const single = await runModelCpu(bytes, { input: one });
    const ref = await runModelOrt(bytes, { input: one });
    expect(single.logits!.shape).toEqual([1, 10]);
    expect(relativeError(single.logits!, ref.logits!)).toBeLessThan(REL_TOL);
  });
});

describe('transfer trunk (tests/fixtures/transfer/digits04-cnn.onnx)', () => {
  const dir = join(FIXTURES, 'transfer');
  const rec = readJson<{ data: { heldout_size: number } }>(join(dir, 'head-training.json'));

  it('matches onnxruntime-node on the held-out digits 5-9', async () => {
    const bytes = readBytes(join(dir, 'digits04-cnn.onnx'));
    const images = readF32(join(dir, 'heldout-images.f32'), [rec.data.heldout_size, 1, 8, 8]);
    const { logits } = await runModelCpu(bytes, { input: images });
    const ref = await runModelOrt(bytes, { input: images });
    expect(logits!.shape).toEqual([rec.data.heldout_size, 5]);
    expect(relativeError(logits!, ref.logits!)).toBeLessThan(REL_TOL);
  });
});
