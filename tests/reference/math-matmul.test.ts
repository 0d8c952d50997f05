import { describe, expect, it } from 'vitest';
import type { DType } from '../../runtime/ir/dtype.js';
import { tensorFromNumbers, tensorToNumbers } from '../../runtime/ir/tensor.js';
import { attr } from '../helpers/ir-builder.js';
import { compareWithOrt, inferNode, runCpuNode } from '../helpers/ort-single-node.js';
import { randomTensor, Rng } from '../helpers/random.js';

const TOL = { rtol: 1e-4, atol: 1e-5 };

describe('MatMul / Gemm shape inference', () => {
  it('follows numpy.matmul for 1-D operands and broadcasts batch dims symbolically', () => {
    const s = (a: (number | string)[], b: (number | string)[]) => inferNode('MatMul', {}, [{ dtype: 'float32', shape: a }, { dtype: 'float32', shape: b }])[0]!.shape;
    expect(s(['N', 'S', 64], [64, 128])).toEqual(['N', 'S', 128]);
    expect(s([3], [3])).toEqual([]);
    expect(s([3], [2, 3, 5])).toEqual([2, 5]);
    expect(s([2, 4, 3], [3])).toEqual([2, 4]);
    expect(s(['B', 1, 4, 3], [5, 3, 'P'])).toEqual(['B', 5, 4, 'P']);
    expect(s([4, 'K'], ['K', 2])).toEqual([4, 2]);
    expect(() => s([4, 3], [4, 2])).toThrow(/inner dimensions/);
    expect(() => s([2, 4, 3], [3, 3, 2])).toThrow(/Cannot broadcast/);
    expect(() => inferNode('MatMul', {}, [{ dtype: 'float32', shape: [] }, { dtype: 'float32', shape: [2] }])).toThrow(/rank/);
    expect(() => inferNode('MatMul', {}, [{ dtype: 'float32', shape: [2] }, { dtype: 'float16', shape: [2] }])).toThrow(/element type/);
  });

  it('Gemm honours transA/transB and checks that C broadcasts to [M, N]', () => {
    const g = (attrs: Record<string, number>, a: (number | string)[], b: (number | string)[], c?: (number | string)[]) =>
      inferNode('Gemm', Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, attr(v)])), [
        { dtype: 'float32', shape: a }, { dtype: 'float32', shape: b }, ...(c ? [{ dtype: 'float32' as DType, shape: c }] : []),
      ])[0]!.shape;
    expect(g({}, ['N', 512], [512, 10], [10])).toEqual(['N', 10]);
    expect(g({ transB: 1 }, ['N', 512], [10, 512], [1, 10])).toEqual(['N', 10]);
    expect(g({ transA: 1, transB: 1 }, [7, 'M'], [3, 7])).toEqual(['M', 3]);
    expect(() => g({}, [2, 3], [4, 5])).toThrow(/inner dimensions/);
    expect(() => g({}, [2, 3], [3, 5], [3])).toThrow(/broadcast/);
    expect(() => g({}, [2, 3, 1], [3, 5])).toThrow(/rank 2/);
  });
});

describe('MatMul matches onnxruntime', () => {
  const rng = new Rng(5);
  const cases: [number[], number[]][] = [
    [[3, 4], [4, 5]], [[1, 1], [1, 1]], [[7, 13], [13, 9]], [[4], [4]], [[4], [4, 6]], [[6, 4], [4]],
    [[2, 3, 4], [4, 5]], [[3, 4], [2, 4, 5]], [[2, 1, 3, 4], [5, 4, 2]], [[5], [2, 3, 5, 2]], [[2, 3, 5], [5]],
    [[0, 4], [4, 3]], [[3, 0], [0, 2]], [[17, 33], [33, 31]],
  ];
  for (const [sa, sb] of cases) {
    it(`[${sa}] x [${sb}]`, async () => {
      for (const dtype of ['float32', 'float64', 'int32', 'int64'] as DType[]) {
        const a = randomTensor(rng, dtype, sa);
        const b = randomTensor(rng, dtype, sb);
        expect(await compareWithOrt('MatMul', {}, [a, b], TOL)).toEqual([]);
      }
    });
  }

  it('float16 and large magnitudes', async () => {
    const a = randomTensor(rng, 'float16', [5, 8]);
    const b = randomTensor(rng, 'float16', [8, 3]);
    // ORT accumulates float16 products in float16 or float32; compare on float16's own precision.
    expect(await compareWithOrt('MatMul', {}, [a, b], { rtol: 2e-3, atol: 2e-3 })).toEqual([]);
    const big = randomTensor(rng, 'float32', [4, 6], { lo: -1e15, hi: 1e15 });
    expect(await compareWithOrt('MatMul', {}, [big, randomTensor(rng, 'float32', [6, 2])], { rtol: 1e-4, atol: 1e11 })).toEqual([]);
  });

  it('propagates inf and NaN like a plain dot product', async () => {
    const a = tensorFromNumbers('float32', [2, 2], [0, 1, 1, NaN]);
    const b = tensorFromNumbers('float32', [2, 2], [Infinity, 1, 2, 3]);
    const y = tensorToNumbers(runCpuNode('MatMul', {}, [a, b])[0]!);
    expect(Array.from(y)).toEqual([NaN, 3, NaN, NaN]); // 0 * inf is NaN
    expect(await compareWithOrt('MatMul', {}, [a, b])).toEqual([]);
  });
});

describe('Gemm matches onnxruntime', () => {
  const rng = new Rng(6);
  const variants: [Record<string, number>, number, number, number, number[] | null][] = [
    [{}, 3, 4, 5, null], [{}, 3, 4, 5, [5]], [{}, 3, 4, 5, [3, 5]], [{}, 3, 4, 5, [3, 1]], [{}, 3, 4, 5, []],
    [{ transA: 1 }, 6, 2, 7, [7]], [{ transB: 1 }, 6, 9, 7, [1, 7]], [{ transA: 1, transB: 1 }, 5, 3, 4, [5, 4]],
    [{ alpha: 0.5, beta: 2 }, 4, 4, 4, [4]], [{ alpha: -1.5 }, 2, 8, 3, null], [{ beta: 0 }, 3, 3, 3, [3]], [{}, 1, 1, 1, [1]],
    [{}, 0, 3, 4, [4]],
  ];
  for (const [attrs, M, K, N, cShape] of variants) {
    it(`${JSON.stringify(attrs)} M=${M} K=${K} N=${N} C=${cShape ? `[${cShape}]` : 'none'}`, async () => {
      const at = Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, attr(v, k === 'alpha' || k === 'beta')]));
      for (const dtype of ['float32', 'float64'] as DType[]) {
        const a = randomTensor(rng, dtype, attrs.transA ? [K, M] : [M, K]);
        const b = randomTensor(rng, dtype, attrs.transB ? [N, K] : [K, N]);
        const c = cShape ? randomTensor(rng, dtype, cShape) : undefined;
        expect(await compareWithOrt('Gemm', at, c ? [a, b, c] : [a, b], TOL)).toEqual([]);
      }
    });
  }

  it('computes alpha A B + beta C by hand', () => {
    const a = tensorFromNumbers('float32', [2, 2], [1, 2, 3, 4]);
    const b = tensorFromNumbers('float32', [2, 2], [5, 6, 7, 8]);
    const c = tensorFromNumbers('float32', [2], [1, -1]);
    const y = runCpuNode('Gemm', { alpha: attr(2, true), beta: attr(3, true), transB: attr(1) }, [a, b, c])[0]!;
    // A B^T = [[17, 23], [39, 53]]
    expect(Array.from(tensorToNumbers(y))).toEqual([2 * 17 + 3, 2 * 23 - 3, 2 * 39 + 3, 2 * 53 - 3]);
  });
});
