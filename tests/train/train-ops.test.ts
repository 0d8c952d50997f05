import { describe, expect, it } from 'vitest';
import type { Node } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, tensorToNumbers } from '../../runtime/ir/tensor.js';
import { GRAD_RULES, TRAIN_GRAD_RULES } from '../../runtime/train/grads/index.js';
import { inferTrainShapes } from '../../runtime/train/infer.js';
import { mixSeed, seededMask } from '../../runtime/train/ops/dropout.js';
import { TRAIN_CPU_KERNELS, TRAIN_SCHEMAS } from '../../runtime/train/ops/index.js';
import { runTrainNodeCpu } from '../../runtime/train/run-cpu.js';

const ctx = { maxElements: 1e7 };
const node = (op: string, attrs: Node['attrs'] = {}, outputs = ['y', 'mask']): Node => ({ name: op, op, domain: 'edgekit.train', inputs: [], outputs, attrs });
const f32 = (shape: number[], v: number[]) => tensorFromNumbers('float32', shape, v);

describe('SeededDropout', () => {
  const x = f32([100, 100], new Array(10000).fill(2));
  const ratio = f32([], [0.3]);
  const seed = (s: number) => tensorFromNumbers('uint32', [], [s]);

  it('keeps about 1 - ratio of the elements and scales them by 1 / (1 - ratio)', () => {
    const [y, mask] = runTrainNodeCpu(node('SeededDropout', { salt: { type: 'int', value: 1 } }), [x, ratio, seed(42)], ctx);
    const m = mask!.data as Uint8Array;
    const kept = m.reduce((a, b) => a + b, 0) / m.length;
    expect(Math.abs(kept - 0.7)).toBeLessThan(0.02); // 10000 Bernoulli draws: sd 0.0046
    const yv = tensorToNumbers(y!);
    m.forEach((k, i) => expect(yv[i]).toBeCloseTo(k ? 2 / 0.7 : 0, 5));
  });

  it('is a pure function of (seed, salt): same inputs, same mask; a different seed or salt, a different one', () => {
    const run = (s: number, salt: number) => runTrainNodeCpu(node('SeededDropout', { salt: { type: 'int', value: salt } }), [x, ratio, seed(s)], ctx)[1]!.data;
    expect(run(1, 0)).toEqual(run(1, 0));
    expect(run(1, 0)).not.toEqual(run(2, 0));
    expect(run(1, 0)).not.toEqual(run(1, 1));
    // The documented stream: mulberry32 seeded with fmix32(seed ^ salt * 0x9E3779B9).
    expect(run(9, 3)).toEqual(seededMask(10000, 0.3, 9, 3));
    expect(mixSeed(0, 0)).toBe(0);
    expect(mixSeed(1, 0)).not.toBe(mixSeed(0, 1));
  });

  it('ratio 0 passes everything through', () => {
    const [y, mask] = runTrainNodeCpu(node('SeededDropout'), [f32([3], [1, -2, 3]), f32([], [0]), seed(1)], ctx);
    expect(Array.from(y!.data as Float32Array)).toEqual([1, -2, 3]);
    expect(Array.from(mask!.data as Uint8Array)).toEqual([1, 1, 1]);
  });
});

describe('training op schemas', () => {
  it('infer through symbolic shapes and shape inputs', () => {
    const g = inferTrainShapes({
      name: 'g',
      inputs: [
        { name: 'dy', dtype: 'float32', shape: ['N', 4, 3, 3] },
        { name: 'xs', dtype: 'int64', shape: [4] },
        { name: 'w', dtype: 'float32', shape: [4, 2, 3, 3] },
      ],
      outputs: [],
      initializers: { ws: tensorFromNumbers('int64', [3], [4, 1, 3]) },
      nodes: [
        { name: 'gi', op: 'ConvGradInput', domain: 'edgekit.train', inputs: ['dy', 'w', 'xs'], outputs: ['dx'], attrs: {} },
        { name: 'gs', op: 'SumToShape', domain: 'edgekit.train', inputs: ['dy', 'ws'], outputs: ['s'], attrs: {} },
      ],
      values: {},
    });
    expect(g.values.dx!.shape).toHaveLength(4);
    expect(g.values.s!.shape).toEqual([4, 1, 3]);
  });

  it('SumToShape refuses a target that does not broadcast to X', () => {
    const g = (target: number[]) => inferTrainShapes({
      name: 'g', inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 4, 3] }], outputs: [],
      initializers: { t: tensorFromNumbers('int64', [target.length], target) },
      nodes: [{ name: 's', op: 'SumToShape', domain: 'edgekit.train', inputs: ['x', 't'], outputs: ['s'], attrs: {} }], values: {},
    });
    expect(() => g([2, 3])).toThrow(/Cannot broadcast/);
    expect(() => g([1, 1, 4, 3])).toThrow(/higher rank/);
  });

  it('kernels reject a dY that does not match the forward geometry', () => {
    const dy = f32([1, 2, 2, 2], new Array(8).fill(1));
    const w = f32([2, 1, 3, 3], new Array(18).fill(1));
    const xs = tensorFromNumbers('int64', [4], [1, 1, 5, 5]); // a 3x3 valid conv of 5x5 gives 3x3, not 2x2
    expect(() => runTrainNodeCpu({ ...node('ConvGradInput'), outputs: ['dx'] }, [dy, w, xs], ctx)).toThrow(/forward Conv output is \[1, 2, 3, 3\]/);
  });

  it('SumToShape sums along broadcast axes', () => {
    const [y] = runTrainNodeCpu({ ...node('SumToShape'), outputs: ['y'] }, [f32([2, 3], [1, 2, 3, 4, 5, 6]), tensorFromNumbers('int64', [2], [1, 3])], ctx);
    expect(Array.from(y!.data as Float32Array)).toEqual([5, 7, 9]);
    expect(y!.shape).toEqual([1, 3]);
  });

  it('every training op has a schema and a CPU kernel', () => {
    expect(Object.keys(TRAIN_CPU_KERNELS).sort()).toEqual(Object.keys(TRAIN_SCHEMAS).sort());
  });
});

describe('gradient rule coverage', () => {
  it('every rule is exercised by a finite-difference test in tests/train (update this list with new rules)', () => {
    const checked = [
      'Add', 'Sub', 'Mul', 'Div', 'Neg', 'Relu', 'Clip', 'LeakyRelu', 'Sigmoid', 'Tanh', 'Gelu', 'Softmax', 'LogSoftmax',
      'MatMul', 'Gemm', 'Conv', 'BatchNormalization', 'LayerNormalization', 'GlobalAveragePool', 'AveragePool', 'MaxPool',
      'Flatten', 'Reshape', 'Squeeze', 'Unsqueeze', 'Identity', 'Transpose', 'Concat', 'Dropout', 'ReduceSum', 'ReduceMean',
      'SeededDropout', 'CrossEntropyLoss', 'BCEWithLogitsLoss',
    ];
    expect([...Object.keys(GRAD_RULES), ...Object.keys(TRAIN_GRAD_RULES)].sort()).toEqual([...checked].sort());
  });
});
