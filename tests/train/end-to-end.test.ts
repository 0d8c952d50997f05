import { describe, expect, it } from 'vitest';
import { runGraphCpu } from '../../runtime/backends/cpu/executor.js';
import type { Graph } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, tensorToNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { adam, rmsprop, sgd } from '../../runtime/train/optimizers.js';
import { createTrainingProgram } from '../../runtime/train/program.js';
import { cosineLr, warmup } from '../../runtime/train/schedules.js';
import { splitGraph } from '../../runtime/train/split.js';
import { CpuTrainer, type TrainerOptions } from '../../runtime/train/trainer-cpu.js';
import { mlp, toyData } from './model-fixtures.js';

/**
 * End to end on the CPU reference: split a Gemm -> Relu -> Gemm model at the first Gemm's output, compute the
 * trunk's features once (frozen), train the tail on a separable toy problem.
 */
function setup(opts: { dropout?: number } = {}) {
  const model = mlp(7, { hidden: 32, dropout: opts.dropout });
  const split = splitGraph(model, 'h');
  const data = toyData(11, 64);
  const feats = runGraphCpu(split.trunk, { x: data.x })['h']!; // cached features: the trunk never runs again
  const program = createTrainingProgram(split.tail, { loss: { kind: 'cross-entropy' }, trainable: split.trainable });
  return { model, split, data, feats, program };
}

function accuracy(logits: HostTensor, labels: HostTensor): number {
  const l = tensorToNumbers(logits);
  const y = tensorToNumbers(labels);
  let ok = 0;
  for (let i = 0; i < y.length; i++) ok += (l[2 * i + 1]! > l[2 * i]! ? 1 : 0) === y[i] ? 1 : 0;
  return ok / y.length;
}

function train(opts: TrainerOptions, steps: number, dropout?: number) {
  const s = setup({ dropout });
  const trainer = new CpuTrainer(s.program, opts);
  const batch = { h: s.feats, [s.program.target]: s.data.labels };
  const losses = Array.from({ length: steps }, () => trainer.trainStep(batch).loss);
  return { ...s, trainer, batch, losses };
}

describe('training the tail of a split model (CPU reference)', () => {
  it('Adam drives the loss down and fits the separable problem', () => {
    const { trainer, batch, losses, program, data } = train({ optimizer: adam({ lr: 0.05 }) }, 60);
    const before = losses[0]!;
    const after = trainer.evaluate(batch)[program.loss]!;
    expect(tensorToNumbers(after)[0]!).toBeLessThan(0.4 * before);
    // Mostly monotone: full-batch Adam at this rate may wobble a little, but every 10-step window improves.
    for (let k = 10; k < losses.length; k += 10) expect(losses[k]!).toBeLessThan(losses[k - 10]!);
    // Predictions need no target: only the model outputs are computed then.
    const predictions = trainer.evaluate({ h: batch.h! });
    expect(Object.keys(predictions)).toEqual(['logits']);
    expect(accuracy(predictions['logits']!, data.labels)).toBeGreaterThanOrEqual(0.9);
  });

  it('is deterministic: the same run twice gives bit-identical losses and weights', () => {
    const a = train({ optimizer: adam({ lr: 0.05 }), seed: 3 }, 15, 0.2);
    const b = train({ optimizer: adam({ lr: 0.05 }), seed: 3 }, 15, 0.2);
    expect(a.losses).toEqual(b.losses);
    for (const [k, t] of Object.entries(a.trainer.parameters())) expect(t.data).toEqual(b.trainer.parameters()[k]!.data);
    // A different seed draws different Dropout masks.
    const c = train({ optimizer: adam({ lr: 0.05 }), seed: 4 }, 15, 0.2);
    expect(c.losses).not.toEqual(a.losses);
  });

  it('trains only the tail: the trunk weights and the model graph are untouched', () => {
    const { split, model } = train({ optimizer: sgd({ lr: 0.5, momentum: 0.9 }) }, 5);
    expect(split.trunk.initializers['fc1.weight']).toBe(model.initializers['fc1.weight']);
    const fresh = mlp(7, { hidden: 32 });
    expect(model.initializers['fc2.weight']!.data).toEqual(fresh.initializers['fc2.weight']!.data);
  });

  it('runs with a schedule, clipping and other optimizers', () => {
    const sched = warmup(cosineLr(0.05, { totalSteps: 30 }), { steps: 5, startFactor: 0.2 });
    const s = setup();
    const trainer = new CpuTrainer(s.program, { optimizer: rmsprop({ lr: 0.05 }), schedule: sched, clip: { norm: 0.5, value: 1 } });
    const batch = { h: s.feats, [s.program.target]: s.data.labels };
    const reports = Array.from({ length: 30 }, () => trainer.trainStep(batch));
    expect(reports.map((r) => r.lr)).toEqual(Array.from({ length: 30 }, (_, t) => sched(t)));
    expect(reports[29]!.loss).toBeLessThan(reports[0]!.loss);
    expect(reports.every((r) => !r.skipped && Number.isFinite(r.gradNorm))).toBe(true);
  });

  it('skips a step whose loss is NaN and keeps weights and optimizer state intact', () => {
    const s = setup();
    const trainer = new CpuTrainer(s.program, { optimizer: adam({ lr: 0.05 }) });
    const batch = { h: s.feats, [s.program.target]: s.data.labels };
    trainer.trainStep(batch);
    const flatBefore = trainer.buffers.flat.slice();
    const poisoned = Float32Array.from(s.feats.data as Float32Array);
    poisoned[5] = NaN;
    const report = trainer.trainStep({ ...batch, h: tensorFromNumbers('float32', s.feats.shape, poisoned) });
    expect(report.skipped).toBe(true);
    expect(report.reason).toMatch(/loss is NaN/);
    expect(report.step).toBe(1);
    expect(trainer.step).toBe(1);
    const L = s.program.layout.length;
    // Params and both Adam slots are bit-identical (the gradient section holds the bad gradients for inspection).
    expect(trainer.buffers.params).toEqual(flatBefore.subarray(0, L));
    expect(trainer.buffers.slots[0]).toEqual(flatBefore.subarray(2 * L, 3 * L));
    expect(trainer.buffers.slots[1]).toEqual(flatBefore.subarray(3 * L, 4 * L));
    // Training continues normally afterwards.
    const next = trainer.trainStep(batch);
    expect(next.skipped).toBe(false);
    expect(next.step).toBe(2);
  });

  it('skips a step whose gradient is not finite even when the loss is', () => {
    // logits = h / b with b[0] = 1e-30: the logits (1e30) and the loss (about 1e30) are finite float32 numbers, but
    // d loss / d b[0] = -sum(dY * y / b) is about -1e60, which overflows float32 to -Infinity.
    const tail: Graph = {
      name: 'div', inputs: [{ name: 'h', dtype: 'float32', shape: ['N', 2] }], outputs: [{ name: 'logits', dtype: 'float32' }],
      initializers: { b: tensorFromNumbers('float32', [2], [1e-30, 1]) },
      nodes: [{ name: 'div', op: 'Div', domain: '', inputs: ['h', 'b'], outputs: ['logits'], attrs: {} }],
      values: {},
    };
    const program = createTrainingProgram(tail, { loss: { kind: 'cross-entropy' } });
    const trainer = new CpuTrainer(program, { optimizer: sgd({ lr: 0.1 }) });
    const before = trainer.parameters();
    const report = trainer.trainStep({ h: tensorFromNumbers('float32', [4, 2], new Array(8).fill(1)), [program.target]: tensorFromNumbers('int64', [4], [1, 1, 1, 1]) });
    expect(Number.isFinite(report.loss)).toBe(true);
    expect(report.skipped).toBe(true);
    expect(report.reason).toMatch(/gradient of 'b' holds -Infinity \(element 0\)/);
    expect(trainer.parameters().b!.data).toEqual(before.b!.data);
    expect(trainer.step).toBe(0);
  });

});
