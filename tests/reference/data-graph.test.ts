import { describe, expect, it } from 'vitest';
import { AllocationLimitError } from '../../runtime/errors.js';
import { runGraphCpu } from '../../runtime/backends/cpu/executor.js';
import { tensorFromNumbers, tensorToNumbers } from '../../runtime/ir/tensor.js';
import { attr, buildGraph, i64, node } from '../helpers/ir-builder.js';
import { runCpuNode } from '../helpers/ort-single-node.js';

/**
 * The data-movement ops inside graphs: symbolic inference through the Shape → Gather → Unsqueeze → Concat →
 * Reshape chains exporters write, execution of such a graph, and the allocation guard on ops whose output size
 * comes from input values.
 */

describe('shape chains through inference and execution', () => {
  const chain = () => buildGraph({
    inputs: [['x', 'float32', ['N', 3, 4, 4]]],
    initializers: { zero: i64([0], []), axes0: i64([0]), minus1: i64([-1]) },
    nodes: [
      node('Shape', ['x'], ['s']),
      node('Gather', ['s', 'zero'], ['n']),
      node('Unsqueeze', ['n', 'axes0'], ['n1']),
      node('Concat', ['n1', 'minus1'], ['target'], { axis: attr(0) }),
      node('Reshape', ['x', 'target'], ['flat']),
      node('Transpose', ['flat'], ['t']),
      node('Slice', ['t', 'axes0', 'n1', 'axes0'], ['head']),
    ],
    outputs: ['flat', 't', 'head'],
  });

  it('infers ranks and dims symbolically', () => {
    const g = chain();
    expect(g.values.s).toMatchObject({ dtype: 'int64', shape: [4] });
    expect(g.values.n).toMatchObject({ dtype: 'int64', shape: [] });
    expect(g.values.n1!.shape).toEqual([1]);
    expect(g.values.target!.shape).toEqual([2]);
    // The target shape is computed at run time: rank 2, dims unknown until the input shape is bound.
    expect(g.values.flat!.shape).toHaveLength(2);
    expect(g.values.t!.shape).toEqual([...g.values.flat!.shape!].reverse());
    expect(g.values.head!.shape).toHaveLength(2);
  });

  it('runs on the CPU with the values the chain computes', () => {
    const g = chain();
    const x = tensorFromNumbers('float32', [2, 3, 4, 4], Array.from({ length: 96 }, (_, i) => i));
    const out = runGraphCpu(g, { x });
    expect(out.flat!.shape).toEqual([2, 48]);
    expect(out.t!.shape).toEqual([48, 2]);
    expect(Array.from(tensorToNumbers(out.t!)).slice(0, 4)).toEqual([0, 48, 1, 49]);
    // head = t[0:N] along axis 0.
    expect(out.head!.shape).toEqual([2, 2]);
    expect(Array.from(tensorToNumbers(out.head!))).toEqual([0, 48, 1, 49]);
  });
});

describe('allocation guard', () => {
  it('ops that size outputs from input values refuse allocation bombs before allocating', () => {
    const big = i64([1 << 20, 1 << 20]);
    expect(() => runCpuNode('ConstantOfShape', {}, [big])).toThrow(AllocationLimitError);
    expect(() => runCpuNode('Expand', {}, [tensorFromNumbers('float32', [1], [1]), big])).toThrow(AllocationLimitError);
    expect(() => runCpuNode('Tile', {}, [tensorFromNumbers('float32', [2, 2], [1, 2, 3, 4]), big])).toThrow(AllocationLimitError);
    expect(() => runCpuNode('Pad', {}, [tensorFromNumbers('float32', [1, 1], [1]), i64([0, 0, 1 << 20, 1 << 20])])).toThrow(AllocationLimitError);
    expect(() => runCpuNode('Resize', {}, [tensorFromNumbers('float32', [1, 1], [1]), undefined, undefined, big])).toThrow(AllocationLimitError);
    expect(() => runCpuNode('Range', {}, [0, 2 ** 40, 1].map((v) => tensorFromNumbers('int64', [], [v])))).toThrow(AllocationLimitError);
  });
});
