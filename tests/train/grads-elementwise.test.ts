import { describe, expect, it } from 'vitest';
import { tensorFromNumbers } from '../../runtime/ir/tensor.js';
import { awayFrom0, checkGradients, n, randomTensor, Rng } from './grad-check.js';

const rng = new Rng(7);
const r = (shape: number[]) => randomTensor(rng, 'float32', shape);

describe('gradients of broadcasting binary ops', () => {
  const pairs: [number[], number[]][] = [
    [[2, 3, 4], [2, 3, 4]],
    [[2, 3, 4], [4]],
    [[2, 3, 4], [3, 1]],
    [[2, 3, 4], []],
    [[1, 3, 1], [2, 1, 4]],
    [[3, 1], [2, 1, 5]],
  ];
  for (const op of ['Add', 'Sub', 'Mul', 'Div']) {
    for (const [as, bs] of pairs) {
      it(`${op} [${as}] with [${bs}]`, () => {
        const b = op === 'Div' ? awayFrom0(rng, bs, 0.5, 1.5) : r(bs);
        checkGradients({ inputs: { a: [as, r(as)] }, params: { b }, nodes: [n(op, ['a', 'b'], ['y'])], output: 'y' });
      });
    }
  }

  it('sums the gradient of a value used twice (Mul(x, x), fan-out into Add)', () => {
    const res = checkGradients({
      params: { x: r([3, 2]) },
      nodes: [n('Mul', ['x', 'x'], ['sq']), n('Add', ['sq', 'x'], ['y'])],
      output: 'y',
    });
    // d/dx (x^2 + x) = 2x + 1, independent of the projection: check the structure too (an Add accumulates).
    expect(res.graphs.backward.nodes.filter((k) => k.op === 'Add').length).toBeGreaterThan(0);
  });

  it('Neg', () => {
    checkGradients({ params: { x: r([4]) }, nodes: [n('Neg', ['x'], ['y'])], output: 'y' });
  });

  it('differentiates w.r.t. graph inputs with a symbolic batch dim (leading broadcast axes summed)', () => {
    const res = checkGradients({
      inputs: { x: [['N', 3], r([5, 3])] },
      params: { b: r([3]) },
      nodes: [n('Add', ['x', 'b'], ['y'])],
      output: 'y',
    });
    expect(res.graphs.backward.nodes.some((k) => k.op === 'ReduceSum')).toBe(true);
  });

  it('falls back to SumToShape when a symbolic dim may or may not be broadcast', () => {
    // 'a' is 1 at run time and 'b' is 2, so x is broadcast along axis 0; nothing tells the graph builder that.
    const res = checkGradients({
      inputs: { x: [['a', 3], r([1, 3])], z: [['b', 3], r([2, 3])] },
      nodes: [n('Mul', ['x', 'z'], ['y'])],
      output: 'y',
    });
    expect(res.graphs.backward.nodes.some((k) => k.op === 'SumToShape')).toBe(true);
    expect(res.graphs.forward.nodes.some((k) => k.op === 'Shape')).toBe(true);
  });
});

describe('gradients of activations', () => {
  const x = () => awayFrom0(rng, [2, 3, 4], 0.05, 2);
  const cases: [string, Record<string, { type: 'float' | 'int' | 'string'; value: number | string }>][] = [
    ['Relu', {}],
    ['LeakyRelu', { alpha: { type: 'float', value: 0.2 } }],
    ['Sigmoid', {}],
    ['Tanh', {}],
    ['Gelu', {}],
    ['Gelu', { approximate: { type: 'string', value: 'tanh' } }],
    ['Softmax', {}],
    ['Softmax', { axis: { type: 'int', value: 1 } }],
    ['LogSoftmax', {}],
    ['LogSoftmax', { axis: { type: 'int', value: 0 } }],
  ];
  for (const [op, attrs] of cases) {
    it(`${op} ${JSON.stringify(attrs)}`, () => {
      checkGradients({ params: { x: x() }, nodes: [n(op, ['x'], ['y'], attrs as never)], output: 'y' });
    });
  }

  it('Clip (ReLU6 and one-sided bounds): dY inside [min, max], 0 outside; the bounds get none', () => {
    // Values kept away from the bounds so central differences do not straddle a kink.
    const x = tensorFromNumbers('float32', [2, 4], [-2.5, -0.7, 0.4, 1.9, 3.3, 5.2, 6.8, 9.1]);
    const lo = tensorFromNumbers('float32', [], [0]);
    const hi = tensorFromNumbers('float32', [], [6]);
    checkGradients({ params: { x }, consts: { lo, hi }, nodes: [n('Clip', ['x', 'lo', 'hi'], ['y'])], output: 'y' });
    checkGradients({ params: { x }, consts: { lo }, nodes: [n('Clip', ['x', 'lo'], ['y'])], output: 'y' });
    checkGradients({ params: { x }, consts: { hi }, nodes: [n('Clip', ['x', '', 'hi'], ['y'])], output: 'y' });
    const res = checkGradients({
      params: { x },
      consts: { lo, hi },
      nodes: [n('Clip', ['x', 'lo', 'hi'], ['y']), n('ReduceSum', ['y'], ['s'], { keepdims: { type: 'int', value: 0 } })],
      output: 's',
      lossIsOutput: true,
    });
    expect(Array.from(res.analytic.x!)).toEqual([0, 0, 1, 1, 1, 1, 0, 0]);
  });

  it('Relu keeps only its output for the backward pass', () => {
    const res = checkGradients({ inputs: { x: [[2, 3], awayFrom0(rng, [2, 3])] }, nodes: [n('Relu', ['x'], ['h']), n('Tanh', ['h'], ['y'])], output: 'y' });
    expect(res.graphs.saved.sort()).toEqual(['h', 'y']);
  });

  it('Relu gradient is 0 for negative inputs and dY for positive ones', () => {
    const res = checkGradients({
      params: { x: tensorFromNumbers('float32', [4], [-2, -0.5, 0.5, 3]) },
      nodes: [n('Relu', ['x'], ['y']), n('ReduceSum', ['y'], ['s'], { keepdims: { type: 'int', value: 0 } })],
      output: 's',
      lossIsOutput: true,
    });
    expect(Array.from(res.analytic.x!)).toEqual([0, 0, 1, 1]);
  });
});
