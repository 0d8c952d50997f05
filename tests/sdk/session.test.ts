import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DeviceError, DisposedTensorError, DTypeError, InferenceSession, InvalidArgumentError, ModelFormatError,
  SessionReleasedError, ShapeError, Tensor,
} from '../../sdk/node.js';

const modelPath = fileURLToPath(new URL('../fixtures/digits/digits-cnn.onnx', import.meta.url));

describe('InferenceSession on the CPU backend', () => {
  let session: InferenceSession;
  const image = () => new Tensor('float32', new Float32Array(2 * 64).fill(0.5), [2, 1, 8, 8]);

  beforeAll(async () => {
    session = await InferenceSession.create(modelPath, { backend: 'cpu' });
  });

  it('exposes names and metadata like onnxruntime-web', () => {
    expect(session.inputNames).toEqual(['input']);
    expect(session.outputNames).toEqual(['logits']);
    expect(session.inputMetadata[0]!.type).toBe('float32');
    expect(session.inputMetadata[0]!.shape.slice(1)).toEqual([1, 8, 8]);
    expect(typeof session.inputMetadata[0]!.shape[0]).toBe('string'); // the dynamic batch axis
  });

  it('runs with feeds, fetches array or { outputs }', async () => {
    const a = await session.run({ input: image() });
    expect(a.logits!.dims).toEqual([2, 10]);
    const b = await session.run({ input: image() }, ['logits']);
    const c = await session.run({ input: image() }, { outputs: ['logits'] });
    expect(b.logits!.data).toEqual(a.logits!.data);
    expect(c.logits!.data).toEqual(a.logits!.data);
  });

  it('loads from bytes and ArrayBuffer as from a path', async () => {
    const bytes = new Uint8Array(await readFile(modelPath));
    const s1 = await InferenceSession.create(bytes, { executionProviders: ['cpu'] });
    const s2 = await InferenceSession.create(bytes.slice().buffer, { backend: 'cpu' });
    const ref = (await session.run({ input: image() })).logits!.data;
    expect((await s1.run({ input: image() })).logits!.data).toEqual(ref);
    expect((await s2.run({ input: image() })).logits!.data).toEqual(ref);
  });

  it('rejects wrong feeds with typed errors that say what was expected', async () => {
    await expect(session.run({ image: image() } as never)).rejects.toThrow(InvalidArgumentError);
    await expect(session.run({ image: image() } as never)).rejects.toThrow(/inputs are 'input'/);
    await expect(session.run({})).rejects.toThrow(/Missing input 'input'/);
    await expect(session.run({ input: new Tensor('int32', new Int32Array(64), [1, 1, 8, 8]) })).rejects.toThrow(DTypeError);
    await expect(session.run({ input: new Tensor('float32', new Float32Array(64), [1, 8, 8]) })).rejects.toThrow(ShapeError);
    await expect(session.run({ input: new Tensor('float32', new Float32Array(81), [1, 1, 9, 9]) })).rejects.toThrow(/dimension 2 must be 8/);
    await expect(session.run({ input: image() }, ['probabilities'])).rejects.toThrow(/Unknown output 'probabilities'/);
    const t = image();
    t.dispose();
    await expect(session.run({ input: t })).rejects.toThrow(DisposedTensorError);
    await expect(session.run([image()] as never)).rejects.toThrow(InvalidArgumentError);
  });

  it('reports per-node placement before the first run', () => {
    const r = session.report();
    expect(r.backend).toBe('cpu');
    expect(r.nodes.length).toBeGreaterThan(0);
    expect(r.nodes.every((n) => n.backend === 'cpu')).toBe(true);
    expect(r.nodes.some((n) => n.op === 'BatchNormalization')).toBe(false); // folded into the convs
    expect(r.weightBytes).toBeGreaterThan(0);
  });

  it('a released session refuses to run', async () => {
    const s = await InferenceSession.create(modelPath, { backend: 'cpu' });
    await s.release();
    await s.release();
    await expect(s.run({ input: image() })).rejects.toThrow(SessionReleasedError);
  });
});

describe('InferenceSession.create errors', () => {
  it('a missing file, bad options and garbage bytes are typed errors', async () => {
    await expect(InferenceSession.create('/nonexistent/model.onnx', { backend: 'cpu' })).rejects.toThrow(InvalidArgumentError);
    await expect(InferenceSession.create(modelPath, { backend: 'metal' as never })).rejects.toThrow(InvalidArgumentError);
    await expect(InferenceSession.create(new Uint8Array([1, 2, 3, 4, 5]), { backend: 'cpu' })).rejects.toThrow(ModelFormatError);
    await expect(InferenceSession.create(42 as never)).rejects.toThrow(InvalidArgumentError);
  });
});
