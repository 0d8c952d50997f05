import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CancelledError, InvalidArgumentError, ModelFormatError, SessionReleasedError, ShapeError } from '../../runtime/errors.js';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import { createWorker, type EdgeKitWorker } from '../../sdk/worker/client.js';
import { encodeModel } from '../helpers/onnx-model.js';

const DIGITS = fileURLToPath(new URL('../fixtures/digits/', import.meta.url));
const MODEL = join(DIGITS, 'digits-cnn.onnx');
const ENTRY = new URL('./worker-entry.mjs', import.meta.url);
const N = 360;

function images(): Float32Array {
  const b = readFileSync(join(DIGITS, 'test-images.f32'));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}
function image(all: Float32Array, i: number, count = 1): Tensor {
  return new Tensor('float32', all.slice(i * 64, (i + count) * 64), [count, 1, 8, 8]);
}

describe('worker sessions (worker_threads) against a main-thread CPU session', () => {
  let worker: EdgeKitWorker;
  let main: InferenceSession;
  let pixels: Float32Array;
  let expected: Float32Array;

  beforeAll(async () => {
    pixels = images();
    main = await InferenceSession.create(MODEL, { backend: 'cpu' });
    expected = (await main.run({ input: image(pixels, 0, N) })).logits!.data as Float32Array;
    worker = await createWorker({ url: ENTRY });
  });
  afterAll(async () => {
    await main?.release();
    await worker?.terminate();
  });

  it('has the same interface and gives identical results, loaded from a path', async () => {
    const s = await worker.createSession(MODEL, { backend: 'cpu' });
    expect(s.backend).toBe('cpu');
    expect(s.inputNames).toEqual(main.inputNames);
    expect(s.outputNames).toEqual(main.outputNames);
    expect(s.inputMetadata).toEqual(main.inputMetadata);
    expect(s.outputMetadata).toEqual(main.outputMetadata);
    const { logits } = await s.run({ input: image(pixels, 0, N) });
    expect(logits).toBeInstanceOf(Tensor);
    expect(logits!.dims).toEqual([N, 10]);
    expect(Array.from(logits!.data as Float32Array)).toEqual(Array.from(expected));
    const report = await s.report();
    expect(report.nodes.map((n) => n.op)).toEqual(main.report().nodes.map((n) => n.op));
    await s.release();
  });

  it('loads from bytes (transferred: the caller’s buffer is detached)', async () => {
    const bytes = new Uint8Array(readFileSync(MODEL));
    const s = await worker.createSession(bytes, { backend: 'cpu' });
    expect(bytes.byteLength).toBe(0);
    const { logits } = await s.run({ input: image(pixels, 5) }, ['logits']);
    expect(Array.from(logits!.data as Float32Array)).toEqual(Array.from(expected.subarray(50, 60)));
    await s.release();
  });

  it('transfers inputs (the fed tensor is detached) unless copy is set', async () => {
    const s = await worker.createSession(MODEL, { backend: 'cpu' });
    const moved = image(pixels, 3);
    const buffer = (moved.data as Float32Array).buffer;
    await s.run({ input: moved });
    expect(buffer.byteLength).toBe(0);
    const kept = image(pixels, 3);
    const { logits } = await s.run({ input: kept }, { copy: true });
    expect((kept.data as Float32Array).length).toBe(64);
    expect(Array.from(logits!.data as Float32Array)).toEqual(Array.from(expected.subarray(30, 40)));
    await s.release();
  });

  it('an output that is a model weight is copied, not transferred: the next run still has it', async () => {
    const w = { dtype: 'float32' as const, shape: [3], data: new Float32Array([1.5, -2, 4]) };
    const x = { dtype: 'float32' as const, shape: [3], data: new Float32Array(3) };
    const bytes = encodeModel({
      nodes: [{ op: 'Add', inputs: ['x', 'w'], outputs: ['sum'] }, { op: 'Identity', inputs: ['w'], outputs: ['weight'] }],
      inputs: { x },
      initializers: { w },
      outputs: ['sum', 'weight'],
    });
    const s = await worker.createSession(bytes, { backend: 'cpu' });
    for (let k = 0; k < 2; k++) {
      const out = await s.run({ x: new Tensor('float32', new Float32Array([1, 1, 1]), [3]) });
      expect(Array.from(out.weight!.data as Float32Array)).toEqual([1.5, -2, 4]);
      expect(Array.from(out.sum!.data as Float32Array)).toEqual([2.5, -1, 5]);
    }
    await s.release();
  });

  it('errors cross the boundary as the same classes', async () => {
    await expect(worker.createSession(new Uint8Array([1, 2, 3, 4]), { backend: 'cpu' })).rejects.toBeInstanceOf(ModelFormatError);
    const s = await worker.createSession(MODEL, { backend: 'cpu' });
    const wrong = () => new Tensor('float32', new Float32Array(60), [1, 1, 6, 10]);
    const inMain = await main.run({ input: wrong() }).catch((e: unknown) => e);
    const inWorker = await s.run({ input: wrong() }).catch((e: unknown) => e);
    expect(inMain).toBeInstanceOf(ShapeError);
    expect(inWorker).toBeInstanceOf(ShapeError);
    expect((inWorker as ShapeError).message).toBe((inMain as ShapeError).message);
    expect((inWorker as ShapeError).details).toEqual((inMain as ShapeError).details);
    await expect(s.run({ input: image(pixels, 0) }, ['nope'])).rejects.toBeInstanceOf(InvalidArgumentError);
    // Keeping outputs on the GPU needs a WebGPU session, in a worker as on the main thread.
    await expect(s.run({ input: image(pixels, 0) }, { preferredOutputLocation: 'gpu-buffer' })).rejects.toThrow(/needs a WebGPU session/);
    await s.release();
    await expect(s.run({ input: image(pixels, 0) })).rejects.toBeInstanceOf(SessionReleasedError);
    await s.release(); // idempotent
  });

  it("runs queue in the worker's scheduler: latest-only, AbortSignal and release", async () => {
    const other = await worker.createSession(MODEL, { backend: 'cpu' });
    const cam = await worker.createSession(MODEL, { backend: 'cpu', queue: 'latest-only' });
    // Another model's big run occupies the device; three frames arrive meanwhile: only the last one is computed.
    const big = other.run({ input: image(pixels, 0, N) });
    const frames = [1, 2, 3].map((i) => cam.run({ input: image(pixels, i) }).then((r) => r.logits!.data as Float32Array, (e: unknown) => e));
    const [first, ...rest] = await Promise.all([big, ...frames]);
    expect(Array.from((first as Record<string, Tensor>).logits!.data as Float32Array)).toEqual(Array.from(expected));
    expect((rest[0] as CancelledError).reason).toBe('superseded');
    expect((rest[1] as CancelledError).reason).toBe('superseded');
    expect(Array.from(rest[2] as Float32Array)).toEqual(Array.from(expected.subarray(30, 40)));

    const s = await worker.createSession(MODEL, { backend: 'cpu' });
    const ac = new AbortController();
    const busy = s.run({ input: image(pixels, 0, N) });
    const queued = s.run({ input: image(pixels, 1) }, { signal: ac.signal }).catch((e: unknown) => e);
    ac.abort();
    expect(await queued).toBeInstanceOf(CancelledError);
    await expect(s.run({ input: image(pixels, 1) }, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(CancelledError);
    await busy;

    const running = s.run({ input: image(pixels, 0, N) }).catch((e: unknown) => e);
    const waiting = s.run({ input: image(pixels, 2) }).catch((e: unknown) => e);
    const released = s.release();
    expect(await waiting).toBeInstanceOf(SessionReleasedError);
    await released;
    // The run already dispatched when release() arrives either finished before the worker read the release message
    // (its result is delivered, and must be right) or is discarded with SessionReleasedError: which one depends on
    // the worker thread's timing, not on anything the caller can order, so both are accepted, and nothing else.
    const r = await running;
    if (r instanceof SessionReleasedError) expect(r).toBeInstanceOf(SessionReleasedError);
    else expect(Array.from((r as Record<string, Tensor>).logits!.data as Float32Array)).toEqual(Array.from(expected));
    await expect(s.run({ input: image(pixels, 1) })).rejects.toBeInstanceOf(SessionReleasedError);
    await cam.release();
    await other.release();
  });

  it('answers 1,000 concurrent runs from four sessions and several callers exactly once, each with its own result', async () => {
    const sessions = await Promise.all([0, 1, 2, 3].map((i) => worker.createSession(MODEL, { backend: 'cpu', priority: i === 3 ? 'background' : 'user-visible' })));
    const answered = new Array<number>(1000).fill(0);
    let cancelled = 0;
    // Five callers, each submitting its share in bursts; every seventh run is aborted right after it is sent.
    const caller = async (c: number) => {
      const mine: Promise<void>[] = [];
      for (let k = c; k < 1000; k += 5) {
        const i = (k * 37) % N;
        const ac = new AbortController();
        mine.push(
          sessions[k % 4]!.run({ input: image(pixels, i) }, { signal: ac.signal, priority: k % 11 === 0 ? 'user-blocking' : undefined }).then(
            ({ logits }) => {
              answered[k]!++;
              expect(Array.from(logits!.data as Float32Array)).toEqual(Array.from(expected.subarray(i * 10, i * 10 + 10)));
            },
            (e: unknown) => {
              answered[k]!++;
              expect(e).toBeInstanceOf(CancelledError);
              cancelled++;
            },
          ),
        );
        if (k % 7 === 0) ac.abort();
        if (k % 50 === c) await new Promise((r) => setTimeout(r, 1));
      }
      await Promise.all(mine);
    };
    await Promise.all([0, 1, 2, 3, 4].map(caller));
    expect(answered.every((n) => n === 1)).toBe(true);
    // Aborted right after sending: most never ran (some may have finished first and count as answered results).
    expect(cancelled).toBeGreaterThan(0);
    expect(cancelled).toBeLessThanOrEqual(Math.ceil(1000 / 7));
    await Promise.all(sessions.map((s) => s.release()));
  });

  it('a worker whose entry cannot load rejects createWorker with the reason', async () => {
    const err = await createWorker({ url: new URL('./no-such-entry.mjs', import.meta.url) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(String((err as Error).message)).toMatch(/no-such-entry/);
  });

  it('a worker terminated mid-run rejects its pending calls with a typed error, and a new worker works', async () => {
    const w = await createWorker({ url: ENTRY });
    const s = await w.createSession(MODEL, { backend: 'cpu' });
    const pending = [s.run({ input: image(pixels, 0, N) }), s.run({ input: image(pixels, 1) })].map((p) => p.catch((e: unknown) => e));
    await w.terminate();
    for (const e of await Promise.all(pending)) expect(e).toBeInstanceOf(SessionReleasedError);
    await expect(s.run({ input: image(pixels, 1) })).rejects.toBeInstanceOf(SessionReleasedError);
    const again = await createWorker({ url: ENTRY });
    const s2 = await again.createSession(MODEL, { backend: 'cpu' });
    const { logits } = await s2.run({ input: image(pixels, 7) });
    expect(Array.from(logits!.data as Float32Array)).toEqual(Array.from(expected.subarray(70, 80)));
    await again.terminate();
  });
});
