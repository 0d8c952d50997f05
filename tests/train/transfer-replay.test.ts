import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { importOnnx } from '../../importers/onnx/index.js';
import { runGraphCpu } from '../../runtime/backends/cpu/executor.js';
import { tensorFromNumbers, tensorToNumbers } from '../../runtime/ir/tensor.js';
import { adam } from '../../runtime/train/optimizers.js';
import { createTrainingProgram } from '../../runtime/train/program.js';
import { splitGraph } from '../../runtime/train/split.js';
import { CpuTrainer } from '../../runtime/train/trainer-cpu.js';
import { checkGradients } from './grad-check.js';
import { f32File, fixtureUrl, labelsFile, meta, rows } from './transfer-fixture.js';

/**
 * A real model, replayed against PyTorch: the digits04 CNN fixture (Conv/BatchNorm/Relu/MaxPool trunk, Linear
 * head) is split at its head node, the trunk's features are compared with the ones PyTorch computed, and the
 * 64 -> 5 head is trained for 60 Adam steps on the exact batches PyTorch used (tests/fixtures/transfer, recorded by
 * scripts/fixtures/make_fixtures.py). Losses and final weights must follow PyTorch's.
 */

describe('fine-tuning the head of the digits CNN, replayed against PyTorch', () => {
  const nTrain: number = meta.data.train_size;
  const nHeld: number = meta.data.heldout_size;
  const trainFeats = f32File('train-features.f32', [nTrain, 64]);
  const heldFeats = f32File('heldout-features.f32', [nHeld, 64]);
  const trainLabels = labelsFile('train-labels.u8');
  const heldLabels = labelsFile('heldout-labels.u8');

  it('splits at the head node, and the frozen trunk computes PyTorch features', async () => {
    const { graph } = await importOnnx(new Uint8Array(readFileSync(fixtureUrl(meta.trunk.file))));
    const split = splitGraph(graph, meta.trunk.head_node);
    expect(split.trainable.sort()).toEqual(['fc.bias', 'fc.weight']);
    expect(split.tail.inputs.map((i) => i.name)).toEqual([meta.trunk.feature_value]);
    expect(split.tail.nodes.map((k) => k.op)).toEqual(['Gemm']);
    const images = f32File('heldout-images.f32', [nHeld, 1, 8, 8]);
    const feats = runGraphCpu(split.trunk, { [meta.trunk.input]: images })[meta.trunk.feature_value]!;
    const got = tensorToNumbers(feats);
    const want = tensorToNumbers(heldFeats);
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / (1 + Math.abs(want[i]!)));
    expect(worst).toBeLessThan(1e-5);
  });

  it('trains the head like PyTorch: 60 Adam steps, same losses and weights', async () => {
    const { graph } = await importOnnx(new Uint8Array(readFileSync(fixtureUrl(meta.trunk.file))));
    const split = splitGraph(graph, meta.trunk.head_node);
    // The new head for the new classes, initialized as PyTorch initialized it.
    split.tail.initializers['fc.weight'] = tensorFromNumbers('float32', [5, 64], (meta.initial.weight as number[][]).flat());
    split.tail.initializers['fc.bias'] = tensorFromNumbers('float32', [5], meta.initial.bias);
    const program = createTrainingProgram(split.tail, { loss: { kind: 'cross-entropy' }, trainable: split.trainable });
    const ht = meta.head_training;
    const trainer = new CpuTrainer(program, { optimizer: adam({ lr: ht.optimizer.lr, betas: ht.optimizer.betas, eps: ht.optimizer.eps }) });
    const perEpoch = nTrain / ht.batch_size;
    const feature = meta.trunk.feature_value as string;
    for (let s = 0; s < ht.steps; s++) {
      const order: number[] = ht.order[Math.floor(s / perEpoch)];
      const idx = order.slice((s % perEpoch) * ht.batch_size, (s % perEpoch + 1) * ht.batch_size);
      const report = trainer.trainStep({
        [feature]: rows(trainFeats, idx),
        [program.target]: tensorFromNumbers('int64', [idx.length], idx.map((i) => trainLabels[i]!)),
      });
      expect(report.skipped).toBe(false);
      expect(report.loss, `loss at step ${s}`).toBeCloseTo(meta.losses[s], 4);
    }
    const p = trainer.parameters();
    const w = tensorToNumbers(p['fc.weight']!);
    (meta.final.weight as number[][]).flat().forEach((v, i) => expect(w[i]!, `fc.weight[${i}]`).toBeCloseTo(v, 4));
    const b = tensorToNumbers(p['fc.bias']!);
    (meta.final.bias as number[]).forEach((v, i) => expect(b[i]!).toBeCloseTo(v, 4));

    const logits = tensorToNumbers(trainer.evaluate({ [feature]: heldFeats })['logits']!);
    let ok = 0;
    heldLabels.forEach((y, i) => {
      const row = Array.from(logits.subarray(i * 5, i * 5 + 5));
      ok += row.indexOf(Math.max(...row)) === y ? 1 : 0;
    });
    expect(ok / nHeld).toBeCloseTo(meta.final.heldout_accuracy, 2);
  });

  it('differentiates a deeper tail of the imported model (Conv, BatchNorm, Relu, MaxPool, Flatten, Gemm) correctly', async () => {
    const { graph } = await importOnnx(new Uint8Array(readFileSync(fixtureUrl(meta.trunk.file))));
    const convs = graph.nodes.filter((k) => k.op === 'Conv');
    expect(convs).toHaveLength(2);
    const split = splitGraph(graph, convs[1]!.name);
    expect(split.tail.nodes.map((k) => k.op)).toEqual(expect.arrayContaining(['Conv', 'BatchNormalization', 'Relu', 'MaxPool', 'Gemm']));
    const images = f32File('heldout-images.f32', [nHeld, 1, 8, 8]);
    const two = tensorFromNumbers('float32', [2, 1, 8, 8], (images.data as Float32Array).subarray(0, 128));
    const cut = split.tail.inputs[0]!;
    const x = runGraphCpu(split.trunk, { [meta.trunk.input]: two })[cut.name]!;
    const params = Object.fromEntries(split.trainable.map((k) => [k, split.tail.initializers[k]!]));
    const consts = Object.fromEntries(Object.entries(split.tail.initializers).filter(([k]) => !(k in params)));
    expect(Object.keys(params).length).toBeGreaterThanOrEqual(6); // conv W/B, BN scale/bias, fc weight/bias
    checkGradients({ inputs: { [cut.name]: [x.shape, x] }, params, consts, nodes: split.tail.nodes, output: split.tail.outputs[0]!.name });
  });
});
