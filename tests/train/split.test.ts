import { describe, expect, it } from 'vitest';
import { runGraphCpu } from '../../runtime/backends/cpu/executor.js';
import type { Graph, Node } from '../../runtime/ir/graph.js';
import { tensorFromNumbers } from '../../runtime/ir/tensor.js';
import { validateAndSort } from '../../runtime/ir/validate.js';
import { splitGraph } from '../../runtime/train/split.js';
import { Rng } from '../helpers/random.js';
import { linear, mlp, toyData } from './model-fixtures.js';

const node = (name: string, op: string, inputs: string[], outputs: string[], attrs: Node['attrs'] = {}): Node => ({ name, op, domain: '', inputs, outputs, attrs });

describe('splitGraph', () => {
  const model = mlp(3);
  const { x } = toyData(1, 6);
  const full = runGraphCpu(validateAndSort(model), { x })['logits']!;

  const recompose = (cut: string) => {
    const s = splitGraph(model, cut);
    const feats = runGraphCpu(s.trunk, { x });
    const out = runGraphCpu(s.tail, Object.fromEntries(s.tail.inputs.map((i) => [i.name, feats[i.name] ?? x])))['logits']!;
    expect(Array.from(out.data as Float32Array)).toEqual(Array.from(full.data as Float32Array));
    return s;
  };

  it("cut at a value (the first Gemm's output): the Gemm stays frozen in the trunk", () => {
    const s = recompose('h');
    expect(s.trunk.nodes.map((k) => k.name)).toEqual(['fc1']);
    expect(s.tail.nodes.map((k) => k.name)).toEqual(['relu', 'fc2']);
    expect(s.tail.inputs.map((i) => [i.name, i.shape])).toEqual([['h', ['N', 8]]]);
    expect(s.trainable.sort()).toEqual(['fc2.bias', 'fc2.weight']);
    expect(Object.keys(s.trunk.initializers).sort()).toEqual(['fc1.bias', 'fc1.weight']);
  });

  it('cut at a node: that node trains (trainFrom semantics)', () => {
    const s = recompose('fc2');
    expect(s.tail.nodes.map((k) => k.name)).toEqual(['fc2']);
    expect(s.tail.inputs.map((i) => i.name)).toEqual(['r']);
    expect(s.trainable.sort()).toEqual(['fc2.bias', 'fc2.weight']);
  });

  it('cut at an initializer: its consumer and everything after it train; the model input passes through', () => {
    const s = recompose('fc1.weight');
    expect(s.trunk.nodes).toEqual([]);
    expect(s.tail.inputs.map((i) => i.name)).toEqual(['x']);
    expect(s.trainable.sort()).toEqual(['fc1.bias', 'fc1.weight', 'fc2.bias', 'fc2.weight']);
  });

  it('a skip connection over the cut becomes a second tail input', () => {
    const rng = new Rng(2);
    const g: Graph = {
      name: 'skip', inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 4] }], outputs: [{ name: 'y', dtype: 'float32' }],
      initializers: { ...linear(rng, 4, 4, 'a'), ...linear(rng, 4, 4, 'b') },
      nodes: [
        node('a', 'Gemm', ['x', 'a.weight', 'a.bias'], ['h'], { transB: { type: 'int', value: 1 } }),
        node('act', 'Tanh', ['h'], ['t']),
        node('b', 'Gemm', ['t', 'b.weight', 'b.bias'], ['z'], { transB: { type: 'int', value: 1 } }),
        node('res', 'Add', ['z', 'h'], ['y']),
      ],
      values: {},
    };
    const s = splitGraph(g, 'act');
    expect(s.tail.inputs.map((i) => i.name).sort()).toEqual(['h']);
    const s2 = splitGraph(g, 'b');
    expect(s2.tail.inputs.map((i) => i.name).sort()).toEqual(['h', 't']);
    expect(s2.trunk.outputs.map((o) => o.name).sort()).toEqual(['h', 't']);
  });

  it('keeps statistics, shapes and tied weights frozen, and weights behind an op without a gradient rule', () => {
    const rng = new Rng(4);
    const f = (shape: number[]) => tensorFromNumbers('float32', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(0.5, 1)));
    const g: Graph = {
      name: 'mixed', inputs: [{ name: 'x', dtype: 'float32', shape: [2, 3, 2, 2] }], outputs: [{ name: 'y', dtype: 'float32' }],
      initializers: {
        scale: f([3]), bias: f([3]), mean: f([3]), var: f([3]), shared: f([1]), pre: f([1]),
        shape: tensorFromNumbers('int64', [2], [2, 12]), w: f([12, 2]),
      },
      nodes: [
        node('tie', 'Mul', ['x', 'shared'], ['x2']),
        node('bn', 'BatchNormalization', ['x2', 'scale', 'bias', 'mean', 'var'], ['b']),
        node('tie2', 'Mul', ['b', 'shared'], ['b2']),
        node('pre', 'Mul', ['b2', 'pre'], ['b3']),
        node('sin', 'Sin', ['b3'], ['s']),
        node('flat', 'Reshape', ['s', 'shape'], ['f']),
        node('head', 'MatMul', ['f', 'w'], ['y']),
      ],
      values: {},
    };
    const s = splitGraph(g, 'bn');
    expect(s.trainable).toEqual(['w']);
    const reasons = Object.fromEntries(s.frozen.map((k) => [k.name, k.reason]));
    expect(reasons.mean).toMatch(/no gradient/);
    expect(reasons.var).toMatch(/no gradient/);
    expect(reasons.scale).toMatch(/Sin node 'sin' has no gradient rule/);
    expect(reasons.pre).toMatch(/Sin/);
    expect(reasons.shared).toMatch(/Sin|tied/);
    expect(s.frozen.some((k) => k.name === 'shape')).toBe(false); // int64: never a candidate
  });

  it('explains a bad cut', () => {
    expect(() => splitGraph(model, 'nope')).toThrow(/not a node, initializer or value/);
    expect(() => splitGraph(model, 'logits')).toThrow(/Nothing reads 'logits'/);
  });
});
