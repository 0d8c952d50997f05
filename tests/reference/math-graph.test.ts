import { describe, expect, it } from 'vitest';
import { runGraphCpu } from '../../runtime/backends/cpu/executor.js';
import { OP_SCHEMAS } from '../../runtime/ir/ops/index.js';
import { CPU_KERNELS } from '../../runtime/backends/cpu/kernels/index.js';
import { schemas as elementwise } from '../../runtime/ir/ops/elementwise.js';
import { schemas as matmul } from '../../runtime/ir/ops/matmul.js';
import { schemas as conv } from '../../runtime/ir/ops/conv.js';
import { schemas as pool } from '../../runtime/ir/ops/pool.js';
import { schemas as normalization } from '../../runtime/ir/ops/normalization.js';
import { schemas as reduce } from '../../runtime/ir/ops/reduce.js';
import { tensorToNumbers } from '../../runtime/ir/tensor.js';
import { attr, buildGraph, i64, node } from '../helpers/ir-builder.js';
import { randomTensor, Rng } from '../helpers/random.js';

describe('math ops inside a graph', () => {
  it('every math schema is registered with a CPU kernel of the same name', () => {
    for (const family of [elementwise, matmul, conv, pool, normalization, reduce]) {
      for (const op of Object.keys(family)) {
        expect(OP_SCHEMAS[op], op).toBe(family[op]);
        expect(CPU_KERNELS[op], op).toBeTypeOf('function');
      }
    }
  });

  it('a small CNN infers symbolic shapes and runs with a concrete batch', () => {
    const rng = new Rng(99);
    const g = buildGraph({
      inputs: [['x', 'float32', ['N', 3, 'H', 'W']]],
      initializers: {
        w: randomTensor(rng, 'float32', [8, 3, 3, 3]), b: randomTensor(rng, 'float32', [8]),
        scale: randomTensor(rng, 'float32', [8]), bias: randomTensor(rng, 'float32', [8]),
        mean: randomTensor(rng, 'float32', [8]), var: randomTensor(rng, 'float32', [8], { lo: 0.5, hi: 1 }),
        axes: i64([2, 3]), fc: randomTensor(rng, 'float32', [10, 8]), fcb: randomTensor(rng, 'float32', [10]),
      },
      nodes: [
        node('Conv', ['x', 'w', 'b'], ['c'], { pads: attr([1, 1, 1, 1]), strides: attr([2, 2]) }),
        node('BatchNormalization', ['c', 'scale', 'bias', 'mean', 'var'], ['bn']),
        node('Relu', ['bn'], ['r']),
        node('MaxPool', ['r'], ['p'], { kernel_shape: attr([2, 2]), strides: attr([2, 2]), ceil_mode: attr(1) }),
        node('ReduceMean', ['p', 'axes'], ['m'], { keepdims: attr(0) }),
        node('Gemm', ['m', 'fc', 'fcb'], ['logits'], { transB: attr(1) }),
        node('Softmax', ['logits'], ['prob']),
      ],
      outputs: ['prob'],
    });
    expect(g.values.c!.shape).toEqual(['N', 8, 'floor((H-1)/2)+1', 'floor((W-1)/2)+1']);
    expect(g.values.p!.shape).toEqual(['N', 8, 'ceil((floor((H-1)/2)+1-2)/2)+1', 'ceil((floor((W-1)/2)+1-2)/2)+1']);
    expect(g.outputs[0]).toMatchObject({ dtype: 'float32', shape: ['N', 10] });

    const x = randomTensor(rng, 'float32', [3, 3, 11, 9]);
    const { prob, p } = runGraphCpu(g, { x }, ['prob', 'p']);
    expect(p!.shape).toEqual([3, 8, 3, 3]); // conv: 6 x 5, ceil-mode pool: 3 x 3
    expect(prob!.shape).toEqual([3, 10]);
    const v = tensorToNumbers(prob!);
    for (let r = 0; r < 3; r++) expect(v.slice(r * 10, r * 10 + 10).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
  });
});
