import { describe, expect, it } from 'vitest';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, tensorToNumbers } from '../../runtime/ir/tensor.js';
import { attr } from '../helpers/ir-builder.js';
import { compareWithOrt, inferNode, runCpuNode } from '../helpers/ort-single-node.js';
import { randomTensor, Rng } from '../helpers/random.js';

const f = (v: number) => attr(v, true);

describe('normalization shape inference', () => {
  it('BatchNormalization keeps X and gives running stats the mean type', () => {
    const p = { dtype: 'float32' as DType, shape: [16] };
    expect(inferNode('BatchNormalization', {}, [{ dtype: 'float32', shape: ['N', 16, 'H', 'W'] }, p, p, p, p])).toEqual([{ dtype: 'float32', shape: ['N', 16, 'H', 'W'] }]);
    expect(inferNode('BatchNormalization', { training_mode: attr(1) }, [{ dtype: 'float16', shape: ['N', 16] }, p, p, p, p], 3)).toEqual([
      { dtype: 'float16', shape: ['N', 16] }, { dtype: 'float32', shape: [16] }, { dtype: 'float32', shape: [16] },
    ]);
    expect(() => inferNode('BatchNormalization', {}, [{ dtype: 'float32', shape: ['N', 8, 4] }, p, p, p, p])).toThrow(/\[8\]/);
  });

  it('LayerNormalization statistics have the normalized axes set to 1', () => {
    const out = inferNode('LayerNormalization', { axis: attr(-2) }, [{ dtype: 'float32', shape: ['B', 'S', 4, 8] }, { dtype: 'float32', shape: [4, 8] }], 3);
    expect(out).toEqual([{ dtype: 'float32', shape: ['B', 'S', 4, 8] }, { dtype: 'float32', shape: ['B', 'S', 1, 1] }, { dtype: 'float32', shape: ['B', 'S', 1, 1] }]);
    expect(() => inferNode('LayerNormalization', {}, [{ dtype: 'float32', shape: ['B', 8] }, { dtype: 'float32', shape: [4] }])).toThrow(/Scale/);
    expect(() => inferNode('LayerNormalization', { axis: attr(2) }, [{ dtype: 'float32', shape: ['B', 8] }, { dtype: 'float32', shape: [8] }])).toThrow(/out of range/);
  });

  it('Instance/Group normalization and the softmaxes', () => {
    const c = { dtype: 'float32' as DType, shape: [6] };
    expect(inferNode('InstanceNormalization', {}, [{ dtype: 'float32', shape: ['N', 6, 'L'] }, c, c])[0]!.shape).toEqual(['N', 6, 'L']);
    expect(inferNode('GroupNormalization', { num_groups: attr(3) }, [{ dtype: 'float32', shape: ['N', 6, 5] }, c, c])[0]!.shape).toEqual(['N', 6, 5]);
    expect(() => inferNode('GroupNormalization', { num_groups: attr(4) }, [{ dtype: 'float32', shape: ['N', 6, 5] }, c, c])).toThrow(/divisible/);
    expect(inferNode('Softmax', {}, [{ dtype: 'float32', shape: ['N', 1000] }])).toEqual([{ dtype: 'float32', shape: ['N', 1000] }]);
    expect(() => inferNode('LogSoftmax', { axis: attr(3) }, [{ dtype: 'float32', shape: ['N', 10] }])).toThrow(/out of range/);
    expect(() => inferNode('Softmax', {}, [{ dtype: 'int32', shape: [3] }])).toThrow(/floating-point/);
  });
});

describe('BatchNormalization matches onnxruntime', () => {
  const rng = new Rng(13);
  for (const shape of [[2, 3, 4, 5], [1, 4], [3, 2, 7], [2, 3, 2, 3, 2], [1, 1, 1, 1]]) {
    it(`X[${shape}] inference mode`, async () => {
      const C = shape[1]!;
      for (const attrs of [{}, { epsilon: f(1e-3) }, { epsilon: f(0.5), momentum: f(0.8) }] as Record<string, Attr>[]) {
        const x = randomTensor(rng, 'float32', shape, { lo: -3, hi: 3 });
        const scale = randomTensor(rng, 'float32', [C]);
        const b = randomTensor(rng, 'float32', [C]);
        const mean = randomTensor(rng, 'float32', [C]);
        const variance = randomTensor(rng, 'float32', [C], { lo: 0, hi: 2 });
        expect(await compareWithOrt('BatchNormalization', attrs, [x, scale, b, mean, variance])).toEqual([]);
      }
    });
  }

  it('float16 and float64', async () => {
    for (const dtype of ['float16', 'float64'] as DType[]) {
      const ps = [0, 1, 2, 3].map((i) => randomTensor(rng, dtype, [3], i === 3 ? { lo: 0.1, hi: 2 } : {}));
      const x = randomTensor(rng, dtype, [2, 3, 4]);
      expect(await compareWithOrt('BatchNormalization', {}, [x, ...ps], dtype === 'float16' ? { rtol: 2e-3, atol: 2e-3 } : {})).toEqual([]);
    }
  });

  it('training_mode=1 matches onnxruntime (Y, running_mean, running_var)', async () => {
    for (const shape of [[4, 3], [2, 3, 5], [3, 2, 2, 3]]) {
      const C = shape[1]!;
      const ps = [0, 1, 2, 3].map((i) => randomTensor(rng, 'float32', [C], i === 3 ? { lo: 0.1, hi: 2 } : {}));
      const attrs = { training_mode: attr(1), momentum: f(0.7) };
      expect(await compareWithOrt('BatchNormalization', attrs, [randomTensor(rng, 'float32', shape), ...ps], { outputs: 3, rtol: 1e-4, atol: 1e-5 })).toEqual([]);
    }
  });

  it('training_mode=1 normalizes with batch statistics and updates the running ones', () => {
    // X: channel 0 = [1, 3], channel 1 = [2, 6] over N=2 -> means [2, 4], population variances [1, 4].
    const x = tensorFromNumbers('float32', [2, 2], [1, 2, 3, 6]);
    const ones = tensorFromNumbers('float32', [2], [1, 1]);
    const zeros = tensorFromNumbers('float32', [2], [0, 0]);
    const [y, rm, rv] = runCpuNode('BatchNormalization', { training_mode: attr(1), epsilon: f(0), momentum: f(0.75) }, [x, ones, zeros, zeros, ones], 3);
    expect(Array.from(tensorToNumbers(y!))).toEqual([-1, -1, 1, 1]);
    expect(Array.from(tensorToNumbers(rm!))).toEqual([0.5, 1]); // 0 * 0.75 + [2, 4] * 0.25
    expect(Array.from(tensorToNumbers(rv!))).toEqual([1, 1.75]); // 1 * 0.75 + [1, 4] * 0.25
  });
});

describe('InstanceNormalization / LayerNormalization / GroupNormalization match onnxruntime', () => {
  const rng = new Rng(14);
  it('InstanceNormalization', async () => {
    for (const shape of [[2, 3, 5, 4], [1, 2, 7], [2, 2, 2, 3, 2], [1, 3, 1, 1]]) {
      for (const attrs of [{}, { epsilon: f(1e-2) }] as Record<string, Attr>[]) {
        const C = shape[1]!;
        const x = randomTensor(rng, 'float32', shape, { lo: 1, hi: 4 });
        expect(await compareWithOrt('InstanceNormalization', attrs, [x, randomTensor(rng, 'float32', [C]), randomTensor(rng, 'float32', [C])], { rtol: 1e-4, atol: 1e-5 })).toEqual([]);
      }
    }
  });

  it('LayerNormalization over different axes, with and without B, with Mean/InvStdDev outputs', async () => {
    const cases: [number[], number][] = [[[2, 3, 8], -1], [[2, 3, 8], 1], [[4, 6], 0], [[2, 2, 3, 5], 2], [[5], 0], [[3, 1], -1]];
    for (const [shape, axis] of cases) {
      const norm = shape.slice(axis < 0 ? shape.length + axis : axis);
      const x = randomTensor(rng, 'float32', shape, { lo: -2, hi: 3 });
      const scale = randomTensor(rng, 'float32', norm);
      const b = randomTensor(rng, 'float32', norm);
      const attrs = { axis: attr(axis), epsilon: f(1e-4) };
      expect(await compareWithOrt('LayerNormalization', attrs, [x, scale, b], { opset: 17, rtol: 1e-4, atol: 1e-5 })).toEqual([]);
      expect(await compareWithOrt('LayerNormalization', attrs, [x, scale], { opset: 17, rtol: 1e-4, atol: 1e-5 })).toEqual([]);
      expect(await compareWithOrt('LayerNormalization', attrs, [x, scale, b], { opset: 17, outputs: 3, rtol: 1e-4, atol: 1e-5 })).toEqual([]);
    }
    const x16 = randomTensor(rng, 'float16', [3, 8]);
    expect(await compareWithOrt('LayerNormalization', {}, [x16, randomTensor(rng, 'float16', [8]), randomTensor(rng, 'float16', [8])], { opset: 17, rtol: 3e-3, atol: 3e-3 })).toEqual([]);
  });

  it('InstanceNormalization by hand, on values with a large common offset (two-pass variance)', () => {
    // [1e4, 1e4 + 1, 1e4 + 2, 1e4 + 3]: mean 1e4 + 1.5, variance 1.25 exactly; E[x^2] - E[x]^2 in float32 would be ~0.
    const x = tensorFromNumbers('float32', [1, 1, 4], [1e4, 1e4 + 1, 1e4 + 2, 1e4 + 3]);
    const y = tensorToNumbers(runCpuNode('InstanceNormalization', { epsilon: f(0) }, [x, tensorFromNumbers('float32', [1], [1]), tensorFromNumbers('float32', [1], [0])])[0]!);
    [-1.5, -0.5, 0.5, 1.5].forEach((d, i) => expect(y[i]).toBeCloseTo(d / Math.sqrt(1.25), 6));
  });

  it('LayerNormalization by hand: default epsilon 1e-5, scale broadcast of size 1', () => {
    const x = tensorFromNumbers('float64', [1, 4], [1, 2, 3, 4]); // mean 2.5, variance 1.25
    const [y, m, inv] = runCpuNode('LayerNormalization', {}, [x, tensorFromNumbers('float64', [1], [2])], 3);
    const k = 1 / Math.sqrt(1.25 + 1e-5);
    expect(Array.from(tensorToNumbers(y!))).toEqual([-1.5, -0.5, 0.5, 1.5].map((d) => 2 * d * k));
    expect(m!.dtype).toBe('float32');
    expect(Array.from(tensorToNumbers(m!))).toEqual([2.5]);
    expect(inv!.data[0]).toBeCloseTo(k, 6);
  });

  it('GroupNormalization-21', async () => {
    for (const [shape, groups] of [[[2, 6, 5], 3], [[1, 4, 3, 3], 2], [[2, 4, 2, 2], 4], [[1, 3, 7], 1]] as [number[], number][]) {
      const C = shape[1]!;
      const x = randomTensor(rng, 'float32', shape, { lo: -2, hi: 3 });
      const attrs = { num_groups: attr(groups), epsilon: f(1e-3) };
      expect(await compareWithOrt('GroupNormalization', attrs, [x, randomTensor(rng, 'float32', [C]), randomTensor(rng, 'float32', [C])], { rtol: 1e-4, atol: 1e-5 })).toEqual([]);
    }
  });

  it('GroupNormalization-21 by hand', () => {
    // N=1, C=4, 2 groups, spatial 2: group 0 = channels 0,1 = [1, 3, 5, 7] (mean 4, var 5); group 1 = [0, 0, 2, 2] (mean 1, var 1).
    const x = tensorFromNumbers('float64', [1, 4, 2], [1, 3, 5, 7, 0, 0, 2, 2]);
    const scale = tensorFromNumbers('float64', [4], [1, 2, 3, 4]);
    const bias = tensorFromNumbers('float64', [4], [0, 1, 0, -1]);
    const y = tensorToNumbers(runCpuNode('GroupNormalization', { num_groups: attr(2), epsilon: f(0) }, [x, scale, bias])[0]!);
    const s5 = Math.sqrt(5);
    const want = [-3 / s5, -1 / s5, (2 * 1) / s5 + 1, (2 * 3) / s5 + 1, -3, -3, 4 - 1, 4 - 1];
    want.forEach((v, i) => expect(y[i]).toBeCloseTo(v, 12));
  });
});

describe('Softmax / LogSoftmax / Hardmax match onnxruntime', () => {
  const rng = new Rng(15);
  for (const op of ['Softmax', 'LogSoftmax', 'Hardmax']) {
    it(op, async () => {
      for (const [shape, axis] of [[[2, 10], -1], [[2, 10], 0], [[3, 4, 5], 1], [[3, 4, 5], -3], [[7], 0], [[2, 3, 1], 2], [[1, 1000], 1]] as [number[], number][]) {
        const x = randomTensor(rng, 'float32', shape, { lo: -10, hi: 10 });
        expect(await compareWithOrt(op, { axis: attr(axis) }, [x])).toEqual([]);
      }
      // Large magnitudes: without subtracting the maximum exp() would overflow to inf.
      const big = randomTensor(rng, 'float32', [4, 6], { lo: 500, hi: 1000 });
      expect(await compareWithOrt(op, {}, [big])).toEqual([]);
      const neg = randomTensor(rng, 'float32', [4, 6], { lo: -1000, hi: -500 });
      expect(await compareWithOrt(op, {}, [neg])).toEqual([]);
      if (op === 'Hardmax') return; // onnxruntime implements Hardmax for float32 only
      expect(await compareWithOrt(op, {}, [randomTensor(rng, 'float64', [3, 5])])).toEqual([]);
      expect(await compareWithOrt(op, {}, [randomTensor(rng, 'float16', [3, 5])], { rtol: 2e-3, atol: 2e-3 })).toEqual([]);
    });
  }

  it('Softmax rows sum to 1 and Hardmax picks the first maximum', () => {
    const y = tensorToNumbers(runCpuNode('Softmax', {}, [tensorFromNumbers('float64', [3], [1, 2, 3])])[0]!);
    const e = [Math.exp(-2), Math.exp(-1), 1];
    const s = e[0]! + e[1]! + e[2]!;
    e.forEach((v, i) => expect(y[i]).toBeCloseTo(v / s, 15));
    expect(Array.from(tensorToNumbers(runCpuNode('Hardmax', {}, [tensorFromNumbers('float32', [4], [1, 3, 3, 0])])[0]!))).toEqual([0, 1, 0, 0]);
    // NaN is the maximum (numpy.argmax), so Hardmax marks the first NaN and Softmax's row is NaN.
    const nan = tensorFromNumbers('float32', [4], [1, NaN, 3, NaN]);
    expect(Array.from(tensorToNumbers(runCpuNode('Hardmax', {}, [nan])[0]!))).toEqual([0, 1, 0, 0]);
    expect(tensorToNumbers(runCpuNode('Softmax', {}, [nan])[0]!).every(Number.isNaN)).toBe(true);
  });
});
