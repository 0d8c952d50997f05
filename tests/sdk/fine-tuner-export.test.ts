import { describe, expect, it } from 'vitest';
import { importOnnx } from '../../importers/onnx/index.js';
import { adam, FineTuner, sgd } from '../../sdk/node.js';
import { argmaxRows, relativeError } from '../helpers/compare.js';
import { runModelCpu, runModelOrt } from '../helpers/run-model.js';
import { heldImages, images, int64, range, session, trainImages, trainLabels } from './fine-tuner-helpers.js';

/**
 * exportOnnx: the session's inference graph with the trained weights, as standard ONNX bytes. onnxruntime-node must
 * load it and agree with EdgeKit (relative error max|edgekit - ort| / max|ort| below 1e-4), and both must agree with
 * what the tuner itself predicts.
 */
const REL_TOL = 1e-4;
const held = images(heldImages, range(64));

async function roundTrip(tuner: FineTuner) {
  const bytes = await tuner.exportOnnx();
  const feeds = { input: held.toHost() };
  const ours = (await runModelCpu(bytes, feeds)).logits!;
  const ort = (await runModelOrt(bytes, feeds)).logits!;
  const predicted = (await tuner.predict(held)).logits!.toHost();
  return { bytes, ours, ort, predicted };
}

describe('FineTuner.exportOnnx', () => {
  it('exports a new 3-class head that onnxruntime-node runs like EdgeKit', async () => {
    const s = await session();
    const idx = range(640).filter((i) => trainLabels[i]! < 3).slice(0, 120);
    const tuner = await FineTuner.create(s, { newHead: { classes: 3, seed: 4 }, optimizer: adam({ lr: 0.01 }) });
    await tuner.fit({ inputs: images(trainImages, idx), labels: int64(idx.map((i) => trainLabels[i]!)) }, { epochs: 2, batchSize: 16 });
    const { bytes, ours, ort, predicted } = await roundTrip(tuner);

    expect(ours.shape).toEqual([64, 3]);
    expect(relativeError(ours, ort)).toBeLessThan(REL_TOL);
    expect(argmaxRows(ours)).toEqual(argmaxRows(ort));
    expect(relativeError(predicted, ours)).toBeLessThan(REL_TOL);

    // The file holds the trained head and the session's frozen weights, under their original names.
    const { graph } = await importOnnx(bytes);
    const w = await tuner.getWeights();
    expect(graph.initializers['fc.weight']!.shape).toEqual([3, 64]);
    expect(Array.from(graph.initializers['fc.weight']!.data as Float32Array)).toEqual(Array.from(w['fc.weight']!.data as Float32Array));
    expect(graph.outputs.map((o) => o.name)).toEqual(['logits']);
    expect(graph.values['logits']?.shape?.[1]).toBe(3);
    await s.release();
  });

  it('exports trained convolution weights of a deeper cut (the frozen part unchanged)', async () => {
    const s = await session();
    const before = await tunerFree(s);
    const tuner = await FineTuner.create(s, { trainFrom: '/conv2/Conv', optimizer: sgd({ lr: 0.05, momentum: 0.9 }) });
    const idx = range(96);
    await tuner.fit({ inputs: images(trainImages, idx), labels: int64(idx.map((i) => trainLabels[i]!)) }, { epochs: 1, batchSize: 32 });
    const { bytes, ours, ort, predicted } = await roundTrip(tuner);
    expect(relativeError(ours, ort)).toBeLessThan(REL_TOL);
    expect(relativeError(predicted, ours)).toBeLessThan(REL_TOL);

    const { graph } = await importOnnx(bytes);
    const conv2 = Array.from(graph.initializers['conv2.weight']!.data as Float32Array);
    expect(conv2).toEqual(Array.from((await tuner.getWeights())['conv2.weight']!.data as Float32Array));
    expect(conv2).not.toEqual(Array.from(before['conv2.weight']!.data as Float32Array));
    expect(Array.from(graph.initializers['conv1.weight']!.data as Float32Array)).toEqual(Array.from(before['conv1.weight']!.data as Float32Array));
    // BatchNorm stays a node for training: its scale trained, its running statistics stayed frozen.
    expect(Array.from(graph.initializers['bn2.weight']!.data as Float32Array)).not.toEqual(Array.from(before['bn2.weight']!.data as Float32Array));
    expect(Array.from(graph.initializers['bn2.running_var']!.data as Float32Array)).toEqual(Array.from(before['bn2.running_var']!.data as Float32Array));
    await s.release();
  });
});

/** The session model's weights as exported before any training. */
async function tunerFree(s: Awaited<ReturnType<typeof session>>) {
  const t = await FineTuner.create(s, { trainFrom: '/conv2/Conv' });
  const { graph } = await importOnnx(await t.exportOnnx());
  t.dispose();
  return graph.initializers;
}
