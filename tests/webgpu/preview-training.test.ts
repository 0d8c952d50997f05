import { beforeAll, describe, expect, it } from 'vitest';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { allClose } from '../helpers/compare.js';
import { attr } from '../helpers/ir-builder.js';
import { encodeModel } from '../helpers/onnx-model.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { runModelCpu, runModelWebGpu } from '../helpers/run-model.js';
import { gpuForTests } from '../helpers/webgpu-env.js';

/**
 * ai.onnx.preview.training Adagrad, Momentum and Adam on WebGPU against the CPU reference, through
 * InferenceSession.create(bytes, { backend: 'webgpu' }): several tensors per node (odd sizes, more elements than
 * a workgroup, scalars), T = 0 and T > 0 (the branches of Momentum's beta and Adam's bias correction), nesterov,
 * and float64 refused at load.
 */

const DOMAIN = 'ai.onnx.preview.training';
const rng = new Rng(77);
beforeAll(async () => {
  await gpuForTests();
});

function model(op: string, attrs: Record<string, Attr>, shapes: number[][], states: number, t: number, dtype: DType = 'float32') {
  const feeds: Record<string, HostTensor> = { R: tensorFromNumbers(dtype, [], [0.03]), T: tensorFromNumbers('int64', [], [t]) };
  const group = (p: string) => shapes.map((_, i) => `${p}${i}`);
  shapes.forEach((s, i) => {
    feeds[`X${i}`] = randomTensor(rng, dtype, s, { lo: -2, hi: 2 });
    feeds[`G${i}`] = randomTensor(rng, dtype, s, { lo: -1, hi: 1 });
    for (let j = 0; j < states; j++) feeds[`S${j}_${i}`] = randomTensor(rng, dtype, s, { lo: 0.05, hi: 2 });
  });
  const stateNames = Array.from({ length: states }, (_, j) => group(`S${j}_`));
  const outputs = [...group('Xn'), ...stateNames.flatMap((g) => g.map((v) => `${v}n`))];
  const bytes = encodeModel({
    nodes: [{ op, domain: DOMAIN, inputs: ['R', 'T', ...group('X'), ...group('G'), ...stateNames.flat()], outputs, attrs }],
    inputs: feeds,
    outputs,
    opsets: { '': 21, [DOMAIN]: 1 },
  });
  return { bytes, feeds };
}

async function check(op: string, attrs: Record<string, Attr>, states: number, t: number) {
  const { bytes, feeds } = model(op, attrs, [[130, 7], [3], [], [2, 1, 5]], states, t);
  const want = await runModelCpu(bytes, feeds);
  const got = await runModelWebGpu(bytes, feeds);
  expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  for (const [name, e] of Object.entries(want)) {
    const r = allClose(got[name]!, e, { rtol: 1e-5, atol: 1e-6 });
    if (!r.ok) expect.fail(`${op} T=${t} output '${name}': ${r.message}`);
  }
}

describe('ai.onnx.preview.training optimizers on WebGPU', () => {
  it('Adagrad', async () => {
    for (const t of [0, 5]) await check('Adagrad', { decay_factor: attr(0.2, true), epsilon: attr(1e-4, true), norm_coefficient: attr(0.01, true) }, 1, t);
  });

  it('Momentum, standard and nesterov', async () => {
    for (const mode of ['standard', 'nesterov']) {
      for (const t of [0, 2]) await check('Momentum', { alpha: attr(0.9, true), beta: attr(0.3, true), norm_coefficient: attr(0.001, true), mode: attr(mode) }, 1, t);
    }
  });

  it('Adam (two dispatches: moments, then the step)', async () => {
    for (const t of [0, 1, 12]) {
      await check('Adam', { alpha: attr(0.85, true), beta: attr(0.99, true), norm_coefficient: attr(0.02, true), norm_coefficient_post: attr(0.1, true) }, 2, t);
    }
  });

  it('float64 parameters do not load on WebGPU', async () => {
    const { bytes, feeds } = model('Adagrad', {}, [[4]], 1, 1, 'float64');
    await expect(runModelWebGpu(bytes, feeds)).rejects.toMatchObject({ code: 'UNSUPPORTED_OP' });
  });
});
