import { beforeAll, describe, expect, it } from 'vitest';
import { importOnnx } from '../../importers/onnx/index.js';
import { controlFlowBodiesSupported } from '../../runtime/ir/passes/control-flow.js';
import { InferenceSession, Tensor, UnsupportedOpError } from '../../sdk/node.js';
import { allClose } from '../helpers/compare.js';
import {
  constantTripLoop,
  endlessLoop,
  ifDifferentShapes,
  loopComputedTrips,
  loopCountTo,
  loopCountedByBody,
  loopUntil,
  loopWithDataIf,
  loopWithNestedIf,
  scan8Batch,
  scanAxes,
  scanWithNestedLoop,
  type CfCase,
} from '../helpers/control-flow-models.js';
import { Rng } from '../helpers/random.js';
import { runModelCpu } from '../helpers/run-model.js';
import { gpuForTests } from '../helpers/webgpu-env.js';

/**
 * If/Loop/Scan on WebGPU through the public API, against the CPU backend. A plan holds no control flow: an If on a
 * constant (or on a value read back at a stage boundary) becomes its branch, Loops with a constant trip count and a
 * condition that stays true and Scans of concrete length are unrolled (ir/passes/control-flow.ts); the rest is
 * refused with a typed error when the plan is made.
 */

const rng = new Rng(21);

beforeAll(async () => {
  await gpuForTests();
});

const toTensors = (feeds: CfCase['feeds']) => Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new Tensor(t.dtype, t.data, t.shape)]));

async function compareWithCpu(c: CfCase): Promise<InferenceSession> {
  const s = await InferenceSession.create(c.bytes, { backend: 'webgpu' });
  const out = await s.run(toTensors(c.feeds));
  const ref = await runModelCpu(c.bytes, c.feeds);
  expect(Object.keys(out).sort()).toEqual(Object.keys(ref).sort());
  for (const [name, t] of Object.entries(ref)) {
    const r = allClose(out[name]!.toHost(), t, { rtol: 1e-5, atol: 1e-6 });
    expect(r.ok, `${c.name}: '${name}': ${r.ok ? '' : r.message}`).toBe(true);
  }
  return s;
}

describe('control flow on WebGPU matches the CPU reference', () => {
  it('Loop{If} reading values two scopes out: unrolled, the If per iteration decided by folding', async () => {
    const s = await compareWithCpu(loopWithNestedIf(rng, 5));
    const ops = s.report().nodes.map((n) => n.op);
    expect(ops).not.toContain('Loop');
    expect(ops).not.toContain('If');
    await s.release();
  });

  it('Scan{Loop} with reversed input and output, output axis 1', async () => {
    await (await compareWithCpu(scanWithNestedLoop(rng))).release();
  });

  it('Scan with two inputs and outputs on different axes and directions', async () => {
    await (await compareWithCpu(scanAxes(rng))).release();
  });

  it('Scan-8 with a batch of 2', async () => {
    await (await compareWithCpu(scan8Batch(rng))).release();
  });

  it('a Loop with a constant trip count is one plan with no readback', async () => {
    const s = await compareWithCpu(constantTripLoop(rng, 3));
    const gpu = s.report().gpu!;
    expect(gpu.stages).toBe(1);
    expect(gpu.readbacks).toBe(0);
    await s.release();
  });

  it('a while-loop whose condition the body computes from a counter: iteration count found at plan time, unrolled', async () => {
    for (const [stop, trips] of [[10, 5], [2, 3]] as const) {
      const s = await compareWithCpu(loopCountedByBody(rng, stop));
      expect(s.report().nodes.map((n) => n.op)).not.toContain('Loop');
      expect(s.outputMetadata.find((o) => o.name === 'xs')).toBeDefined();
      const out = await s.run(toTensors(loopCountedByBody(rng, stop).feeds));
      expect(out.xs!.dims).toEqual([trips, 2]);
      await s.release();
    }
  });

  it('a Loop whose trip count is computed from data: read back at a stage boundary, planned per value', async () => {
    const a = loopComputedTrips([1, 3, 2], rng);
    const s = await compareWithCpu(a);
    expect(s.report().gpu!.readbacks).toBe(1);
    // Same session, another count: the rest is planned again for it.
    const b = loopComputedTrips([5, 0, 4], rng);
    const out = await s.run(toTensors(b.feeds));
    const ref = await runModelCpu(b.bytes, b.feeds);
    const r = allClose(out.x_final!.toHost(), ref.x_final!, { rtol: 1e-5, atol: 1e-6 });
    expect(r.ok, r.ok ? '' : r.message).toBe(true);
    await s.release();
  });

  it('an If on data inside an unrolled Loop: both small branches computed and selected, one plan, no readback', async () => {
    for (const [x0, scale] of [[[0.5, -0.25, 1], 0.5], [[-2, 0.5, 0.25], 3], [[0.1, 0.1, -0.3], -1]] as const) {
      const s = await compareWithCpu(loopWithDataIf([...x0], scale));
      expect(s.report().gpu!.readbacks).toBe(0);
      expect(s.report().nodes.map((n) => n.op)).toContain('Where');
      await s.release();
    }
  });

  it('while-loops whose condition the body computes from data: one iteration per stage, its condition read back', async () => {
    const until = await compareWithCpu(loopUntil());
    expect(until.report().gpu!.stages).toBeGreaterThan(1);
    await until.release();
    const s = await InferenceSession.create(loopCountTo(4).bytes, { backend: 'webgpu' });
    for (const limit of [4, 1, 7]) {
      const c = loopCountTo(limit);
      const out = await s.run(toTensors(c.feeds));
      const ref = await runModelCpu(c.bytes, c.feeds);
      for (const name of ['x_final', 'squares']) {
        const r = allClose(out[name]!.toHost(), ref[name]!, { rtol: 1e-6, atol: 1e-6 });
        expect(r.ok, `limit ${limit} '${name}': ${r.ok ? '' : r.message}`).toBe(true);
      }
    }
    await s.release();
  });

  it('a Loop of 1 and of 0 iterations', async () => {
    await (await compareWithCpu(loopWithNestedIf(rng, 1))).release();
    const c = loopWithNestedIf(rng, 0);
    const s = await InferenceSession.create(c.bytes, { backend: 'webgpu' });
    const out = await s.run(toTensors(c.feeds));
    expect(out.xs!.dims).toEqual([0, 2, 3]);
    expect(Array.from(out.x_final!.data as Float32Array)).toEqual(Array.from(c.feeds.x0!.data as Float32Array));
    await s.release();
  });

  it('an If on an input is decided per run: its condition is read back at a stage boundary, both branches work', async () => {
    for (const cond of [true, false]) {
      const c = ifDifferentShapes(cond);
      const s = await compareWithCpu(c);
      expect(s.report().gpu!.readbackValues).toContain('c');
      await s.release();
    }
  });
});

describe('control flow WebGPU cannot plan is refused with a typed error', () => {
  it('a while-loop past the per-iteration readback bound', async () => {
    const c = loopCountTo(300);
    const attempt = (async () => {
      const s = await InferenceSession.create(c.bytes, { backend: 'webgpu' });
      try {
        await s.run(toTensors(c.feeds));
      } finally {
        await s.release();
      }
    })();
    await expect(attempt).rejects.toBeInstanceOf(UnsupportedOpError);
    await expect(attempt).rejects.toThrow(/ran past 256 iterations/);
  }, 120_000);

  it('an endless Loop', async () => {
    await expect(InferenceSession.create(endlessLoop().bytes, { backend: 'webgpu' })).rejects.toThrow(/would not terminate/);
  });

  it('a Loop too long to unroll', async () => {
    await expect(InferenceSession.create(constantTripLoop(rng, 1500).bytes, { backend: 'webgpu' })).rejects.toThrow(/at most 4096/);
  });

  it('the load-time check looks inside bodies, at any depth', async () => {
    const m = await importOnnx(loopWithNestedIf(rng, 2).bytes);
    const loop = m.graph.nodes.find((n) => n.op === 'Loop')!;
    expect(controlFlowBodiesSupported(loop, () => true)).toBe(true);
    // The Mul inside the If's else branch, two levels down, decides.
    expect(controlFlowBodiesSupported(loop, (n) => n.op !== 'Mul')).toBe(false);
    expect(controlFlowBodiesSupported(loop, (n) => n.op !== 'Concat')).toBe(true);
    expect(controlFlowBodiesSupported({ name: 'r', op: 'Relu', domain: '', inputs: ['x'], outputs: ['y'], attrs: {} }, () => true)).toBe(false);
  });
});
