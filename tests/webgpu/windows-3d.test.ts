import { beforeAll, describe, expect, it } from 'vitest';
import { exportOnnx } from '../../importers/onnx/index.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr, Dim, Node } from '../../runtime/ir/graph.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import { allClose } from '../helpers/compare.js';
import { attr, buildGraph, node } from '../helpers/ir-builder.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { gpuForTests } from '../helpers/webgpu-env.js';

/**
 * Issue #9: the window ops past 2-D and the dtypes WGSL holds, on WebGPU through the public session against the
 * CPU reference on random inputs of odd sizes: 3-D (and 4-D) MaxPool/AveragePool/LpPool with pads, strides,
 * dilations, ceil_mode, count_include_pad, auto_pad and the Indices output in both storage orders; integer MaxPool
 * (uint8, int32 near 2^31 where f32 would round, int8); 3-D Conv (groups, dilations, auto_pad, bias, a fused
 * activation) and ConvTranspose (groups, output_padding, output_shape); BatchNormalization with training_mode=1
 * (Y, running_mean, running_var) on short and long per-channel rows.
 */

beforeAll(async () => {
  await gpuForTests();
});

const rng = new Rng(9);
const a = (v: number[]) => attr(v);

interface Model {
  inputs: [string, DType, number[]][];
  nodes: Node[];
  outputs: string[];
  /** Input values; random where not given. */
  feeds?: Record<string, HostTensor>;
}

const toTensor = (t: HostTensor) => new Tensor(t.dtype as 'float32', t.data as Float32Array, t.shape);

/** Runs the model on WebGPU and on the CPU backend; every output must match (exactly for integers). */
async function expectGpuMatchesCpu(m: Model, tol = 1e-4): Promise<void> {
  const g = buildGraph({ inputs: m.inputs.map(([n, d, s]): [string, DType, Dim[]] => [n, d, s]), nodes: m.nodes, outputs: m.outputs });
  const bytes = exportOnnx(g);
  const feeds: Record<string, Tensor> = {};
  for (const [name, dtype, shape] of m.inputs) feeds[name] = toTensor(m.feeds?.[name] ?? randomTensor(rng, dtype, shape));
  const gpu = await InferenceSession.create(bytes, { backend: 'webgpu' });
  const cpu = await InferenceSession.create(bytes, { backend: 'cpu' });
  try {
    const got = await gpu.run(feeds);
    const want = await cpu.run(feeds);
    for (const name of m.outputs) {
      const e = want[name]!.toHost();
      const t = got[name]!.toHost();
      const exact = !e.dtype.startsWith('float');
      const r = allClose(t, e, exact ? { rtol: 0, atol: 0 } : { rtol: tol, atol: tol });
      expect(r.ok, `${name}: ${r.ok ? '' : r.message}`).toBe(true);
      expect(e.data.length, `${name} is empty`).toBeGreaterThan(0);
    }
  } finally {
    await gpu.release();
    await cpu.release();
  }
}

describe('3-D and 4-D pools on WebGPU match the CPU', () => {
  it('MaxPool: pads, strides, dilations, ceil_mode, Indices in row- and column-major order', async () => {
    await expectGpuMatchesCpu({
      inputs: [['x', 'float32', [2, 3, 5, 6, 7]], ['x4', 'float32', [1, 2, 3, 4, 5, 3]]],
      nodes: [
        node('MaxPool', ['x'], ['ya', 'ia'], { kernel_shape: a([2, 3, 2]), strides: a([2, 1, 2]), pads: a([1, 0, 1, 0, 1, 1]) }),
        node('MaxPool', ['x'], ['yb', 'ib'], { kernel_shape: a([3, 2, 3]), dilations: a([2, 1, 1]), strides: a([2, 2, 2]), ceil_mode: attr(1), storage_order: attr(1) }),
        node('MaxPool', ['x'], ['yc'], { kernel_shape: a([3, 3, 3]), auto_pad: attr('SAME_LOWER'), strides: a([1, 2, 3]) }),
        node('MaxPool', ['x4'], ['y4', 'i4'], { kernel_shape: a([2, 2, 3, 2]), pads: a([0, 1, 1, 0, 1, 0, 1, 1]), storage_order: attr(1) }),
      ],
      outputs: ['ya', 'ia', 'yb', 'ib', 'yc', 'y4', 'i4'],
    });
  });

  it('MaxPool keeps NaN and the first of equal maxima', async () => {
    const shape = [1, 2, 4, 5, 3];
    const x = randomTensor(rng, 'float32', shape, { integers: true, lo: -2, hi: 2, specials: [NaN, -Infinity], specialRate: 0.05 });
    await expectGpuMatchesCpu({
      inputs: [['x', 'float32', shape]],
      nodes: [node('MaxPool', ['x'], ['y', 'i'], { kernel_shape: a([2, 3, 2]), pads: a([1, 1, 1, 1, 1, 1]) })],
      outputs: ['y', 'i'],
      feeds: { x },
    });
  });

  it('AveragePool: count_include_pad with ceil_mode, auto_pad, dilations; LpPool p=1 and p=2', async () => {
    await expectGpuMatchesCpu({
      inputs: [['x', 'float32', [2, 3, 7, 5, 6]]],
      nodes: [
        node('AveragePool', ['x'], ['ya'], { kernel_shape: a([3, 3, 3]), pads: a([1, 1, 1, 1, 1, 1]), strides: a([2, 2, 2]), ceil_mode: attr(1), count_include_pad: attr(1) }),
        node('AveragePool', ['x'], ['yb'], { kernel_shape: a([3, 2, 3]), pads: a([1, 0, 1, 1, 1, 0]), strides: a([2, 2, 1]), ceil_mode: attr(1) }),
        node('AveragePool', ['x'], ['yc'], { kernel_shape: a([2, 2, 3]), auto_pad: attr('SAME_UPPER'), strides: a([2, 3, 2]) }),
        node('AveragePool', ['x'], ['yd'], { kernel_shape: a([2, 2, 2]), dilations: a([2, 1, 2]), pads: a([1, 1, 0, 0, 1, 1]), count_include_pad: attr(1) }),
        node('LpPool', ['x'], ['ye'], { kernel_shape: a([2, 3, 2]), p: attr(1), strides: a([1, 2, 2]) }),
        node('LpPool', ['x'], ['yf'], { kernel_shape: a([3, 2, 2]), pads: a([1, 1, 0, 1, 0, 1]) }),
      ],
      outputs: ['ya', 'yb', 'yc', 'yd', 'ye', 'yf'],
    });
  });
});

describe('integer MaxPool on WebGPU matches the CPU exactly', () => {
  it('uint8 2-D and 1-D, int32 3-D near the 32-bit limits, int8 with Indices', async () => {
    const big = randomTensor(rng, 'int32', [1, 2, 5, 4, 7], { lo: 2 ** 31 - 200, hi: 2 ** 31 - 1 });
    // Neighbouring int32 values that f32 cannot tell apart (2^30 + 1 rounds to 2^30): the kernel must compare exactly.
    const near = randomTensor(rng, 'int32', [1, 1, 3, 3, 3], { lo: 2 ** 30, hi: 2 ** 30 + 3 });
    await expectGpuMatchesCpu({
      inputs: [
        ['u8', 'uint8', [2, 3, 7, 9]], ['u8line', 'uint8', [2, 3, 11]], ['i32', 'int32', [1, 2, 5, 4, 7]],
        ['near', 'int32', [1, 1, 3, 3, 3]], ['i8', 'int8', [1, 3, 6, 5]],
      ],
      nodes: [
        node('MaxPool', ['u8'], ['ya', 'ia'], { kernel_shape: a([3, 2]), pads: a([1, 0, 1, 1]), strides: a([2, 2]), storage_order: attr(1) }),
        node('MaxPool', ['u8line'], ['yb'], { kernel_shape: a([3]), dilations: a([2]), ceil_mode: attr(1), strides: a([2]) }),
        node('MaxPool', ['i32'], ['yc', 'ic'], { kernel_shape: a([2, 2, 3]), pads: a([1, 1, 1, 0, 0, 1]) }),
        node('MaxPool', ['near'], ['yd', 'id'], { kernel_shape: a([2, 2, 2]) }),
        node('MaxPool', ['i8'], ['ye', 'ie'], { kernel_shape: a([2, 3]), auto_pad: attr('SAME_UPPER') }),
      ],
      outputs: ['ya', 'ia', 'yb', 'yc', 'ic', 'yd', 'id', 'ye', 'ie'],
      feeds: {
        u8: randomTensor(rng, 'uint8', [2, 3, 7, 9], { lo: 0, hi: 255 }),
        u8line: randomTensor(rng, 'uint8', [2, 3, 11], { lo: 0, hi: 255 }),
        i32: big,
        near,
        i8: randomTensor(rng, 'int8', [1, 3, 6, 5], { lo: -128, hi: 127 }),
      },
    });
  });
});

describe('3-D Conv and ConvTranspose on WebGPU match the CPU', () => {
  it('Conv: groups, dilations, pads and bias; auto_pad SAME_LOWER; a fused Relu', async () => {
    await expectGpuMatchesCpu({
      inputs: [['x', 'float32', [2, 4, 5, 6, 7]], ['w1', 'float32', [6, 2, 3, 2, 3]], ['b1', 'float32', [6]], ['w2', 'float32', [3, 4, 1, 3, 2]], ['w3', 'float32', [5, 4, 2, 2, 2]], ['b3', 'float32', [5]]],
      nodes: [
        node('Conv', ['x', 'w1', 'b1'], ['ya'], { group: attr(2), pads: a([1, 0, 1, 1, 1, 0]), strides: a([1, 2, 2]), dilations: a([2, 1, 2]) }),
        node('Conv', ['x', 'w2'], ['yb'], { auto_pad: attr('SAME_LOWER'), strides: a([1, 2, 2]) }),
        node('Conv', ['x', 'w3', 'b3'], ['c3'], { strides: a([2, 1, 3]) }),
        node('Relu', ['c3'], ['yc']),
      ],
      outputs: ['ya', 'yb', 'yc'],
    });
  });

  it('ConvTranspose: strides, pads, dilations, output_padding; groups with bias; output_shape', async () => {
    await expectGpuMatchesCpu({
      inputs: [['x', 'float32', [2, 4, 3, 4, 5]], ['w1', 'float32', [4, 3, 3, 2, 3]], ['w2', 'float32', [4, 1, 2, 3, 2]], ['b2', 'float32', [2]]],
      nodes: [
        node('ConvTranspose', ['x', 'w1'], ['ya'], { strides: a([2, 1, 3]), pads: a([1, 0, 1, 0, 1, 2]), dilations: a([1, 2, 1]), output_padding: a([1, 0, 2]) }),
        node('ConvTranspose', ['x', 'w2', 'b2'], ['yb'], { group: attr(2), strides: a([2, 2, 1]) }),
        node('ConvTranspose', ['x', 'w1'], ['yc'], { strides: a([2, 2, 2]), output_shape: a([7, 9, 10]) }),
      ],
      outputs: ['ya', 'yb', 'yc'],
    });
  });
});

describe('BatchNormalization training_mode=1 on WebGPU matches the CPU', () => {
  const bn = (attrs: Record<string, Attr>, outs: string[], x = 'x') => node('BatchNormalization', [x, 's', 'b', 'm', 'v'], outs, { training_mode: attr(1), ...attrs });
  const params = (c: number): [string, DType, number[]][] => [['s', 'float32', [c]], ['b', 'float32', [c]], ['m', 'float32', [c]], ['v', 'float32', [c]]];
  const positive = (c: number) => randomTensor(rng, 'float32', [c], { lo: 0.5, hi: 2 });

  it('short rows (one invocation per channel): Y, running_mean, running_var; and Y alone', async () => {
    await expectGpuMatchesCpu({
      inputs: [['x', 'float32', [3, 5, 2, 3]], ...params(5)],
      nodes: [bn({ momentum: attr(0.7, true), epsilon: attr(1e-3, true) }, ['ya', 'rm', 'rv']), bn({}, ['yb'])],
      outputs: ['ya', 'rm', 'rv', 'yb'],
      feeds: { v: positive(5) },
    });
  });

  it('long rows (a workgroup per channel) of rank 3 and 5, values offset from zero', async () => {
    const x = randomTensor(rng, 'float32', [4, 3, 7, 5, 3], { lo: 9, hi: 11 });
    await expectGpuMatchesCpu({
      inputs: [['x', 'float32', [4, 3, 7, 5, 3]], ['x3', 'float32', [17, 3, 9]], ...params(3)],
      nodes: [bn({ momentum: attr(0.25, true) }, ['ya', 'rm', 'rv']), bn({}, ['yb', 'rm3'], 'x3')],
      outputs: ['ya', 'rm', 'rv', 'yb', 'rm3'],
      feeds: { x, v: positive(3) },
    });
  });
});
