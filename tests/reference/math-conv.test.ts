import { describe, expect, it } from 'vitest';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr, Dim } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, tensorToNumbers } from '../../runtime/ir/tensor.js';
import { attr } from '../helpers/ir-builder.js';
import { compareWithOrt, inferNode, runCpuNode } from '../helpers/ort-single-node.js';
import { randomTensor, Rng } from '../helpers/random.js';

const TOL = { rtol: 1e-4, atol: 1e-5 };
type Attrs = Record<string, number | number[] | string>;
const toAttrs = (a: Attrs): Record<string, Attr> => Object.fromEntries(Object.entries(a).map(([k, v]) => [k, attr(v)]));
const shapeOf = (op: string, a: Attrs, x: Dim[], w: Dim[], b?: Dim[]) =>
  inferNode(op, toAttrs(a), [{ dtype: 'float32', shape: x }, { dtype: 'float32', shape: w }, ...(b ? [{ dtype: 'float32' as DType, shape: b }] : [])])[0]!.shape;

describe('Conv shape inference', () => {
  it('keeps a symbolic batch and computes spatial sizes', () => {
    expect(shapeOf('Conv', { pads: [1, 1, 1, 1] }, ['N', 3, 32, 32], [16, 3, 3, 3], [16])).toEqual(['N', 16, 32, 32]);
    expect(shapeOf('Conv', { strides: [2, 2], pads: [3, 3, 3, 3] }, ['N', 3, 224, 224], [64, 3, 7, 7])).toEqual(['N', 64, 112, 112]);
    expect(shapeOf('Conv', { dilations: [2], strides: [3] }, [1, 4, 20], [8, 4, 3])).toEqual([1, 8, 6]);
    expect(shapeOf('Conv', { auto_pad: 'SAME_UPPER', strides: [2, 2, 2] }, [2, 2, 5, 6, 7], [4, 2, 3, 3, 3])).toEqual([2, 4, 3, 3, 4]);
    expect(shapeOf('Conv', { auto_pad: 'VALID', strides: [2, 1] }, [1, 1, 7, 5], [1, 1, 3, 2])).toEqual([1, 1, 3, 4]);
    expect(shapeOf('Conv', { group: 8 }, ['N', 8, 10, 10], [8, 1, 3, 3])).toEqual(['N', 8, 8, 8]);
  });

  it('writes symbolic spatial sizes as readable expressions', () => {
    expect(shapeOf('Conv', { pads: [1, 1, 1, 1] }, ['N', 3, 'H', 'W'], [8, 3, 3, 3])).toEqual(['N', 8, 'H', 'W']);
    expect(shapeOf('Conv', { strides: [2, 2], pads: [1, 1, 1, 1] }, ['N', 3, 'H', 'W'], [8, 3, 3, 3])).toEqual(['N', 8, 'floor((H-1)/2)+1', 'floor((W-1)/2)+1']);
    expect(shapeOf('Conv', { auto_pad: 'SAME_LOWER', strides: [2] }, ['N', 3, 'L'], [8, 3, 3])).toEqual(['N', 8, 'ceil(L/2)']);
    expect(shapeOf('Conv', {}, ['N', 3, 'L'], [8, 3, 5])).toEqual(['N', 8, 'L-4']);
    expect(shapeOf('ConvTranspose', { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] }, ['N', 8, 'H', 'W'], [8, 4, 3, 3])).toEqual(['N', 4, '2*H', '2*W']);
  });

  it('rejects inconsistent channels, groups, bias and ranks', () => {
    expect(() => shapeOf('Conv', {}, ['N', 4, 8, 8], [8, 3, 3, 3])).toThrow(/channels/);
    expect(() => shapeOf('Conv', { group: 3 }, ['N', 6, 8, 8], [8, 2, 3, 3])).toThrow(/divisible by group/);
    expect(() => shapeOf('Conv', {}, ['N', 3, 8, 8], [8, 3, 3, 3], [4])).toThrow(/bias/);
    expect(() => shapeOf('Conv', {}, ['N', 3, 8, 8], [8, 3, 3])).toThrow(/same rank/);
    expect(() => shapeOf('Conv', { strides: [2] }, ['N', 3, 8, 8], [8, 3, 3, 3])).toThrow(/strides/);
    expect(() => shapeOf('Conv', { kernel_shape: [2, 2] }, ['N', 3, 8, 8], [8, 3, 3, 3])).toThrow(/disagrees/);
    expect(() => inferNode('Conv', {}, [{ dtype: 'int32', shape: [1, 1, 3] }, { dtype: 'int32', shape: [1, 1, 1] }])).toThrow(/floating-point/);
    expect(() => shapeOf('ConvTranspose', {}, ['N', 4, 8, 8], [3, 2, 3, 3])).toThrow(/channels/);
  });
});

interface ConvCase { x: number[]; w: number[]; bias?: boolean; attrs?: Attrs }

const CONV_CASES: ConvCase[] = [
  { x: [1, 1, 5, 5], w: [1, 1, 3, 3] },
  { x: [2, 3, 7, 6], w: [4, 3, 3, 2], bias: true },
  { x: [1, 3, 9, 9], w: [5, 3, 3, 3], bias: true, attrs: { pads: [1, 1, 1, 1] } },
  { x: [1, 2, 11, 10], w: [3, 2, 3, 3], attrs: { strides: [2, 3], pads: [0, 1, 2, 1] } },
  { x: [1, 2, 12, 12], w: [2, 2, 3, 3], bias: true, attrs: { dilations: [2, 3], pads: [2, 3, 2, 3] } },
  { x: [2, 4, 8, 8], w: [6, 2, 3, 3], bias: true, attrs: { group: 2, pads: [1, 1, 1, 1] } },
  { x: [1, 6, 10, 9], w: [6, 1, 3, 3], bias: true, attrs: { group: 6, strides: [2, 2], pads: [1, 1, 1, 1] } },
  { x: [1, 4, 7, 7], w: [8, 1, 5, 5], attrs: { group: 4, auto_pad: 'SAME_UPPER' } },
  { x: [1, 3, 10, 11], w: [4, 3, 4, 4], attrs: { auto_pad: 'SAME_UPPER', strides: [2, 2] } },
  { x: [1, 3, 10, 11], w: [4, 3, 4, 4], attrs: { auto_pad: 'SAME_LOWER', strides: [2, 2] } },
  { x: [1, 3, 10, 11], w: [4, 3, 4, 3], attrs: { auto_pad: 'VALID', strides: [3, 2] } },
  { x: [1, 3, 8, 8], w: [2, 3, 3, 3], attrs: { kernel_shape: [3, 3], pads: [1, 0, 0, 1] } },
  { x: [3, 2, 17], w: [4, 2, 3], bias: true, attrs: { pads: [1, 1] } },
  { x: [1, 4, 20], w: [4, 2, 4], attrs: { group: 2, strides: [3], dilations: [2], pads: [2, 0] } },
  { x: [1, 2, 5, 6, 7], w: [3, 2, 3, 3, 3], bias: true, attrs: { pads: [1, 1, 1, 1, 1, 1] } },
  { x: [1, 2, 6, 5, 7], w: [4, 1, 2, 3, 2], attrs: { group: 2, strides: [2, 1, 2], auto_pad: 'SAME_LOWER' } },
  { x: [1, 1, 3, 3], w: [1, 1, 5, 5], attrs: { pads: [2, 2, 2, 2] } },
  { x: [1, 3, 1, 1], w: [5, 3, 1, 1], bias: true },
];

describe('Conv matches onnxruntime', () => {
  const rng = new Rng(7);
  for (const c of CONV_CASES) {
    it(`X[${c.x}] W[${c.w}]${c.bias ? ' +B' : ''} ${JSON.stringify(c.attrs ?? {})}`, async () => {
      for (const dtype of ['float32'] as DType[]) {
        const x = randomTensor(rng, dtype, c.x);
        const w = randomTensor(rng, dtype, c.w);
        const b = c.bias ? randomTensor(rng, dtype, [c.w[0]!]) : undefined;
        expect(await compareWithOrt('Conv', toAttrs(c.attrs ?? {}), b ? [x, w, b] : [x, w], TOL)).toEqual([]);
      }
    });
  }

  it('float16 inputs', async () => {
    const x = randomTensor(rng, 'float16', [1, 2, 6, 6]);
    const w = randomTensor(rng, 'float16', [3, 2, 3, 3]);
    expect(await compareWithOrt('Conv', {}, [x, w], { rtol: 2e-3, atol: 2e-3 })).toEqual([]);
  });

  it('computes a 1-D convolution by hand (cross-correlation, no kernel flip)', () => {
    const x = tensorFromNumbers('float32', [1, 1, 4], [1, 2, 3, 4]);
    const w = tensorFromNumbers('float32', [1, 1, 2], [1, 10]);
    const y = runCpuNode('Conv', toAttrs({ pads: [1, 0] }), [x, w, tensorFromNumbers('float32', [1], [0.5])])[0]!;
    expect(Array.from(tensorToNumbers(y))).toEqual([10.5, 21.5, 32.5, 43.5]);
  });
});

const TRANSPOSE_CASES: ConvCase[] = [
  { x: [1, 1, 3, 3], w: [1, 2, 3, 3] },
  { x: [2, 3, 4, 5], w: [3, 2, 3, 3], bias: true, attrs: { strides: [2, 2] } },
  { x: [1, 2, 4, 4], w: [2, 3, 3, 3], bias: true, attrs: { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] } },
  { x: [1, 2, 5, 4], w: [2, 2, 3, 2], attrs: { strides: [3, 2], pads: [1, 0, 2, 1] } },
  { x: [1, 2, 4, 4], w: [2, 1, 3, 3], attrs: { dilations: [2, 2], strides: [1, 2] } },
  { x: [1, 4, 3, 3], w: [4, 2, 3, 3], bias: true, attrs: { group: 2, strides: [2, 2] } },
  { x: [1, 3, 5, 5], w: [3, 1, 3, 3], attrs: { group: 3, strides: [2, 2], pads: [1, 1, 1, 1] } },
  { x: [1, 1, 3, 3], w: [1, 2, 3, 3], attrs: { strides: [3, 2], output_shape: [10, 8] } },
  { x: [1, 1, 3, 3], w: [1, 2, 3, 3], attrs: { strides: [3, 2], output_shape: [10, 8], auto_pad: 'SAME_UPPER' } },
  { x: [1, 1, 3, 3], w: [1, 2, 3, 3], attrs: { strides: [2, 2], auto_pad: 'SAME_UPPER' } },
  { x: [1, 1, 3, 4], w: [1, 2, 4, 3], attrs: { strides: [2, 3], auto_pad: 'SAME_LOWER' } },
  { x: [1, 2, 6], w: [2, 3, 4], bias: true, attrs: { strides: [2], pads: [1, 2] } },
  { x: [1, 2, 3, 4, 3], w: [2, 2, 2, 3, 2], bias: true, attrs: { strides: [2, 1, 2], pads: [0, 1, 0, 0, 1, 1] } },
  { x: [1, 1, 3, 3], w: [1, 1, 3, 3], attrs: { kernel_shape: [3, 3], strides: [2, 2], output_padding: [1, 0] } },
];

describe('ConvTranspose matches onnxruntime', () => {
  const rng = new Rng(8);
  for (const c of TRANSPOSE_CASES) {
    it(`X[${c.x}] W[${c.w}]${c.bias ? ' +B' : ''} ${JSON.stringify(c.attrs ?? {})}`, async () => {
      for (const dtype of ['float32'] as DType[]) {
        const x = randomTensor(rng, dtype, c.x);
        const w = randomTensor(rng, dtype, c.w);
        const g = typeof c.attrs?.group === 'number' ? c.attrs.group : 1;
        const b = c.bias ? randomTensor(rng, dtype, [c.w[1]! * g]) : undefined;
        expect(await compareWithOrt('ConvTranspose', toAttrs(c.attrs ?? {}), b ? [x, w, b] : [x, w], TOL)).toEqual([]);
      }
    });
  }

  it('scatters a 1-D input by hand', () => {
    const x = tensorFromNumbers('float32', [1, 1, 2], [1, 2]);
    const w = tensorFromNumbers('float32', [1, 1, 3], [1, 10, 100]);
    const y = runCpuNode('ConvTranspose', toAttrs({ strides: [2] }), [x, w])[0]!;
    // positions: x0 -> 0,1,2 ; x1 -> 2,3,4
    expect(Array.from(tensorToNumbers(y))).toEqual([1, 10, 100 + 2, 20, 200]);
  });
});
