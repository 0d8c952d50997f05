import { mulberry32 } from '../../runtime/backends/cpu/data-random.js';
import { mixSeed } from '../../runtime/train/ops/dropout.js';

/**
 * The fine-tuner's randomness, all from the tuner's seed through the PRNG SeededDropout documents (mulberry32 on a
 * murmur3-fmix32-mixed seed), each use on its own stream so that changing one never shifts another:
 *   shuffle of global epoch e:  mulberry32(mixSeed(mixSeed(seed, SHUFFLE), e))
 *   new head:                   mulberry32(mixSeed(headSeed, HEAD))
 * The epoch index is global (epochs completed since creation, restored by loadCheckpoint), so a resumed run draws
 * the same orders as an uninterrupted one.
 */
const SHUFFLE = 0x53485546; // 'SHUF'
const HEAD = 0x48454144; // 'HEAD'

/** Fisher-Yates (Durstenfeld): for i = n-1 down to 1, swap i with j = floor(u * (i + 1)). */
export function shuffledOrder(n: number, seed: number, epoch: number): number[] {
  const next = mulberry32(mixSeed(mixSeed(seed >>> 0, SHUFFLE), epoch));
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

/** n draws from U(-bound, bound), as float32. */
export function uniformValues(n: number, bound: number, next: () => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (2 * next() - 1) * bound;
  return out;
}

export function headStream(seed: number): () => number {
  return mulberry32(mixSeed(seed >>> 0, HEAD));
}
