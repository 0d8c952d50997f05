// Runs inside the bench page. Each contender: load a model, time cold start (load + first run) and warm runs,
// with the same seeded input. Returns plain numbers; the Node side computes ratios.
export async function runContender(name, modelUrl, inputName, dims, runs) {
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = 42;
  for (let i = 0; i < n; i++) { s = (s * 16807) % 2147483647; data[i] = s / 2147483647 * 2 - 1; }
  const bytes = new Uint8Array(await (await fetch(modelUrl)).arrayBuffer());
  let run;
  const t0 = performance.now();
  if (name === 'edgekit-webgpu' || name === 'edgekit-webgpu-f16w') {
    const ek = await import('/dist/browser/edgekit.js');
    // -f16w: the opt-in half-precision weights (SessionOptions.weightPrecision), float32 arithmetic.
    const session = await ek.InferenceSession.create(bytes, { backend: 'webgpu', ...(name === 'edgekit-webgpu-f16w' ? { weightPrecision: 'float16' } : {}) });
    const input = new ek.Tensor('float32', data, dims);
    run = async () => { const out = await session.run({ [inputName]: input }); return out[session.outputNames[0]].data; };
  } else {
    const file = name === 'ort-webgpu' ? 'ort.webgpu.min.mjs' : 'ort.min.mjs';
    const ort = await import(`/node_modules/onnxruntime-web/dist/${file}`);
    ort.env.wasm.wasmPaths = '/node_modules/onnxruntime-web/dist/';
    ort.env.wasm.numThreads = 1;
    const ep = name === 'ort-wasm' ? 'wasm' : 'webgpu';
    const session = await ort.InferenceSession.create(bytes, { executionProviders: [ep] });
    const input = new ort.Tensor('float32', data, dims);
    run = async () => { const out = await session.run({ [inputName]: input }); return await out[session.outputNames[0]].getData(); };
  }
  const loaded = performance.now();
  const first = await run();
  const cold = performance.now() - t0;
  const firstRun = performance.now() - loaded;
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await run();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
  return { cold, load: loaded - t0, firstRun, median: q(0.5), p90: q(0.9), peakGpuBytes: globalThis.__gpuMem.peak, out: Array.from(first.slice(0, 5)), full: Array.from(first) };
}
