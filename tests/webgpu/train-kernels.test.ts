import { beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, UnsupportedOpError } from '../../runtime/errors.js';
import { runNodeGpu, type GpuResources } from '../../runtime/backends/webgpu/executor.js';
import { GPU_TRAIN_KERNELS } from '../../runtime/backends/webgpu/kernels/train/index.js';
import type { Attr, Node } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { TRAIN_DOMAIN, TRAIN_SCHEMAS } from '../../runtime/train/ops/index.js';
import { runTrainNodeCpu } from '../../runtime/train/run-cpu.js';
import { allClose, type CloseOptions } from '../helpers/compare.js';
import { attr, i64 } from '../helpers/ir-builder.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';

/**
 * Every training op (domain 'edgekit.train') on WebGPU against its CPU twin (runtime/train/ops), on random inputs
 * of several shapes, odd sizes included, and both row schedules where the kernel reduces rows.
 */
let res: GpuResources;
beforeAll(async () => {
  res = await gpuForTests();
  console.log(`train kernels on ${describeDevice(res)}`);
});
const rng = new Rng(4242);
const TOL: CloseOptions = { rtol: 1e-4, atol: 1e-5 };
const f32 = (shape: number[], lo = -2, hi = 2) => randomTensor(rng, 'float32', shape, { lo, hi });

function trainNode(op: string, inputs: string[], outputs: string[], attrs: Record<string, Attr> = {}): Node {
  return { name: `${op}_test`, op, domain: TRAIN_DOMAIN, inputs, outputs, attrs };
}

async function check(op: string, xs: (HostTensor | undefined)[], attrs: Record<string, Attr> = {}, opts: { consts?: number[]; outputs?: string[]; tol?: CloseOptions; cpuAdapter?: boolean } = {}): Promise<HostTensor[]> {
  const node = trainNode(op, xs.map((x, i) => (x ? `x${i}` : '')), opts.outputs ?? ['y'], attrs);
  const expected = runTrainNodeCpu(node, xs, { maxElements: 1e8 });
  const actual = await runNodeGpu(res, node, xs, { constInputs: opts.consts, cpuAdapter: opts.cpuAdapter });
  node.outputs.forEach((o, i) => {
    if (!o) return;
    const r = allClose(actual[i]!, expected[i]!, opts.tol ?? TOL);
    if (!r.ok) {
      const shapes = xs.map((t) => (t ? `${t.dtype}[${t.shape.join(',')}]` : '-')).join(' ');
      expect.fail(`${op} (${shapes}) ${JSON.stringify(Object.fromEntries(Object.entries(attrs).map(([k, a]) => [k, a.value])))} output ${i}: ${r.message}`);
    }
  });
  return actual;
}

it('every training op has a WebGPU kernel', () => {
  expect(Object.keys(GPU_TRAIN_KERNELS).sort()).toEqual(Object.keys(TRAIN_SCHEMAS).sort());
});

describe('SumToShape', () => {
  const cases: [number[], number[]][] = [
    [[3, 4, 5], [4, 5]], [[3, 4, 5], [1, 5]], [[3, 4, 5], [3, 1, 5]], [[3, 4, 5], [3, 4, 1]], [[3, 4, 5], []],
    [[7, 300], [300]], [[7, 300], [7, 1]], [[2, 130, 3], [1, 130, 1]], [[5, 1, 3], [1, 3]], [[4, 6], [4, 6]],
  ];
  it('sums over the broadcast axes', async () => {
    for (const [x, t] of cases) await check('SumToShape', [f32(x), i64(t)], {}, { consts: [1] });
  });
});

describe('activation gradients', () => {
  it('GeluGrad, exact and tanh', async () => {
    for (const shape of [[5], [3, 7], [2, 3, 65]]) {
      for (const approximate of ['none', 'tanh']) await check('GeluGrad', [f32(shape), f32(shape, -4, 4)], { approximate: attr(approximate) });
    }
  });
  it('SoftmaxGrad and LogSoftmax grad, short and long rows, any axis', async () => {
    for (const [shape, axis] of [[[4, 5], -1], [[3, 4, 5], 1], [[2, 300], 1], [[150, 3], 0], [[7], 0]] as [number[], number][]) {
      for (const log of [0, 1]) {
        const y = log ? f32(shape, -3, 0) : f32(shape, 0, 1);
        await check('SoftmaxGrad', [f32(shape), y], { axis: attr(axis), log: attr(log) });
      }
    }
  });
});

describe('Conv gradients', () => {
  interface ConvCase { x: number[]; w: number[]; attrs: Record<string, Attr> }
  const cases: ConvCase[] = [
    { x: [2, 3, 7, 6], w: [4, 3, 3, 3], attrs: {} },
    { x: [1, 2, 9, 8], w: [3, 2, 3, 2], attrs: { strides: attr([2, 3]), pads: attr([1, 0, 2, 1]), dilations: attr([1, 2]) } },
    { x: [2, 4, 5, 5], w: [6, 2, 3, 3], attrs: { group: attr(2), pads: attr([1, 1, 1, 1]) } },
    { x: [2, 5, 6, 7], w: [5, 1, 3, 3], attrs: { group: attr(5), strides: attr([2, 2]), pads: attr([1, 1, 1, 1]) } }, // depthwise
    { x: [3, 6, 5, 4], w: [4, 6, 1, 1], attrs: {} }, // 1x1
    { x: [2, 3, 11], w: [2, 3, 4], attrs: { strides: attr([3]), auto_pad: attr('SAME_UPPER') } }, // 1-D
    { x: [2, 3, 6, 6], w: [2, 3, 3, 3], attrs: { auto_pad: attr('SAME_LOWER'), strides: attr([2, 2]) } },
  ];
  it('ConvGradInput and ConvGradWeight', async () => {
    for (const c of cases) {
      // The forward output shape from the CPU Conv (the gradient ops check it).
      const y = runTrainNodeCpu({ name: 'conv', op: 'Conv', domain: '', inputs: ['x', 'w'], outputs: ['y'], attrs: c.attrs }, [f32(c.x), f32(c.w)], { maxElements: 1e8 })[0]!;
      const dy = f32(y.shape);
      await check('ConvGradInput', [dy, f32(c.w), i64(c.x)], c.attrs, { consts: [2] });
      // The tiled GPU kernel and the CPU-adapter one (barrier-free 4x4 blocks).
      for (const cpuAdapter of [false, true]) await check('ConvGradWeight', [f32(c.x), dy, i64(c.w)], c.attrs, { consts: [2], cpuAdapter });
    }
  });
});

describe('normalization gradients', () => {
  it('BatchNormGrad, every output subset', async () => {
    for (const shape of [[2, 3, 4, 5], [4, 6], [3, 2, 50], [1, 5, 130]]) {
      const C = shape[1]!;
      const ins = [f32(shape), f32(shape), f32([C]), f32([C]), f32([C], 0.1, 2)];
      await check('BatchNormGrad', ins, { epsilon: attr(1e-3, true) }, { outputs: ['dx', 'ds', 'db'] });
      await check('BatchNormGrad', ins, {}, { outputs: ['dx'] });
      await check('BatchNormGrad', ins, {}, { outputs: ['', 'ds', 'db'] });
    }
  });
  it('LayerNormGrad with plain and broadcast scales', async () => {
    const cases: [number[], number, number[]][] = [
      [[4, 6], -1, [6]], [[2, 3, 5], 1, [3, 5]], [[2, 3, 5], 1, [1, 5]], [[3, 300], -1, [300]], [[2, 2, 129], 1, [2, 1]], [[5, 7], 0, [5, 7]],
    ];
    for (const [shape, axis, s] of cases) {
      await check('LayerNormGrad', [f32(shape), f32(shape), f32(s)], { axis: attr(axis) }, { outputs: ['dx', 'ds'] });
      await check('LayerNormGrad', [f32(shape), f32(shape), f32(s)], { axis: attr(axis), epsilon: attr(1e-2, true) }, { outputs: ['dx'] });
    }
  });
});

describe('pool gradients', () => {
  const cases: [number[], Record<string, Attr>][] = [
    [[2, 3, 6, 6], { kernel_shape: attr([2, 2]), strides: attr([2, 2]) }],
    [[1, 2, 7, 8], { kernel_shape: attr([3, 3]), strides: attr([2, 2]), pads: attr([1, 1, 1, 1]) }],
    [[1, 2, 7, 8], { kernel_shape: attr([3, 3]), strides: attr([2, 2]), pads: attr([1, 1, 1, 1]), count_include_pad: attr(1) }],
    [[2, 2, 7, 7], { kernel_shape: attr([3, 2]), strides: attr([2, 2]), ceil_mode: attr(1) }],
    [[2, 2, 7, 7], { kernel_shape: attr([3, 3]), strides: attr([2, 2]), ceil_mode: attr(1), pads: attr([1, 1, 1, 1]), count_include_pad: attr(1) }],
    [[1, 3, 9, 9], { kernel_shape: attr([2, 2]), dilations: attr([2, 2]) }],
    [[2, 3, 10], { kernel_shape: attr([3]), strides: attr([2]), auto_pad: attr('SAME_UPPER') }],
  ];
  it('AveragePoolGrad and MaxPoolGrad', async () => {
    for (const [shape, attrs] of cases) {
      const x = f32(shape);
      const pool = (op: string) => runTrainNodeCpu({ name: op, op, domain: '', inputs: ['x'], outputs: ['y'], attrs }, [x], { maxElements: 1e8 })[0]!;
      await check('AveragePoolGrad', [f32(pool('AveragePool').shape), i64(shape)], attrs, { consts: [1] });
      if (attrs.dilations === undefined || true) await check('MaxPoolGrad', [f32(pool('MaxPool').shape), x], attrs);
    }
  });
  it('MaxPoolGrad: ties go to the first maximum, NaN wins', async () => {
    const x = tensorFromNumbers('float32', [1, 1, 4, 4], [1, 1, 0, 2, 1, 1, 2, 2, NaN, 0, 3, 3, 0, 5, 3, 3]);
    await check('MaxPoolGrad', [f32([1, 1, 2, 2]), x], { kernel_shape: attr([2, 2]), strides: attr([2, 2]) });
    await check('MaxPoolGrad', [f32([1, 1, 3, 3]), x], { kernel_shape: attr([2, 2]) });
  });
});

describe('SeededDropout', () => {
  it('draws the CPU masks bit for bit', async () => {
    for (const [shape, ratio, seed, salt] of [[[1000], 0.3, 7, 0], [[3, 77], 0.5, 123456789, 2], [[5, 5], 0, 1, 1], [[9], 1, 3, 0], [[4, 33], 0.9, 0xffffffff, 5]] as [number[], number, number, number][]) {
      const [y, mask] = await check('SeededDropout', [f32(shape), tensorFromNumbers('float32', [], [ratio]), tensorFromNumbers('uint32', [], [seed])], { salt: attr(salt) }, { consts: [1], outputs: ['y', 'mask'] });
      expect(mask!.dtype).toBe('bool');
      expect(y!.shape).toEqual(shape);
    }
  });
  it('int64 seeds, no mask output, default ratio', async () => {
    await check('SeededDropout', [f32([50]), undefined, tensorFromNumbers('int64', [], [99])], {}, { outputs: ['y'] });
    await check('SeededDropout', [f32([50]), tensorFromNumbers('float32', [], [0.25]), tensorFromNumbers('int32', [], [-5])], { salt: attr(3) }, { consts: [1], outputs: ['y', 'm'] });
  });
});

describe('losses and their gradients', () => {
  const labels = (n: number, C: number, ignore?: number) => tensorFromNumbers('int64', [n], Array.from({ length: n }, (_, i) => (ignore !== undefined && i % 3 === 1 ? ignore : rng.int(0, C - 1))));
  it('CrossEntropyLoss and its grad: index targets, smoothing, ignore_index, sum', async () => {
    for (const [N, C] of [[4, 5], [1, 3], [70, 10], [200, 7]]) {
      for (const attrs of [{}, { label_smoothing: attr(0.1, true) }, { reduction: attr('sum') }, { ignore_index: attr(2) }]) {
        const x = f32([N, C], -3, 3);
        const t = labels(N, C, 'ignore_index' in attrs ? 2 : undefined);
        await check('CrossEntropyLoss', [x, t], attrs);
        await check('CrossEntropyLossGrad', [tensorFromNumbers('float32', [], [1.5]), x, t], attrs);
      }
    }
  });
  it('CrossEntropyLoss with spatial dims and probability targets', async () => {
    const x = f32([2, 4, 3, 5]);
    const t = tensorFromNumbers('int64', [2, 3, 5], Array.from({ length: 30 }, () => rng.int(0, 3)));
    await check('CrossEntropyLoss', [x, t], {});
    await check('CrossEntropyLossGrad', [tensorFromNumbers('float32', [], [0.7]), x, t], {});
    const p = f32([2, 4, 3, 5], 0, 1);
    for (const attrs of [{}, { label_smoothing: attr(0.2, true) }, { reduction: attr('sum') }]) {
      await check('CrossEntropyLoss', [x, p], attrs);
      await check('CrossEntropyLossGrad', [tensorFromNumbers('float32', [], [0.7]), x, p], attrs);
    }
  });
  it('CrossEntropyLoss: every position ignored gives NaN', async () => {
    const [y] = await runNodeGpu(res, trainNode('CrossEntropyLoss', ['x', 't'], ['y']), [f32([2, 3]), tensorFromNumbers('int64', [2], [-100, -100])]);
    expect(Number.isNaN((y!.data as Float32Array)[0])).toBe(true);
  });
  it('BCEWithLogitsLoss and its grad', async () => {
    for (const shape of [[5], [3, 7], [1000]]) {
      for (const attrs of [{}, { reduction: attr('sum') }]) {
        const x = f32(shape, -6, 6);
        const t = f32(shape, 0, 1);
        await check('BCEWithLogitsLoss', [x, t], attrs);
        await check('BCEWithLogitsLossGrad', [tensorFromNumbers('float32', [], [2]), x, t], attrs);
      }
    }
  });
});

describe('float16 tensors (packed f16 reads and f32 writes without shader-f16) and edge values', () => {
  const F16: CloseOptions = { rtol: 4e-3, atol: 2e-3 };
  const h16 = (shape: number[], lo = -2, hi = 2) => randomTensor(rng, 'float16', shape, { lo, hi });
  it('activation, normalization and loss gradients on float16', async () => {
    await check('GeluGrad', [h16([3, 9]), h16([3, 9])], {}, { tol: F16 });
    await check('SoftmaxGrad', [h16([4, 6]), h16([4, 6], 0, 1)], { axis: attr(1) }, { tol: F16 });
    await check('LayerNormGrad', [h16([3, 8]), h16([3, 8]), h16([8])], {}, { outputs: ['dx', 'ds'], tol: { rtol: 1e-2, atol: 1e-2 } });
    await check('SumToShape', [h16([5, 6]), i64([1, 6])], {}, { consts: [1], tol: F16 });
    await check('CrossEntropyLoss', [h16([6, 4]), tensorFromNumbers('int64', [6], [0, 1, 2, 3, 0, 1])], {}, { tol: F16 });
    await check('SeededDropout', [h16([40]), tensorFromNumbers('float32', [], [0.5]), tensorFromNumbers('uint32', [], [8])], {}, { consts: [1], outputs: ['y', 'm'], tol: F16 });
  });
  it('NaN and infinities flow through as in the CPU twins', async () => {
    const edge = tensorFromNumbers('float32', [2, 4], [NaN, 1, -Infinity, 0, 2, Infinity, -1, 0.5]);
    const dy = f32([2, 4]);
    await check('SumToShape', [edge, i64([4])], {}, { consts: [1] });
    await check('BatchNormGrad', [edge, dy, f32([4]), f32([4]), f32([4], 0.5, 1)].map((t, i) => (i === 0 ? dy : i === 1 ? edge : t)), {}, { outputs: ['dx', 'ds', 'db'] });
    const ce = await runNodeGpu(res, trainNode('CrossEntropyLoss', ['x', 't'], ['y']), [edge, tensorFromNumbers('int64', [2], [0, 1])]);
    expect(Number.isNaN((ce[0]!.data as Float32Array)[0])).toBe(true);
  });
  it('a class index outside [0, C) throws the CPU\'s InvalidArgumentError (checked on the host before upload)', async () => {
    const run = runNodeGpu(res, trainNode('CrossEntropyLoss', ['x', 't'], ['y']), [f32([2, 3]), tensorFromNumbers('int64', [2], [1, 3])]);
    await expect(run).rejects.toThrow(InvalidArgumentError);
  });
});

describe('what has no WebGPU kernel says so with UnsupportedOpError', () => {
  it('3-D windows and a SeededDropout ratio known only at run time', async () => {
    const x = f32([1, 2, 3, 4, 4]);
    const attrs = { kernel_shape: attr([2, 2, 2]) };
    await expect(runNodeGpu(res, trainNode('AveragePoolGrad', ['dy', 's'], ['y'], attrs), [f32([1, 2, 2, 3, 3]), i64([1, 2, 3, 4, 4])], { constInputs: [1] })).rejects.toThrow(UnsupportedOpError);
    await expect(runNodeGpu(res, trainNode('ConvGradWeight', ['x', 'dy', 's'], ['y']), [x, f32([1, 2, 2, 3, 3]), i64([2, 2, 2, 2, 2])], { constInputs: [2] })).rejects.toThrow(/1-D and 2-D only/);
    await expect(runNodeGpu(res, trainNode('SeededDropout', ['x', 'r', 's'], ['y']), [f32([4]), tensorFromNumbers('float32', [], [0.5]), tensorFromNumbers('uint32', [], [1])])).rejects.toThrow(/ratio input to be a constant/);
  });
});

