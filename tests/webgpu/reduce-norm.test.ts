import { beforeAll, describe, it } from 'vitest';
import type { GpuResources } from '../../runtime/backends/webgpu/executor.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { attr, i64, node } from '../helpers/ir-builder.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { checkAgainstCpu } from './ew-harness.js';

/**
 * Reductions, Softmax and the normalizations against the CPU reference. Shapes cover both row schedules: short
 * rows (one invocation per row) and rows of 128 or more (one workgroup per row with a shared-memory tree).
 */
let res: GpuResources;
beforeAll(async () => {
  res = await gpuForTests();
});
const TOL = { rtol: 1e-5, atol: 1e-6 };
const rng = new Rng(77);

async function check(op: string, xs: (HostTensor | undefined)[], attrs: Record<string, Attr> = {}, opts: { consts?: number[]; outputs?: string[]; tol?: typeof TOL } = {}): Promise<void> {
  const names = xs.map((x, i) => (x ? `x${i}` : ''));
  await checkAgainstCpu(res, node(op, names, opts.outputs ?? ['y'], attrs), xs, opts.tol ?? TOL, { constInputs: opts.consts });
}

describe('Reduce*', () => {
  const shapes: [number[], number[] | undefined][] = [
    [[3, 4, 5], [1]],
    [[3, 4, 5], [0, 2]], // kept dim between reduced ones
    [[2, 3, 4], undefined], // all axes
    [[4, 300], [-1]], // long rows: workgroup schedule
    [[5, 2, 160], [0, 2]], // long, non-contiguous rows
    [[6, 1, 3], [1]], // a size-1 reduced axis
  ];
  const ops = ['ReduceSum', 'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceSumSquare', 'ReduceLogSum', 'ReduceLogSumExp'];
  for (const op of ops) {
    it(op, async () => {
      for (const [shape, axes] of shapes) {
        for (const keepdims of [1, 0]) {
          const positive = op === 'ReduceLogSum' || op === 'ReduceProd';
          const x = randomTensor(rng, 'float32', shape, positive ? { lo: 0.5, hi: 1.5 } : { lo: -3, hi: 3 });
          const tol = op === 'ReduceProd' && shape.length && (axes === undefined || shape.reduce((a, b) => a * b, 1) > 100) ? { rtol: 1e-4, atol: 1e-6 } : TOL;
          await check(op, [x, axes && i64(axes)], { keepdims: attr(keepdims) }, { consts: [1], tol });
        }
      }
    });
  }

  it('integer reductions and noop_with_empty_axes', async () => {
    for (const op of ['ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceMean', 'ReduceL1', 'ReduceSumSquare']) {
      await check(op, [randomTensor(rng, 'int32', [3, 5, 4], { lo: -20, hi: 20 }), i64([0, 2])], {}, { consts: [1] });
      await check(op, [randomTensor(rng, 'int32', [200], { lo: -20, hi: 20 })], {}, { consts: [1] });
    }
    await check('ReduceSum', [randomTensor(rng, 'float32', [3, 4]), i64([])], { noop_with_empty_axes: attr(1) }, { consts: [1] });
    await check('ReduceSumSquare', [randomTensor(rng, 'float32', [3, 4]), i64([])], { noop_with_empty_axes: attr(1) }, { consts: [1] });
  });

  it('NaN and infinities propagate as in the CPU reference', async () => {
    const x = tensorFromNumbers('float32', [3, 4], [1, NaN, 3, 2, -Infinity, -Infinity, -Infinity, -Infinity, 5, Infinity, -1, 0]);
    for (const op of ['ReduceMax', 'ReduceMin', 'ReduceSum', 'ReduceLogSumExp']) await check(op, [x, i64([1])], {}, { consts: [1] });
  });

  it('global pools', async () => {
    for (const shape of [[2, 3, 5, 5], [1, 4, 12, 12], [2, 3, 7]]) {
      const x = randomTensor(rng, 'float32', shape);
      await check('GlobalAveragePool', [x]);
      await check('GlobalMaxPool', [x]);
      await check('GlobalLpPool', [x], { p: attr(2, true) });
    }
  });

  it('ArgMax / ArgMin with first and last index selection, ties and NaN', async () => {
    const ties = tensorFromNumbers('float32', [2, 5], [1, 3, 3, 0, 3, -1, -1, 2, NaN, NaN]);
    for (const op of ['ArgMax', 'ArgMin']) {
      for (const last of [0, 1]) {
        await check(op, [ties], { axis: attr(1), select_last_index: attr(last) });
        await check(op, [randomTensor(rng, 'float32', [3, 4, 5])], { axis: attr(1), keepdims: attr(0), select_last_index: attr(last) });
        await check(op, [randomTensor(rng, 'int32', [6, 3], { lo: -3, hi: 3 })], { axis: attr(0), select_last_index: attr(last) });
      }
    }
  });

  it('CumSum forward, reverse, exclusive', async () => {
    for (const [exclusive, reverse] of [[0, 0], [1, 0], [0, 1], [1, 1]] as [number, number][]) {
      await check('CumSum', [randomTensor(rng, 'float32', [3, 5, 4]), tensorFromNumbers('int64', [], [1])], { exclusive: attr(exclusive), reverse: attr(reverse) }, { consts: [1] });
      await check('CumSum', [randomTensor(rng, 'int32', [7]), tensorFromNumbers('int32', [1], [-1])], { exclusive: attr(exclusive), reverse: attr(reverse) }, { consts: [1] });
    }
  });
});

describe('Softmax, LogSoftmax, Hardmax', () => {
  const cases: [number[], number][] = [[[2, 10], -1], [[3, 4, 5], 1], [[2, 1000], 1], [[4, 130, 3], 1], [[7], 0]];
  for (const op of ['Softmax', 'LogSoftmax', 'Hardmax']) {
    it(op, async () => {
      for (const [shape, axis] of cases) {
        await check(op, [randomTensor(rng, 'float32', shape, { lo: -10, hi: 10, specials: [80, -80], specialRate: 0.05 })], { axis: attr(axis) });
      }
      // Ties and large values: Hardmax marks the first maximum; Softmax does not overflow.
      await check(op, [tensorFromNumbers('float32', [2, 4], [1, 5, 5, 2, 1000, 999, 1000, -1000])]);
    });
  }
});

describe('normalizations', () => {
  it('LayerNormalization (axes, scale/bias broadcast, Mean and InvStdDev outputs)', async () => {
    for (const [shape, axis, pshape] of [[[4, 8], -1, [8]], [[2, 3, 200], 2, [200]], [[2, 3, 4], 1, [3, 4]], [[2, 3, 4], 1, [1]], [[2, 5, 6], -1, [1, 6]]] as [number[], number, number[]][]) {
      const x = randomTensor(rng, 'float32', shape, { lo: -4, hi: 4 });
      const s = randomTensor(rng, 'float32', pshape);
      const b = randomTensor(rng, 'float32', pshape);
      await check('LayerNormalization', [x, s, b], { axis: attr(axis), epsilon: attr(1e-3, true) }, { outputs: ['y', 'mean', 'inv_std'], tol: { rtol: 1e-4, atol: 1e-5 } });
      await check('LayerNormalization', [x, s], { axis: attr(axis) }, { outputs: ['y', '', 'inv_std'], tol: { rtol: 1e-4, atol: 1e-5 } });
    }
    // Scale broadcast over a middle dim only ('bcast' indexing).
    const x = randomTensor(rng, 'float32', [2, 3, 4]);
    await check('LayerNormalization', [x, randomTensor(rng, 'float32', [3, 1]), randomTensor(rng, 'float32', [3, 1])], { axis: attr(1) }, { tol: { rtol: 1e-4, atol: 1e-5 } });
  });

  it('InstanceNormalization and GroupNormalization', async () => {
    for (const shape of [[2, 3, 5, 5], [1, 4, 200], [2, 6, 1, 1]]) {
      const c = shape[1]!;
      const x = randomTensor(rng, 'float32', shape, { lo: -2, hi: 5 });
      const [s, b] = [randomTensor(rng, 'float32', [c]), randomTensor(rng, 'float32', [c])];
      await check('InstanceNormalization', [x, s, b], {}, { tol: { rtol: 1e-4, atol: 1e-5 } });
      for (const groups of c % 2 === 0 ? [1, 2, c] : [1, c]) {
        await check('GroupNormalization', [x, s, b], { num_groups: attr(groups), epsilon: attr(1e-2, true) }, { tol: { rtol: 1e-4, atol: 1e-5 } });
      }
    }
  });

  it('BatchNormalization (inference)', async () => {
    for (const shape of [[2, 3, 4, 5], [4, 6], [1, 2, 7]]) {
      const c = shape[1]!;
      const p = () => randomTensor(rng, 'float32', [c]);
      const variance = randomTensor(rng, 'float32', [c], { lo: 0.1, hi: 2 });
      await check('BatchNormalization', [randomTensor(rng, 'float32', shape), p(), p(), p(), variance], { epsilon: attr(1e-3, true) });
    }
  });
});

describe('pools', () => {
  type PoolCase = [string, number[], Record<string, Attr>];
  const cases: PoolCase[] = [
    ['2x2 stride 2', [1, 2, 6, 6], { kernel_shape: attr([2, 2]), strides: attr([2, 2]) }],
    ['3x3 pad 1', [2, 3, 7, 5], { kernel_shape: attr([3, 3]), pads: attr([1, 1, 1, 1]) }],
    ['ceil_mode, asymmetric pads', [1, 2, 7, 8], { kernel_shape: attr([3, 2]), strides: attr([2, 3]), pads: attr([0, 1, 1, 0]), ceil_mode: attr(1) }],
    ['dilated', [1, 1, 9, 9], { kernel_shape: attr([2, 3]), dilations: attr([2, 2]) }],
    ['SAME_UPPER', [1, 2, 5, 6], { kernel_shape: attr([3, 3]), strides: attr([2, 2]), auto_pad: attr('SAME_UPPER') }],
    ['1-D', [2, 3, 11], { kernel_shape: attr([3]), strides: attr([2]), pads: attr([1, 1]) }],
  ];
  for (const [title, shape, attrs] of cases) {
    it(title, async () => {
      const x = randomTensor(rng, 'float32', shape, { specials: [NaN, -Infinity], specialRate: title === 'dilated' ? 0.1 : 0 });
      await check('MaxPool', [x], attrs, { outputs: ['y', 'indices'] });
      if (shape.length === 4) await check('MaxPool', [x], { ...attrs, storage_order: attr(1) }, { outputs: ['y', 'indices'] });
      if (title !== 'dilated') {
        await check('AveragePool', [x], attrs);
        await check('AveragePool', [x], { ...attrs, count_include_pad: attr(1) });
        await check('LpPool', [x], { ...attrs, p: attr(2) });
        await check('LpPool', [x], { ...attrs, p: attr(1) });
      }
    });
  }

  it('float16 input', async () => {
    const x = randomTensor(rng, 'float16' as DType, [1, 2, 6, 6]);
    await check('MaxPool', [x], { kernel_shape: attr([3, 3]), pads: attr([1, 1, 1, 1]) });
    await check('AveragePool', [x], { kernel_shape: attr([2, 2]) }, { tol: { rtol: 1e-3, atol: 1e-3 } });
  });
});
