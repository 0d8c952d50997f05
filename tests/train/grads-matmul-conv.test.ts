import { describe, it } from 'vitest';
import type { Attr } from '../../runtime/ir/graph.js';
import { checkGradients, n, randomTensor, Rng } from './grad-check.js';

const rng = new Rng(11);
const r = (shape: number[]) => randomTensor(rng, 'float32', shape);
const int = (value: number): Attr => ({ type: 'int', value });
const ints = (value: number[]): Attr => ({ type: 'ints', value });
const str = (value: string): Attr => ({ type: 'string', value });

describe('MatMul gradients (numpy semantics)', () => {
  const cases: [number[], number[]][] = [
    [[3, 4], [4, 5]],
    [[2, 3, 4], [4, 5]],
    [[3, 4], [2, 4, 5]],
    [[2, 1, 3, 4], [3, 4, 2]],
    [[4], [4, 5]],
    [[2, 3, 4], [4]],
    [[4], [2, 4, 3]],
    [[4], [4]],
  ];
  for (const [as, bs] of cases) {
    it(`[${as}] x [${bs}]`, () => {
      checkGradients({ inputs: { a: [as, r(as)] }, params: { b: r(bs) }, nodes: [n('MatMul', ['a', 'b'], ['y'])], output: 'y' });
    });
  }
});

describe('Gemm gradients', () => {
  for (const transA of [0, 1]) {
    for (const transB of [0, 1]) {
      for (const cShape of [[3, 5], [5], [3, 1], [], undefined]) {
        it(`transA=${transA} transB=${transB} C=${cShape ? `[${cShape}]` : 'none'}`, () => {
          const a = r(transA ? [4, 3] : [3, 4]);
          const b = r(transB ? [5, 4] : [4, 5]);
          const attrs = { transA: int(transA), transB: int(transB), alpha: { type: 'float', value: 0.7 } as Attr, beta: { type: 'float', value: 1.3 } as Attr };
          checkGradients({
            inputs: { a: [a.shape, a] },
            params: { b, ...(cShape ? { c: r(cShape) } : {}) },
            nodes: [n('Gemm', cShape ? ['a', 'b', 'c'] : ['a', 'b'], ['y'], attrs)],
            output: 'y',
          });
        });
      }
    }
  }

  it('symbolic batch: Gemm [N, 4] x [4, 3] + [3]', () => {
    checkGradients({
      inputs: { a: [['N', 4], r([6, 4])] },
      params: { b: r([4, 3]), c: r([3]) },
      nodes: [n('Gemm', ['a', 'b', 'c'], ['y'])],
      output: 'y',
    });
  });
});

describe('Conv gradients', () => {
  const cases: [string, number[], number[], Record<string, Attr>][] = [
    ['3x3, pads 1', [2, 3, 5, 5], [4, 3, 3, 3], { pads: ints([1, 1, 1, 1]) }],
    ['stride 2, odd size (rows no window reaches)', [1, 2, 6, 7], [3, 2, 3, 2], { strides: ints([2, 2]) }],
    ['dilation 2, asymmetric pads', [1, 2, 7, 6], [2, 2, 2, 3], { dilations: ints([2, 2]), pads: ints([0, 1, 2, 1]) }],
    ['groups 2', [2, 4, 5, 4], [6, 2, 3, 3], { group: int(2), pads: ints([1, 1, 1, 1]) }],
    ['depthwise (group = C)', [2, 3, 5, 5], [3, 1, 3, 3], { group: int(3), pads: ints([1, 1, 1, 1]) }],
    ['1x1', [2, 5, 3, 3], [4, 5, 1, 1], {}],
    ['SAME_UPPER with stride 2', [1, 2, 5, 6], [3, 2, 3, 3], { auto_pad: str('SAME_UPPER'), strides: ints([2, 2]) }],
    ['1-D', [2, 3, 9], [2, 3, 4], { strides: ints([2]), pads: ints([1, 2]) }],
  ];
  for (const [what, xs, ws, attrs] of cases) {
    it(what, () => {
      checkGradients({
        inputs: { x: [xs, r(xs)] },
        params: { w: r(ws), b: r([ws[0]!]) },
        nodes: [n('Conv', ['x', 'w', 'b'], ['y'], attrs)],
        output: 'y',
      });
    });
  }

  it('symbolic batch and spatial dims (shapes saved from the forward pass)', () => {
    checkGradients({
      inputs: { x: [['N', 2, 'H', 'W'], r([2, 2, 5, 4])] },
      params: { w: r([3, 2, 3, 3]) },
      nodes: [n('Conv', ['x', 'w'], ['y'], { strides: ints([2, 1]), pads: ints([1, 1, 1, 1]) })],
      output: 'y',
    });
  });
});
