import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importOnnx } from '../../importers/onnx/index.js';
import type { GpuResources } from '../../runtime/backends/webgpu/executor.js';
import { GpuTrainer } from '../../runtime/backends/webgpu/trainer.js';
import { tensorFromNumbers, tensorToNumbers } from '../../runtime/ir/tensor.js';
import { adam } from '../../runtime/train/optimizers.js';
import { createTrainingProgram } from '../../runtime/train/program.js';
import { splitGraph } from '../../runtime/train/split.js';
import { CpuTrainer } from '../../runtime/train/trainer-cpu.js';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';
import { f32File, fixtureUrl, labelsFile, meta, rows } from '../train/transfer-fixture.js';

/**
 * The real transfer-learning replay on WebGPU (the fixture of tests/train/transfer-replay.test.ts): the digits04
 * CNN's 64 -> 5 head, trained for the 60 Adam steps PyTorch recorded, on the exact batches PyTorch used. GpuTrainer
 * must follow PyTorch's loss curve within 1e-3 per step, end within 1 point of its held-out accuracy, and stay close
 * to the CPU reference trainer's weights.
 */

let res: GpuResources;
const trainers: GpuTrainer[] = [];
beforeAll(async () => {
  res = await gpuForTests();
  console.log(`training replay on ${describeDevice(res)}`);
});
afterAll(() => trainers.forEach((t) => t.dispose()));

async function headProgram() {
  const { graph } = await importOnnx(new Uint8Array(readFileSync(fixtureUrl(meta.trunk.file))));
  const split = splitGraph(graph, meta.trunk.head_node);
  split.tail.initializers['fc.weight'] = tensorFromNumbers('float32', [5, 64], (meta.initial.weight as number[][]).flat());
  split.tail.initializers['fc.bias'] = tensorFromNumbers('float32', [5], meta.initial.bias);
  return createTrainingProgram(split.tail, { loss: { kind: 'cross-entropy' }, trainable: split.trainable });
}

describe('fine-tuning the digits CNN head on WebGPU, replayed against PyTorch', () => {
  const nTrain: number = meta.data.train_size;
  const nHeld: number = meta.data.heldout_size;
  const trainFeats = f32File('train-features.f32', [nTrain, 64]);
  const heldFeats = f32File('heldout-features.f32', [nHeld, 64]);
  const trainLabels = labelsFile('train-labels.u8');
  const heldLabels = labelsFile('heldout-labels.u8');

  it('follows PyTorch loss per step (1e-3), its held-out accuracy (1 point), and the CPU trainer', async () => {
    const ht = meta.head_training;
    const optimizer = adam({ lr: ht.optimizer.lr, betas: ht.optimizer.betas, eps: ht.optimizer.eps });
    const program = await headProgram();
    const gpu = await GpuTrainer.create(res, program, { optimizer });
    trainers.push(gpu);
    const cpu = new CpuTrainer(await headProgram(), { optimizer });
    const perEpoch = nTrain / ht.batch_size;
    const feature = meta.trunk.feature_value as string;
    let worst = 0;
    for (let s = 0; s < ht.steps; s++) {
      const order: number[] = ht.order[Math.floor(s / perEpoch)];
      const idx = order.slice((s % perEpoch) * ht.batch_size, (s % perEpoch + 1) * ht.batch_size);
      const batch = {
        [feature]: rows(trainFeats, idx),
        [program.target]: tensorFromNumbers('int64', [idx.length], idx.map((i) => trainLabels[i]!)),
      };
      const report = await gpu.trainStep(batch);
      const ref = cpu.trainStep(batch);
      expect(report.skipped).toBe(false);
      expect(report.step).toBe(s + 1);
      expect(Math.abs(report.loss - meta.losses[s]), `loss at step ${s}: ${report.loss} vs PyTorch ${meta.losses[s]}`).toBeLessThan(1e-3);
      expect(Math.abs(report.gradNorm - ref.gradNorm) / (ref.gradNorm + 1e-6), `grad norm at step ${s}`).toBeLessThan(1e-3);
      worst = Math.max(worst, Math.abs(report.loss - meta.losses[s]));
    }
    console.log(`GPU replay: worst |loss - PyTorch| over ${ht.steps} steps = ${worst.toExponential(2)}; ${gpu.lastStepDispatches} dispatches in 1 submit per step`);
    const p = await gpu.parameters();
    const w = tensorToNumbers(p['fc.weight']!);
    (meta.final.weight as number[][]).flat().forEach((v, i) => expect(Math.abs(w[i]! - v), `fc.weight[${i}]`).toBeLessThan(1e-3));
    const cw = tensorToNumbers(cpu.parameters()['fc.weight']!);
    cw.forEach((v, i) => expect(Math.abs(w[i]! - v), `fc.weight[${i}] vs CPU`).toBeLessThan(1e-4));

    const out = await gpu.evaluate({ [feature]: heldFeats });
    expect(Object.keys(out)).toEqual(['logits']);
    const logits = tensorToNumbers(out['logits']!);
    let ok = 0;
    heldLabels.forEach((y, i) => {
      const row = Array.from(logits.subarray(i * 5, i * 5 + 5));
      ok += row.indexOf(Math.max(...row)) === y ? 1 : 0;
    });
    expect(Math.abs(ok / nHeld - meta.final.heldout_accuracy)).toBeLessThanOrEqual(0.01);
    // With the target, the loss too (mean cross-entropy over the held-out set), as the CPU computes it.
    const withLoss = await gpu.evaluate({ [feature]: heldFeats, [program.target]: tensorFromNumbers('int64', [nHeld], heldLabels) });
    const cpuLoss = tensorToNumbers(cpu.evaluate({ [feature]: heldFeats, [program.target]: tensorFromNumbers('int64', [nHeld], heldLabels) })[program.loss]!)[0]!;
    expect(tensorToNumbers(withLoss[program.loss]!)[0]!).toBeCloseTo(cpuLoss, 4);
  });
});
