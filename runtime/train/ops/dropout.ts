import { DTypeError, InvalidArgumentError } from '../../errors.js';
import { fromNumbers, toNumbers } from '../../ir/dtype.js';
import { attrInt } from '../../ir/graph.js';
import type { OpSchema } from '../../ir/ops/schema.js';
import { hostTensor } from '../../ir/tensor.js';
import type { CpuKernel } from '../../backends/cpu/kernel.js';
import { mulberry32 } from '../../backends/cpu/data-random.js';
import { needFloat, sameShape } from './common.js';

/**
 * SeededDropout(data, ratio?, seed?) {salt} -> output, mask: Dropout-22 in training mode, with the randomness an
 * explicit input so that one graph serves every step and a run is deterministic given (seed, salt).
 *
 * Why not the default-domain Dropout: its `seed` is an attribute, so a fixed graph would draw the same mask on every
 * step. Training rewrites each Dropout of the tail into this op (program.ts), with `salt` = the node's position so
 * two Dropout nodes never share a mask, and feeds a fresh per-step `seed`.
 *
 * PRNG (documented because masks must be reproducible across backends): the stream seed is
 * murmur3-fmix32(seed XOR (salt * 0x9E3779B9)); element i (row-major) draws the i-th value u_i of mulberry32 on that
 * seed (runtime/backends/cpu/data-random.ts) and is kept when u_i >= ratio. Kept elements are scaled by
 * 1 / (1 - ratio) (inverted dropout, as Dropout-22 and torch.nn.Dropout). ratio defaults to 0.5; ratio 0 keeps all.
 */

export function mixSeed(seed: number, salt: number): number {
  let h = (seed ^ Math.imul(salt, 0x9e3779b9)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The keep mask (1 = kept) SeededDropout draws for n elements. */
export function seededMask(n: number, ratio: number, seed: number, salt: number): Uint8Array {
  const next = mulberry32(mixSeed(seed, salt));
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) mask[i] = next() >= ratio ? 1 : 0;
  return mask;
}

export const seededDropoutSchema: OpSchema = {
  op: 'SeededDropout',
  inputs: [1, 3],
  outputs: [1, 2],
  infer(ctx) {
    const x = needFloat(ctx, 0, 'data');
    const ratio = ctx.inputs[1];
    if (ratio && !['float32', 'float64', 'float16'].includes(ratio.dtype)) throw new DTypeError(`SeededDropout ratio must be a float scalar, got ${ratio.dtype}.`);
    const seed = ctx.inputs[2];
    if (seed && !['uint32', 'int32', 'int64'].includes(seed.dtype)) throw new DTypeError(`SeededDropout seed must be a uint32, int32 or int64 scalar, got ${seed.dtype}.`);
    return [{ dtype: x.dtype, shape: sameShape(x) }, { dtype: 'bool', shape: sameShape(x) }];
  },
};

export const seededDropoutKernel: CpuKernel = (inputs, node) => {
  const [X, R, S] = inputs;
  const ratio = R ? toNumbers(R.dtype, R.data)[0]! : 0.5;
  if (!(ratio >= 0 && ratio <= 1)) throw new InvalidArgumentError(`SeededDropout ratio must be in [0, 1], got ${ratio}.`);
  const seed = S ? Number(toNumbers(S.dtype, S.data)[0]!) >>> 0 : 0;
  const n = X!.data.length;
  const mask = ratio === 0 ? new Uint8Array(n).fill(1) : seededMask(n, ratio, seed, attrInt(node, 'salt', 0));
  const scale = ratio < 1 ? 1 / (1 - ratio) : 0;
  const v = toNumbers(X!.dtype, X!.data);
  for (let i = 0; i < n; i++) v[i] = mask[i] ? v[i]! * scale : 0;
  return [hostTensor(X!.dtype, [...X!.shape], fromNumbers(X!.dtype, v)), hostTensor('bool', [...X!.shape], mask)];
};
