import { describe, expect, it } from 'vitest';
import { DTypeError, InvalidArgumentError, ShapeError } from '../../runtime/errors.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr, Dim } from '../../runtime/ir/graph.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { attr } from '../helpers/ir-builder.js';
import { compareWithOrt, inferNode } from '../helpers/ort-single-node.js';
import { EINSUM_CASES } from '../helpers/op-cases.js';
import { randomTensor, Rng } from '../helpers/random.js';

/**
 * Math and layout ops of issue #9 §4 (Einsum, ...): inference on symbolic shapes and the CPU reference against
 * onnxruntime-node on seeded random inputs.
 */

const rng = new Rng(8080);
const x = (shape: Dim[] | undefined, dtype: DType = 'float32') => ({ dtype, shape });
const rand = (dtype: DType, shape: number[]) => randomTensor(rng, dtype, shape);
const eqAttr = (equation: string): Record<string, Attr> => ({ equation: attr(equation) });

async function expectOrt(op: string, attrs: Record<string, Attr>, inputs: (HostTensor | undefined)[], opts: Parameters<typeof compareWithOrt>[3] = {}) {
  const what = `${op} ${JSON.stringify(attrs)} ${JSON.stringify(inputs.map((t) => t && [t.dtype, t.shape]))}`;
  expect(await compareWithOrt(op, attrs, inputs, { rtol: 1e-5, atol: 1e-5, ...opts }), what).toEqual([]);
}

describe('Einsum', () => {
  it('parses equations and infers shapes', () => {
    expect(inferNode('Einsum', eqAttr('ij,jk->ik'), [x(['M', 4]), x([4, 'N'])])[0]!.shape).toEqual(['M', 'N']);
    expect(inferNode('Einsum', eqAttr('ij,jk'), [x(['M', 4]), x([4, 'N'])])[0]!.shape).toEqual(['M', 'N']);
    expect(inferNode('Einsum', eqAttr('kj,ji'), [x([2, 3]), x([3, 5])])[0]!.shape).toEqual([5, 2]);
    expect(inferNode('Einsum', eqAttr('...ij,...jk'), [x(['B', 1, 3, 4]), x([7, 4, 2])])[0]!.shape).toEqual(['B', 7, 3, 2]);
    expect(inferNode('Einsum', eqAttr('ii->i'), [x([4, 4])])[0]!.shape).toEqual([4]);
    expect(() => inferNode('Einsum', eqAttr('ij,jk->ik'), [x([3, 4]), x([5, 6])])).toThrow(ShapeError);
    expect(() => inferNode('Einsum', eqAttr('ij->ik'), [x([3, 4])])).toThrow(InvalidArgumentError);
    expect(() => inferNode('Einsum', eqAttr('ijk->i'), [x([3, 4])])).toThrow(ShapeError);
    expect(() => inferNode('Einsum', eqAttr('i1->i'), [x([3, 4])])).toThrow(InvalidArgumentError);
    expect(() => inferNode('Einsum', eqAttr('i,i'), [x([3]), x([3], 'int32')])).toThrow(DTypeError);
  });

  it('matches onnxruntime on contractions, diagonals, traces, ellipsis and implicit outputs', async () => {
    for (const [equation, shapes] of EINSUM_CASES) await expectOrt('Einsum', eqAttr(equation), shapes.map((s) => rand('float32', s)));
    await expectOrt('Einsum', eqAttr('ij,jk->ik'), [rand('int32', [3, 4]), rand('int32', [4, 2])]);
    await expectOrt('Einsum', eqAttr('bij->bj'), [rand('float64', [2, 3, 4])]);
  });
});

describe('MeanVarianceNormalization, LRN, ReverseSequence, Det, MaxUnpool', () => {
  it('infer shapes and reject bad attributes', () => {
    const tx = (shape: Dim[]) => x(shape);
    expect(inferNode('Det', {}, [tx(['B', 3, 3])])[0]!.shape).toEqual(['B']);
    expect(() => inferNode('Det', {}, [tx([3, 4])])).toThrow(ShapeError);
    expect(inferNode('MaxUnpool', { kernel_shape: attr([2, 2]), strides: attr([2, 2]) }, [tx(['N', 3, 'H', 4]), x(['N', 3, 'H', 4], 'int64')])[0]!.shape).toEqual(['N', 3, 'H*2+0', 8]);
    expect(() => inferNode('ReverseSequence', { time_axis: attr(1), batch_axis: attr(1) }, [tx([3, 4]), x([4], 'int64')])).toThrow(InvalidArgumentError);
    expect(() => inferNode('ReverseSequence', {}, [tx([3, 4]), x([3], 'int64')])).toThrow(ShapeError);
    expect(() => inferNode('LRN', {}, [tx([1, 3, 4])])).toThrow(InvalidArgumentError);
    expect(() => inferNode('MeanVarianceNormalization', {}, [x([2, 3, 4, 5], 'int32')])).toThrow(DTypeError);
  });

  it('match onnxruntime', async () => {
    await expectOrt('MeanVarianceNormalization', {}, [rand('float32', [2, 3, 4, 5])]);
    await expectOrt('MeanVarianceNormalization', { axes: attr([1]) }, [rand('float32', [3, 7, 2])]);
    await expectOrt('MeanVarianceNormalization', { axes: attr([0, -1]) }, [rand('float32', [4, 3, 5])]);
    // onnxruntime implements odd sizes only; the WebGPU tests cover even ones against this reference.
    for (const size of [1, 3, 5]) await expectOrt('LRN', { size: attr(size), alpha: attr(0.01), beta: attr(0.6), bias: attr(2, true) }, [rand('float32', [2, 6, 3, 2])]);
    await expectOrt('LRN', { size: attr(3) }, [rand('float32', [1, 4, 5, 1])]);
    const lens = (v: number[]) => ({ dtype: 'int64' as DType, shape: [v.length], data: BigInt64Array.from(v.map(BigInt)) });
    await expectOrt('ReverseSequence', {}, [rand('float32', [5, 4, 3]), lens([5, 0, 2, 1])]);
    await expectOrt('ReverseSequence', { time_axis: attr(1), batch_axis: attr(0) }, [rand('int64', [3, 6]), lens([6, 3, 1])]);
    await expectOrt('Det', {}, [rand('float32', [4, 4])], { rtol: 1e-4, atol: 1e-5 });
    await expectOrt('Det', {}, [rand('float32', [2, 3, 5, 5])], { rtol: 1e-4, atol: 1e-5 });
    const xs = rand('float32', [2, 3, 2, 2]);
    // Indices as MaxPool(kernel 2, stride 2) over [2, 3, 4, 4] would return them: one per 2 x 2 window, whole-tensor flat.
    const idx: number[] = [];
    for (let p = 0; p < 6; p++) for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) idx.push(p * 16 + (2 * i + rng.int(0, 1)) * 4 + 2 * j + rng.int(0, 1));
    const I = { dtype: 'int64' as DType, shape: [2, 3, 2, 2], data: BigInt64Array.from(idx.map(BigInt)) };
    await expectOrt('MaxUnpool', { kernel_shape: attr([2, 2]), strides: attr([2, 2]) }, [xs, I]);
  });
});
