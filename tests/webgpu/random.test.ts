import { beforeAll, describe, expect, it } from 'vitest';
import type { Attr } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { allClose } from '../helpers/compare.js';
import { attr } from '../helpers/ir-builder.js';
import { encodeModel } from '../helpers/onnx-model.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { runRepeatedly } from '../helpers/session-runs.js';
import { gpuForTests } from '../helpers/webgpu-env.js';

/**
 * The random generators on WebGPU through InferenceSession. Seeded, the GPU draws the CPU reference's bits, so the
 * outputs agree (uniforms to f32 rounding, normals to WGSL's cos/log accuracy; Bernoulli and Multinomial exactly), on every run. Unseeded,
 * each run of one session draws new values (the run counter kept on the GPU), within the distribution's bounds.
 */

const rng = new Rng(606);
beforeAll(async () => {
  await gpuForTests();
});

function model(op: string, attrs: Record<string, Attr>, x?: HostTensor) {
  return encodeModel({ nodes: [{ op, inputs: x ? ['X'] : [], outputs: ['Y'], attrs }], inputs: x ? { X: x } : {}, outputs: ['Y'] });
}

async function sameAsCpu(op: string, attrs: Record<string, Attr>, x?: HostTensor, tol = { rtol: 1e-5, atol: 1e-5 }) {
  const bytes = model(op, attrs, x);
  const feeds = x ? { X: x } : {};
  const [cpu] = await runRepeatedly(bytes, feeds, 'cpu', 1);
  const gpu = await runRepeatedly(bytes, feeds, 'webgpu', 2);
  for (const run of gpu) {
    const r = allClose(run.Y!, cpu!.Y!, tol);
    if (!r.ok) expect.fail(`${op} ${JSON.stringify(attrs)}: ${r.message}`);
  }
}

describe('random generators on WebGPU', () => {
  it('seeded RandomUniform / RandomNormal (and -Like) draw the CPU reference values', async () => {
    await sameAsCpu('RandomUniform', { shape: attr([3, 77]), low: attr(-1, true), high: attr(4, true), seed: attr(2, true) });
    // WGSL's cos is exact to 2^-11 (absolute): a normal draw (|z| < 5.8) to about 3e-3, times the scale.
    await sameAsCpu('RandomNormal', { shape: attr([1000]), mean: attr(3, true), scale: attr(2, true), seed: attr(0.5, true) }, undefined, { rtol: 0, atol: 6e-3 });
    const x = randomTensor(rng, 'float32', [5, 9]);
    await sameAsCpu('RandomUniformLike', { seed: attr(7, true) }, x);
    await sameAsCpu('RandomNormalLike', { seed: attr(7, true) }, x, { rtol: 0, atol: 3e-3 });
    await sameAsCpu('RandomUniformLike', { seed: attr(1, true), dtype: attr(10) }, x, { rtol: 1e-3, atol: 1e-3 });
  });

  it('seeded Bernoulli and Multinomial draw the same samples', async () => {
    const p = randomTensor(rng, 'float32', [4, 300], { lo: 0, hi: 1 });
    await sameAsCpu('Bernoulli', { seed: attr(3, true) }, p, { rtol: 0, atol: 0 });
    await sameAsCpu('Bernoulli', { seed: attr(3, true), dtype: attr(6) }, p, { rtol: 0, atol: 0 });
    await sameAsCpu('Bernoulli', { seed: attr(3, true), dtype: attr(9) }, p, { rtol: 0, atol: 0 });
    const logits = randomTensor(rng, 'float32', [6, 11], { lo: -3, hi: 3 });
    await sameAsCpu('Multinomial', { seed: attr(4, true), sample_size: attr(200) }, logits, { rtol: 0, atol: 0 });
    await sameAsCpu('Multinomial', { seed: attr(4, true), sample_size: attr(3), dtype: attr(7) }, logits, { rtol: 0, atol: 0 });
  });

  it('unseeded: every run of a session draws new values, within bounds', async () => {
    const runs = await runRepeatedly(model('RandomUniform', { shape: attr([256]), low: attr(10, true), high: attr(11, true) }), {}, 'webgpu', 3);
    const vals = runs.map((r) => Array.from(r.Y!.data as Float32Array));
    expect(vals[0]).not.toEqual(vals[1]);
    expect(vals[1]).not.toEqual(vals[2]);
    for (const v of vals) for (const t of v) expect(t >= 10 && t < 11).toBe(true);
    const b = await runRepeatedly(model('Bernoulli', {}, tensorFromNumbers('float32', [512], new Array(512).fill(0.5))), { X: tensorFromNumbers('float32', [512], new Array(512).fill(0.5)) }, 'webgpu', 2);
    expect(Array.from(b[0]!.Y!.data as Float32Array)).not.toEqual(Array.from(b[1]!.Y!.data as Float32Array));
  });
});
