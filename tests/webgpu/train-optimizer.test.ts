import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuResources } from '../../runtime/backends/webgpu/executor.js';
import type { GpuBufferLease } from '../../runtime/backends/webgpu/memory.js';
import { GpuOptimizer, type GpuClip, type StepStats } from '../../runtime/backends/webgpu/optimizer.js';
import { clipByGlobalNorm, clipByValue, globalNorm } from '../../runtime/train/clip.js';
import { allocateBuffers, createLayout, type TrainBuffers } from '../../runtime/train/layout.js';
import { adam, adamw, optimizerStep, rmsprop, sgd, slotCount, type OptimizerConfig } from '../../runtime/train/optimizers.js';
import { cosineLr } from '../../runtime/train/schedules.js';
import { Rng } from '../helpers/random.js';
import { gpuForTests } from '../helpers/webgpu-env.js';

/**
 * The GPU optimizer step (runtime/backends/webgpu/optimizer.ts: grad statistics, clipping and the update in three
 * dispatches over the flat buffer) against the CPU reference (runtime/train/optimizers.ts, clip.ts) step by step:
 * params, the clipped gradients and every optimizer slot, with a learning-rate schedule.
 */
let res: GpuResources;
const leases: GpuBufferLease[] = [];
beforeAll(async () => {
  res = await gpuForTests();
});
afterAll(() => leases.forEach((l) => res.memory.release(l)));

const layout = createLayout([{ name: 'w', shape: [7, 9] }, { name: 'b', shape: [3] }, { name: 'big', shape: [700] }]);
const L = layout.length;

function randomGrads(rng: Rng, buf: TrainBuffers, scale: number): void {
  buf.grads.fill(0);
  for (const e of layout.entries) for (let i = 0; i < e.size; i++) buf.grads[e.offset + i] = scale * rng.uniform(-1, 1);
}

async function setup(cfg: OptimizerConfig, clip: GpuClip, rng: Rng) {
  const cpu = allocateBuffers(layout, slotCount(cfg));
  for (const e of layout.entries) for (let i = 0; i < e.size; i++) cpu.params[e.offset + i] = rng.uniform(-1, 1);
  const lease = await res.memory.acquireChecked(cpu.flat.byteLength);
  leases.push(lease);
  res.memory.upload(lease.buffer, 0, cpu.flat);
  const opt = await GpuOptimizer.create(res, { buffer: lease.buffer, offset: 0, size: lease.size }, L, cfg, clip);
  return { cpu, lease, opt };
}

async function gpuStep(opt: GpuOptimizer, lease: GpuBufferLease, grads: Float32Array, step: number, lr: number): Promise<{ stats: StepStats; flat: Float32Array }> {
  res.memory.upload(lease.buffer, L * 4, grads);
  const encoder = res.ctx.device.createCommandEncoder();
  opt.encode(encoder, step, lr);
  const finish = opt.encodeReadback(encoder);
  res.ctx.device.queue.submit([encoder.finish()]);
  const stats = await finish();
  const bytes = await res.memory.readback(lease.buffer, 0, opt.len * (2 + slotCount(opt.config)) * 4);
  return { stats, flat: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) };
}

function expectClose(got: Float32Array, want: Float32Array, what: string, rtol = 1e-4, atol = 1e-6): void {
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i]! - want[i]!) <= atol + rtol * Math.abs(want[i]!))) expect.fail(`${what}[${i}]: GPU ${got[i]} vs CPU ${want[i]}`);
  }
}

const CASES: [string, OptimizerConfig, GpuClip][] = [
  ['SGD', sgd({ lr: 0.1 }), {}],
  ['SGD momentum, dampening, weight decay', sgd({ lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 1e-2 }), {}],
  ['SGD Nesterov', sgd({ lr: 0.05, momentum: 0.8, nesterov: true, weightDecay: 5e-3 }), {}],
  ['Adam', adam({ lr: 1e-2 }), {}],
  ['Adam with L2 weight decay', adam({ lr: 1e-2, betas: [0.8, 0.99], eps: 1e-6, weightDecay: 0.1 }), {}],
  ['AdamW', adamw({ lr: 1e-2, weightDecay: 0.05 }), {}],
  ['RMSprop', rmsprop({ lr: 1e-3 }), {}],
  ['RMSprop momentum, centered, weight decay', rmsprop({ lr: 1e-3, momentum: 0.9, centered: true, weightDecay: 1e-2, alpha: 0.9 }), {}],
  ['RMSprop centered', rmsprop({ lr: 1e-3, centered: true }), {}],
  ['SGD momentum, clip by value', sgd({ lr: 0.05, momentum: 0.9 }), { value: 0.3 }],
  ['Adam, clip by global norm', adam({ lr: 1e-2 }), { norm: 1 }],
  ['AdamW, clip by value then global norm', adamw({ lr: 1e-2 }), { value: 0.5, norm: 2 }],
];

describe('GPU optimizer step against the CPU reference', () => {
  for (const [name, cfg, clip] of CASES) {
    it(name, async () => {
      const rng = new Rng(name.length * 7919);
      const { cpu, lease, opt } = await setup(cfg, clip, rng);
      const schedule = cosineLr(cfg.lr, { totalSteps: 6 });
      try {
        for (let step = 1; step <= 5; step++) {
          randomGrads(rng, cpu, step % 2 ? 3 : 0.2);
          const grads = cpu.grads.slice();
          const lr = schedule(step - 1);
          const norm = globalNorm(cpu.grads);
          if (clip.value !== undefined) clipByValue(cpu.grads, clip.value);
          if (clip.norm !== undefined) clipByGlobalNorm(cpu.grads, clip.norm);
          optimizerStep(cfg, cpu, step, lr);
          const { stats, flat } = await gpuStep(opt, lease, grads, step, lr);
          expect(stats.bad).toBe(false);
          expect(Math.abs(stats.gradNorm - norm) / norm).toBeLessThan(1e-5);
          expectClose(flat.subarray(0, L), cpu.params, `${name} step ${step} params`);
          expectClose(flat.subarray(L, 2 * L), cpu.grads, `${name} step ${step} clipped grads`);
          cpu.slots.forEach((s, k) => expectClose(flat.subarray((2 + k) * L, (3 + k) * L), s, `${name} step ${step} slot ${k}`));
        }
      } finally {
        opt.dispose();
      }
    });
  }

  it('a non-finite gradient or loss skips the step: every section stays as it was, the first bad element is named', async () => {
    const rng = new Rng(5);
    const { cpu, lease, opt } = await setup(adam({ lr: 0.1 }), { norm: 1 }, rng);
    try {
      randomGrads(rng, cpu, 1);
      await gpuStep(opt, lease, cpu.grads.slice(), 1, 0.1);
      const before = new Float32Array((await res.memory.readback(lease.buffer, 0, L * 4 * 4)).buffer.slice(0));
      const bad = cpu.grads.slice();
      const b = layout.byName['big']!;
      bad[b.offset + 600] = -Infinity;
      bad[b.offset + 650] = NaN;
      const { stats, flat } = await gpuStep(opt, lease, bad, 2, 0.1);
      expect(stats.bad).toBe(true);
      expect(stats.lossBad).toBe(false);
      expect(stats.badIndex).toBe(b.offset + 600);
      expect(stats.badValue).toBe(-Infinity);
      expect(flat.subarray(0, L)).toEqual(before.subarray(0, L));
      expect(flat.subarray(2 * L)).toEqual(before.subarray(2 * L));
      // A NaN loss (word 0 of the stats buffer, where the forward pass writes it) skips too.
      res.memory.upload((opt as unknown as { stats: GpuBufferLease }).stats.buffer, 0, new Float32Array([NaN]));
      const again = await gpuStep(opt, lease, cpu.grads.slice(), 2, 0.1);
      expect(again.stats.bad).toBe(true);
      expect(again.stats.lossBad).toBe(true);
      expect(again.flat.subarray(0, L)).toEqual(before.subarray(0, L));
    } finally {
      opt.dispose();
    }
  });
});
