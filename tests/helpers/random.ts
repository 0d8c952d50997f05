import type { DType } from '../../runtime/ir/dtype.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';

/**
 * A small seeded PRNG (mulberry32: a 32-bit state advanced by a Weyl sequence and mixed by two multiply-xorshift
 * rounds) so random test inputs are the same on every run and machine.
 */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo = -1, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer uniform in [lo, hi] inclusive. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
}

export interface RandomTensorOptions {
  lo?: number;
  hi?: number;
  /** Draw integers in [lo, hi] (the default for integer and bool dtypes). */
  integers?: boolean;
  /** Values to sprinkle in at random positions (edge values: 0, -0, NaN, +-inf, large magnitudes). */
  specials?: readonly number[];
  /** Fraction of elements replaced by a special value (default 0.1 when specials are given). */
  specialRate?: number;
}

/** A tensor of `dtype` and `shape` with seeded random values (Cast semantics into the dtype). */
export function randomTensor(rng: Rng, dtype: DType, shape: number[], opts: RandomTensorOptions = {}): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const integers = opts.integers ?? !(dtype.startsWith('float') || dtype === 'bfloat16');
  const lo = opts.lo ?? (dtype === 'bool' ? 0 : integers ? -10 : -1);
  const hi = opts.hi ?? (dtype === 'bool' ? 1 : integers ? 10 : 1);
  const values = new Array<number>(n);
  for (let i = 0; i < n; i++) values[i] = integers ? rng.int(lo, hi) : rng.uniform(lo, hi);
  if (opts.specials?.length) {
    const rate = opts.specialRate ?? 0.1;
    for (let i = 0; i < n; i++) if (rng.next() < rate) values[i] = rng.pick(opts.specials);
  }
  return tensorFromNumbers(dtype, shape, values);
}
