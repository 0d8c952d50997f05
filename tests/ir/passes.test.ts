import { describe, expect, it } from 'vitest';
import { runGraphCpu } from '../../runtime/backends/cpu/executor.js';
import { optimize, specialize } from '../../runtime/ir/passes/index.js';
import { buildGraph, attr, f32, i64, node } from '../helpers/ir-builder.js';
import { relativeError } from '../helpers/compare.js';

function rand(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out[i] = s / 2147483648 * 2 - 1;
  }
  return out;
}

describe('Conv + BatchNormalization folding', () => {
  const g = buildGraph({
    inputs: [['x', 'float32', ['N', 3, 7, 6]]],
    initializers: {
      W: f32(rand(4 * 3 * 3 * 3, 1), [4, 3, 3, 3]), B: f32(rand(4, 2), [4]),
      scale: f32(rand(4, 3), [4]), bias: f32(rand(4, 4), [4]), mean: f32(rand(4, 5), [4]),
      var: f32(rand(4, 6).map((v) => Math.abs(v) + 0.1), [4]),
    },
    nodes: [
      node('Conv', ['x', 'W', 'B'], ['c'], { pads: attr([1, 1, 1, 1]), strides: attr([2, 1]) }),
      node('BatchNormalization', ['c', 'scale', 'bias', 'mean', 'var'], ['y'], { epsilon: attr(1e-3, true) }),
    ],
    outputs: ['y'],
  });

  it('removes the BatchNormalization and keeps the outputs', () => {
    const { graph, stats } = optimize(g);
    expect(stats.convBn).toBe(1);
    expect(graph.nodes.map((n) => n.op)).toEqual(['Conv']);
    const x = f32(rand(2 * 3 * 7 * 6, 9), [2, 3, 7, 6]);
    const before = runGraphCpu(g, { x }).y!;
    const after = runGraphCpu(graph, { x }).y!;
    expect(after.shape).toEqual([2, 4, 4, 6]);
    expect(relativeError(after, before)).toBeLessThan(1e-5);
  });

  it('leaves a Conv whose output has another reader alone', () => {
    const g2 = buildGraph({
      inputs: [['x', 'float32', [1, 3, 5, 5]]],
      initializers: { ...g.initializers },
      nodes: [
        node('Conv', ['x', 'W', 'B'], ['c']),
        node('BatchNormalization', ['c', 'scale', 'bias', 'mean', 'var'], ['y']),
        node('Relu', ['c'], ['r']),
      ],
      outputs: ['y', 'r'],
    });
    expect(optimize(g2).stats.convBn).toBe(0);
  });
});

describe('constant folding of exporter shape chains', () => {
  // y = Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0), [0]), [-1])): what torch.onnx emits for x.view(x.size(0), -1)
  const g = buildGraph({
    inputs: [['x', 'float32', ['N', 4, 2]]],
    initializers: { zero: i64([0], []), axes0: i64([0]), minus1: i64([-1]) },
    nodes: [
      node('Shape', ['x'], ['s']),
      node('Gather', ['s', 'zero'], ['n'], { axis: attr(0) }),
      node('Unsqueeze', ['n', 'axes0'], ['n1']),
      node('Concat', ['n1', 'minus1'], ['target'], { axis: attr(0) }),
      node('Reshape', ['x', 'target'], ['y']),
    ],
    outputs: ['y'],
  });

  it('keeps the chain while the batch dim is symbolic and folds it once shapes are bound', () => {
    const { graph } = optimize(g);
    expect(graph.nodes.map((n) => n.op)).toContain('Shape');
    const plan = specialize(graph, { x: [3, 4, 2] });
    expect(plan.nodes.map((n) => n.op)).toEqual(['Reshape']);
    const target = plan.initializers[plan.nodes[0]!.inputs[1]!]!;
    expect(target.dtype).toBe('int64');
    expect(Array.from(target.data as BigInt64Array, Number)).toEqual([3, -1]);
    expect(plan.values.y!.shape).toEqual([3, 8]);
    const x = f32(rand(24, 3), [3, 4, 2]);
    expect(Array.from(runGraphCpu(plan, { x }).y!.data as Float32Array)).toEqual(Array.from(x.data as Float32Array));
  });
});

describe('identity, dropout and dead code removal', () => {
  it('rewires around Identity/Dropout and drops unused nodes and initializers', () => {
    const g = buildGraph({
      inputs: [['x', 'float32', [2, 3]]],
      initializers: { unused: f32([1, 2], [2]), w: f32([1, 2, 3], [3]) },
      nodes: [
        node('Identity', ['x'], ['a']),
        node('Dropout', ['a'], ['b']),
        node('Mul', ['b', 'w'], ['c']),
        node('Relu', ['c'], ['dead']),
        node('Identity', ['c'], ['y']),
      ],
      outputs: ['y'],
    });
    const { graph } = optimize(g);
    expect(graph.nodes.map((n) => n.op)).toEqual(['Mul', 'Identity']); // the output-producing Identity stays
    expect(graph.nodes[0]!.inputs[0]).toBe('x');
    expect(Object.keys(graph.initializers)).toEqual(['w']);
  });
});
