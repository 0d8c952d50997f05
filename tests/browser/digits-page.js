// Runs in the browser page: loads the SDK bundle as a user's page would and classifies the held-out digits with the
// bundled model, on WebGPU and on the CPU backend.
export async function run(origin) {
  const ek = await import(`${origin}/dist/browser/edgekit.js`);
  const model = `${origin}/tests/fixtures/digits/digits-cnn.onnx`;
  const images = new Float32Array(await (await fetch(`${origin}/tests/fixtures/digits/test-images.f32`)).arrayBuffer());
  const labels = new Uint8Array(await (await fetch(`${origin}/tests/fixtures/digits/test-labels.u8`)).arrayBuffer());
  const n = labels.length;
  const input = new ek.Tensor('float32', images, [n, 1, 8, 8]);
  const argmax = (l) => Array.from({ length: n }, (_, i) => {
    let best = 0;
    for (let c = 1; c < 10; c++) if (l[i * 10 + c] > l[i * 10 + best]) best = c;
    return best;
  });

  const gpu = await ek.InferenceSession.create(model, { backend: 'webgpu' });
  const cpu = await ek.InferenceSession.create(model, { backend: 'cpu' });
  const g = (await gpu.run({ input })).logits;
  const c = (await cpu.run({ input })).logits;
  let maxDiff = 0, maxRef = 0;
  for (let i = 0; i < c.data.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(g.data[i] - c.data[i]));
    maxRef = Math.max(maxRef, Math.abs(c.data[i]));
  }
  // GPU-resident output fed to nothing, read back, released.
  const kept = (await gpu.run({ input }, { preferredOutputLocation: 'gpu-buffer' })).logits;
  const keptData = await kept.getData(true);
  let err = '';
  try {
    await gpu.run({ wrong: g });
  } catch (e) {
    err = `${e.name}:${e.code}`;
  }
  const report = gpu.report();
  await gpu.release();
  await cpu.release();
  return {
    names: gpu.inputNames,
    backend: report.backend,
    dims: g.dims,
    gpuCorrect: argmax(g.data).filter((p, i) => p === labels[i]).length,
    cpuCorrect: argmax(c.data).filter((p, i) => p === labels[i]).length,
    relDiff: maxDiff / maxRef,
    keptLocation: kept.location,
    keptSame: keptData.every((v, i) => v === g.data[i]),
    dispatches: report.gpu?.dispatches ?? 0,
    err,
  };
}
