import { describe, expect, it } from 'vitest';
import { DTypeError, InvalidArgumentError } from '../../runtime/errors.js';
import type { Attr } from '../../runtime/ir/graph.js';
import { draw, seedKeys } from '../../runtime/ir/ops/random.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { attr } from '../helpers/ir-builder.js';
import { encodeModel } from '../helpers/onnx-model.js';
import { inferNode } from '../helpers/ort-single-node.js';
import { runRepeatedly } from '../helpers/session-runs.js';

/**
 * The random generators on the CPU reference, through InferenceSession. No runtime shares a generator with another
 * (onnxruntime's and numpy's streams differ too), so these check what the spec promises: shapes and types, seeded
 * runs that repeat, unseeded runs that do not, and the distributions (moments, histograms and frequencies over
 * 2^17 draws, bounds several standard errors wide so a correct generator passes and a biased one does not).
 */

const N = 1 << 17;
const nums = (t: HostTensor) => Array.from(t.data as ArrayLike<number | bigint>, Number);
const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const variance = (v: number[]) => {
  const m = mean(v);
  return v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length;
};

async function runOp(op: string, attrs: Record<string, Attr>, x?: HostTensor, times = 1): Promise<HostTensor[]> {
  const bytes = encodeModel({ nodes: [{ op, inputs: x ? ['X'] : [], outputs: ['Y'], attrs }], inputs: x ? { X: x } : {}, outputs: ['Y'] });
  const runs = await runRepeatedly(bytes, x ? { X: x } : {}, 'cpu', times);
  return runs.map((r) => r.Y!);
}

describe('random generators (CPU reference)', () => {
  it('the generator hashes counters: neighbouring elements and seeds give unrelated bits', () => {
    const k = seedKeys(1);
    // Each output bit flips for about half of the neighbouring counters (avalanche).
    const flips = new Array<number>(32).fill(0);
    for (let i = 0; i < 4096; i++) {
      const d = (draw(k, i, 0) ^ draw(k, i + 1, 0)) >>> 0;
      for (let b = 0; b < 32; b++) flips[b]! += (d >>> b) & 1;
    }
    for (const f of flips) expect(Math.abs(f / 4096 - 0.5)).toBeLessThan(0.05);
    expect(draw(seedKeys(1), 0, 0)).not.toBe(draw(seedKeys(2), 0, 0));
    expect(draw(k, 5, 0)).not.toBe(draw(k, 5, 1));
  });

  it('RandomUniform: shape, dtype, bounds, moments and a flat histogram; seeded runs repeat', async () => {
    const [y, y2] = await runOp('RandomUniform', { shape: attr([N]), low: attr(-2, true), high: attr(6, true), seed: attr(3, true) }, undefined, 2);
    expect(y!.dtype).toBe('float32');
    expect(y!.shape).toEqual([N]);
    const bytes = (t: HostTensor) => Buffer.from((t.data as Float32Array).buffer);
    expect(bytes(y2!).equals(bytes(y!))).toBe(true);
    const v = nums(y!);
    expect(v.reduce((a, b) => Math.min(a, b))).toBeGreaterThanOrEqual(-2);
    expect(v.reduce((a, b) => Math.max(a, b))).toBeLessThan(6);
    expect(Math.abs(mean(v) - 2)).toBeLessThan(0.03); // sd of the mean: 8 / sqrt(12 N) = 0.0064
    expect(Math.abs(variance(v) - 64 / 12)).toBeLessThan(0.1);
    const bins = new Array<number>(16).fill(0);
    for (const t of v) bins[Math.floor((t + 2) / 0.5)]!++;
    const chi2 = bins.reduce((s, c) => s + (c - N / 16) ** 2 / (N / 16), 0);
    expect(chi2).toBeLessThan(45); // 15 degrees of freedom: p ~ 1e-4
    const [other] = await runOp('RandomUniform', { shape: attr([8]), seed: attr(4, true) });
    expect(nums(other!)).not.toEqual(v.slice(0, 8));
  });

  it('RandomNormal: moments and the 1-sigma mass; float64 and float16 outputs', async () => {
    const [y] = await runOp('RandomNormal', { shape: attr([N]), mean: attr(1.5, true), scale: attr(0.5, true), seed: attr(11, true), dtype: attr(11) });
    expect(y!.dtype).toBe('float64');
    const v = nums(y!);
    expect(Math.abs(mean(v) - 1.5)).toBeLessThan(0.006);
    expect(Math.abs(Math.sqrt(variance(v)) - 0.5)).toBeLessThan(0.006);
    const within = v.filter((t) => Math.abs(t - 1.5) < 0.5).length / N;
    expect(Math.abs(within - 0.6827)).toBeLessThan(0.007);
    const [h] = await runOp('RandomNormal', { shape: attr([2, 3]), dtype: attr(10) });
    expect([h!.dtype, h!.shape]).toEqual(['float16', [2, 3]]);
  });

  it('without a seed every run draws new values', async () => {
    const [a, b] = await runOp('RandomUniform', { shape: attr([64]) }, undefined, 2);
    expect(nums(a!)).not.toEqual(nums(b!));
  });

  it('RandomUniformLike / RandomNormalLike take the input shape and type, or dtype', async () => {
    const x = tensorFromNumbers('float64', [3, 5], new Array(15).fill(7));
    const [u] = await runOp('RandomUniformLike', { seed: attr(1, true) }, x);
    expect([u!.dtype, u!.shape]).toEqual(['float64', [3, 5]]);
    const [n] = await runOp('RandomNormalLike', { dtype: attr(1), seed: attr(1, true) }, x);
    expect([n!.dtype, n!.shape]).toEqual(['float32', [3, 5]]);
    expect(() => inferNode('RandomUniformLike', {}, [{ dtype: 'int32', shape: [2] }])).toThrow(DTypeError);
    expect(() => inferNode('RandomUniform', {}, [])).toThrow(InvalidArgumentError);
    expect(() => inferNode('RandomNormal', { shape: attr([2]), dtype: attr(7) }, [])).toThrow(DTypeError);
  });

  it('Bernoulli: frequencies follow p, p = 0 and 1 are exact, any output dtype', async () => {
    const ps = [0, 0.1, 0.5, 0.9, 1];
    const x = tensorFromNumbers('float32', [ps.length, N / 8], ps.flatMap((p) => new Array(N / 8).fill(p)));
    const [y] = await runOp('Bernoulli', { seed: attr(5, true) }, x);
    const v = nums(y!);
    ps.forEach((p, r) => {
      const f = mean(v.slice((r * N) / 8, ((r + 1) * N) / 8));
      if (p === 0 || p === 1) expect(f).toBe(p);
      else expect(Math.abs(f - p)).toBeLessThan(0.012); // 4 standard errors at N / 8 draws
    });
    const [b] = await runOp('Bernoulli', { dtype: attr(9) }, tensorFromNumbers('float64', [4], [1, 0, 1, 0]));
    expect(b).toEqual({ dtype: 'bool', shape: [4], data: Uint8Array.of(1, 0, 1, 0) });
  });

  it('Multinomial: class frequencies follow softmax(logits), per row, int32 or int64', async () => {
    const logits = [[0, Math.log(2), Math.log(5)], [3, 3, -100]];
    const x = tensorFromNumbers('float32', [2, 3], logits.flat());
    const [y] = await runOp('Multinomial', { sample_size: attr(N / 4), seed: attr(9, true), dtype: attr(7) }, x);
    expect([y!.dtype, y!.shape]).toEqual(['int64', [2, N / 4]]);
    const v = nums(y!);
    const freq = (row: number, k: number) => v.slice((row * N) / 4, ((row + 1) * N) / 4).filter((c) => c === k).length / (N / 4);
    [0.125, 0.25, 0.625].forEach((p, k) => expect(Math.abs(freq(0, k) - p)).toBeLessThan(0.01));
    expect(Math.abs(freq(1, 0) - 0.5)).toBeLessThan(0.01);
    expect(freq(1, 2)).toBe(0);
    expect(inferNode('Multinomial', {}, [{ dtype: 'float32', shape: ['b', 7] }])).toEqual([{ dtype: 'int32', shape: ['b', 1] }]);
  });
});
