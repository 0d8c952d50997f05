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
