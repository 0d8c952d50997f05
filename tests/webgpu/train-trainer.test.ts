import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importOnnx } from '../../importers/onnx/index.js';
import { runGraphCpu } from '../../runtime/backends/cpu/executor.js';
import type { GpuResources } from '../../runtime/backends/webgpu/executor.js';
import { GpuTrainer } from '../../runtime/backends/webgpu/trainer.js';
import type { Graph } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, tensorToNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { adam, rmsprop, sgd } from '../../runtime/train/optimizers.js';
import { createTrainingProgram, type TrainingProgram } from '../../runtime/train/program.js';
import { cosineLr, warmup } from '../../runtime/train/schedules.js';
import { splitGraph } from '../../runtime/train/split.js';
import { CpuTrainer, type StepReport, type TrainerOptions } from '../../runtime/train/trainer-cpu.js';
import { mlp, toyData } from '../train/model-fixtures.js';
import { gpuForTests } from '../helpers/webgpu-env.js';

/**
 * GpuTrainer against CpuTrainer on whole training programs: the same reports (loss, gradient norm, lr, skips and
 * their reasons), weights and optimizer state within float32 tolerance, the same Dropout masks, bit-identical
 * reruns, one submit per step, state save/restore, and the NaN/Inf guard leaving the weights intact.
 */
let res: GpuResources;
const trainers: GpuTrainer[] = [];
beforeAll(async () => {
  res = await gpuForTests();
});
afterAll(() => trainers.forEach((t) => t.dispose()));

async function gpuTrainer(program: TrainingProgram, opts: TrainerOptions): Promise<GpuTrainer> {
  const t = await GpuTrainer.create(res, program, opts);
  trainers.push(t);
  return t;
}

function mlpSetup(dropout?: number) {
  const split = splitGraph(mlp(7, { hidden: 32, dropout }), 'h');
  const data = toyData(11, 64);
  const feats = runGraphCpu(split.trunk, { x: data.x })['h']!;
  const program = () => createTrainingProgram(split.tail, { loss: { kind: 'cross-entropy' }, trainable: split.trainable });
  return { program, batch: (p: TrainingProgram) => ({ h: feats, [p.target]: data.labels }) };
}

function expectReportsClose(g: StepReport, c: StepReport, what: string): void {
  expect(g.skipped, what).toBe(c.skipped);
  expect(g.step, what).toBe(c.step);
  expect(g.lr, what).toBe(c.lr);
  expect(Math.abs(g.loss - c.loss), `${what}: loss ${g.loss} vs ${c.loss}`).toBeLessThan(1e-4 * (1 + Math.abs(c.loss)));
  if (!c.skipped) expect(Math.abs(g.gradNorm - c.gradNorm), `${what}: grad norm`).toBeLessThan(1e-4 * (1 + c.gradNorm));
}

function expectParamsClose(g: Record<string, HostTensor>, c: Record<string, HostTensor>, tol = 1e-4): void {
  for (const [k, t] of Object.entries(c)) {
    const a = tensorToNumbers(g[k]!);
    tensorToNumbers(t).forEach((v, i) => expect(Math.abs(a[i]! - v), `${k}[${i}]`).toBeLessThan(tol * (1 + Math.abs(v))));
  }
}

describe('GpuTrainer against CpuTrainer', () => {
  it('an MLP tail with Dropout: same masks, losses and weights; bit-identical reruns; one submit per step', async () => {
    const s = mlpSetup(0.2);
    const opts: TrainerOptions = { optimizer: adam({ lr: 0.05 }), seed: 3 };
    const gp = s.program();
    const gpu = await gpuTrainer(gp, opts);
    const cpu = new CpuTrainer(s.program(), opts);
    const queue = res.ctx.device.queue;
    const submit = queue.submit.bind(queue);
    let submits = 0;
    const losses: number[] = [];
    for (let k = 0; k < 12; k++) {
      submits = 0;
      queue.submit = (buffers: Iterable<GPUCommandBuffer>) => { submits++; submit(buffers); };
      let g: StepReport;
      try {
        g = await gpu.trainStep(s.batch(gp));
      } finally {
        queue.submit = submit;
      }
      expect(submits, 'submits per step').toBe(1);
      expectReportsClose(g, cpu.trainStep(s.batch(cpu.program)), `step ${k}`);
      losses.push(g.loss);
    }
    expectParamsClose(await gpu.parameters(), cpu.parameters());
    console.log(`MLP + Dropout step: ${gpu.lastStepDispatches} dispatches, ${gpu.submitsPerStep} submit`);
    // The same run again on the GPU: bit for bit.
    const again = await gpuTrainer(s.program(), opts);
    const rerun: number[] = [];
    for (let k = 0; k < 12; k++) rerun.push((await again.trainStep(s.batch(gp))).loss);
    expect(rerun).toEqual(losses);
    const [pa, pb] = [await gpu.parameters(), await again.parameters()];
    for (const k of Object.keys(pa)) expect(pa[k]!.data).toEqual(pb[k]!.data);
    // Evaluation is inference mode (no Dropout), with or without the target.
    const evalG = await gpu.evaluate({ h: s.batch(gp).h });
    expect(Object.keys(evalG)).toEqual(['logits']);
    const withLoss = await gpu.evaluate(s.batch(gp));
    const cpuLoss = tensorToNumbers(cpu.evaluate(s.batch(cpu.program))[cpu.program.loss]!)[0]!;
    expect(tensorToNumbers(withLoss[gp.loss]!)[0]!).toBeCloseTo(cpuLoss, 4);
  });

  it('dispose() gives back every buffer (parameters, saved activations, plans, optimizer state); idempotent', async () => {
    const s = mlpSetup(0.1);
    const before = res.memory.stats().leasedBytes;
    const p = s.program();
    const t = await GpuTrainer.create(res, p, { optimizer: adam({ lr: 0.01 }), clip: { norm: 1 } });
    await t.trainStep(s.batch(p));
    await t.evaluate({ h: s.batch(p).h });
    expect(res.memory.stats().leasedBytes).toBeGreaterThan(before);
    t.dispose();
    t.dispose();
    expect(res.memory.stats().leasedBytes).toBe(before);
    await expect(t.trainStep(s.batch(p))).rejects.toThrow(/disposed/);
  });

  it('saveState / loadState resume exactly (params, slots, step and attempt counters)', async () => {
    const s = mlpSetup(0.3);
    const opts: TrainerOptions = { optimizer: rmsprop({ lr: 0.01, momentum: 0.5, centered: true }), seed: 9 };
    const p = s.program();
    const gpu = await gpuTrainer(p, opts);
    for (let k = 0; k < 3; k++) await gpu.trainStep(s.batch(p));
    const state = await gpu.saveState();
    expect(state.step).toBe(3);
    expect(state.slots).toHaveLength(3);
    const a = await gpu.trainStep(s.batch(p));
    const pa = await gpu.parameters();
    const other = await gpuTrainer(s.program(), opts);
    await other.loadState(state);
    expect(other.stepCount).toBe(3);
    const b = await other.trainStep(s.batch(p));
    expect(b).toEqual(a);
    const pb = await other.parameters();
    for (const k of Object.keys(pa)) expect(pb[k]!.data).toEqual(pa[k]!.data);
    await expect(other.loadState({ ...state, slots: state.slots.slice(1) })).rejects.toThrow(/does not fit/);
  });

  it('a deeper tail of the digits CNN (Conv, BatchNorm, Relu, MaxPool, Flatten, Gemm) with SGD Nesterov, clipping and a schedule', async () => {
    const dir = new URL('../fixtures/transfer/', import.meta.url);
    const meta = JSON.parse(readFileSync(new URL('head-training.json', dir), 'utf8'));
    const { graph } = await importOnnx(new Uint8Array(readFileSync(new URL(meta.trunk.file, dir))));
    const convs = graph.nodes.filter((k) => k.op === 'Conv');
    const split = splitGraph(graph, convs[1]!.name);
    const b = readFileSync(new URL('train-images.f32', dir));
    const images = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
    const labels = Array.from(readFileSync(new URL('train-labels.u8', dir)));
    const cut = split.tail.inputs[0]!;
    const program = () => createTrainingProgram(split.tail, { loss: { kind: 'cross-entropy', labelSmoothing: 0.05 }, trainable: split.trainable });
    const opts: TrainerOptions = {
      optimizer: sgd({ lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-3 }),
      schedule: warmup(cosineLr(0.05, { totalSteps: 6 }), { steps: 2 }),
      clip: { value: 1, norm: 0.5 },
    };
    const gp = program();
    const gpu = await gpuTrainer(gp, opts);
    const cpu = new CpuTrainer(program(), opts);
    for (let k = 0; k < 4; k++) {
      const n = k === 3 ? 5 : 8; // a last batch of another size: new plans
      const x = tensorFromNumbers('float32', [n, 1, 8, 8], images.subarray(k * 8 * 64, (k * 8 + n) * 64));
      const feats = runGraphCpu(split.trunk, { [meta.trunk.input]: x })[cut.name]!;
      const batch = { [cut.name]: feats, [gp.target]: tensorFromNumbers('int64', [n], labels.slice(k * 8, k * 8 + n)) };
      expectReportsClose(await gpu.trainStep(batch), cpu.trainStep(batch), `step ${k}`);
    }
    expect(gp.backward.nodes.map((k) => k.op)).toEqual(expect.arrayContaining(['ConvGradWeight', 'BatchNormGrad', 'MaxPoolGrad', 'CrossEntropyLossGrad']));
    expectParamsClose(await gpu.parameters(), cpu.parameters(), 2e-4);
  });

  it('skips a step whose loss is not finite and keeps the weights, with the CPU reason', async () => {
    const s = mlpSetup();
    const p = s.program();
    const opts: TrainerOptions = { optimizer: adam({ lr: 0.05 }) };
    const gpu = await gpuTrainer(p, opts);
    const cpu = new CpuTrainer(s.program(), opts);
    await gpu.trainStep(s.batch(p));
    cpu.trainStep(s.batch(cpu.program));
    const before = await gpu.parameters();
    const stateBefore = await gpu.saveState();
    const good = s.batch(p);
    const h = (good.h!.data as Float32Array).slice();
    // +Infinity rather than NaN: the tail starts with Relu, and the GPU's Relu (WGSL max) need not propagate NaN.
    h[5] = Infinity;
    const bad = { ...good, h: tensorFromNumbers('float32', good.h!.shape, h) };
    const g = await gpu.trainStep(bad);
    const c = cpu.trainStep(bad);
    expect(g.skipped).toBe(true);
    expect(g.reason).toBe(c.reason);
    expect(g.step).toBe(1);
    expect(Number.isNaN(g.gradNorm)).toBe(true);
    const after = await gpu.parameters();
    for (const k of Object.keys(before)) expect(after[k]!.data).toEqual(before[k]!.data);
    const stateAfter = await gpu.saveState();
    stateAfter.slots.forEach((sl, k) => expect(sl).toEqual(stateBefore.slots[k]));
    expect(stateAfter.attempts).toBe(stateBefore.attempts + 1);
    // Training continues normally afterwards, still in step with the CPU.
    expectReportsClose(await gpu.trainStep(good), cpu.trainStep(s.batch(cpu.program)), 'after the skip');
  });

  it('a trainable parameter the loss does not reach keeps a zero gradient and trains like the CPU (AdamW decays it)', async () => {
    const tail: Graph = {
      name: 'lin', inputs: [{ name: 'h', dtype: 'float32', shape: ['N', 3] }], outputs: [{ name: 'logits', dtype: 'float32' }],
      initializers: {
        w: tensorFromNumbers('float32', [3, 2], [0.1, -0.2, 0.3, 0.4, -0.5, 0.6]),
        unused: tensorFromNumbers('float32', [5], [1, 2, 3, 4, 5]),
      },
      nodes: [{ name: 'mm', op: 'MatMul', domain: '', inputs: ['h', 'w'], outputs: ['logits'], attrs: {} }],
      values: {},
    };
    const program = () => createTrainingProgram(tail, { loss: { kind: 'cross-entropy' }, trainable: ['w', 'unused'] });
    const opts: TrainerOptions = { optimizer: { kind: 'adamw', lr: 0.1, weightDecay: 0.5 } };
    const gp = program();
    expect(gp.unreachable).toEqual(['unused']);
    const gpu = await gpuTrainer(gp, opts);
    const cpu = new CpuTrainer(program(), opts);
    const batch = { h: tensorFromNumbers('float32', [4, 3], [1, 0, 2, -1, 1, 0, 0.5, 0.5, -2, 3, 1, 1]), [gp.target]: tensorFromNumbers('int64', [4], [0, 1, 1, 0]) };
    for (let k = 0; k < 3; k++) expectReportsClose(await gpu.trainStep(batch), cpu.trainStep(batch), `step ${k}`);
    expectParamsClose(await gpu.parameters(), cpu.parameters(), 1e-5);
  });

  it('skips a step whose gradient is not finite even when the loss is, naming the parameter and element', async () => {
    const tail: Graph = {
      name: 'div', inputs: [{ name: 'h', dtype: 'float32', shape: ['N', 2] }], outputs: [{ name: 'logits', dtype: 'float32' }],
      initializers: { b: tensorFromNumbers('float32', [2], [1e-30, 1]) },
      nodes: [{ name: 'div', op: 'Div', domain: '', inputs: ['h', 'b'], outputs: ['logits'], attrs: {} }],
      values: {},
    };
    const program = createTrainingProgram(tail, { loss: { kind: 'cross-entropy' } });
    const gpu = await gpuTrainer(program, { optimizer: sgd({ lr: 0.1 }) });
    const report = await gpu.trainStep({ h: tensorFromNumbers('float32', [4, 2], new Array(8).fill(1)), [program.target]: tensorFromNumbers('int64', [4], [1, 1, 1, 1]) });
    expect(Number.isFinite(report.loss)).toBe(true);
    expect(report.skipped).toBe(true);
    expect(report.reason).toMatch(/gradient of 'b' holds -Infinity \(element 0\)/);
    expect(Array.from((await gpu.parameters()).b!.data as Float32Array)).toEqual([1e-30, 1].map(Math.fround));
    expect(gpu.stepCount).toBe(0);
  });
});
