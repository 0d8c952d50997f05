import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportOnnx } from '../../importers/onnx/index.js';
import type { GpuResources } from '../../runtime/backends/webgpu/executor.js';
import {
  DisposedTensorError, DTypeError, InferenceSession, InvalidArgumentError, SessionReleasedError, ShapeError, Tensor, UnsupportedOpError,
} from '../../sdk/node.js';
import { buildGraph, node } from '../helpers/ir-builder.js';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { FIXTURES, readBytes, readF32 } from '../models/fixture-files.js';

/**
 * The WebGPU session's contract beyond numerics: GPU-resident outputs that feed the next run, the plan report,
 * memory that stays flat over 1,000 runs, and typed errors for misuse.
 */

const digits = readBytes(join(FIXTURES, 'digits', 'digits-cnn.onnx'));
const images = readF32(join(FIXTURES, 'digits', 'test-images.f32'), [360, 1, 8, 8]);
const batch = (n: number, from = 0) => new Tensor('float32', (images.data as Float32Array).slice(from * 64, (from + n) * 64), [n, 1, 8, 8]);

function softmaxModel(): Uint8Array {
  const g = buildGraph({ inputs: [['logits', 'float32', ['n', 10]]], nodes: [node('Softmax', ['logits'], ['probs'], { axis: { type: 'int', value: -1 } })], outputs: ['probs'] });
  return exportOnnx(g);
}

let res: GpuResources;
beforeAll(async () => {
  res = await gpuForTests();
});

describe("preferredOutputLocation: 'gpu-buffer'", () => {
  it('keeps outputs on the GPU; they read back equal to CPU outputs and feed the next session without a host copy', async () => {
    const a = await InferenceSession.create(digits, { backend: 'webgpu', preferredOutputLocation: 'gpu-buffer' });
    const b = await InferenceSession.create(softmaxModel(), { backend: 'webgpu' });
    try {
      const x = batch(5);
      const { logits } = await a.run({ input: x });
      expect(logits!.location).toBe('gpu-buffer');
      expect(logits!.dims).toEqual([5, 10]);
      expect(() => logits!.data).toThrow(InvalidArgumentError);
      expect(logits!.gpuBuffer).toBeDefined();
      const cpu = await a.run({ input: x }, { preferredOutputLocation: 'cpu' });
      expect(cpu.logits!.location).toBe('cpu');
      expect(Array.from((await logits!.getData()) as Float32Array)).toEqual(Array.from(cpu.logits!.data as Float32Array));

      const { probs } = await b.run({ logits: logits! });
      const l = cpu.logits!.data as Float32Array;
      const p = probs!.data as Float32Array;
      for (let r = 0; r < 5; r++) {
        const row = Array.from(l.slice(r * 10, r * 10 + 10));
        const m = Math.max(...row);
        const e = row.map((v) => Math.exp(v - m));
        const s = e.reduce((u, v) => u + v, 0);
        e.forEach((v, c) => expect(p[r * 10 + c]).toBeCloseTo(v / s, 5));
      }
      // The GPU tensor is the caller's: a later run does not overwrite it.
      await a.run({ input: batch(5, 100) });
      expect(Array.from((await logits!.getData()) as Float32Array)).toEqual(Array.from(l));

      const leased = res.memory.stats().leasedBytes;
      logits!.dispose();
      expect(res.memory.stats().leasedBytes).toBeLessThan(leased);
      expect(logits!.disposed).toBe(true);
      await expect(logits!.getData()).rejects.toThrow(DisposedTensorError);
      await expect(b.run({ logits: logits! })).rejects.toThrow(DisposedTensorError);
    } finally {
      await a.release();
      await b.release();
    }
  });

  it('per-output locations, and getData(true) releases the buffer', async () => {
    const a = await InferenceSession.create(digits, { backend: 'webgpu' });
    try {
      const { logits } = await a.run({ input: batch(2) }, { preferredOutputLocation: { logits: 'gpu-buffer' } });
      expect(logits!.location).toBe('gpu-buffer');
      const data = await logits!.getData(true);
      expect(data.length).toBe(20);
      expect(logits!.disposed).toBe(true);
    } finally {
      await a.release();
    }
  });

  it('is refused on the CPU backend, and a GPU tensor cannot feed a CPU session', async () => {
    await expect(InferenceSession.create(digits, { backend: 'cpu', preferredOutputLocation: 'gpu-buffer' })).rejects.toThrow(InvalidArgumentError);
    await expect(InferenceSession.create(digits, { backend: 'webgpu', preferredOutputLocation: 'gpu' as never })).rejects.toThrow(InvalidArgumentError);
    const g = await InferenceSession.create(digits, { backend: 'webgpu', preferredOutputLocation: 'gpu-buffer' });
    const c = await InferenceSession.create(softmaxModel(), { backend: 'cpu' });
    try {
      const { logits } = await g.run({ input: batch(1) });
      await expect(c.run({ logits: logits! })).rejects.toThrow(InvalidArgumentError);
      logits!.dispose();
    } finally {
      await g.release();
      await c.release();
    }
  });
});

describe('WebGPU session report and memory', () => {
  it('reports the load-time plan: kernels per node, dispatches, activation arena vs lower bound, limits', async () => {
    const s = await InferenceSession.create(digits, { backend: 'webgpu' });
    try {
      const r = s.report();
      expect(r.backend).toBe('webgpu');
      expect(r.gpu).toBeDefined();
      expect(r.gpu!.dispatches).toBeGreaterThan(0);
      expect(r.gpu!.activationBytes).toBeGreaterThanOrEqual(r.gpu!.activationLowerBound);
      expect(r.gpu!.activationLowerBound).toBeGreaterThan(0);
      expect(r.gpu!.requiredLimits.maxStorageBufferBindingSize).toBeGreaterThan(0);
      expect(r.weightBytes).toBeGreaterThan(0);
      const convs = r.nodes.filter((n) => n.op === 'Conv');
      expect(convs.length).toBeGreaterThan(0);
      for (const n of convs) expect(n.kernels!.length).toBeGreaterThan(0);
      expect(r.gpu!.signature).toContain('[1,1,8,8]');
      await s.run({ input: batch(7) });
      expect(s.report().gpu!.signature).toContain('[7,1,8,8]');
    } finally {
      await s.release();
    }
  });

  it('profile() times every dispatch of the plan on the GPU, and is refused where it cannot run', async () => {
    const s = await InferenceSession.create(digits, { backend: 'webgpu' });
    const cpu = await InferenceSession.create(digits, { backend: 'cpu' });
    try {
      await s.run({ input: batch(4) }); // plans the signature
      await res.memory.settle();
      const before = res.memory.stats().leasedBytes;
      const p = await s.profile({ input: batch(4) });
      await res.memory.settle();
      expect(res.memory.stats().leasedBytes).toBe(before); // the query resolve and readback buffers are handed back
      const r = s.report();
      expect(r.gpu!.signature).toContain('[4,1,8,8]');
      expect(p.length).toBe(r.gpu!.dispatches);
      const planned = new Set(r.nodes.map((n) => n.name));
      for (const d of p) {
        expect(planned.has(d.node)).toBe(true);
        expect(r.nodes.find((n) => n.name === d.node)!.kernels).toContain(d.kernel);
        expect(d.ms).toBeGreaterThanOrEqual(0);
        expect(d.workgroups.every((w) => w >= 1)).toBe(true);
      }
      expect(p.reduce((t, d) => t + d.ms, 0)).toBeGreaterThan(0);
      await expect(cpu.profile({ input: batch(1) })).rejects.toThrow(InvalidArgumentError);
      await expect(s.profile({ input: new Tensor('float32', new Float32Array(3), [3]) })).rejects.toThrow(ShapeError);
    } finally {
      await s.release();
      await cpu.release();
    }
    await expect(s.profile({ input: batch(1) })).rejects.toThrow(SessionReleasedError);
  });

  it('1,000 runs leave the live GPU bytes where they were after the first', async () => {
    const s = await InferenceSession.create(digits, { backend: 'webgpu' });
    try {
      const x = batch(4);
      await s.run({ input: x });
      const gpuOut = await s.run({ input: x }, { preferredOutputLocation: 'gpu-buffer' });
      gpuOut.logits!.dispose();
      await res.memory.settle();
      const after1 = res.memory.stats();
      for (let i = 0; i < 1000; i++) {
        if (i % 2) await s.run({ input: x });
        else (await s.run({ input: x }, { preferredOutputLocation: 'gpu-buffer' })).logits!.dispose();
      }
      await res.memory.settle();
      const after = res.memory.stats();
      // Leased exactly as before; live bytes may only fall: pooled buffers that no run wanted (left by earlier
      // tests on this device) age out of the pool (GpuMemory, MAX_IDLE_ACQUISITIONS).
      expect(after.leasedBytes).toBe(after1.leasedBytes);
      expect(after.liveBytes).toBeLessThanOrEqual(after1.liveBytes);
      expect(after.buffers).toBeLessThanOrEqual(after1.buffers);
      expect(after.liveBytes - after.pooledBytes).toBe(after1.liveBytes - after1.pooledBytes);
    } finally {
      await s.release();
    }
  }, 120_000);

  it('more shape signatures than cached plans, run concurrently: every result right, evicted plans freed after their runs', async () => {
    const s = await InferenceSession.create(digits, { backend: 'webgpu' });
    const cpu = await InferenceSession.create(digits, { backend: 'cpu' });
    try {
      const sizes = Array.from({ length: 12 }, (_, i) => i + 1); // 12 signatures > the 8 plans kept
      const outs = await Promise.all(sizes.map((n) => s.run({ input: batch(n, n) })));
      for (const [i, n] of sizes.entries()) {
        const ref = (await cpu.run({ input: batch(n, n) })).logits!.data as Float32Array;
        const got = outs[i]!.logits!.data as Float32Array;
        expect(got.length).toBe(n * 10);
        for (let k = 0; k < got.length; k++) expect(Math.abs(got[k]! - ref[k]!)).toBeLessThan(1e-3 * Math.max(1, Math.abs(ref[k]!)));
      }
    } finally {
      await s.release();
      await cpu.release();
    }
  }, 120_000);

  it('release() returns the session\'s buffers to the pool', async () => {
    await res.memory.settle();
    const before = res.memory.stats().leasedBytes;
    const s = await InferenceSession.create(digits, { backend: 'webgpu' });
    await s.run({ input: batch(3) });
    expect(res.memory.stats().leasedBytes).toBeGreaterThan(before);
    await s.release();
    await res.memory.settle();
    expect(res.memory.stats().leasedBytes).toBe(before);
    await expect(s.run({ input: batch(3) })).rejects.toThrow(SessionReleasedError);
  });
});

describe('WebGPU session errors', () => {
  it('bad feeds are typed errors and nothing runs', async () => {
    const s = await InferenceSession.create(digits, { backend: 'webgpu' });
    try {
      await expect(s.run({ input: new Tensor('float32', new Float32Array(10), [1, 10]) })).rejects.toThrow(ShapeError);
      await expect(s.run({ input: new Tensor('int32', new Int32Array(64), [1, 1, 8, 8]) })).rejects.toThrow(DTypeError);
      const t = batch(1);
      t.dispose();
      await expect(s.run({ input: t })).rejects.toThrow(DisposedTensorError);
      const ok = await s.run({ input: batch(1) });
      expect(ok.logits!.dims).toEqual([1, 10]);
    } finally {
      await s.release();
    }
  });

  it('a node with no WebGPU kernel for its types fails at load time, naming the op, node and opset', async () => {
    const g = buildGraph({ inputs: [['x', 'float64', [2, 3]]], nodes: [node('Relu', ['x'], ['y'], {}, 'relu64')], outputs: ['y'] });
    const bytes = exportOnnx(g, { opset: 17 });
    const err = await InferenceSession.create(bytes, { backend: 'webgpu' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedOpError);
    const e = err as UnsupportedOpError;
    expect(e.nodes[0]).toMatchObject({ op: 'Relu', node: 'relu64', opset: 17 });
    expect(e.message).toContain('relu64');
    // The CPU backend runs it.
    const cpu = await InferenceSession.create(bytes, { backend: 'cpu' });
    await cpu.release();
  });
});
