import { beforeAll, describe, expect, it } from 'vitest';
import { exportOnnx } from '../../importers/onnx/index.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession, InvalidArgumentError, Tensor } from '../../sdk/node.js';
import { allClose } from '../helpers/compare.js';
import { attr, buildGraph, f32, node } from '../helpers/ir-builder.js';
import { Rng } from '../helpers/random.js';
import { runModelOrt } from '../helpers/run-model.js';
import { gpuForTests } from '../helpers/webgpu-env.js';

/**
 * session.createStream: a stateful LSTM (initial_h/initial_c in, Y_h/Y_c out, as a streaming voice model exports
 * it) run chunk by chunk must equal one run over the whole sequence, on WebGPU (state kept on the GPU) and on the
 * CPU; 1,000 chunks leave GPU memory where the first chunk left it.
 */

const HIDDEN = 5;
const FEATURES = 3;

function lstmModel(): Uint8Array {
  const rng = new Rng(7);
  const rand = (shape: number[]) => f32(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(-0.6, 0.6)), shape);
  const g = buildGraph({
    inputs: [
      ['audio', 'float32', ['time', 'batch', FEATURES]],
      ['h0', 'float32', [1, 'batch', HIDDEN]],
      ['c0', 'float32', [1, 'batch', HIDDEN]],
    ],
    initializers: { W: rand([1, 4 * HIDDEN, FEATURES]), R: rand([1, 4 * HIDDEN, HIDDEN]), B: rand([1, 8 * HIDDEN]) },
    nodes: [
      node('LSTM', ['audio', 'W', 'R', 'B', '', 'h0', 'c0'], ['Y', 'hn', 'cn'], { hidden_size: attr(HIDDEN) }),
      node('ReduceMean', ['Y'], ['activity'], { keepdims: attr(0) }),
    ],
    outputs: ['Y', 'activity', 'hn', 'cn'],
  });
  return exportOnnx(g);
}

const bytes = lstmModel();

function chunkOf(x: Float32Array, from: number, to: number, batch: number): Tensor {
  return new Tensor('float32', x.slice(from * batch * FEATURES, to * batch * FEATURES), [to - from, batch, FEATURES]);
}

beforeAll(async () => {
  await gpuForTests();
});

describe.each([
  ['webgpu', 1e-4],
  ['cpu', 1e-5],
] as const)('createStream on %s', (backend, rtol) => {
  it('chunk by chunk equals one run over the whole sequence (and onnxruntime-node)', async () => {
    const batch = 2;
    const steps = 12;
    const rng = new Rng(11);
    const x = Float32Array.from({ length: steps * batch * FEATURES }, () => rng.uniform());
    const zeros = () => ({ dtype: 'float32', shape: [1, batch, HIDDEN], data: new Float32Array(batch * HIDDEN) }) as HostTensor;
    const whole = await runModelOrt(bytes, { audio: { dtype: 'float32', shape: [steps, batch, FEATURES], data: x }, h0: zeros(), c0: zeros() });
    const session = await InferenceSession.create(bytes, { backend });
    try {
      const stream = session.createStream({ state: { h0: 'hn', c0: 'cn' } });
      const ys: number[] = [];
      let last: Record<string, Tensor> = {};
      for (const [from, to] of [[0, 3], [3, 4], [4, 9], [9, 12]] as const) {
        last = await stream.run({ audio: chunkOf(x, from, to, batch) }, { outputs: ['Y', 'hn'] });
        ys.push(...(last.Y!.data as Float32Array));
      }
      expect(stream.position).toBe(4);
      const y = allClose({ dtype: 'float32', shape: whole.Y!.shape, data: Float32Array.from(ys) }, whole.Y!, { rtol, atol: rtol });
      expect(y.ok, y.message).toBe(true);
      // A state output asked for by name comes back as a CPU copy the caller owns.
      expect(last.hn!.location).toBe('cpu');
      const h = allClose(last.hn!.toHost(), whole.hn!, { rtol, atol: rtol });
      expect(h.ok, h.message).toBe(true);

      // reset(): the next chunk starts from zeros again, exactly like a fresh stream.
      await stream.reset();
      const again = await stream.run({ audio: chunkOf(x, 0, 3, batch) });
      expect(Object.keys(again)).toEqual(['Y', 'activity']);
      const fresh = await session.createStream({ state: { h0: 'hn', c0: 'cn' } }).run({ audio: chunkOf(x, 0, 3, batch) });
      expect(Array.from(again.Y!.data as Float32Array)).toEqual(Array.from(fresh.Y!.data as Float32Array));
      stream.dispose();
      await expect(stream.run({ audio: chunkOf(x, 0, 1, batch) })).rejects.toThrow(InvalidArgumentError);
    } finally {
      await session.release();
    }
  });
});

describe('createStream on webgpu: memory', () => {
  it('1,000 chunks leave GPU memory where the first chunk left it', async () => {
    const session = await InferenceSession.create(bytes, { backend: 'webgpu' });
    try {
      const stream = session.createStream({ state: { h0: 'hn', c0: 'cn' } });
      const rng = new Rng(3);
      const chunk = () => new Tensor('float32', Float32Array.from({ length: 2 * 1 * FEATURES }, () => rng.uniform()), [2, 1, FEATURES]);
      await stream.run({ audio: chunk() }, { outputs: ['activity'] });
      const after1 = session.report().gpu!.liveBytes;
      for (let i = 1; i < 1000; i++) await stream.run({ audio: chunk() }, { outputs: ['activity'] });
      // No growth; it may fall: pooled buffers nothing asks for again age out (GpuMemory, MAX_IDLE_ACQUISITIONS).
      expect(session.report().gpu!.liveBytes).toBeLessThanOrEqual(after1);
      stream.dispose();
    } finally {
      await session.release();
    }
  });

  it("plans for other chunk lengths share the LSTM's transposed weight tables (uploaded once per session)", async () => {
    const session = await InferenceSession.create(bytes, { backend: 'webgpu' });
    try {
      const stream = session.createStream({ state: { h0: 'hn', c0: 'cn' } });
      const chunk = (t: number) => new Tensor('float32', new Float32Array(t * FEATURES).fill(0.5), [t, 1, FEATURES]);
      await stream.run({ audio: chunk(2) });
      const weights = session.report().weightBytes;
      // W^T [1, 3, 20] and R^T [1, 5, 20]: in the session's weight store, not in each plan's own constants.
      const tables = (3 + 5) * 4 * HIDDEN * 4;
      expect(weights).toBeGreaterThanOrEqual(tables);
      for (const t of [3, 5, 7, 2]) {
        await stream.run({ audio: chunk(t) });
        expect(session.report().gpu!.planConstantBytes).toBeLessThan(tables);
      }
      expect(session.report().weightBytes).toBe(weights);
      stream.dispose();
    } finally {
      await session.release();
    }
  });

  it('rejects state names the model does not have, and a state whose dims no input names', async () => {
    const session = await InferenceSession.create(bytes, { backend: 'webgpu' });
    try {
      expect(() => session.createStream({ state: { h_0: 'hn' } })).toThrow(/'h_0' is not an input.*'audio', 'h0', 'c0'/);
      expect(() => session.createStream({ state: { h0: 'h_n' } })).toThrow(/'h_n' is not an output/);
      expect(() => session.createStream({ state: {} })).toThrow(InvalidArgumentError);
    } finally {
      await session.release();
    }
  });
});
