import { beforeAll, describe, expect, it } from 'vitest';
import { exportOnnx } from '../../importers/onnx/index.js';
import { adam, FineTuner, InferenceSession, Tensor, type StepProgress } from '../../sdk/node.js';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';
import { heldSet, images, int64, meta, modelPath, range, session, trainImages, trainLabels, trainSet, weightsOf } from './fine-tuner-helpers.js';

/**
 * The FineTuner on a WebGPU session (SwiftShader unless EDGEKIT_GPU=hardware): the tail trains in the WebGPU trainer
 * (runtime/backends/webgpu/trainer.ts) and must follow the PyTorch-recorded run like the CPU reference does; its
 * checkpoints load into a CPU tuner and vice versa.
 */
beforeAll(async () => {
  const res = await gpuForTests(); // fails loudly when WebGPU cannot be brought up
  console.log(`fine-tuner (webgpu): ${describeDevice(res)}`);
});

describe('FineTuner on a WebGPU session', () => {
  it('replays the recorded PyTorch run: losses within 1e-3 per step, held-out accuracy within 1 point', async () => {
    const s = await InferenceSession.create(modelPath, { backend: 'webgpu' });
    const ht = meta.head_training;
    const tuner = await FineTuner.create(s, { newHead: { classes: 5 }, optimizer: adam({ lr: ht.optimizer.lr, betas: ht.optimizer.betas, eps: ht.optimizer.eps }) });
    await tuner.setWeights({
      'fc.weight': new Tensor('float32', Float32Array.from(meta.initial.weight.flat()), [5, 64]),
      'fc.bias': new Tensor('float32', Float32Array.from(meta.initial.bias), [5]),
    });
    const losses: number[] = [];
    for (let e = 0; e < ht.epochs; e++) {
      const order = ht.order[e]!;
      await tuner.fit({ inputs: images(trainImages, order), labels: int64(order.map((i) => trainLabels[i]!)) }, {
        epochs: 1, batchSize: ht.batch_size, shuffle: false, onProgress: (p) => { if (p.type === 'step') losses.push((p as StepProgress).loss); },
      });
    }
    expect(losses).toHaveLength(ht.steps);
    expect(Math.max(...losses.map((l, k) => Math.abs(l - meta.losses[k]!)))).toBeLessThan(1e-3);
    const after = await tuner.evaluate(heldSet());
    expect(Math.abs(after.accuracy! - meta.final.heldout_accuracy)).toBeLessThanOrEqual(0.01);
    tuner.dispose();
    await s.release();
  });

  it('trains a deeper cut like the CPU reference, and checkpoints move between the backends', async () => {
    const data = trainSet(range(64));
    const opts = { trainFrom: '/conv2/Conv', newHead: { classes: 5 }, optimizer: adam({ lr: 5e-3 }), seed: 3 } as const;
    const gs = await InferenceSession.create(modelPath, { backend: 'webgpu' });
    const cs = await session();
    const gpu = await FineTuner.create(gs, opts);
    const cpu = await FineTuner.create(cs, opts);
    await gpu.fit(data, { epochs: 2, batchSize: 16 });
    await cpu.fit(data, { epochs: 2, batchSize: 16 });
    const g = await weightsOf(gpu);
    const c = await weightsOf(cpu);
    for (const k of Object.keys(c)) {
      const worst = Math.max(...c[k]!.map((v, i) => Math.abs(v - g[k]![i]!) / (1 + Math.abs(v))));
      expect(worst, k).toBeLessThan(1e-4);
    }
    const fromGpu = await FineTuner.create(cs, opts);
    await fromGpu.loadCheckpoint(await gpu.saveCheckpoint());
    expect(await weightsOf(fromGpu)).toEqual(g);
    expect(fromGpu.stepCount).toBe(8);
    const fromCpu = await FineTuner.create(gs, opts);
    await fromCpu.loadCheckpoint(await cpu.saveCheckpoint());
    expect(await weightsOf(fromCpu)).toEqual(c);
    gpu.dispose();
    fromCpu.dispose();
    await gs.release();
    await cs.release();
  });

  it('takes GPU-resident tensors (outputs of another session) as data', async () => {
    // y = Relu(x) is x for the non-negative pixels: a WebGPU session hands the images over as 'gpu-buffer' tensors.
    const relu = await InferenceSession.create(exportOnnx({
      name: 'relu', inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 1, 8, 8] }], outputs: [{ name: 'y', dtype: 'float32' }],
      initializers: {}, nodes: [{ name: 'relu', op: 'Relu', domain: '', inputs: ['x'], outputs: ['y'], attrs: {} }], values: {},
    }), { backend: 'webgpu' });
    const held = heldSet(range(40));
    const { y } = await relu.run({ x: held.inputs }, { preferredOutputLocation: 'gpu-buffer' });
    expect(y!.location).toBe('gpu-buffer');
    const s = await InferenceSession.create(modelPath, { backend: 'webgpu' });
    const tuner = await FineTuner.create(s, { trainFrom: '/fc/Gemm' });
    expect(await tuner.evaluate({ inputs: y!, labels: held.labels })).toEqual(await tuner.evaluate(held));
    y!.dispose();
    tuner.dispose();
    await relu.release();
    await s.release();
  });
});
