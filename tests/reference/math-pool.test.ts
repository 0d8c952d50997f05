import { describe, expect, it } from 'vitest';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr, Dim } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, tensorToNumbers } from '../../runtime/ir/tensor.js';
import { attr } from '../helpers/ir-builder.js';
import { compareWithOrt, inferNode, runCpuNode } from '../helpers/ort-single-node.js';
import { randomTensor, Rng } from '../helpers/random.js';

type Attrs = Record<string, number | number[] | string>;
const toAttrs = (a: Attrs): Record<string, Attr> => Object.fromEntries(Object.entries(a).map(([k, v]) => [k, attr(v)]));
const shapeOf = (op: string, a: Attrs, x: Dim[], outputs = 1) => inferNode(op, toAttrs(a), [{ dtype: 'float32', shape: x }], outputs);

describe('pool shape inference', () => {
  it('computes output sizes with a symbolic batch, ceil_mode and auto_pad', () => {
    expect(shapeOf('MaxPool', { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }, ['N', 64, 112, 112])[0]!.shape).toEqual(['N', 64, 56, 56]);
    expect(shapeOf('MaxPool', { kernel_shape: [3, 3], strides: [2, 2] }, ['N', 3, 6, 6])[0]!.shape).toEqual(['N', 3, 2, 2]);
    expect(shapeOf('MaxPool', { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 }, ['N', 3, 6, 6])[0]!.shape).toEqual(['N', 3, 3, 3]);
    // ceil_mode: (4 + 1 - 2) / 2 rounds up to 2 strides, i.e. 3 windows, but the third would start at 4, in the
    // right padding, so it is dropped.
    expect(shapeOf('MaxPool', { kernel_shape: [2], strides: [2], pads: [0, 1], ceil_mode: 1 }, [1, 1, 4])[0]!.shape).toEqual([1, 1, 2]);
    expect(shapeOf('AveragePool', { kernel_shape: [3, 3], auto_pad: 'SAME_UPPER', strides: [2, 2] }, ['N', 3, 'H', 7])[0]!.shape).toEqual(['N', 3, 'ceil(H/2)', 4]);
    expect(shapeOf('AveragePool', { kernel_shape: [2, 2], dilations: [2, 2] }, [1, 3, 7, 7])[0]!.shape).toEqual([1, 3, 5, 5]);
    expect(shapeOf('MaxPool', { kernel_shape: [2, 2] }, ['N', 3, 'H', 'W'], 2)).toEqual([
      { dtype: 'float32', shape: ['N', 3, 'H-1', 'W-1'] }, { dtype: 'int64', shape: ['N', 3, 'H-1', 'W-1'] },
    ]);
    expect(shapeOf('GlobalAveragePool', {}, ['N', 'C', 'H', 'W'])[0]!.shape).toEqual(['N', 'C', 1, 1]);
    expect(shapeOf('GlobalMaxPool', {}, ['N', 8, 5])[0]!.shape).toEqual(['N', 8, 1]);
  });

  it('rejects missing kernel_shape, wrong attribute lengths and ranks', () => {
    expect(() => shapeOf('MaxPool', {}, ['N', 3, 8, 8])).toThrow(/kernel_shape/);
    expect(() => shapeOf('MaxPool', { kernel_shape: [2, 2], strides: [1] }, ['N', 3, 8, 8])).toThrow(/strides/);
    expect(() => shapeOf('AveragePool', { kernel_shape: [2] }, ['N', 3])).toThrow(/rank/);
    expect(() => shapeOf('MaxPool', { kernel_shape: [2], storage_order: 2 }, ['N', 3, 8])).toThrow(/storage_order/);
    expect(() => inferNode('AveragePool', toAttrs({ kernel_shape: [2] }), [{ dtype: 'int32', shape: [1, 1, 4] }])).toThrow(/floating-point/);
  });
});

interface PoolCase { x: number[]; attrs: Attrs; opset?: number }
const WINDOW_CASES: PoolCase[] = [
  { x: [1, 1, 5, 5], attrs: { kernel_shape: [2, 2] } },
  { x: [2, 3, 7, 6], attrs: { kernel_shape: [3, 3], strides: [2, 2] } },
  { x: [1, 2, 8, 8], attrs: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] } },
  { x: [1, 2, 7, 7], attrs: { kernel_shape: [3, 2], strides: [2, 3], pads: [1, 0, 1, 1] } },
  { x: [1, 2, 6, 6], attrs: { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 } },
  { x: [1, 2, 5, 7], attrs: { kernel_shape: [2, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 } },
  { x: [1, 1, 9, 9], attrs: { kernel_shape: [3, 3], strides: [3, 3], pads: [1, 1, 1, 1], ceil_mode: 1 } },
  { x: [1, 2, 7, 8], attrs: { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_UPPER' } },
  { x: [1, 2, 7, 8], attrs: { kernel_shape: [4, 3], strides: [2, 3], auto_pad: 'SAME_LOWER' } },
  { x: [1, 2, 7, 8], attrs: { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'VALID' } },
  { x: [1, 2, 9, 9], attrs: { kernel_shape: [2, 2], dilations: [2, 2] } },
  { x: [1, 2, 10, 9], attrs: { kernel_shape: [3, 2], dilations: [2, 3], strides: [2, 1], pads: [2, 1, 1, 1] } },
  { x: [1, 2, 10, 9], attrs: { kernel_shape: [3, 2], dilations: [2, 2], strides: [2, 2], ceil_mode: 1 } },
  { x: [2, 3, 11], attrs: { kernel_shape: [3], strides: [2], pads: [1, 1] } },
  { x: [1, 2, 5, 6, 7], attrs: { kernel_shape: [2, 3, 2], strides: [2, 1, 2], pads: [0, 1, 1, 1, 0, 0] } },
  { x: [1, 1, 4, 4], attrs: { kernel_shape: [4, 4] } },
  { x: [1, 2, 4], attrs: { kernel_shape: [2], strides: [2], pads: [0, 1], ceil_mode: 1 } },
  { x: [1, 2, 5, 4], attrs: { kernel_shape: [3, 2], strides: [2, 2], pads: [0, 0, 2, 1], ceil_mode: 1 } },
];

describe('MaxPool matches onnxruntime', () => {
  const rng = new Rng(9);
  for (const c of WINDOW_CASES) {
    it(`X[${c.x}] ${JSON.stringify(c.attrs)}`, async () => {
      const x = randomTensor(rng, 'float32', c.x, { lo: -5, hi: 5 });
      expect(await compareWithOrt('MaxPool', toAttrs(c.attrs), [x])).toEqual([]);
      // With the Indices output (ORT implements it for 2-D and 3-D... and 1-D; every rank here).
      expect(await compareWithOrt('MaxPool', toAttrs(c.attrs), [x], { outputs: 2 })).toEqual([]);
      if (c.x.length === 4) {
        expect(await compareWithOrt('MaxPool', toAttrs({ ...c.attrs, storage_order: 1 }), [x], { outputs: 2 })).toEqual([]);
      }
    });
  }

  it('int8, uint8, float16 and float64 inputs', async () => {
    const attrs = toAttrs({ kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
    for (const dtype of ['int8', 'uint8', 'float16', 'float64'] as DType[]) {
      const x = randomTensor(rng, dtype, [1, 2, 7, 7], dtype === 'uint8' ? { lo: 0, hi: 255 } : dtype === 'int8' ? { lo: -128, hi: 127 } : {});
      expect(await compareWithOrt('MaxPool', attrs, [x])).toEqual([]);
    }
  });

  it('propagates NaN whatever its position in the window (ONNX leaves NaN unspecified; this follows PyTorch)', () => {
    const x = tensorFromNumbers('float32', [1, 1, 5], [1, NaN, 3, 2, 0]);
    const [y, i] = runCpuNode('MaxPool', toAttrs({ kernel_shape: [2] }), [x], 2);
    expect(Array.from(tensorToNumbers(y!))).toEqual([NaN, NaN, 3, 2]);
    expect(Array.from(tensorToNumbers(i!))).toEqual([1, 1, 2, 3]);
    expect(Array.from(tensorToNumbers(runCpuNode('GlobalMaxPool', {}, [x])[0]!))).toEqual([NaN]);
  });

  it('keeps the first maximum on ties and padding never wins', () => {
    const x = tensorFromNumbers('float32', [1, 1, 2, 2], [-5, -5, -7, -5]);
    const [y, i] = runCpuNode('MaxPool', toAttrs({ kernel_shape: [2, 2], pads: [1, 1, 0, 0] }), [x], 2);
    expect(Array.from(tensorToNumbers(y!))).toEqual([-5, -5, -5, -5]);
    expect(Array.from(tensorToNumbers(i!))).toEqual([0, 0, 0, 0]);
  });
});

describe('AveragePool matches onnxruntime', () => {
  const rng = new Rng(10);
  for (const c of WINDOW_CASES) {
    it(`X[${c.x}] ${JSON.stringify(c.attrs)}`, async () => {
      for (const includePad of [0, 1]) {
        const x = randomTensor(rng, 'float32', c.x, { lo: -5, hi: 5 });
        expect(await compareWithOrt('AveragePool', toAttrs({ ...c.attrs, count_include_pad: includePad }), [x], { opset: 19 })).toEqual([]);
      }
    });
  }

  it('divides by the number of real elements or of elements plus padding', () => {
    const x = tensorFromNumbers('float32', [1, 1, 2, 2], [1, 2, 3, 4]);
    const attrs = { kernel_shape: [2, 2], pads: [1, 1, 0, 0] };
    expect(Array.from(tensorToNumbers(runCpuNode('AveragePool', toAttrs(attrs), [x])[0]!))).toEqual([1, 1.5, 2, 2.5]);
    expect(Array.from(tensorToNumbers(runCpuNode('AveragePool', toAttrs({ ...attrs, count_include_pad: 1 }), [x])[0]!))).toEqual([0.25, 0.75, 1, 2.5]);
  });
});

describe('LpPool and global pools match onnxruntime', () => {
  const rng = new Rng(12);
  it('LpPool p=1,2,3', async () => {
    for (const c of WINDOW_CASES.filter((k) => !k.attrs.ceil_mode && !k.attrs.dilations)) {
      for (const p of [1, 2, 3]) {
        const x = randomTensor(rng, 'float32', c.x);
        expect(await compareWithOrt('LpPool', toAttrs({ ...c.attrs, p }), [x], { opset: 18 })).toEqual([]);
      }
    }
  });

  for (const op of ['GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool']) {
    it(op, async () => {
      for (const shape of [[1, 3, 5, 5], [2, 4, 7], [1, 2, 3, 4, 5], [2, 3, 1, 1]]) {
        for (const dtype of (op === 'GlobalLpPool' ? ['float32'] : ['float32', 'float16']) as DType[]) {
          const x = randomTensor(rng, dtype, shape, { lo: -4, hi: 4 });
          expect(await compareWithOrt(op, {}, [x], dtype === 'float16' ? { rtol: 1e-3, atol: 1e-3 } : {})).toEqual([]);
        }
      }
      if (op === 'GlobalLpPool') expect(await compareWithOrt(op, toAttrs({ p: 3 }), [randomTensor(rng, 'float32', [1, 2, 4, 4])])).toEqual([]);
    });
  }
});
