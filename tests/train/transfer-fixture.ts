import { readFileSync } from 'node:fs';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';

/** The transfer-learning fixture (tests/fixtures/transfer, written by scripts/fixtures/make_fixtures.py), for the replay tests. */
const dir = new URL('../fixtures/transfer/', import.meta.url);

/** The recorded run (head-training.json), read field by field by the tests. */
export const meta = JSON.parse(readFileSync(new URL('head-training.json', dir), 'utf8'));

export const f32File = (name: string, shape: number[]): HostTensor => {
  const b = readFileSync(new URL(name, dir));
  return tensorFromNumbers('float32', shape, new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4));
};

export const labelsFile = (name: string): number[] => Array.from(readFileSync(new URL(name, dir)));

/** Rows `idx` of a [N, W] tensor, in that order (a batch). */
export const rows = (t: HostTensor, idx: number[]): HostTensor => {
  const w = t.shape[1]!;
  const src = t.data as Float32Array;
  const out = new Float32Array(idx.length * w);
  idx.forEach((r, k) => out.set(src.subarray(r * w, (r + 1) * w), k * w));
  return tensorFromNumbers('float32', [idx.length, w], out);
};

export const fixtureUrl = (name: string): URL => new URL(name, dir);
