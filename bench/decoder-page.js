// Runs in a headless Chromium page (bench/page.html, which counts every GPUDevice.createBuffer byte) for
// bench/decoder.mjs: one contender's greedy generation over the benchmark decoder, KV cache kept on the GPU.
//   edgekit-webgpu: TextGenerator (presents fed back as GPU tensors, greedy choice on the GPU, ids read back);
//   edgekit-webgpu-f16 (opt-in): the same with weightPrecision 'float16';
//   ort-webgpu (ort.webgpu bundle), ort-jsep (default bundle, webgpu EP): presents kept with
//     preferredOutputLocation 'gpu-buffer' and fed back as the next past, logits read to the host for the arg max
//     (onnxruntime-web has no sampler on the GPU);
//   ort-wasm: the same loop on the CPU.
// Times: time to first token (prefill + choice), then tokens per second over the remaining new tokens.

const argmaxLastRow = (data, vocab) => {
  const row = data.length / vocab - 1;
  let best = 0;
  for (let k = 1; k < vocab; k++) if (data[row * vocab + k] > data[row * vocab + best]) best = k;
  return best;
};

/** Runs `loop(n)` once with a short warm-up (plans, pipelines, buffers) first. `loop` returns { tokens, times, t0 }. */
async function measure(loop, n, warm) {
  await loop(warm);
  const r = await loop(n);
  const ttft = r.times[0] - r.t0;
  const rest = r.times[r.times.length - 1] - r.times[0];
  return { tokens: r.tokens, ttftMs: ttft, tokensPerSecond: r.times.length > 1 ? ((r.times.length - 1) * 1000) / rest : 0, totalMs: r.times[r.times.length - 1] - r.t0 };
}

export async function decode(origin, contender, o) {
  const bytes = new Uint8Array(await (await fetch(`${origin}/${o.model}`)).arrayBuffer());
  const t = performance.now();
  let loop;
  let release;
  let report = () => ({});
  if (contender === 'edgekit-webgpu' || contender === 'edgekit-webgpu-f16') {
    const ek = await import(`${origin}/dist/browser/edgekit.js`);
    // edgekit-webgpu-f16: the same with weightPrecision 'float16' (matrix weights stored in half precision,
    // arithmetic in float32): a different numeric model from the float32 contenders, reported on its own row.
    const precision = contender === 'edgekit-webgpu-f16' ? { weightPrecision: 'float16' } : {};
    const session = await ek.InferenceSession.create(bytes, { backend: 'webgpu', ...precision });
    const gen = await ek.TextGenerator.create(session);
    loop = async (n) => {
      const times = [];
      const t0 = performance.now();
      const r = await gen.generate(o.prompt, { maxNewTokens: n, onToken: () => times.push(performance.now()) });
      return { tokens: r.tokens, times, t0 };
    };
    report = () => {
      const g = session.report().gpu;
      return { edgekitPeakBytes: g.peakBytes, weightBytes: session.report().weightBytes, inputCopyBytes: g.inputCopyBytes, outputCopyBytes: g.outputCopyBytes };
    };
    release = () => session.release();
  } else {
    const file = contender === 'ort-webgpu' ? 'ort.webgpu.min.mjs' : 'ort.min.mjs';
    const ort = await import(`${origin}/node_modules/onnxruntime-web/dist/${file}`);
    ort.env.wasm.wasmPaths = `${origin}/node_modules/onnxruntime-web/dist/`;
    ort.env.wasm.numThreads = 1;
    const gpu = contender !== 'ort-wasm';
    const presents = Array.from({ length: o.layers }, (_, i) => [`present.${i}.key`, `present.${i}.value`]).flat();
    const location = gpu ? { preferredOutputLocation: Object.fromEntries([['logits', 'cpu'], ...presents.map((p) => [p, 'gpu-buffer'])]) } : {};
    const session = await ort.InferenceSession.create(bytes, { executionProviders: [gpu ? 'webgpu' : 'wasm'], ...location });
    const pasts = session.inputNames.filter((x) => x.startsWith('past_key_values'));
    const i64 = (xs) => new ort.Tensor('int64', BigInt64Array.from(xs, BigInt), [1, xs.length]);
    loop = async (n) => {
      let past = Object.fromEntries(pasts.map((p) => [p, new ort.Tensor('float32', new Float32Array(0), [1, o.heads, 0, o.headDim])]));
      const tokens = [];
      const times = [];
      let ids = o.prompt;
      let done = 0;
      const t0 = performance.now();
      for (let step = 0; step < n; step++) {
        const total = done + ids.length;
        const feeds = { input_ids: i64(ids), attention_mask: i64(Array.from({ length: total }, () => 1)), position_ids: i64(ids.map((_, k) => done + k)), ...past };
        const out = await session.run(feeds);
        const next = argmaxLastRow(out.logits.data, o.vocab);
        if (step) for (const p of Object.values(past)) p.dispose();
        past = Object.fromEntries(pasts.map((p) => [p, out[p.replace('past_key_values.', 'present.')]]));
        tokens.push(next);
        times.push(performance.now());
        ids = [next];
        done = total;
      }
      for (const p of Object.values(past)) p.dispose();
      return { tokens, times, t0 };
    };
    release = () => session.release();
  }
  const loadMs = performance.now() - t;
  const r = await measure(loop, o.newTokens, o.warmTokens);
  const extra = report();
  await release();
  return { contender, loadMs, ...r, peakGpuBytes: globalThis.__gpuMem.peak, ...extra };
}
