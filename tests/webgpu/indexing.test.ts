import { beforeAll, describe, expect, it } from 'vitest';
import { exportOnnx } from '../../importers/onnx/index.js';
import type { GpuResources } from '../../runtime/backends/webgpu/executor.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import { attr, buildGraph, node } from '../helpers/ir-builder.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { checkAgainstCpu } from './ew-harness.js';

/**
 * GatherND, ScatterND, ScatterElements, OneHot, EyeLike, Trilu and BitShift on WebGPU against the CPU reference:
 * exact equality for moves, reductions within float tolerance; odd sizes, negative indices, every reduction and the
 * dtypes WGSL can hold (int64 lives in i32, bool and uint8 in u32, float16 as f16 or f32).
 */

let res: GpuResources;
beforeAll(async () => {
  res = await gpuForTests();
});
const EXACT = { rtol: 0, atol: 0 };
const rng = new Rng(77);
const rand = (dtype: DType, shape: number[]) => randomTensor(rng, dtype, shape);
const count = (s: number[]) => s.reduce((a, b) => a * b, 1);
const idx = (shape: number[], n: number, dtype: DType = 'int64') => tensorFromNumbers(dtype, shape, Array.from({ length: count(shape) }, () => rng.int(-n, n - 1)));

/** Indices of `shape` that are distinct (a random subset of [-n, n) without repeats mod n) along `axis` on every line. */
function distinctAlong(shape: number[], axis: number, n: number): HostTensor {
  const inner = count(shape.slice(axis + 1));
  const outer = count(shape.slice(0, axis));
  const k = shape[axis]!;
  const vals = new Array<number>(count(shape));
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const perm = Array.from({ length: n }, (_, j) => j).sort(() => rng.next() - 0.5);
      for (let j = 0; j < k; j++) vals[(o * k + j) * inner + i] = rng.next() < 0.3 ? perm[j]! - n : perm[j]!;
    }
  }
  return tensorFromNumbers('int64', shape, vals);
}

async function check(op: string, inputs: (HostTensor | undefined)[], attrs: Record<string, Attr> = {}, constInputs: number[] = [], tol = EXACT): Promise<void> {
  const n = node(op, inputs.map((t, i) => (t ? `x${i}` : '')), ['y'], attrs);
  await checkAgainstCpu(res, n, inputs, tol, { constInputs });
}

describe('gathers and scatters', () => {
  it('GatherND with batch dims, odd sizes and several dtypes', async () => {
    await check('GatherND', [rand('float32', [5, 7, 3]), tensorFromNumbers('int64', [4, 2], [0, 6, -1, -7, 4, 3, -5, 0])]);
    await check('GatherND', [rand('int64', [5, 7]), idx([3, 2, 1], 5)]);
    await check('GatherND', [rand('float16', [3, 4, 5]), tensorFromNumbers('int32', [6, 3], [0, 0, 0, 2, 3, 4, -1, -1, -1, 1, 2, 3, 0, 3, 1, 2, 0, 4])]);
    await check('GatherND', [rand('bool', [2, 3, 4]), tensorFromNumbers('int64', [2, 5, 1], [0, 2, 1, -1, -3, 2, 2, 0, 1, 1])], { batch_dims: attr(1) });
    await check('GatherND', [rand('uint8', [2, 3, 4, 5]), idx([2, 3, 1], 4)], { batch_dims: attr(2) });
  });

  it('ScatterND: none (copy then write) and every reduction', async () => {
    await check('ScatterND', [rand('float32', [6, 5, 3]), tensorFromNumbers('int64', [3, 2], [0, 4, -1, 0, 2, 2]), rand('float32', [3, 3])]);
    await check('ScatterND', [rand('int64', [7]), tensorFromNumbers('int64', [2, 1], [6, -7]), rand('int64', [2])]);
    await check('ScatterND', [rand('float16', [4, 3]), tensorFromNumbers('int64', [1, 1], [2]), rand('float16', [1, 3])]);
    for (const reduction of ['add', 'mul', 'max', 'min']) {
      await check('ScatterND', [rand('float32', [5, 4, 3]), idx([9, 1], 5), rand('float32', [9, 4, 3])], { reduction: attr(reduction) }, [], { rtol: 1e-6, atol: 1e-6 });
      await check('ScatterND', [rand('int32', [4, 6]), idx([5, 2], 4), rand('int32', [5])], { reduction: attr(reduction) });
    }
  });

  it('ScatterElements on every axis, with duplicates under reductions', async () => {
    for (const axis of [0, 1, 2, -1]) {
      const a = (axis + 3) % 3;
      const dataShape = [4, 5, 3];
      const shape = [3, 4, 2];
      // 'none' needs distinct indices along the axis (duplicates are undefined and race on the GPU).
      await check('ScatterElements', [rand('float32', dataShape), distinctAlong(shape, a, dataShape[a]!), rand('float32', shape)], { axis: attr(axis) });
      for (const reduction of ['add', 'mul', 'max', 'min']) {
        await check('ScatterElements', [rand('float32', dataShape), idx(shape, dataShape[a]!, 'int32'), rand('float32', shape)], { axis: attr(axis), reduction: attr(reduction) }, [], { rtol: 1e-6, atol: 1e-6 });
      }
    }
    await check('ScatterElements', [rand('int64', [9]), idx([4], 9), rand('int64', [4])], { reduction: attr('add') });
    await check('ScatterElements', [rand('bool', [3, 3]), distinctAlong([3, 2], 1, 3), rand('bool', [3, 2])], { axis: attr(1) });
  });
});

describe('generated tensors', () => {
  it('OneHot: axes, float indices (non-integral ones match nothing), several value types', async () => {
    const depth = (d: number, dtype: DType = 'int64') => tensorFromNumbers(dtype, [], [d]);
    await check('OneHot', [idx([3, 5], 7), depth(7), tensorFromNumbers('float32', [2], [-1, 3])], {}, [1]);
    await check('OneHot', [idx([3, 5], 4, 'int32'), depth(4), tensorFromNumbers('int64', [2], [0, 9])], { axis: attr(0) }, [1]);
    await check('OneHot', [tensorFromNumbers('float32', [2, 3], [0, 1.5, -1, 2, -3.5, 7]), depth(3.8, 'float32'), tensorFromNumbers('bool', [2], [0, 1])], { axis: attr(-2) }, [1]);
    await check('OneHot', [idx([5], 6), depth(6), tensorFromNumbers('float16', [2], [0.5, 2])], { axis: attr(1) }, [1]);
  });

  it('EyeLike and Trilu', async () => {
    for (const k of [0, 1, -2, 9]) await check('EyeLike', [rand('float32', [5, 7])], { k: attr(k) });
    await check('EyeLike', [rand('float32', [4, 4])], { dtype: attr(7) });
    await check('EyeLike', [rand('int32', [3, 6])], { dtype: attr(9) });
    for (const upper of [0, 1]) {
      for (const k of [0, 2, -3, 100]) {
        await check('Trilu', [rand('float32', [3, 5, 7]), tensorFromNumbers('int64', [], [k])], { upper: attr(upper) }, [1]);
      }
      await check('Trilu', [rand('int64', [6, 4])], { upper: attr(upper) });
      await check('Trilu', [rand('float16', [2, 2, 3, 3])], { upper: attr(upper) });
    }
  });

  it('BitShift on every unsigned type, shifts past the width give 0', async () => {
    for (const dtype of ['uint8', 'uint16', 'uint32', 'uint64'] as DType[]) {
      for (const direction of ['LEFT', 'RIGHT']) {
        const a = randomTensor(rng, dtype, [3, 5], { lo: 0, hi: 250 });
        // uint64 lives in 32 bits on the GPU (storage.ts), so its results must stay below 2^32 there.
        const b = tensorFromNumbers(dtype, [5], dtype === 'uint64' ? [0, 1, 7, 20, 3] : [0, 1, 7, 31, dtype === 'uint8' ? 8 : 40]);
        await check('BitShift', [a, b], { direction: attr(direction) });
      }
    }
  });
});

describe('through the public session', () => {
  it('a ScatterElements(add) + GatherND model runs on WebGPU and matches the CPU backend', async () => {
    const g = buildGraph({
      inputs: [['data', 'float32', [4, 6]], ['idx', 'int64', [4, 3]], ['upd', 'float32', [4, 3]], ['nd', 'int64', [5, 2]]],
      nodes: [
        node('ScatterElements', ['data', 'idx', 'upd'], ['s'], { axis: attr(1), reduction: attr('add') }),
        node('GatherND', ['s', 'nd'], ['y']),
      ],
      outputs: ['y'],
    });
    const bytes = exportOnnx(g);
    const feeds = {
      data: rand('float32', [4, 6]), idx: idx([4, 3], 6), upd: rand('float32', [4, 3]),
      nd: tensorFromNumbers('int64', [5, 2], [0, 0, 3, 5, -1, -6, 2, 3, 1, 1]),
    };
    const toT = (t: HostTensor) => new Tensor(t.dtype as 'float32', t.data as Float32Array, t.shape);
    const gpu = await InferenceSession.create(bytes, { backend: 'webgpu' });
    const cpu = await InferenceSession.create(bytes, { backend: 'cpu' });
    try {
      const args = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, toT(v)]));
      const a = (await gpu.run(args)).y!.data as Float32Array;
      const e = (await cpu.run(args)).y!.data as Float32Array;
      expect(a.length).toBe(5);
      Array.from(e).forEach((v, i) => expect(a[i]).toBeCloseTo(v, 5));
    } finally {
      await gpu.release();
      await cpu.release();
    }
  });
});

describe('empty tensors', () => {
  it('zero index tuples, zero updates, zero-size data', async () => {
    await check('GatherND', [rand('float32', [3, 4]), tensorFromNumbers('int64', [0, 1], [])]);
    await check('ScatterND', [rand('float32', [3, 4]), tensorFromNumbers('int64', [0, 1], []), rand('float32', [0, 4])]);
    await check('ScatterElements', [rand('float32', [3, 4]), tensorFromNumbers('int64', [3, 0], []), rand('float32', [3, 0])], { axis: attr(1), reduction: attr('add') });
    await check('OneHot', [tensorFromNumbers('int64', [0], []), tensorFromNumbers('int64', [], [4]), tensorFromNumbers('float32', [2], [0, 1])], {}, [1]);
    await check('Trilu', [rand('float32', [0, 3, 3])]);
  });
});
