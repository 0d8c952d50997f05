import { beforeAll, describe, expect, it } from 'vitest';
import type { GpuResources } from '../../runtime/backends/webgpu/executor.js';
import { fuseForGpu } from '../../runtime/backends/webgpu/fusion.js';
import { tensorFromNumbers } from '../../runtime/ir/tensor.js';
import { attr, buildGraph, i64, node } from '../helpers/ir-builder.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { checkGraphAgainstCpu } from './ew-harness.js';
import { GpuGraphPlan } from '../../runtime/backends/webgpu/executor.js';

/** Epilogue fusion of the GPU plan (fusion.ts): fewer dispatches, the same numbers as the unfused CPU reference. */
let res: GpuResources;
beforeAll(async () => {
  res = await gpuForTests();
});
const TOL = { rtol: 1e-4, atol: 1e-5 };
const rng = new Rng(31);

function smallNet() {
  return buildGraph({
    inputs: [['x', 'float32', [2, 3, 8, 8]]],
    initializers: {
      w1: randomTensor(rng, 'float32', [8, 3, 3, 3]), b1: randomTensor(rng, 'float32', [8]),
      w2: randomTensor(rng, 'float32', [8, 1, 3, 3]),
      lo: tensorFromNumbers('float32', [], [0]), hi: tensorFromNumbers('float32', [], [0.5]),
      fc: randomTensor(rng, 'float32', [8, 5]), fb: randomTensor(rng, 'float32', [5]),
      alpha: tensorFromNumbers('float32', [], [0.2]),
    },
    nodes: [
      node('Conv', ['x', 'w1', 'b1'], ['c1'], { pads: attr([1, 1, 1, 1]) }),
      node('Relu', ['c1'], ['r1']),
      node('Conv', ['r1', 'w2'], ['c2'], { group: attr(8), strides: attr([2, 2]), pads: attr([1, 1, 1, 1]) }),
      node('Clip', ['c2', 'lo', 'hi'], ['r2']),
      node('GlobalAveragePool', ['r2'], ['g']),
      node('Flatten', ['g'], ['f']),
      node('MatMul', ['f', 'fc'], ['m']),
      node('Add', ['fb', 'm'], ['logits']),
      node('LeakyRelu', ['logits'], ['y'], { alpha: attr(0.3, true) }),
    ],
    outputs: ['y'],
  });
}

describe('GPU epilogue fusion', () => {
  it('collapses producer -> activation and MatMul -> Add chains', () => {
    const fused = fuseForGpu(smallNet());
    expect(fused.nodes.map((n) => n.op)).toEqual(['Conv', 'Conv', 'GlobalAveragePool', 'Flatten', 'Gemm']);
    expect(fused.nodes[0]!.attrs.activation).toEqual({ type: 'string', value: 'Relu' });
    expect(fused.nodes[1]!.attrs).toMatchObject({ activation: { value: 'Clip' }, activation_min: { value: 0 }, activation_max: { value: 0.5 } });
    expect(fused.nodes[4]!.inputs).toEqual(['f', 'fc', 'fb']);
    expect(fused.nodes[4]!.attrs).toMatchObject({ activation: { value: 'LeakyRelu' }, activation_alpha: { value: 0.3 } });
  });

  it('runs the fused plan with fewer dispatches and the CPU reference results', async () => {
    const g = smallNet();
    const feeds = { x: randomTensor(rng, 'float32', [2, 3, 8, 8]) };
    const report = await checkGraphAgainstCpu(res, g, feeds, TOL);
    expect(report.dispatches).toBe(5);
    const unfused = await GpuGraphPlan.create(res, g, { fuse: false });
    expect(unfused.report().dispatches).toBe(9);
    unfused.dispose();
  });

  it('leaves values with other readers, graph outputs and non-row biases alone', async () => {
    const g = buildGraph({
      inputs: [['a', 'float32', [4, 6]], ['b', 'float32', [6, 3]]],
      initializers: { bias: randomTensor(rng, 'float32', [4, 1]) },
      nodes: [
        node('MatMul', ['a', 'b'], ['m']),
        node('Add', ['m', 'bias'], ['s']), // a column bias: not Gemm's C broadcast
        node('Sigmoid', ['s'], ['t']),
        node('MatMul', ['a', 'b'], ['m2']),
        node('Tanh', ['m2'], ['u']),
        node('Mul', ['m2', 'u'], ['v']), // m2 has two readers
      ],
      outputs: ['t', 'v', 's'],
    });
    expect(fuseForGpu(g).nodes.map((n) => n.op)).toEqual(['MatMul', 'Add', 'Sigmoid', 'MatMul', 'Tanh', 'Mul']);
    await checkGraphAgainstCpu(res, g, { a: randomTensor(rng, 'float32', [4, 6]), b: randomTensor(rng, 'float32', [6, 3]) }, TOL);
  });

  it('fuses Gelu and HardSwish into a batched MatMul', async () => {
    for (const act of ['Gelu', 'HardSwish']) {
      const g = buildGraph({
        inputs: [['a', 'float32', [2, 5, 7]]],
        initializers: { w: randomTensor(rng, 'float32', [7, 9]), shape: i64([10, 9]) },
        nodes: [node('MatMul', ['a', 'w'], ['m']), node(act, ['m'], ['h']), node('Reshape', ['h', 'shape'], ['y'])],
        outputs: ['y'],
      });
      const report = await checkGraphAgainstCpu(res, g, { a: randomTensor(rng, 'float32', [2, 5, 7], { lo: -3, hi: 3 }) }, TOL);
      expect(report.dispatches).toBe(2);
    }
  });
});
