import { describe, expect, it } from 'vitest';
import { DTypeError, InvalidArgumentError, ShapeError } from '../../runtime/errors.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr, Dim } from '../../runtime/ir/graph.js';
import { hostTensor, tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { attr, i64 } from '../helpers/ir-builder.js';
import { compareWithOrt, inferNode, runCpuNode } from '../helpers/ort-single-node.js';
import { randomTensor, Rng } from '../helpers/random.js';

/**
 * Index-driven ops (GatherND, ScatterND, ScatterElements, OneHot, EyeLike, Trilu) and BitShift: shape inference on
 * symbolic shapes, and the CPU kernels against onnxruntime-node on seeded random inputs of several shapes and types.
 */

const rng = new Rng(909);
const toAttrs = (a: Record<string, number | string | number[]>): Record<string, Attr> => Object.fromEntries(Object.entries(a).map(([k, v]) => [k, attr(v)]));
const x = (shape: Dim[] | undefined, dtype: DType = 'float32') => ({ dtype, shape });
const shapeOf = (op: string, attrs: Record<string, Attr>, inputs: Parameters<typeof inferNode>[2]) => inferNode(op, attrs, inputs).map((o) => o.shape);
const rand = (dtype: DType, shape: number[]) => randomTensor(rng, dtype, shape);
/** Indices in [-n, n) of the given shape. */
const idxT = (shape: number[], n: number, dtype: DType = 'int64') => tensorFromNumbers(dtype, shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.int(-n, n - 1)));
/** `count` distinct rows of K indices into dims (a random permutation prefix), as int64 [count, K]. */
function distinctTuples(dims: number[], count: number): HostTensor {
  const total = dims.reduce((a, b) => a * b, 1);
  const order = Array.from({ length: total }, (_, i) => i).sort(() => rng.next() - 0.5).slice(0, count);
  const vals: number[] = [];
  for (let f of order) {
    const t: number[] = [];
    for (let d = dims.length - 1; d >= 0; d--) {
      t.unshift(f % dims[d]!);
      f = Math.floor(f / dims[d]!);
    }
    vals.push(...t.map((v, d) => (rng.next() < 0.3 ? v - dims[d]! : v)));
  }
  return tensorFromNumbers('int64', [count, dims.length], vals);
}

async function expectOrt(op: string, attrs: Record<string, Attr>, inputs: (HostTensor | undefined)[], opts: Parameters<typeof compareWithOrt>[3] = {}) {
  const what = `${op} ${JSON.stringify(attrs)} ${JSON.stringify(inputs.map((t) => t && [t.dtype, t.shape]))}`;
  expect(await compareWithOrt(op, attrs, inputs, opts), what).toEqual([]);
}

describe('indexing inference', () => {
  it('GatherND, ScatterND, ScatterElements', () => {
    expect(shapeOf('GatherND', {}, [x(['N', 4, 5]), x(['B', 2], 'int64')])).toEqual([['B', 5]]);
    expect(shapeOf('GatherND', toAttrs({ batch_dims: 1 }), [x(['N', 4, 5]), x(['N', 3, 1], 'int64')])).toEqual([['N', 3, 5]]);
    expect(() => shapeOf('GatherND', {}, [x([4, 5]), x([2, 3], 'int64')])).toThrow(ShapeError);
    expect(() => shapeOf('GatherND', {}, [x([4, 5]), x([2, 1], 'float32')])).toThrow(DTypeError);
    expect(shapeOf('ScatterND', {}, [x(['N', 4]), x([2, 1], 'int64'), x([2, 4])])).toEqual([['N', 4]]);
    expect(() => shapeOf('ScatterND', {}, [x([5, 4]), x([2, 1], 'int64'), x([2, 3])])).toThrow(ShapeError);
    expect(() => shapeOf('ScatterND', toAttrs({ reduction: 'sub' }), [x([5, 4]), x([2, 1], 'int64'), x([2, 4])])).toThrow(InvalidArgumentError);
    expect(shapeOf('ScatterElements', toAttrs({ axis: 1 }), [x([3, 'C']), x([3, 2], 'int32'), x([3, 2])])).toEqual([[3, 'C']]);
    expect(() => shapeOf('ScatterElements', {}, [x([3, 4]), x([3], 'int64'), x([3])])).toThrow(ShapeError);
    expect(() => shapeOf('ScatterElements', {}, [x([3, 4]), x([3, 4], 'int64'), x([3, 4], 'float16')])).toThrow(DTypeError);
  });

  it('OneHot, EyeLike, Trilu, BitShift', () => {
    const depth = { dtype: 'int64' as DType, shape: [] as Dim[], value: tensorFromNumbers('int64', [], [7]) };
    const values = x([2], 'int32');
    expect(shapeOf('OneHot', {}, [x(['N', 3], 'int64'), depth, values])).toEqual([['N', 3, 7]]);
    expect(shapeOf('OneHot', toAttrs({ axis: 0 }), [x(['N', 3], 'int64'), depth, values])).toEqual([[7, 'N', 3]]);
    expect(shapeOf('OneHot', toAttrs({ axis: -2 }), [x(['N', 3], 'int64'), x([1], 'int64'), values])).toEqual([['N', 's0', 3]]);
    expect(inferNode('OneHot', {}, [x([3], 'float32'), depth, values])[0]!.dtype).toBe('int32');
    expect(() => shapeOf('OneHot', toAttrs({ axis: 3 }), [x([2, 3], 'int64'), depth, values])).toThrow(/axis/);
    expect(() => runCpuNode('OneHot', {}, [i64([1]), i64([0]), tensorFromNumbers('float32', [2], [0, 1])])).toThrow(InvalidArgumentError);
    expect(inferNode('EyeLike', toAttrs({ dtype: 7 }), [x(['R', 'C'])])[0]).toEqual({ dtype: 'int64', shape: ['R', 'C'] });
    expect(() => shapeOf('EyeLike', {}, [x([3])])).toThrow(ShapeError);
    expect(shapeOf('Trilu', {}, [x(['B', 3, 4])])).toEqual([['B', 3, 4]]);
    expect(() => shapeOf('Trilu', {}, [x([4])])).toThrow(ShapeError);
    expect(() => shapeOf('BitShift', toAttrs({ direction: 'LEFT' }), [x([2], 'int32'), x([2], 'int32')])).toThrow(DTypeError);
    expect(() => shapeOf('BitShift', toAttrs({ direction: 'UP' }), [x([2], 'uint8'), x([2], 'uint8')])).toThrow(InvalidArgumentError);
  });

  it('rejects out-of-range indices', () => {
    expect(() => runCpuNode('GatherND', {}, [rand('float32', [3, 2]), i64([3], [1, 1])])).toThrow(/out of range/);
    expect(() => runCpuNode('ScatterND', {}, [rand('float32', [3]), i64([-4], [1, 1]), rand('float32', [1])])).toThrow(/out of range/);
    expect(() => runCpuNode('ScatterElements', {}, [rand('float32', [3]), i64([5]), rand('float32', [1])])).toThrow(/out of range/);
  });
});

describe('indexing CPU kernels against onnxruntime', () => {
  it('GatherND with batch_dims 0, 1, 2 and several types', async () => {
    await expectOrt('GatherND', {}, [rand('float32', [4, 5, 3]), tensorFromNumbers('int64', [6, 2], Array.from({ length: 12 }, (_, i) => rng.int(-(i % 2 ? 5 : 4), (i % 2 ? 5 : 4) - 1)))]);
    await expectOrt('GatherND', {}, [rand('int32', [4, 5]), idxT([2, 3, 1], 4)]);
    await expectOrt('GatherND', {}, [rand('int64', [3, 4]), distinctTuples([3, 4], 5)]);
    await expectOrt('GatherND', toAttrs({ batch_dims: 1 }), [rand('float32', [3, 4, 2]), idxT([3, 5, 1], 4)]);
    await expectOrt('GatherND', toAttrs({ batch_dims: 2 }), [rand('float16', [2, 3, 4, 2]), idxT([2, 3, 1], 4)]);
    await expectOrt('GatherND', toAttrs({ batch_dims: 1 }), [rand('bool', [2, 3, 4]), tensorFromNumbers('int64', [2, 2, 2], [0, 1, 2, 3, 1, 0, -1, -1])]);
  });

  it('ScatterND with every reduction', async () => {
    const data = rand('float32', [5, 4, 3]);
    await expectOrt('ScatterND', {}, [data, distinctTuples([5, 4], 6), rand('float32', [6, 3])]);
    await expectOrt('ScatterND', {}, [data, distinctTuples([5], 3), rand('float32', [3, 4, 3])]);
    await expectOrt('ScatterND', {}, [rand('int64', [4, 3]), distinctTuples([4, 3], 12), rand('int64', [12])]);
    for (const reduction of ['add', 'mul', 'max', 'min']) {
      // Duplicate tuples are well defined with a reduction.
      const idx = tensorFromNumbers('int64', [7, 1], Array.from({ length: 7 }, () => rng.int(-5, 4)));
      await expectOrt('ScatterND', toAttrs({ reduction }), [data, idx, rand('float32', [7, 4, 3])], { opset: 18 });
      await expectOrt('ScatterND', toAttrs({ reduction }), [rand('int32', [6]), idxT([4, 1], 6), rand('int32', [4])], { opset: 18 });
    }
  });

  it('ScatterElements on every axis with every reduction', async () => {
    const data = rand('float32', [4, 5, 3]);
    for (const axis of [0, 1, -1]) {
      const n = data.shape[(axis + 3) % 3]!;
      // Distinct indices along the axis for 'none': a permutation per line.
      const shape = [4, 5, 3];
      shape[(axis + 3) % 3] = Math.min(2, n);
      await expectOrt('ScatterElements', toAttrs({ axis }), [data, permIndices(shape, (axis + 3) % 3, n), rand('float32', shape)]);
      for (const reduction of ['add', 'mul', 'max', 'min']) {
        await expectOrt('ScatterElements', toAttrs({ axis, reduction }), [data, idxT([2, 3, 2], n), rand('float32', [2, 3, 2])], { opset: 18 });
      }
    }
    await expectOrt('ScatterElements', toAttrs({ axis: 1 }), [rand('int64', [3, 6]), permIndices([2, 4], 1, 6, 'int32'), rand('int64', [2, 4])]);
  });

  it('OneHot on every axis, with float indices and depth', async () => {
    // onnxruntime implements only some (indices, depth, values) type triples; these are among them.
    const values = tensorFromNumbers('float32', [2], [-2, 5]);
    await expectOrt('OneHot', {}, [idxT([3, 4], 6), i64([6]), values]);
    await expectOrt('OneHot', toAttrs({ axis: 0 }), [idxT([3, 4], 5), tensorFromNumbers('int64', [], [5]), values]);
    await expectOrt('OneHot', toAttrs({ axis: 1 }), [tensorFromNumbers('float32', [5], [0, 1.7, -1.2, 9, 3]), tensorFromNumbers('float32', [1], [4.6]), values]);
    await expectOrt('OneHot', toAttrs({ axis: -2 }), [idxT([2, 3], 4, 'int32'), tensorFromNumbers('float32', [], [4]), values]);
    await expectOrt('OneHot', toAttrs({ axis: 1 }), [idxT([2, 3], 4), i64([4]), tensorFromNumbers('int64', [2], [7, 1])]);
  });

  it('EyeLike and Trilu', async () => {
    for (const k of [0, 2, -1, 7]) await expectOrt('EyeLike', toAttrs({ k }), [rand('float32', [4, 6])]);
    await expectOrt('EyeLike', toAttrs({ dtype: 6 }), [rand('float32', [5, 3])]);
    await expectOrt('EyeLike', {}, [rand('int64', [3, 3])]);
    for (const upper of [0, 1]) {
      for (const k of [undefined, 0, 2, -3, 9]) {
        await expectOrt('Trilu', toAttrs({ upper }), [rand('float32', [2, 4, 5]), k === undefined ? undefined : tensorFromNumbers('int64', [], [k])]);
      }
      await expectOrt('Trilu', toAttrs({ upper }), [rand('int64', [6, 3]), tensorFromNumbers('int64', [], [-1])]);
    }
  });

  it('BitShift on unsigned types, with broadcasting', async () => {
    // onnxruntime has no uint16 BitShift; the WebGPU tests cover it against this reference.
    for (const dtype of ['uint8', 'uint32', 'uint64'] as DType[]) {
      for (const direction of ['LEFT', 'RIGHT']) {
        const a = randomTensor(rng, dtype, [3, 4], { lo: 0, hi: 200 });
        const b = randomTensor(rng, dtype, [4], { lo: 0, hi: dtype === 'uint8' ? 7 : 12 });
        await expectOrt('BitShift', toAttrs({ direction }), [a, b]);
      }
    }
  });
});

/** Indices of `shape` that along `axis` are a distinct subset of [0, n) (some written negative) for every line. */
function permIndices(shape: number[], axis: number, n: number, dtype: DType = 'int64'): HostTensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const vals = new Array<number>(size);
  const outer = size / (inner * shape[axis]!);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const perm = Array.from({ length: n }, (_, j) => j).sort(() => rng.next() - 0.5);
      for (let j = 0; j < shape[axis]!; j++) vals[(o * shape[axis]! + j) * inner + i] = rng.next() < 0.3 ? perm[j]! - n : perm[j]!;
    }
  }
  return hostTensor(dtype, shape, tensorFromNumbers(dtype, shape, vals).data);
}
