import { beforeAll, describe, expect, it } from 'vitest';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { tensorFromNumbers } from '../../runtime/ir/tensor.js';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import { allClose } from '../helpers/compare.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { int, nodeModel, str, type PAttr, type ValueSpec } from '../importer/model-builder.js';

/**
 * The issue #9 §4 ops through the public API: a one-node ONNX model (as an exporter writes it, at its op's opset)
 * loaded with InferenceSession.create on WebGPU and on the CPU backend, run on the same feeds, outputs compared.
 * Shape-deciding scalars are initializers, as real models have them.
 */

beforeAll(async () => {
  await gpuForTests();
});
const rng = new Rng(424242);

async function bothBackends(op: string, opset: number, inputs: (ValueSpec | '')[], attrs: PAttr[] = [], outputs = ['y'], tol = { rtol: 1e-4, atol: 1e-5 }) {
  const { bytes, feeds } = nodeModel({ op, opset, attrs, inputs, outputs: outputs.map((name) => ({ name })) });
  const toT = (t: HostTensor) => new Tensor(t.dtype, t.data as Float32Array, t.shape);
  const args = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, toT(v)]));
  const gpu = await InferenceSession.create(bytes, { backend: 'webgpu' });
  const cpu = await InferenceSession.create(bytes, { backend: 'cpu' });
  try {
    const [a, e] = [await gpu.run(args), await cpu.run(args)];
    for (const name of outputs) {
      const host = (t: Tensor): HostTensor => ({ dtype: t.type, shape: [...t.dims], data: t.data as Float32Array });
      const r = allClose(host(a[name]!), host(e[name]!), tol);
      expect(r.ok, `${op} output ${name}: ${r.message}`).toBe(true);
    }
  } finally {
    await gpu.release();
    await cpu.release();
  }
}

const feed = (name: string, value: HostTensor): ValueSpec => ({ name, value });
const init = (name: string, value: HostTensor): ValueSpec => ({ name, value, as: 'init' });
const i64 = (v: number[], shape = [v.length]) => tensorFromNumbers('int64', shape, v);

describe('issue #9 §4 ops on WebGPU through InferenceSession', () => {
  it('SoftmaxCrossEntropyLoss with log_prob, weights and ignore_index (opset 13)', async () => {
    await bothBackends('SoftmaxCrossEntropyLoss', 13, [
      feed('scores', randomTensor(rng, 'float32', [6, 5, 3])), feed('labels', i64(Array.from({ length: 18 }, () => rng.int(-1, 4)), [6, 3])), feed('w', randomTensor(rng, 'float32', [5], { lo: 0.2, hi: 2 })),
    ], [str('reduction', 'mean'), int('ignore_index', -1)], ['loss', 'log_prob']);
  });

  it('Einsum with an ellipsis and a diagonal (opset 12)', async () => {
    await bothBackends('Einsum', 12, [feed('a', randomTensor(rng, 'float32', [2, 4, 4, 3])), feed('b', randomTensor(rng, 'float32', [2, 3, 5]))], [str('equation', '...iik,...kj->...ij')]);
  });

  it('GridSample bicubic with border padding (opset 16)', async () => {
    await bothBackends('GridSample', 16, [feed('x', randomTensor(rng, 'float32', [2, 3, 6, 5])), feed('grid', randomTensor(rng, 'float32', [2, 4, 7, 2], { lo: -1.3, hi: 1.3 }))], [str('mode', 'bicubic'), str('padding_mode', 'border')]);
  });

  it('OneHot with a constant depth, ScatterND add, GatherND with batch_dims', async () => {
    await bothBackends('OneHot', 11, [feed('i', i64([0, 3, -1, 7, 2, 4])), init('depth', i64([5], [])), feed('v', tensorFromNumbers('float32', [2], [-1, 1]))], [int('axis', 0)]);
    await bothBackends('ScatterND', 18, [feed('x', randomTensor(rng, 'float32', [5, 3])), feed('i', i64([1, 3, 1, -1], [4, 1])), feed('u', randomTensor(rng, 'float32', [4, 3]))], [str('reduction', 'add')]);
    await bothBackends('GatherND', 13, [feed('x', randomTensor(rng, 'float32', [3, 4, 2])), feed('i', i64([3, 1, 2, 0, -1, 1], [3, 1, 2]))], [int('batch_dims', 1)]);
  });

  it('DFT-17 with a constant dft_length, STFT, and a Hann window (opset 17)', async () => {
    await bothBackends('DFT', 17, [feed('x', randomTensor(rng, 'float32', [2, 12, 1])), init('n', i64([16], []))], [int('onesided', 1)], ['y'], { rtol: 1e-3, atol: 1e-3 });
    await bothBackends('STFT', 17, [feed('x', randomTensor(rng, 'float32', [1, 40, 1])), init('step', i64([8], [])), feed('w', randomTensor(rng, 'float32', [16], { lo: 0, hi: 1 }))], [], ['y'], { rtol: 1e-3, atol: 1e-3 });
    await bothBackends('HannWindow', 17, [init('n', i64([10], []))]);
  });

  it('MeanVarianceNormalization, LRN, Det, RoiAlign', async () => {
    await bothBackends('MeanVarianceNormalization', 13, [feed('x', randomTensor(rng, 'float32', [2, 3, 4, 5]))]);
    await bothBackends('LRN', 13, [feed('x', randomTensor(rng, 'float32', [1, 6, 3, 3]))], [int('size', 3)]);
    await bothBackends('Det', 11, [feed('x', randomTensor(rng, 'float32', [3, 4, 4]))]);
    await bothBackends('RoiAlign', 16, [
      feed('x', randomTensor(rng, 'float32', [1, 2, 8, 8])), feed('rois', tensorFromNumbers('float32', [2, 4], [0, 0, 5, 5, 1.5, 2, 7, 6.5])), feed('b', i64([0, 0])),
    ], [int('output_height', 2), int('output_width', 3)]);
  });
});
