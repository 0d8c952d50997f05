import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { allClose } from '../helpers/compare.js';
import { randomF32 } from '../helpers/control-flow-models.js';
import { Rng } from '../helpers/random.js';
import { runModelCpu, runModelOrt } from '../helpers/run-model.js';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { FIXTURES, readBytes } from './fixture-files.js';

/**
 * TorchScript control flow as torch.onnx exports it (scripts/fixtures/control_flow_fixture.py): a for-loop over
 * x.size(0) followed by a branch on data, and a data-driven while-loop with an If inside its body. CPU against
 * onnxruntime-node; WebGPU against the CPU where the plan can hold it (the for-loop unrolled per input shape, the
 * branch on data computed both ways and selected), and the while-loop one iteration per stage, its condition read back each time.
 */

const DIR = join(FIXTURES, 'control-flow');
const refine = readBytes(join(DIR, 'refine-op14.onnx'));
const whileLoop = readBytes(join(DIR, 'while-op14.onnx'));
const rng = new Rng(5);

function expectClose(actual: Record<string, HostTensor>, expected: Record<string, HostTensor>, tol = 1e-5): void {
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
  for (const [name, t] of Object.entries(expected)) {
    const r = allClose(actual[name]!, t, { rtol: tol, atol: tol });
    expect(r.ok, `'${name}': ${r.ok ? '' : r.message}`).toBe(true);
  }
}

beforeAll(async () => {
  await gpuForTests();
});

describe('exported TorchScript control flow', () => {
  // Batches whose sums land on both sides of the If.
  const inputs = [randomF32(rng, [3, 6]), randomF32(rng, [1, 6]), randomF32(rng, [5, 6])];
  inputs.push({ ...inputs[0]!, data: (inputs[0]!.data as Float32Array).map((v) => -Math.abs(v) - 2) });

  it('refine (Loop over x.size(0), then If on data): CPU equals onnxruntime-node', async () => {
    for (const x of inputs) expectClose(await runModelCpu(refine, { x }), await runModelOrt(refine, { x }));
  });

  it('refine on WebGPU equals the CPU for several batch sizes in one session', async () => {
    const s = await InferenceSession.create(refine, { backend: 'webgpu' });
    try {
      for (const x of inputs) {
        const out = await s.run({ x: new Tensor('float32', x.data, x.shape) });
        expectClose({ y: out[s.outputNames[0]!]!.toHost() }, { y: (await runModelCpu(refine, { x }))[s.outputNames[0]!]! }, 1e-4);
        expect(s.report().nodes.map((n) => n.op)).not.toContain('Loop');
        expect(s.report().gpu!.readbacks).toBe(0); // the branch on data is computed both ways and selected
      }
    } finally {
      await s.release();
    }
  });

  it('while (condition computed from data in the body): CPU equals onnxruntime-node, steps included', async () => {
    for (const x of [randomF32(rng, [2, 4]), randomF32(rng, [3, 4])]) {
      const ours = await runModelCpu(whileLoop, { x });
      expectClose(ours, await runModelOrt(whileLoop, { x }));
      expect(Number(Object.values(ours).find((t) => t.dtype === 'int64')!.data[0])).toBeGreaterThan(0);
    }
  });

  it('while on WebGPU equals the CPU: one iteration per stage, each condition read back', async () => {
    const s = await InferenceSession.create(whileLoop, { backend: 'webgpu' });
    try {
      for (const x of [randomF32(rng, [2, 4]), randomF32(rng, [3, 4])]) {
        const out = await s.run({ x: new Tensor('float32', x.data, x.shape) });
        const host = Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.toHost()]));
        expectClose(host, await runModelCpu(whileLoop, { x }), 1e-4);
      }
    } finally {
      await s.release();
    }
  });
});
