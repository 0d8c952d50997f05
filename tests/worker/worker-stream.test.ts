import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportOnnx } from '../../importers/onnx/index.js';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import { createWorker, type EdgeKitWorker } from '../../sdk/worker/client.js';
import { attr, buildGraph, f32, node } from '../helpers/ir-builder.js';
import { Rng } from '../helpers/random.js';

const ENTRY = new URL('./worker-entry.mjs', import.meta.url);
const HIDDEN = 4;
const FEATURES = 3;

/** A streaming LSTM (state in h0/c0, out hn/cn) like a voice-activity model, with random weights. */
function lstmModel(): Uint8Array {
  const rng = new Rng(11);
  const rand = (shape: number[]) => f32(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(-0.6, 0.6)), shape);
  return exportOnnx(
    buildGraph({
      inputs: [
        ['audio', 'float32', ['time', 1, FEATURES]],
        ['h0', 'float32', [1, 1, HIDDEN]],
        ['c0', 'float32', [1, 1, HIDDEN]],
      ],
      initializers: { W: rand([1, 4 * HIDDEN, FEATURES]), R: rand([1, 4 * HIDDEN, HIDDEN]), B: rand([1, 8 * HIDDEN]) },
      nodes: [
        node('LSTM', ['audio', 'W', 'R', 'B', '', 'h0', 'c0'], ['Y', 'hn', 'cn'], { hidden_size: attr(HIDDEN) }),
        node('ReduceMean', ['Y'], ['activity'], { keepdims: attr(0) }),
      ],
      outputs: ['Y', 'activity', 'hn', 'cn'],
    }),
  );
}

describe('streams on a worker session', () => {
  let worker: EdgeKitWorker;
  beforeAll(async () => {
    worker = await createWorker({ url: ENTRY });
  });
  afterAll(async () => {
    await worker?.terminate();
  });

  it('chunk by chunk, with reset and state read back, as on the main thread', async () => {
    const bytes = lstmModel();
    const rng = new Rng(3);
    const audio = Float32Array.from({ length: 12 * FEATURES }, () => rng.uniform(-1, 1));
    const chunk = (k: number) => new Tensor('float32', audio.slice(k * 3 * FEATURES, (k + 1) * 3 * FEATURES), [3, 1, FEATURES]);
    const drive = async (session: { createStream: InferenceSession['createStream'] }) => {
      const stream = session.createStream({ state: { h0: 'hn', c0: 'cn' } });
      const seen: number[][] = [];
      for (let k = 0; k < 4; k++) seen.push(Array.from((await stream.run({ audio: chunk(k) })).activity!.data as Float32Array));
      const withState = await stream.run({ audio: chunk(0) }, { outputs: ['activity', 'hn'] });
      seen.push(Array.from(withState.activity!.data as Float32Array), Array.from(withState.hn!.data as Float32Array));
      await stream.reset();
      seen.push(Array.from((await stream.run({ audio: chunk(0) })).activity!.data as Float32Array));
      stream.dispose();
      return seen;
    };
    const main = await InferenceSession.create(bytes, { backend: 'cpu' });
    const ws = await worker.createSession(bytes, { backend: 'cpu' });
    const expected = await drive(main);
    const got = await drive(ws as unknown as { createStream: InferenceSession['createStream'] });
    expect(got).toEqual(expected);
    // The state matters (chunk 0 after four chunks differs from chunk 0 from zeros), and reset restores zeros.
    expect(expected[6]).toEqual(expected[0]);
    expect(expected[4]).not.toEqual(expected[0]);
    expect(expected[5]).toHaveLength(HIDDEN);
    await ws.release();
    await main.release();
  });
});
