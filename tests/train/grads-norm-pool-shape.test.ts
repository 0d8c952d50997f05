import { describe, expect, it } from 'vitest';
import type { Attr } from '../../runtime/ir/graph.js';
import { tensorFromNumbers } from '../../runtime/ir/tensor.js';
import { buildBackward } from '../../runtime/train/autodiff.js';
import { checkGradients, n, randomTensor, Rng } from './grad-check.js';

const rng = new Rng(23);
const r = (shape: number[], lo = -1, hi = 1) => randomTensor(rng, 'float32', shape, { lo, hi });
const int = (value: number): Attr => ({ type: 'int', value });
const ints = (value: number[]): Attr => ({ type: 'ints', value });
const i64 = (values: number[]) => tensorFromNumbers('int64', [values.length], values);

describe('normalization gradients', () => {
  it('BatchNormalization (frozen statistics): X, scale and B', () => {
    checkGradients({
      inputs: { x: [[2, 3, 2, 2], r([2, 3, 2, 2])] },
      params: { s: r([3]), b: r([3]) },
      consts: { m: r([3]), v: r([3], 0.5, 2) },
      nodes: [n('BatchNormalization', ['x', 's', 'b', 'm', 'v'], ['y'], { epsilon: { type: 'float', value: 1e-3 } })],
      output: 'y',
    });
  });

  it('BatchNormalization: only B trainable keeps no activation', () => {
    const res = checkGradients({
      inputs: { x: [[2, 3, 4], r([2, 3, 4])] },
      params: { b: r([3]) },
      consts: { s: r([3]), m: r([3]), v: r([3], 0.5, 2) },
      nodes: [n('BatchNormalization', ['x', 's', 'b', 'm', 'v'], ['y'])],
      output: 'y',
      wrt: ['b'],
    });
    expect(res.graphs.saved).toEqual([]);
  });

  it('LayerNormalization over the last axis', () => {
    checkGradients({
      inputs: { x: [[3, 5], r([3, 5], -2, 2)] },
      params: { s: r([5]), b: r([5]) },
      nodes: [n('LayerNormalization', ['x', 's', 'b'], ['y'])],
      output: 'y',
    });
  });

  it('LayerNormalization over the last two axes, Scale broadcast along one of them, no B', () => {
    checkGradients({
      inputs: { x: [[2, 3, 4], r([2, 3, 4], -2, 2)] },
      params: { s: r([1, 4]) },
      nodes: [n('LayerNormalization', ['x', 's'], ['y'], { axis: int(1), epsilon: { type: 'float', value: 1e-4 } })],
      output: 'y',
    });
  });
});

describe('pool gradients', () => {
  it('GlobalAveragePool', () => {
    checkGradients({ inputs: { x: [[2, 3, 3, 4], r([2, 3, 3, 4])] }, nodes: [n('GlobalAveragePool', ['x'], ['y'])], output: 'y' });
  });
  it('GlobalAveragePool with symbolic spatial dims (count from the saved shape)', () => {
    const res = checkGradients({ inputs: { x: [['N', 2, 'H', 'W'], r([2, 2, 3, 5])] }, nodes: [n('GlobalAveragePool', ['x'], ['y'])], output: 'y' });
    expect(res.graphs.backward.nodes.some((k) => k.op === 'ReduceProd')).toBe(true);
  });

  const avgCases: [string, Record<string, Attr>][] = [
    ['2x2 stride 2', { kernel_shape: ints([2, 2]), strides: ints([2, 2]) }],
    ['3x3 pads 1, count_include_pad=0', { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) }],
    ['3x3 pads 1, count_include_pad=1', { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]), count_include_pad: int(1) }],
    ['ceil_mode with stride 2', { kernel_shape: ints([3, 2]), strides: ints([2, 2]), ceil_mode: int(1) }],
  ];
  for (const [what, attrs] of avgCases) {
    it(`AveragePool ${what}`, () => {
      checkGradients({ inputs: { x: [[2, 2, 5, 6], r([2, 2, 5, 6])] }, nodes: [n('AveragePool', ['x'], ['y'], attrs)], output: 'y' });
    });
  }

  const maxCases: [string, Record<string, Attr>][] = [
    ['2x2 stride 2', { kernel_shape: ints([2, 2]), strides: ints([2, 2]) }],
    ['3x3 stride 1 pads 1 (overlapping windows)', { kernel_shape: ints([3, 3]), pads: ints([1, 1, 1, 1]) }],
    ['dilation 2', { kernel_shape: ints([2, 2]), dilations: ints([2, 2]) }],
  ];
  for (const [what, attrs] of maxCases) {
    it(`MaxPool ${what}`, () => {
      // Distinct values (a shuffled ramp) so no window has a tie the finite differences would straddle.
      const count = 2 * 2 * 5 * 6;
      const ramp = Array.from({ length: count }, (_, i) => (i - count / 2) / 10);
      for (let i = count - 1; i > 0; i--) {
        const j = rng.int(0, i);
        [ramp[i], ramp[j]] = [ramp[j]!, ramp[i]!];
      }
      checkGradients({ inputs: { x: [[2, 2, 5, 6], tensorFromNumbers('float32', [2, 2, 5, 6], ramp)] }, nodes: [n('MaxPool', ['x'], ['y'], attrs)], output: 'y' });
    });
  }
});

describe('shape op gradients', () => {
  it('Flatten', () => {
    checkGradients({ inputs: { x: [[2, 3, 4], r([2, 3, 4])] }, nodes: [n('Flatten', ['x'], ['y'], { axis: int(2) })], output: 'y' });
  });
  it('Reshape (with a symbolic batch)', () => {
    checkGradients({
      inputs: { x: [['N', 3, 4], r([2, 3, 4])] },
      consts: { shape: i64([0, 12]) },
      nodes: [n('Reshape', ['x', 'shape'], ['y'])],
      output: 'y',
    });
  });
  it('Transpose', () => {
    checkGradients({ inputs: { x: [[2, 3, 4], r([2, 3, 4])] }, nodes: [n('Transpose', ['x'], ['y'], { perm: ints([1, 2, 0]) })], output: 'y' });
  });
  it('Transpose without perm (reversed axes)', () => {
    checkGradients({ inputs: { x: [[2, 3, 4], r([2, 3, 4])] }, nodes: [n('Transpose', ['x'], ['y'])], output: 'y' });
  });
  it('Concat of three tensors, one of them frozen', () => {
    checkGradients({
      inputs: { a: [[2, 1, 3], r([2, 1, 3])], c: [[2, 4, 3], r([2, 4, 3])] },
      params: { b: r([2, 2, 3]) },
      consts: { k: r([2, 2, 3]) },
      nodes: [n('Concat', ['a', 'b', 'k', 'c'], ['y'], { axis: int(-2) })],
      output: 'y',
    });
  });
  it('Concat along a symbolic axis (split sizes from saved shapes)', () => {
    checkGradients({
      inputs: { a: [['P', 3], r([2, 3])], b: [['Q', 3], r([3, 3])] },
      nodes: [n('Concat', ['a', 'b'], ['y'], { axis: int(0) })],
      output: 'y',
    });
  });
  it('Squeeze / Unsqueeze / Identity', () => {
    checkGradients({
      inputs: { x: [[2, 1, 3], r([2, 1, 3])] },
      consts: { ax1: i64([1]), ax0: i64([0]) },
      nodes: [n('Squeeze', ['x', 'ax1'], ['s']), n('Unsqueeze', ['s', 'ax0'], ['u']), n('Identity', ['u'], ['y'])],
      output: 'y',
    });
  });
});

describe('reduction gradients', () => {
  const cases: [string, number[] | undefined, number][] = [
    ['ReduceSum', [1], 1],
    ['ReduceSum', [0, 2], 0],
    ['ReduceSum', undefined, 0],
    ['ReduceMean', [-1], 0],
    ['ReduceMean', [0, 1], 1],
    ['ReduceMean', undefined, 1],
  ];
  for (const [op, axes, keepdims] of cases) {
    it(`${op} axes=${axes ? `[${axes}]` : 'all'} keepdims=${keepdims}`, () => {
      checkGradients({
        inputs: { x: [[2, 3, 4], r([2, 3, 4])] },
        consts: axes ? { axes: i64(axes) } : {},
        nodes: [n(op, axes ? ['x', 'axes'] : ['x'], ['y'], { keepdims: int(keepdims) })],
        output: 'y',
      });
    });
  }
});

describe('Dropout gradients', () => {
  const t = tensorFromNumbers('bool', [], [1]);
  it('Dropout in training mode (fixed seed attribute): gradient follows the mask', () => {
    const res = checkGradients({
      inputs: { x: [[4, 5], r([4, 5])] },
      consts: { ratio: tensorFromNumbers('float32', [], [0.3]), training: t },
      nodes: [n('Dropout', ['x', 'ratio', 'training'], ['y'], { seed: int(5) })],
      output: 'y',
    });
    // The mask output the model left unnamed was named and kept; X was not.
    expect(res.graphs.saved).toHaveLength(1);
    expect(res.graphs.forward.values[res.graphs.saved[0]!]!.dtype).toBe('bool');
  });
  it('Dropout in inference mode is the identity', () => {
    const res = checkGradients({ inputs: { x: [[3, 2], r([3, 2])] }, nodes: [n('Dropout', ['x'], ['y'])], output: 'y' });
    expect(res.graphs.saved).toEqual([]);
  });
  it('SeededDropout with the seed as an input', () => {
    checkGradients({
      inputs: { x: [[4, 5], r([4, 5])] },
      consts: { ratio: tensorFromNumbers('float32', [], [0.5]), seed: tensorFromNumbers('uint32', [], [99]) },
      nodes: [n('SeededDropout', ['x', 'ratio', 'seed'], ['y', 'mask'], { salt: int(3) }, 'edgekit.train')],
      output: 'y',
    });
  });
});

describe('autodiff structure', () => {
  it('reports every node between the weights and the loss that has no gradient rule', () => {
    const g = {
      name: 'g', inputs: [{ name: 'x', dtype: 'float32' as const, shape: [3] }], outputs: [{ name: 'l', dtype: 'float32' as const }],
      initializers: { w: r([3]) },
      nodes: [n('Mul', ['x', 'w'], ['a']), n('Sin', ['a'], ['b']), n('Cos', ['b'], ['c']), n('ReduceSum', ['c'], ['l'], { keepdims: int(0) })],
      values: {},
    };
    expect(() => buildBackward(g, { loss: 'l', wrt: ['w'] })).toThrow(/Sin[\s\S]*Cos/);
  });

  it('gives zeros for a weight the loss does not depend on, and says so', () => {
    const g = {
      name: 'g', inputs: [{ name: 'x', dtype: 'float32' as const, shape: [3] }], outputs: [{ name: 'l', dtype: 'float32' as const }],
      initializers: { w: r([3]), unused: r([2]) },
      nodes: [n('Mul', ['x', 'w'], ['a']), n('ReduceSum', ['a'], ['l'], { keepdims: int(0) })],
      values: {},
    };
    const res = buildBackward(g, { loss: 'l', wrt: ['w', 'unused'] });
    expect(res.unreachable).toEqual(['unused']);
    expect(res.backward.initializers[res.grads.unused!]!.data).toEqual(new Float32Array(2));
  });

  it('refuses a non-scalar loss', () => {
    const g = {
      name: 'g', inputs: [{ name: 'x', dtype: 'float32' as const, shape: [3] }], outputs: [{ name: 'a', dtype: 'float32' as const }],
      initializers: { w: r([3]) }, nodes: [n('Mul', ['x', 'w'], ['a'])], values: {},
    };
    expect(() => buildBackward(g, { loss: 'a', wrt: ['w'] })).toThrow(/scalar/);
  });
});
