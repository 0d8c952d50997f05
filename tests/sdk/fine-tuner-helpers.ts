import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { exportOnnx } from '../../importers/onnx/index.js';
import type { Graph } from '../../runtime/ir/graph.js';
import { InferenceSession, Tensor } from '../../sdk/node.js';

/** The transfer-learning fixture (tests/fixtures/transfer, see tests/train/transfer-replay.test.ts) for the FineTuner suites. */
const dir = new URL('../fixtures/transfer/', import.meta.url);

export interface TransferMeta {
  trunk: { file: string; head_node: string; feature_value: string };
  data: { train_size: number; heldout_size: number };
  head_training: { optimizer: { lr: number; betas: [number, number]; eps: number }; batch_size: number; epochs: number; steps: number; order: number[][] };
  initial: { weight: number[][]; bias: number[]; heldout_accuracy: number };
  final: { weight: number[][]; bias: number[]; heldout_accuracy: number };
  losses: number[];
}

export const meta = JSON.parse(readFileSync(new URL('head-training.json', dir), 'utf8')) as TransferMeta;
export const modelPath = fileURLToPath(new URL(meta.trunk.file, dir));
export const otherModelPath = fileURLToPath(new URL('../fixtures/digits/digits-cnn.onnx', import.meta.url));

function f32(name: string): Float32Array {
  const b = readFileSync(new URL(name, dir));
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return Float32Array.from({ length: b.byteLength / 4 }, (_, i) => view.getFloat32(4 * i, true));
}

export const trainImages = f32('train-images.f32'); // [640, 1, 8, 8]
export const heldImages = f32('heldout-images.f32'); // [256, 1, 8, 8]
export const trainLabels = Array.from(readFileSync(new URL('train-labels.u8', dir)));
export const heldLabels = Array.from(readFileSync(new URL('heldout-labels.u8', dir)));

/** Images rows `idx` as one float32 [idx.length, 1, 8, 8] tensor. */
export function images(src: Float32Array, idx: readonly number[]): Tensor {
  const out = new Float32Array(idx.length * 64);
  idx.forEach((r, k) => out.set(src.subarray(r * 64, r * 64 + 64), k * 64));
  return new Tensor('float32', out, [idx.length, 1, 8, 8]);
}

export const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);
export const int64 = (v: readonly number[]) => new Tensor('int64', BigInt64Array.from(v, (x) => BigInt(x)), [v.length]);

export function trainSet(idx: readonly number[] = range(meta.data.train_size)) {
  return { inputs: images(trainImages, idx), labels: int64(idx.map((i) => trainLabels[i]!)) };
}

export function heldSet(idx: readonly number[] = range(meta.data.heldout_size)) {
  return { inputs: images(heldImages, idx), labels: int64(idx.map((i) => heldLabels[i]!)) };
}

export const session = (path = modelPath) => InferenceSession.create(path, { backend: 'cpu' });

/** A session over an IR graph built in the test (exported to ONNX bytes first, as a user's file would be). */
export const sessionOf = (g: Graph) => InferenceSession.create(exportOnnx(g), { backend: 'cpu' });

/** Bit-level equality of two weight sets. */
export async function weightsOf(t: { getWeights(): Promise<Record<string, Tensor>> }): Promise<Record<string, number[]>> {
  const w = await t.getWeights();
  return Object.fromEntries(Object.entries(w).map(([k, v]) => [k, Array.from(v.data as Float32Array)]));
}
