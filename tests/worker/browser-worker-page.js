// Runs in headless Chromium (tests/worker/browser-worker.test.ts): the built bundle's createWorker() starts the
// module Worker built beside it (dist/browser/worker.js); the same model runs there and on the page, both on WebGPU.
// Elements of the kept tensors: 256 KB each, so a leaked one stands out from the pool's small, timing-dependent buffers.
const N = 65536;

export async function run(origin, squareModel, lstmModel) {
  const { InferenceSession, Tensor, ShapeError, CancelledError, DisposedTensorError, RemoteTensor, createWorker } = await import(`${origin}/dist/browser/edgekit.js`);
  const model = `${origin}/tests/fixtures/digits/digits-cnn.onnx`;
  const pixels = new Float32Array(await (await fetch(`${origin}/tests/fixtures/digits/test-images.f32`)).arrayBuffer());
  const batch = () => new Tensor('float32', pixels.slice(), [360, 1, 8, 8]);
  const main = await InferenceSession.create(model, { backend: 'webgpu' });
  const worker = await createWorker();
  const ws = await worker.createSession(model, { backend: 'webgpu' });
  const expected = (await main.run({ input: batch() })).logits.data;
  const feed = batch();
  const buffer = feed.data.buffer;
  const got = (await ws.run({ input: feed })).logits.data;
  let maxDiff = 0;
  for (let i = 0; i < expected.length; i++) maxDiff = Math.max(maxDiff, Math.abs(expected[i] - got[i]));
  const bad = await ws.run({ input: new Tensor('float32', new Float32Array(3), [3]) }).catch((e) => e);
  const frames = await Promise.all([0, 1, 2].map(() => ws.run({ input: batch() }, { signal: AbortSignal.abort() }).catch((e) => e)));
  const report = await ws.report();
  // profile(): the same outcome in the worker as on the page (timings, or the same typed error without timestamps).
  const profiled = (p) => p.then((t) => `ok:${t.length > 0}`, (e) => `${e.name}:${e.code}`);
  const profiles = [await profiled(main.profile({ input: batch() })), await profiled(ws.profile({ input: batch() }))];
  // GPU outputs stay in the worker as handles that feed the next run: y = x*x twice gives x^4. Rounds of load,
  // keep, dispose, release: released buffers are pooled (liveBytes counts the pool, so it does not drop back), and
  // the pool settles after the first rounds; from then on a leaked handle would add to liveBytes every round.
  const round = async () => {
    const sq = await worker.createSession(new Uint8Array(squareModel), { backend: 'webgpu', preferredOutputLocation: 'gpu-buffer' });
    const x = new Float32Array(N);
    x.set([1, 2, -3, 0.5]);
    const y1 = (await sq.run({ x: new Tensor('float32', x, [N]) })).y;
    const y2 = (await sq.run({ x: y1 })).y;
    const kept = { remote: y1 instanceof RemoteTensor && y2 instanceof RemoteTensor, location: y2.location, dims: [...y2.dims], x4: Array.from((await y2.getData()).subarray(0, 4)) };
    y1.dispose();
    kept.afterDispose = await sq.run({ x: y1 }).catch((e) => `${e instanceof DisposedTensorError}:${e.code}`);
    const cpuOut = (await sq.run({ x: y2 }, { preferredOutputLocation: 'cpu' })).y;
    kept.cpuOut = `${cpuOut instanceof Tensor}:${Array.from(cpuOut.data.subarray(0, 4)).join(',')}`;
    y2.dispose();
    await sq.release();
    await new Promise((r) => setTimeout(r, 100)); // deferred releases reach the pool once the GPU work is done
    return { kept, bytes: (await ws.report()).gpu.liveBytes };
  };
  const rounds = [];
  for (let i = 0; i < 5; i++) rounds.push(await round());
  const kept = rounds[0].kept;
  kept.liveBytes = rounds.map((r) => r.bytes);
  // A stream on WebGPU: state stays on the worker's GPU between chunks; the same chunks as a page stream.
  const audio = Float32Array.from({ length: 24 }, (_, i) => Math.sin(i * 0.7));
  const chunk = (k) => new Tensor('float32', audio.slice(k * 6, k * 6 + 6), [2, 1, 3]);
  const streamed = async (session) => {
    const stream = session.createStream({ state: { h0: 'hn', c0: 'cn' } });
    const out = [];
    for (let k = 0; k < 4; k++) out.push(...(await stream.run({ audio: chunk(k) })).Y.data);
    stream.dispose();
    return out;
  };
  const lstmMain = await InferenceSession.create(new Uint8Array(lstmModel), { backend: 'webgpu' });
  const lstmWorker = await worker.createSession(new Uint8Array(lstmModel), { backend: 'webgpu' });
  const [sa, sb] = [await streamed(lstmMain), await streamed(lstmWorker)];
  kept.streamDiff = Math.max(...sa.map((v, i) => Math.abs(v - sb[i])));
  kept.streamLength = sb.length;
  await lstmMain.release();
  await lstmWorker.release();
  await ws.release();
  await main.release();
  await worker.terminate();
  return {
    backend: ws.backend,
    length: got.length,
    maxDiff,
    detached: buffer.byteLength === 0,
    err: `${bad instanceof ShapeError}:${bad.name}:${bad.code}`,
    cancelled: frames.every((e) => e instanceof CancelledError),
    gpuDispatches: report.gpu?.dispatches ?? 0,
    profiles,
    kept,
  };
}
