// Runs in headless Chromium (tests/worker/browser-worker.test.ts): the built bundle's createWorker() starts the
// module Worker built beside it (dist/browser/worker.js); the same model runs there and on the page, both on WebGPU.
export async function run(origin) {
  const { InferenceSession, Tensor, ShapeError, CancelledError, createWorker } = await import(`${origin}/dist/browser/edgekit.js`);
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
  };
}
