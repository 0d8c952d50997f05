import { describe, expect, it } from 'vitest';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr, Dim } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, tensorToNumbers } from '../../runtime/ir/tensor.js';
import { attr, i64 } from '../helpers/ir-builder.js';
import { compareWithOrt, inferNode, runCpuNode } from '../helpers/ort-single-node.js';
import { randomTensor, Rng } from '../helpers/random.js';

const REDUCE = ['ReduceSum', 'ReduceMean', 'ReduceProd', 'ReduceMax', 'ReduceMin', 'ReduceL1', 'ReduceL2', 'ReduceSumSquare', 'ReduceLogSum', 'ReduceLogSumExp'];
const toAttrs = (a: Record<string, number>): Record<string, Attr> => Object.fromEntries(Object.entries(a).map(([k, v]) => [k, attr(v)]));

describe('reduction shape inference', () => {
  const x = (shape: Dim[]) => ({ dtype: 'float32' as DType, shape });
  const axes = (v: number[]) => ({ dtype: 'int64' as DType, shape: [v.length], value: i64(v) });
  it('reduces constant axes of symbolic shapes, with and without keepdims', () => {
    expect(inferNode('ReduceMean', {}, [x(['N', 'C', 'H', 'W']), axes([2, 3])])[0]!.shape).toEqual(['N', 'C', 1, 1]);
    expect(inferNode('ReduceMean', toAttrs({ keepdims: 0 }), [x(['N', 'C', 'H', 'W']), axes([-1, -2])])[0]!.shape).toEqual(['N', 'C']);
    expect(inferNode('ReduceSum', toAttrs({ keepdims: 0 }), [x(['N', 4])])[0]!.shape).toEqual([]);
    expect(inferNode('ReduceMax', {}, [x(['N', 4]), axes([])])[0]!.shape).toEqual([1, 1]);
    expect(inferNode('ReduceMax', toAttrs({ noop_with_empty_axes: 1 }), [x(['N', 4])])[0]!.shape).toEqual(['N', 4]);
  });

  it('with runtime axes keeps the rank (keepdims) or gives up on it', () => {
    const dyn = { dtype: 'int64' as DType, shape: [1] };
    expect(inferNode('ReduceSum', {}, [x(['N', 1, 5]), dyn])[0]!.shape).toEqual(['s0', 1, 's1']);
    expect(inferNode('ReduceSum', toAttrs({ keepdims: 0 }), [x(['N', 5]), dyn])[0]!.shape).toBeUndefined();
  });

  it('rejects bad axes and types', () => {
    expect(() => inferNode('ReduceSum', {}, [x([2, 3]), axes([2])])).toThrow(/out of range/);
    expect(() => inferNode('ReduceSum', {}, [x([2, 3]), axes([1, -1])])).toThrow(/repeat/);
    expect(() => inferNode('ReduceSum', {}, [x([2, 3]), { dtype: 'int32', shape: [1] }])).toThrow(/int64/);
    expect(() => inferNode('ReduceSum', {}, [{ dtype: 'bool', shape: [2] }])).toThrow(/numeric/);
  });

  it('ArgMax, CumSum and TopK', () => {
    expect(inferNode('ArgMax', toAttrs({ axis: 1 }), [x(['N', 10])])).toEqual([{ dtype: 'int64', shape: ['N', 1] }]);
    expect(inferNode('ArgMin', toAttrs({ axis: -1, keepdims: 0 }), [x(['N', 10])])).toEqual([{ dtype: 'int64', shape: ['N'] }]);
    expect(() => inferNode('ArgMax', toAttrs({ axis: 2 }), [x(['N', 10])])).toThrow(/out of range/);
    expect(inferNode('CumSum', {}, [x(['N', 3]), { dtype: 'int32', shape: [], value: tensorFromNumbers('int32', [], [1]) }])[0]!.shape).toEqual(['N', 3]);
    expect(inferNode('TopK', {}, [x(['N', 100]), { dtype: 'int64', shape: [1], value: i64([5]) }], 2)).toEqual([
      { dtype: 'float32', shape: ['N', 5] }, { dtype: 'int64', shape: ['N', 5] },
    ]);
    expect(inferNode('TopK', toAttrs({ axis: 0 }), [x(['N', 100]), { dtype: 'int64', shape: [1] }], 2)[0]!.shape).toEqual(['s0', 100]);
    expect(() => inferNode('TopK', {}, [x(['N', 4]), { dtype: 'int64', shape: [1], value: i64([5]) }], 2)).toThrow(/K=5/);
  });
});

describe('Reduce* match onnxruntime', () => {
  const rng = new Rng(16);
  const axesCases: (number[] | null)[] = [null, [], [0], [1], [-1], [0, 2], [2, 0, 1]];
  for (const op of REDUCE) {
    it(op, async () => {
      const positive = op === 'ReduceLogSum';
      for (const ax of axesCases) {
        for (const keepdims of [1, 0]) {
          for (const noop of ax && ax.length ? [0] : [0, 1]) {
            const x = randomTensor(rng, 'float32', [3, 4, 5], positive ? { lo: 0.1, hi: 2 } : { lo: -2, hi: 2 });
            const ins = ax ? [x, i64(ax)] : [x];
            const attrs = toAttrs({ keepdims, noop_with_empty_axes: noop });
            expect(await compareWithOrt(op, attrs, ins, { opset: 18 })).toEqual([]);
            // Axes as a constant (initializer), the form exporters write.
            if (ax) expect(await compareWithOrt(op, attrs, ins, { opset: 18, constants: [1] })).toEqual([]);
          }
        }
      }
      // Integer LogSum/LogSumExp have no agreed rounding of their intermediate exp/log (ORT rounds inside), so
      // integers are compared for the other reductions only.
      const logOp = op === 'ReduceLogSum' || op === 'ReduceLogSumExp';
      for (const dtype of (logOp ? ['float64', 'float16'] : ['float64', 'float16', 'int32', 'int64']) as DType[]) {
        const x = randomTensor(rng, dtype, [2, 3, 4], dtype.startsWith('float') ? { lo: positive ? 0.1 : -2, hi: 2 } : { lo: positive ? 1 : -4, hi: 4 });
        const tol = dtype === 'float16' ? { rtol: 2e-3, atol: 2e-3 } : {};
        expect(await compareWithOrt(op, toAttrs({ keepdims: 0 }), [x, i64([1])], { opset: 18, ...tol })).toEqual([]);
      }
      if (op === 'ReduceMax' || op === 'ReduceMin') {
        for (const dtype of ['uint8', 'int8', 'bool'] as DType[]) {
          const x = randomTensor(rng, dtype, [3, 4], dtype === 'uint8' ? { lo: 0, hi: 255 } : {});
          expect(await compareWithOrt(op, {}, [x, i64([0])], { opset: 20 })).toEqual([]);
        }
      }
    });
  }

  it('ReduceLogSumExp does not overflow on large inputs', async () => {
    const x = randomTensor(rng, 'float32', [3, 5], { lo: 500, hi: 1000 });
    expect(await compareWithOrt('ReduceLogSumExp', {}, [x, i64([1])], { opset: 18 })).toEqual([]);
  });

  it('reductions over an empty set give the identity element (ONNX Reduce-18)', () => {
    const x = tensorFromNumbers('float32', [2, 0, 3], []);
    const want: Record<string, number> = {
      ReduceSum: 0, ReduceProd: 1, ReduceMax: -Infinity, ReduceMin: Infinity, ReduceMean: NaN, ReduceL1: 0, ReduceL2: 0,
      ReduceSumSquare: 0, ReduceLogSum: -Infinity, ReduceLogSumExp: -Infinity,
    };
    for (const op of REDUCE) {
      const y = runCpuNode(op, {}, [x, i64([1])])[0]!;
      expect(y.shape).toEqual([2, 1, 3]);
      expect(Array.from(tensorToNumbers(y))).toEqual(new Array(6).fill(want[op]));
    }
    const xi = tensorFromNumbers('int64', [0, 2], []);
    expect(runCpuNode('ReduceMax', toAttrs({ keepdims: 0 }), [xi, i64([0])])[0]!.data).toEqual(new BigInt64Array([-(2n ** 63n), -(2n ** 63n)]));
    expect(Array.from(tensorToNumbers(runCpuNode('ReduceMin', toAttrs({ keepdims: 0 }), [tensorFromNumbers('uint8', [0, 2], []), i64([0])])[0]!))).toEqual([255, 255]);
  });

  it('NaN propagates through every reduction, as in numpy (ONNX leaves it unspecified; ORT depends on element order)', () => {
    const x = tensorFromNumbers('float32', [2, 3], [1, NaN, 3, -Infinity, 2, Infinity]);
    for (const op of ['ReduceMax', 'ReduceMin', 'ReduceSum', 'ReduceLogSumExp', 'ReduceL2']) {
      const y = tensorToNumbers(runCpuNode(op, toAttrs({ keepdims: 0 }), [x, i64([1])])[0]!);
      expect(Number.isNaN(y[0]), op).toBe(true);
    }
    const row = (op: string) => tensorToNumbers(runCpuNode(op, toAttrs({ keepdims: 0 }), [x, i64([1])])[0]!)[1];
    expect([row('ReduceMax'), row('ReduceMin'), row('ReduceLogSumExp')]).toEqual([Infinity, -Infinity, Infinity]);
  });

  it('ReduceMax/ReduceMin on bool by hand', () => {
    const b = tensorFromNumbers('bool', [2, 2], [0, 1, 0, 0]);
    expect(Array.from(tensorToNumbers(runCpuNode('ReduceMax', toAttrs({ keepdims: 0 }), [b, i64([1])])[0]!))).toEqual([1, 0]);
    expect(Array.from(tensorToNumbers(runCpuNode('ReduceMin', toAttrs({ keepdims: 0 }), [b, i64([0])])[0]!))).toEqual([0, 0]);
  });
});

describe('ArgMax / ArgMin / CumSum / TopK match onnxruntime', () => {
  const rng = new Rng(17);
  for (const op of ['ArgMax', 'ArgMin']) {
    it(op, async () => {
      for (const [shape, axis] of [[[3, 4, 5], 0], [[3, 4, 5], 1], [[3, 4, 5], -1], [[7], 0], [[2, 1, 3], 1]] as [number[], number][]) {
        for (const keepdims of [0, 1]) {
          for (const last of [0, 1]) {
            // Small integers: plenty of ties, so select_last_index matters.
            for (const dtype of ['float32', 'int32', 'int64'] as DType[]) {
              const x = randomTensor(rng, dtype, shape, { lo: -2, hi: 2, integers: true });
              expect(await compareWithOrt(op, toAttrs({ axis, keepdims, select_last_index: last }), [x])).toEqual([]);
            }
          }
        }
      }
    });
  }

  it('ArgMax/ArgMin pick the first NaN (the last with select_last_index), as numpy.argmax does', () => {
    const x = tensorFromNumbers('float32', [5], [1, NaN, 7, NaN, -3]);
    for (const op of ['ArgMax', 'ArgMin']) {
      expect(Array.from(tensorToNumbers(runCpuNode(op, {}, [x])[0]!)), op).toEqual([1]);
      expect(Array.from(tensorToNumbers(runCpuNode(op, toAttrs({ select_last_index: 1 }), [x])[0]!)), op).toEqual([3]);
    }
    const ties = tensorFromNumbers('int32', [5], [2, 5, 1, 5, 1]);
    expect(Array.from(tensorToNumbers(runCpuNode('ArgMax', {}, [ties])[0]!))).toEqual([1]);
    expect(Array.from(tensorToNumbers(runCpuNode('ArgMin', toAttrs({ select_last_index: 1 }), [ties])[0]!))).toEqual([4]);
  });

  it('CumSum with every combination of exclusive and reverse', async () => {
    for (const [shape, axis] of [[[5], 0], [[3, 4], 1], [[3, 4], 0], [[2, 3, 4], -2], [[2, 3, 4], 2]] as [number[], number][]) {
      for (const exclusive of [0, 1]) {
        for (const reverse of [0, 1]) {
          for (const [dtype, axisType] of [['float32', 'int64'], ['float64', 'int32'], ['int32', 'int64'], ['int64', 'int32']] as [DType, DType][]) {
            const x = randomTensor(rng, dtype, shape);
            const a = tensorFromNumbers(axisType, [], [axis]);
            expect(await compareWithOrt('CumSum', toAttrs({ exclusive, reverse }), [x, a])).toEqual([]);
          }
        }
      }
    }
    expect(Array.from(tensorToNumbers(runCpuNode('CumSum', toAttrs({ exclusive: 1, reverse: 1 }), [tensorFromNumbers('float32', [4], [1, 2, 3, 4]), i64([0], [])])[0]!))).toEqual([9, 7, 4, 0]);
  });

  it('TopK largest/smallest along any axis, K from 0 to the full size, ties by lower index', async () => {
    for (const [shape, axis] of [[[10], 0], [[3, 8], -1], [[3, 8], 0], [[2, 5, 4], 1]] as [number[], number][]) {
      const n = shape[axis < 0 ? shape.length + axis : axis]!;
      for (const k of [0, 1, 3, n]) {
        for (const largest of [1, 0]) {
          for (const dtype of ['float32', 'int64', 'int32', 'float64'] as DType[]) {
            const x = randomTensor(rng, dtype, shape, { lo: -3, hi: 3, integers: true });
            expect(await compareWithOrt('TopK', toAttrs({ axis, largest, sorted: 1 }), [x, i64([k])], { outputs: 2 })).toEqual([]);
          }
        }
      }
    }
    // NaN ranks above every number (numpy's sort order).
    const nan = tensorFromNumbers('float32', [4], [1, NaN, 3, -2]);
    const [nv, ni] = runCpuNode('TopK', {}, [nan, i64([2])], 2);
    expect(Array.from(tensorToNumbers(nv!))).toEqual([NaN, 3]);
    expect(Array.from(tensorToNumbers(ni!))).toEqual([1, 2]);
    const [sv] = runCpuNode('TopK', toAttrs({ largest: 0 }), [nan, i64([4])], 2);
    expect(Array.from(tensorToNumbers(sv!))).toEqual([-2, 1, 3, NaN]);
    const [v, i] = runCpuNode('TopK', {}, [tensorFromNumbers('float32', [5], [1, 3, 2, 3, 1]), i64([3])], 2);
    expect(Array.from(tensorToNumbers(v!))).toEqual([3, 3, 2]);
    expect(Array.from(tensorToNumbers(i!))).toEqual([1, 3, 2]);
  });
});
