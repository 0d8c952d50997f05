import { describe, expect, it } from 'vitest';
import { DTypeError, InvalidArgumentError, ShapeError } from '../../runtime/errors.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr, Dim } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { attr } from '../helpers/ir-builder.js';
import { compareWithOrt, inferNode, runCpuNode } from '../helpers/ort-single-node.js';
import { randomTensor, Rng } from '../helpers/random.js';

/**
 * NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss: inference, and the CPU reference against onnxruntime-node
 * for every reduction, with and without weights and ignore_index, on [N, C] and [N, C, d1..dk] inputs.
 */

const rng = new Rng(5150);
const toAttrs = (a: Record<string, number | string>): Record<string, Attr> => Object.fromEntries(Object.entries(a).map(([k, v]) => [k, attr(v)]));
const x = (shape: Dim[] | undefined, dtype: DType = 'float32') => ({ dtype, shape });
const count = (s: number[]) => s.reduce((a, b) => a * b, 1);
/** Targets in [0, c) with some set to `ii`. */
function targets(shape: number[], c: number, ii?: number, dtype: DType = 'int64'): HostTensor {
  return tensorFromNumbers(dtype, shape, Array.from({ length: count(shape) }, () => (ii !== undefined && rng.next() < 0.25 ? ii : rng.int(0, c - 1))));
}

async function expectOrt(op: string, attrs: Record<string, Attr>, inputs: (HostTensor | undefined)[], outputs = 1) {
  const what = `${op} ${JSON.stringify(attrs)} ${JSON.stringify(inputs.map((t) => t && [t.dtype, t.shape]))}`;
  expect(await compareWithOrt(op, attrs, inputs, { outputs, rtol: 1e-5, atol: 1e-6 }), what).toEqual([]);
}

describe('loss inference', () => {
  it('shapes per reduction, type and shape checks', () => {
    expect(inferNode('NegativeLogLikelihoodLoss', toAttrs({ reduction: 'none' }), [x(['N', 5, 'H']), x(['N', 'H'], 'int64')])[0]!.shape).toEqual(['N', 'H']);
    expect(inferNode('NegativeLogLikelihoodLoss', {}, [x(['N', 5]), x(['N'], 'int32')])[0]!.shape).toEqual([]);
    const sce = inferNode('SoftmaxCrossEntropyLoss', toAttrs({ reduction: 'sum' }), [x([2, 5, 3], 'float16'), x([2, 3], 'int64')], 2);
    expect(sce).toEqual([{ dtype: 'float16', shape: [] }, { dtype: 'float16', shape: [2, 5, 3] }]);
    expect(() => inferNode('NegativeLogLikelihoodLoss', {}, [x([2, 5]), x([3], 'int64')])).toThrow(ShapeError);
    expect(() => inferNode('NegativeLogLikelihoodLoss', {}, [x([2, 5]), x([2], 'float32')])).toThrow(DTypeError);
    expect(() => inferNode('NegativeLogLikelihoodLoss', {}, [x([2, 5]), x([2], 'int64'), x([4])])).toThrow(ShapeError);
    expect(() => inferNode('SoftmaxCrossEntropyLoss', toAttrs({ reduction: 'max' }), [x([2, 5]), x([2], 'int64')])).toThrow(InvalidArgumentError);
    expect(() => runCpuNode('NegativeLogLikelihoodLoss', {}, [tensorFromNumbers('float32', [1, 3], [1, 2, 3]), tensorFromNumbers('int64', [1], [3])])).toThrow(/class index/);
  });
});

describe('loss CPU kernels against onnxruntime', () => {
  for (const op of ['NegativeLogLikelihoodLoss', 'SoftmaxCrossEntropyLoss']) {
    it(`${op}: every reduction, weights, ignore_index, [N, C] to [N, C, d1, d2, d3]`, async () => {
      const outputs = op === 'SoftmaxCrossEntropyLoss' ? 2 : 1;
      for (const reduction of ['none', 'sum', 'mean']) {
        for (const shape of [[3, 5], [2, 4, 3], [2, 3, 2, 3, 2]]) {
          const c = shape[1]!;
          const tShape = [shape[0]!, ...shape.slice(2)];
          const input = randomTensor(rng, 'float32', shape, { lo: -3, hi: 3 });
          const w = randomTensor(rng, 'float32', [c], { lo: 0.1, hi: 2 });
          await expectOrt(op, toAttrs({ reduction }), [input, targets(tShape, c)], outputs);
          await expectOrt(op, toAttrs({ reduction }), [input, targets(tShape, c, undefined, 'int32'), w], outputs);
          await expectOrt(op, toAttrs({ reduction, ignore_index: -1 }), [input, targets(tShape, c, -1), w], outputs);
          await expectOrt(op, toAttrs({ reduction, ignore_index: 1 }), [input, targets(tShape, c, 1)], outputs);
        }
      }
    });
  }
});
