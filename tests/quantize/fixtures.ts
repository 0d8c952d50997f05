import { join } from 'node:path';
import { expect } from 'vitest';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import { argmaxRows } from '../helpers/compare.js';
import { FIXTURES, readBytes, readF32, readJson, readU8 } from '../models/fixture-files.js';

/**
 * The trained models the quantizer is measured on, with their test sets and calibration examples (never the test
 * images): the digits CNN (scripts/fixtures/digits_fixture.py; calibration on the transfer fixture's digits 5-9
 * training images, which come from the same train split) and the Fashion-MNIST CNN (fashion_fixture.py;
 * calibration on 200 training images).
 */
export interface TrainedModel {
  name: string;
  bytes: Uint8Array;
  test: HostTensor;
  labels: Uint8Array;
  /** Calibration batches of `batch` images. */
  calibration(batch: number, count?: number): { input: HostTensor }[];
}

const slice = (t: HostTensor, from: number, to: number): HostTensor => {
  const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
  return { dtype: 'float32', shape: [to - from, ...t.shape.slice(1)], data: (t.data as Float32Array).slice(from * per, to * per) };
};
const batches = (t: HostTensor, batch: number, count = Infinity) => {
  const out: { input: HostTensor }[] = [];
  for (let i = 0; i + batch <= t.shape[0]! && out.length < count; i += batch) out.push({ input: slice(t, i, i + batch) });
  return out;
};
const pixels = (u8: Uint8Array, n: number): HostTensor => ({ dtype: 'float32', shape: [n, 1, 28, 28], data: Float32Array.from(u8, (v) => v / 255) });

export function digits(): TrainedModel {
  const meta = readJson<{ split: { test_size: number } }>(join(FIXTURES, 'digits', 'meta.json'));
  const n = meta.split.test_size;
  const train = readF32(join(FIXTURES, 'transfer', 'train-images.f32'), [640, 1, 8, 8]);
  return {
    name: 'digits',
    bytes: readBytes(join(FIXTURES, 'digits', 'digits-cnn.onnx')),
    test: readF32(join(FIXTURES, 'digits', 'test-images.f32'), [n, 1, 8, 8]),
    labels: readU8(join(FIXTURES, 'digits', 'test-labels.u8')),
    calibration: (b, c) => batches(train, b, c),
  };
}

export const FASHION_TEST = 500;

export function fashion(): TrainedModel {
  const dir = join(FIXTURES, 'fashion');
  const meta = readJson<{ calib_images: number }>(join(dir, 'meta.json'));
  const calib = pixels(readU8(join(dir, 'calib-images.u8')), meta.calib_images);
  // The first FASHION_TEST of the fixture's 1000 test images: SwiftShader runs the 28x28 CNN slowly.
  return {
    name: 'fashion',
    bytes: readBytes(join(dir, 'fashion-cnn.onnx')),
    test: pixels(readU8(join(dir, 'test-images.u8')).subarray(0, FASHION_TEST * 784), FASHION_TEST),
    labels: readU8(join(dir, 'test-labels.u8')).subarray(0, FASHION_TEST),
    calibration: (b, c) => batches(calib, b, c),
  };
}

/** Logits of a model on the whole test set through the public API, in batches of 250. */
export async function logitsOf(bytes: Uint8Array, test: HostTensor, backend: 'cpu' | 'webgpu'): Promise<HostTensor> {
  const s = await InferenceSession.create(bytes, { backend });
  try {
    const parts: Float32Array[] = [];
    let classes = 0;
    for (let i = 0; i < test.shape[0]!; i += 250) {
      const x = slice(test, i, Math.min(test.shape[0]!, i + 250));
      const o = (await s.run({ input: new Tensor('float32', x.data as Float32Array, x.shape) })).logits!.toHost();
      classes = o.shape[1]!;
      parts.push(o.data as Float32Array);
    }
    const data = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
    let off = 0;
    for (const p of parts) (data.set(p, off), (off += p.length));
    return { dtype: 'float32', shape: [test.shape[0]!, classes], data };
  } finally {
    await s.release();
  }
}

export const accuracy = (logits: HostTensor, labels: Uint8Array) => argmaxRows(logits).filter((p, i) => p === labels[i]).length / labels.length;
export const agreement = (a: HostTensor, b: HostTensor) => {
  const pa = argmaxRows(a);
  const pb = argmaxRows(b);
  return pa.filter((p, i) => p === pb[i]).length / pa.length;
};

/** Two quantized tensors of one dtype and shape: the largest difference in steps, and how many values differ. */
export function stepDiff(a: HostTensor, b: HostTensor): { worst: number; off: number; n: number } {
  expect(a.dtype).toBe(b.dtype);
  expect(a.shape).toEqual(b.shape);
  let worst = 0;
  let off = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(Number(a.data[i]) - Number(b.data[i]));
    worst = Math.max(worst, d);
    if (d) off++;
  }
  return { worst, off, n: a.data.length };
}
