import { describe, expect, it } from 'vitest';
import { sessionInternals, setSessionInternals } from '../../sdk/internal.js';
import {
  DeviceError, DisposedTensorError, DTypeError, FineTuner, InvalidArgumentError, SessionReleasedError, ShapeError, Tensor, adam,
} from '../../sdk/node.js';
import { mlp } from '../train/model-fixtures.js';
import { images, int64, range, session, sessionOf, trainImages, trainSet } from './fine-tuner-helpers.js';

/** Every bad input is a typed error that says what to do, raised before anything trains. */
describe('FineTuner input validation', () => {
  const data = trainSet(range(8));

  it('checks the session and the options', async () => {
    await expect(FineTuner.create({}, { trainFrom: 'fc' })).rejects.toThrow(InvalidArgumentError);
    const s = await session();
    await expect(FineTuner.create(s, {})).rejects.toThrow(/trainFrom.*newHead/);
    await expect(FineTuner.create(s, { newHead: { classes: 0 } })).rejects.toThrow(/newHead.classes must be a positive integer/);
    await expect(FineTuner.create(s, { newHead: { classes: 2 }, loss: 'hinge' as 'mse' })).rejects.toThrow(/Unknown loss "hinge"/);
    await expect(FineTuner.create(s, { newHead: { classes: 2 }, optimizer: adam({ lr: -1 }) })).rejects.toThrow(/lr must be >= 0/);
    await expect(FineTuner.create(s, { newHead: { classes: 2 }, output: 'probs' })).rejects.toThrow(/Unknown output 'probs'.*'logits'/);
    await expect(FineTuner.create(s, { newHead: { classes: 2 }, clip: { norm: 0 } })).rejects.toThrow(/clip.norm must be > 0/);
    await s.release();
  });

  it('names the closest candidates for an unknown trainFrom', async () => {
    const s = await session();
    const err = await FineTuner.create(s, { trainFrom: 'fc' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(/trainFrom 'fc' is not a node, value or initializer.*'\/fc\/Gemm' \(Gemm node\)/);
    expect((err as InvalidArgumentError).details.candidates).toContain('/fc/Gemm');
    // BatchNormalization is kept for training (not folded as for inference): a cut there trains its scale and bias.
    const bn = await FineTuner.create(s, { trainFrom: '/bn2/BatchNormalization' });
    expect(bn.trainable).toEqual(expect.arrayContaining(['bn2.weight', 'bn2.bias', 'fc.weight', 'fc.bias']));
    expect(bn.trainable).not.toContain('bn2.running_mean');
    expect(bn.trainable).not.toContain('conv2.weight');
    bn.dispose();
    // An initializer name works as a cut (its readers train).
    expect((await FineTuner.create(s, { trainFrom: 'fc.weight' })).trainFrom).toBe('fc.weight');
    await s.release();
  });

  it('rejects wrong label counts, dtypes, shapes and class ids', async () => {
    const s = await session();
    const tuner = await FineTuner.create(s, { newHead: { classes: 5 } });
    const x = images(trainImages, range(8));
    await expect(tuner.fit({ inputs: x, labels: int64(range(7)) })).rejects.toThrow(ShapeError);
    await expect(tuner.fit({ inputs: x, labels: int64(range(7)) })).rejects.toThrow(/labels hold 7 examples but the inputs hold 8/);
    await expect(tuner.fit({ inputs: x, labels: new Tensor('float32', new Float32Array(8), [8]) })).rejects.toThrow(DTypeError);
    await expect(tuner.fit({ inputs: x, labels: new Tensor('float32', new Float32Array(8), [8]) })).rejects.toThrow(/int64 or int32 class ids, got float32/);
    await expect(tuner.fit({ inputs: x, labels: [0, 1, 2, 3, 4, 5, 0, 1] })).rejects.toThrow(/labels\[5\] is class 5, outside \[0, 5\)/);
    await expect(tuner.fit({ inputs: x, labels: [0, 1, 2, 3, 4, 0.5, 0, 1] })).rejects.toThrow(/integer class ids/);
    await expect(tuner.fit({ inputs: new Tensor('float64', new Float64Array(8 * 64), [8, 1, 8, 8]), labels: data.labels })).rejects.toThrow(/data.inputs must be float32, got float64/);
    await expect(tuner.fit({ inputs: new Tensor('float32', new Float32Array(8 * 49), [8, 1, 7, 7]), labels: data.labels })).rejects.toThrow(/dimension 2 must be 8 \[N, 1, 8, 8\]/);
    await expect(tuner.fit({ inputs: [images(trainImages, [0]), images(trainImages, [1, 2])], labels: [0, 1] })).rejects.toThrow(/per-example tensor is one row|same shape/);
    await expect(tuner.fit({ inputs: { image: x }, labels: data.labels })).rejects.toThrow(/Unknown input 'image'.*'input'/);
    await expect(tuner.fit({ inputs: x } as never)).rejects.toThrow(/fit needs labels/);
    await expect(tuner.fit(data, { epochs: 0 })).rejects.toThrow(/epochs must be a positive integer/);
    await expect(tuner.fit(data, { batchSize: 1.5 })).rejects.toThrow(/batchSize must be a positive integer/);
    await expect(tuner.fit(data, { batchSize: 16, dropLast: true })).rejects.toThrow(/leaves no batch/);
    await expect(tuner.setWeights({ 'fc.weight': new Tensor('float32', new Float32Array(10), [10]) })).rejects.toThrow(/has shape \[5, 64\], got \[10\]/);
    await expect(tuner.setWeights({ 'conv.w': new Tensor('float32', new Float32Array(1), [1]) })).rejects.toThrow(/not a trainable weight.*'fc.weight'/);
    expect(tuner.stepCount).toBe(0);
    await s.release();
  });

  it('refuses a disposed tuner, a released session, and a second fit while one runs', async () => {
    const s = await session();
    const tuner = await FineTuner.create(s, { newHead: { classes: 5 } });
    let second: Promise<unknown> | undefined;
    await tuner.fit(data, { batchSize: 4, onProgress: () => { second ??= tuner.fit(data).catch((e: unknown) => e); } });
    expect(await second).toBeInstanceOf(InvalidArgumentError);
    expect(String(await second)).toMatch(/while fit\(\) is running/);

    tuner.dispose();
    tuner.dispose(); // idempotent
    await expect(tuner.fit(data)).rejects.toThrow(DisposedTensorError);
    await expect(tuner.exportOnnx()).rejects.toThrow(/FineTuner was disposed/);

    const live = await FineTuner.create(s, { newHead: { classes: 5 } });
    await s.release();
    await expect(live.fit(data)).rejects.toThrow(SessionReleasedError);
    await expect(live.saveCheckpoint()).rejects.toThrow(SessionReleasedError);
    await expect(FineTuner.create(s, { newHead: { classes: 5 } })).rejects.toThrow(SessionReleasedError);
  });

  it('says when a model has no classifier head to replace, or nothing trains after the cut', async () => {
    const g = mlp(3, { hidden: 4 });
    g.nodes.push({ name: 'softmax', op: 'Softmax', domain: '', inputs: ['logits'], outputs: ['probs'], attrs: {} });
    g.outputs = [{ name: 'probs', dtype: 'float32' }];
    const s = await sessionOf(g);
    await expect(FineTuner.create(s, { newHead: { classes: 3 } })).rejects.toThrow(/computed by Softmax node 'softmax'/);
    await expect(FineTuner.create(s, { trainFrom: 'softmax' })).rejects.toThrow(/Nothing trains after trainFrom 'softmax'/);
    await expect(FineTuner.create(s, { trainFrom: 'fc1', newHead: undefined, loss: 'mse' })).resolves.toBeInstanceOf(FineTuner);
    // Two-input models take inputs by name.
    const two = mlp(3, { hidden: 4 });
    two.inputs.push({ name: 'bias_in', dtype: 'float32', shape: ['N', 2] });
    two.nodes[0] = { ...two.nodes[0]!, inputs: ['x2', 'fc1.weight', 'fc1.bias'] };
    two.nodes.unshift({ name: 'add_in', op: 'Add', domain: '', inputs: ['x', 'bias_in'], outputs: ['x2'], attrs: {} });
    const t2 = await FineTuner.create(await sessionOf(two), { trainFrom: 'fc2' });
    const x = new Tensor('float32', new Float32Array(8), [4, 2]);
    await expect(t2.fit({ inputs: x, labels: [0, 1, 0, 1] })).rejects.toThrow(/needs 2 inputs \('x', 'bias_in'\)|needs 2 inputs \('bias_in', 'x'\)/);
    await expect(t2.fit({ inputs: { x }, labels: [0, 1, 0, 1] })).rejects.toThrow(/Missing input 'bias_in'/);
    const r = await t2.fit({ inputs: { x, bias_in: [...range(4)].map(() => new Tensor('float32', new Float32Array(2), [2])) }, labels: [0, 1, 0, 1] });
    expect(r.steps).toBe(1);
  });

  it('hands a WebGPU session to the WebGPU trainer (device errors come through typed)', async () => {
    const fake = {};
    const cpu = sessionInternals(await sessionOf(mlp(1)));
    let asked = 0;
    setSessionInternals(fake, {
      ...cpu,
      backend: 'webgpu',
      gpu: async () => {
        asked++;
        throw new DeviceError('NO_ADAPTER', 'no adapter in this test');
      },
    });
    const err = await FineTuner.create(fake, { trainFrom: 'fc2' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceError);
    expect((err as DeviceError).code).toBe('NO_ADAPTER');
    expect(asked).toBe(1);
  });
});
