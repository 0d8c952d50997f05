import onnx from 'onnx-proto';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { tensorFromNumbers } from '../../runtime/ir/tensor.js';
import { Rng, randomTensor } from './random.js';
import { tensorProto } from './ort-single-node.js';
import { graphAttr, int, model, vi, type PAttr } from '../importer/model-builder.js';

/**
 * Hand-built models with sequence and optional values, shared by tests/reference/sequences.test.ts (CPU against
 * onnxruntime-node) and tests/webgpu/sequences.test.ts (WebGPU against the CPU reference). The `ort` models keep
 * tensors at their inputs and outputs (onnxruntime-node takes and returns tensors only) and use every sequence and
 * optional op inside; the `api` models have sequence/optional inputs and outputs.
 */

type PValueInfo = onnx.onnx.IValueInfoProto;
const T = onnx.onnx.AttributeProto.AttributeType;

export const seqVi = (name: string, elemType = 1, dims?: (number | string)[]): PValueInfo => ({
  name,
  type: { sequenceType: { elemType: vi(name, elemType, dims).type! } },
});
export const optVi = (name: string, inner: PValueInfo): PValueInfo => ({ name, type: { optionalType: { elemType: inner.type! } } });
const i64 = (name: string, v: number[], shape = [v.length]) => tensorProto(name, tensorFromNumbers('int64', shape, v));

export interface SeqCase {
  name: string;
  bytes: Uint8Array;
  feeds: Record<string, HostTensor>;
}

/** Tensor in, tensor out: every sequence/optional op inside, for onnxruntime-node. */
export function ortCases(seed = 5): SeqCase[] {
  const rng = new Rng(seed);
  const f = (shape: number[]) => randomTensor(rng, 'float32', shape);
  const cases: SeqCase[] = [];

  // SplitToSequence by sizes, Insert (at a position), Erase (the last), At (negative), Concat, Length.
  {
    const x = f([4, 3]);
    const y = f([2, 3]);
    cases.push({
      name: 'split sizes -> insert -> erase -> at / concat / length',
      feeds: { x, y },
      bytes: model({
        opset: 13,
        nodes: [
          { op: 'SplitToSequence', inputs: ['x', 'sizes'], outputs: ['s'], attrs: [int('axis', 0)] },
          { op: 'SequenceInsert', inputs: ['s', 'y', 'one'], outputs: ['s2'] },
          { op: 'SequenceErase', inputs: ['s2'], outputs: ['s3'] },
          { op: 'SequenceAt', inputs: ['s3', 'minus1'], outputs: ['a'] },
          { op: 'ConcatFromSequence', inputs: ['s3'], outputs: ['c'], attrs: [int('axis', 0)] },
          { op: 'SequenceLength', inputs: ['s3'], outputs: ['n'] },
        ],
        inputs: [vi('x', 1, [4, 3]), vi('y', 1, [2, 3])],
        outputs: [vi('a', 1), vi('c', 1), vi('n', 7)],
        initializers: [i64('sizes', [1, 3]), i64('one', [1], []), i64('minus1', [-1], [])],
      }),
    });
  }
  // SplitToSequence without split (keepdims=0) and ConcatFromSequence with new_axis at the end and at the front.
  {
    const x = f([2, 5]);
    cases.push({
      name: 'split into rows without keepdims -> stack (new_axis) at -1 and at 0',
      feeds: { x },
      bytes: model({
        opset: 13,
        nodes: [
          { op: 'SplitToSequence', inputs: ['x'], outputs: ['s'], attrs: [int('axis', 1), int('keepdims', 0)] },
          { op: 'ConcatFromSequence', inputs: ['s'], outputs: ['back'], attrs: [int('axis', -1), int('new_axis', 1)] },
          { op: 'ConcatFromSequence', inputs: ['s'], outputs: ['front'], attrs: [int('axis', 0), int('new_axis', 1)] },
        ],
        inputs: [vi('x', 1, [2, 5])],
        outputs: [vi('back', 1), vi('front', 1)],
      }),
    });
  }
  // A scalar split: chunks of 2, the last one smaller; SequenceAt from the back.
  {
    const x = f([5, 2]);
    cases.push({
      name: 'scalar split (uneven chunks) -> at(-1), concat',
      feeds: { x },
      bytes: model({
        opset: 13,
        nodes: [
          { op: 'SplitToSequence', inputs: ['x', 'two'], outputs: ['s'] },
          { op: 'SequenceAt', inputs: ['s', 'minus1'], outputs: ['last'] },
          { op: 'ConcatFromSequence', inputs: ['s'], outputs: ['c'], attrs: [int('axis', 0)] },
          { op: 'SequenceLength', inputs: ['s'], outputs: ['n'] },
        ],
        inputs: [vi('x', 1, [5, 2])],
        outputs: [vi('last', 1), vi('c', 1), vi('n', 7)],
        initializers: [i64('two', [2], []), i64('minus1', [-1], [])],
      }),
    });
  }
  // SequenceConstruct, SequenceEmpty + inserts at the front, SequenceMap with a tensor input (Add + Relu).
  {
    const a = f([3, 4]);
    const b = f([2, 4]);
    const bias = f([4]);
    const body: onnx.onnx.IGraphProto = {
      name: 'map_body',
      input: [vi('row', 1, [4]), vi('bias_in', 1, [4])],
      output: [vi('out', 1, [4]), vi('sum', 1, [])],
      node: [
        { opType: 'Add', input: ['row', 'bias_in'], output: ['t'], name: 'add' },
        { opType: 'Relu', input: ['t'], output: ['out'], name: 'relu' },
        { opType: 'ReduceSum', input: ['out'], output: ['sum'], name: 'sum', attribute: [{ name: 'keepdims', type: T.INT, i: 0 }] },
      ],
    };
    cases.push({
      name: 'construct, empty + front inserts, SequenceMap over rows with a tensor input',
      feeds: { a, b, bias },
      bytes: model({
        opset: 17,
        nodes: [
          { op: 'SplitToSequence', inputs: ['a'], outputs: ['rows_a'], attrs: [int('axis', 0), int('keepdims', 0)] },
          { op: 'SplitToSequence', inputs: ['b'], outputs: ['rows_b'], attrs: [int('axis', 0), int('keepdims', 0)] },
          { op: 'SequenceAt', inputs: ['rows_b', 'zero'], outputs: ['b0'] },
          { op: 'SequenceAt', inputs: ['rows_b', 'one'], outputs: ['b1'] },
          { op: 'SequenceEmpty', inputs: [], outputs: ['e'], attrs: [int('dtype', 1)] },
          { op: 'SequenceInsert', inputs: ['e', 'b0', 'zero'], outputs: ['e1'] },
          { op: 'SequenceInsert', inputs: ['e1', 'b1', 'zero'], outputs: ['e2'] },
          { op: 'SequenceAt', inputs: ['rows_a', 'two'], outputs: ['a2'] },
          { op: 'SequenceConstruct', inputs: ['a2', 'b0', 'b1'], outputs: ['mixed'] },
          { op: 'SequenceMap', inputs: ['mixed', 'bias'], outputs: ['mapped', 'sums'], attrs: [graphAttr('body', body)] },
          { op: 'ConcatFromSequence', inputs: ['mapped'], outputs: ['m'], attrs: [int('axis', 0), int('new_axis', 1)] },
          { op: 'ConcatFromSequence', inputs: ['sums'], outputs: ['s'], attrs: [int('axis', 0), int('new_axis', 1)] },
          { op: 'ConcatFromSequence', inputs: ['e2'], outputs: ['rev'], attrs: [int('axis', 0), int('new_axis', 1)] },
        ],
        inputs: [vi('a', 1, [3, 4]), vi('b', 1, [2, 4]), vi('bias', 1, [4])],
        outputs: [vi('m', 1), vi('s', 1), vi('rev', 1)],
        initializers: [i64('zero', [0], []), i64('one', [1], []), i64('two', [2], [])],
      }),
    });
  }
  // Negative and int32 positions, an int32 split along the last axis, a Concat along a negative axis.
  {
    const x = f([2, 6]);
    const i32 = (name: string, v: number[], shape = [v.length]) => tensorProto(name, tensorFromNumbers('int32', shape, v));
    cases.push({
      name: 'int32 split on axis -1, insert at -1, erase at 0 and -2, at(int32 -1), concat on axis -1',
      feeds: { x },
      bytes: model({
        opset: 13,
        nodes: [
          { op: 'SplitToSequence', inputs: ['x', 'sizes'], outputs: ['s'], attrs: [int('axis', -1)] },
          { op: 'SequenceAt', inputs: ['s', 'first'], outputs: ['a0'] },
          { op: 'SequenceInsert', inputs: ['s', 'a0', 'minus1'], outputs: ['s2'] },
          { op: 'SequenceErase', inputs: ['s2', 'zero'], outputs: ['s3'] },
          { op: 'SequenceErase', inputs: ['s3', 'minus2'], outputs: ['s4'] },
          { op: 'SequenceAt', inputs: ['s4', 'last'], outputs: ['tail'] },
          { op: 'ConcatFromSequence', inputs: ['s4'], outputs: ['c'], attrs: [int('axis', -1)] },
          { op: 'SequenceLength', inputs: ['s4'], outputs: ['n'] },
        ],
        inputs: [vi('x', 1, [2, 6])],
        outputs: [vi('tail', 1), vi('c', 1), vi('n', 7)],
        initializers: [i32('sizes', [1, 2, 3]), i64('first', [0], []), i64('minus1', [-1], []), i64('zero', [0], []), i64('minus2', [-2], []), i32('last', [-1], [])],
      }),
    });
  }
  // Optional of a tensor and an empty Optional (type attribute): has-element flags and the element.
  {
    const x = f([2, 3]);
    const tp: PAttr = { name: 'type', type: T.TYPE_PROTO, tp: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 2 }, { dimValue: 3 }] } } } };
    cases.push({
      name: 'Optional(x), Optional() -> has element, get element',
      feeds: { x },
      bytes: model({
        opset: 18,
        nodes: [
          { op: 'Optional', inputs: ['x'], outputs: ['o'] },
          { op: 'Optional', inputs: [], outputs: ['none'], attrs: [tp] },
          { op: 'OptionalHasElement', inputs: ['o'], outputs: ['has'] },
          { op: 'OptionalHasElement', inputs: ['none'], outputs: ['has_none'] },
          { op: 'OptionalGetElement', inputs: ['o'], outputs: ['g'] },
          { op: 'Neg', inputs: ['g'], outputs: ['neg'] },
        ],
        inputs: [vi('x', 1, [2, 3])],
        outputs: [vi('has', 9), vi('has_none', 9), vi('neg', 1)],
      }),
    });
  }
  return cases;
}

/** Sequence in, sequence out: SequenceInsert of a tensor at the front, the length, and the sequence passed through. */
export function seqIoModel(): Uint8Array {
  return model({
    opset: 13,
    nodes: [
      { op: 'SequenceInsert', inputs: ['seq', 't', 'zero'], outputs: ['seq_out'] },
      { op: 'SequenceLength', inputs: ['seq_out'], outputs: ['len'] },
      { op: 'ConcatFromSequence', inputs: ['seq_out'], outputs: ['cat'], attrs: [int('axis', 0)] },
    ],
    inputs: [seqVi('seq', 1, ['n', 3]), vi('t', 1, [1, 3])],
    outputs: [seqVi('seq_out', 1, ['m', 3]), vi('len', 7, []), vi('cat', 1, ['k', 3])],
    initializers: [i64('zero', [0], [])],
  });
}

/** Optional in (of a tensor), optional out: has-element, and the optional passed through. */
export function optionalIoModel(): Uint8Array {
  return model({
    opset: 18,
    nodes: [
      { op: 'OptionalHasElement', inputs: ['maybe'], outputs: ['has'] },
      { op: 'Identity', inputs: ['maybe'], outputs: ['same'] },
    ],
    inputs: [optVi('maybe', vi('maybe', 1, [2]))],
    outputs: [vi('has', 9, []), optVi('same', vi('same', 1, [2]))],
  });
}

/** SequenceAt at a position computed from tensor data (ArgMax): fine on the CPU, refused when planning on WebGPU. */
export function dataPositionModel(): Uint8Array {
  return model({
    opset: 13,
    nodes: [
      { op: 'SplitToSequence', inputs: ['x'], outputs: ['s'], attrs: [int('axis', 0), int('keepdims', 0)] },
      { op: 'ReduceMax', inputs: ['x'], outputs: ['rowsum'], name: 'rowsum', attrs: [{ name: 'axes', type: T.INTS, ints: [1] }, int('keepdims', 0)] },
      { op: 'ArgMax', inputs: ['rowsum'], outputs: ['p'], name: 'argmax', attrs: [int('keepdims', 0)] },
      { op: 'SequenceAt', inputs: ['s', 'p'], outputs: ['row'], name: 'pick' },
    ],
    inputs: [vi('x', 1, [3, 4])],
    outputs: [vi('row', 1)],
  });
}

/** A Loop whose trip count comes from tensor data (Cast(ReduceMax(x))) builds a sequence of its iteration numbers. */
export function dataLoopSequenceModel(): Uint8Array {
  const body: onnx.onnx.IGraphProto = {
    name: 'body',
    input: [vi('i', 7, []), vi('c', 9, []), seqVi('s_in', 1)],
    output: [vi('c_out', 9, []), seqVi('s_out', 1)],
    node: [
      { opType: 'Identity', input: ['c'], output: ['c_out'], name: 'id' },
      { opType: 'Cast', input: ['i'], output: ['f'], name: 'cast', attribute: [int('to', 1)] },
      { opType: 'SequenceInsert', input: ['s_in', 'f'], output: ['s_out'], name: 'ins' },
    ],
  };
  return model({
    opset: 13,
    nodes: [
      { op: 'ReduceMax', inputs: ['x'], outputs: ['mx'], attrs: [int('keepdims', 0)] },
      { op: 'Cast', inputs: ['mx'], outputs: ['n'], attrs: [int('to', 7)] },
      { op: 'SequenceEmpty', inputs: [], outputs: ['e'] },
      { op: 'Loop', inputs: ['n', '', 'e'], outputs: ['seq'], name: 'loop', attrs: [graphAttr('body', body)] },
      { op: 'ConcatFromSequence', inputs: ['seq'], outputs: ['y'], name: 'cat', attrs: [int('axis', 0), int('new_axis', 1)] },
    ],
    inputs: [vi('x', 1, [3])],
    outputs: [vi('y', 1)],
  });
}
