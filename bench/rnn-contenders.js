// Runs inside the bench page for bench/rnn.mjs. One contender on one recurrent model: load, time the first run
// (cold), then warm runs over the whole sequence, and, for a model with state inputs/outputs, the same sequence
// streamed chunk by chunk with the state carried between chunks. Same seeded input for every contender. Returns plain
// numbers and the outputs; the Node side computes ratios and agreement.
//
// spec: { url, input, dims, output, seqAxis, state?: { <state input>: { output, dims } }, chunk? }
// The input's batch is 1, so every chunk of the sequence axis is one contiguous slice of the input.

const prod = (d) => d.reduce((a, b) => a * b, 1);

function seeded(n) {
  const data = new Float32Array(n);
  let s = 42;
  for (let i = 0; i < n; i++) { s = (s * 16807) % 2147483647; data[i] = s / 2147483647 * 2 - 1; }
  return data;
}

function quantiles(times) {
  const t = [...times].sort((a, b) => a - b);
  const q = (p) => t[Math.min(t.length - 1, Math.floor(p * t.length))];
  return { median: q(0.5), p90: q(0.9), samples: t.length };
}

/**
 * Creates and releases one onnxruntime-web session with verbose logging, so its "Node placements" lines (which
 * execution provider runs each node) reach the console, where bench/rnn.mjs reads them. The timed session is a
 * separate one with the default log level, so logging costs nothing in the timings.
 */
export async function probeOrtPlacement(name, modelUrl) {
  const ort = await loadOrt(name);
  const bytes = new Uint8Array(await (await fetch(modelUrl)).arrayBuffer());
  const session = await ort.InferenceSession.create(bytes, { executionProviders: [epOf(name)], logSeverityLevel: 0, logVerbosityLevel: 0 });
  await session.release();
}

const epOf = (name) => (name === 'ort-wasm' ? 'wasm' : 'webgpu');

async function loadOrt(name) {
  const file = name === 'ort-webgpu' ? 'ort.webgpu.min.mjs' : 'ort.min.mjs';
  const ort = await import(`/node_modules/onnxruntime-web/dist/${file}`);
  ort.env.wasm.wasmPaths = '/node_modules/onnxruntime-web/dist/';
  ort.env.wasm.numThreads = 1;
  return ort;
}

function relErr(a, ref) {
  if (a.length !== ref.length) return NaN;
  let d = 0, m = 0;
  for (let i = 0; i < a.length; i++) { d = Math.max(d, Math.abs(a[i] - ref[i])); m = Math.max(m, Math.abs(ref[i])); }
  return m ? d / m : d;
}

/**
 * One onnxruntime-web session: whole() and, for a model with state, a streamer that feeds Y_h/Y_c back as
 * initial_h/initial_c. gpuState: ask for the state outputs as 'gpu-buffer' (preferredOutputLocation), falling back
 * to CPU outputs if the session refuses.
 */
async function ortSession(ort, name, bytes, spec, x, gpuState) {
  const stateNames = Object.keys(spec.state ?? {});
  const options = { executionProviders: [epOf(name)] };
  let session, stateLocation;
  if (gpuState) {
    try {
      session = await ort.InferenceSession.create(bytes, { ...options, preferredOutputLocation: Object.fromEntries(stateNames.map((s) => [spec.state[s].output, 'gpu-buffer'])) });
      stateLocation = 'gpu-buffer (preferredOutputLocation)';
    } catch (e) {
      stateLocation = `cpu (gpu-buffer refused: ${String(e.message ?? e).split('\n')[0].slice(0, 80)})`;
    }
  }
  session ??= await ort.InferenceSession.create(bytes, options);
  stateLocation ??= 'cpu';
  const zeros = () => Object.fromEntries(stateNames.map((s) => [s, new ort.Tensor('float32', new Float32Array(prod(spec.state[s].dims)), spec.state[s].dims)]));
  const feeds = { [spec.input]: new ort.Tensor('float32', x, spec.dims), ...zeros() };
  const whole = async () => {
    const out = await session.run(feeds);
    const data = await out[spec.output].getData();
    for (const k of Object.keys(out)) if (k !== spec.output && out[k].location === 'gpu-buffer') out[k].dispose();
    return data;
  };
  if (!stateNames.length) return { whole };
  let held = zeros();
  const streamer = {
    tensor: (data, dims) => new ort.Tensor('float32', data, dims),
    reset: async () => {
      for (const t of Object.values(held)) if (t.location === 'gpu-buffer') t.dispose();
      held = zeros();
    },
    chunk: async (feed) => {
      const out = await session.run({ [spec.input]: feed, ...held });
      const data = await out[spec.output].getData();
      // Y_h/Y_c of this chunk become initial_h/initial_c of the next; the previous state is released.
      for (const t of Object.values(held)) if (t.location === 'gpu-buffer') t.dispose();
      held = Object.fromEntries(stateNames.map((s) => [s, out[spec.state[s].output]]));
      return data;
    },
  };
  return { whole, streamer, stateLocation };
}

/**
 * Streams the input in chunks of spec.chunk steps along the sequence axis (batch 1: each chunk is a contiguous slice
 * of x). The first two chunks warm up (the first one plans and compiles the chunk shape; timed apart), then whole
 * passes over the sequence from the zero state are timed chunk by chunk (at least `runs` chunks). Returns the first
 * pass's outputs concatenated: with the same zero initial state they equal the whole sequence's output.
 */
async function timeStream(streamer, spec, x, runs) {
  const T = spec.dims[spec.seqAxis];
  const step = prod(spec.dims.slice(spec.seqAxis + 1));
  const chunks = [];
  for (let t = 0; t < T; t += spec.chunk) {
    const dims = [...spec.dims];
    dims[spec.seqAxis] = Math.min(spec.chunk, T - t);
    chunks.push(streamer.tensor(x.slice(t * step, (t + dims[spec.seqAxis]) * step), dims));
  }
  let t = performance.now();
  await streamer.chunk(chunks[0]);
  const firstChunk = performance.now() - t;
  if (chunks.length > 1) await streamer.chunk(chunks[1]);
  const passes = Math.max(1, Math.ceil(runs / chunks.length));
  const times = [];
  let streamed;
  for (let p = 0; p < passes; p++) {
    await streamer.reset();
    const ys = [];
    for (const c of chunks) {
      t = performance.now();
      ys.push(await streamer.chunk(c));
      times.push(performance.now() - t);
    }
    if (p === 0) streamed = ys;
  }
  const full = [];
  for (const y of streamed) for (const v of y) full.push(v);
  return { chunk: spec.chunk, chunks: chunks.length, passes, firstChunk, ...quantiles(times), full };
}

export async function runRnnContender(name, spec, runs) {
  const x = seeded(prod(spec.dims));
  const stateNames = Object.keys(spec.state ?? {});
  const bytes = new Uint8Array(await (await fetch(spec.url)).arrayBuffer());
  const t0 = performance.now();
  // whole(): one run over the whole sequence, returns the primary output on the CPU.
  // streamer: { reset(), chunk(feedTensor) -> Float32Array }, and tensor(data, dims) to build a chunk feed.
  let whole, streamer, stateLocation;
  if (name === 'edgekit-webgpu') {
    const ek = await import('/dist/browser/edgekit.js');
    const session = await ek.InferenceSession.create(bytes, { backend: 'webgpu' });
    const feeds = { [spec.input]: new ek.Tensor('float32', x, spec.dims) };
    for (const s of stateNames) feeds[s] = new ek.Tensor('float32', new Float32Array(prod(spec.state[s].dims)), spec.state[s].dims);
    whole = async () => (await session.run(feeds, { outputs: [spec.output] }))[spec.output].data;
    if (stateNames.length) {
      // createStream keeps Y_h/Y_c on the GPU and feeds them buffer to buffer into the next chunk (sdk/stream.ts).
      const stream = session.createStream({ state: Object.fromEntries(stateNames.map((s) => [s, spec.state[s].output])) });
      stateLocation = 'gpu-buffer (createStream)';
      streamer = {
        tensor: (data, dims) => new ek.Tensor('float32', data, dims),
        reset: () => stream.reset(),
        chunk: async (feed) => (await stream.run({ [spec.input]: feed }))[spec.output].data,
      };
    }
  } else {
    const ort = await loadOrt(name);
    // The state outputs stay on the GPU and feed the next chunk, as EdgeKit's stream does, for the WebGPU variants.
    ({ whole, streamer, stateLocation } = await ortSession(ort, name, bytes, spec, x, stateNames.length > 0 && name !== 'ort-wasm'));
  }
  const loaded = performance.now();
  const first = await whole();
  const cold = performance.now() - t0;
  const firstRun = performance.now() - loaded;
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await whole();
    times.push(performance.now() - t);
  }
  const result = { cold, load: loaded - t0, firstRun, ...quantiles(times), full: Array.from(first) };

  if (streamer && spec.chunk) {
    result.stream = { ...(await timeStream(streamer, spec, x, runs)), stateLocation };
    result.stream.relErrVsOwnWhole = relErr(result.stream.full, result.full);
  }
  result.peakGpuBytes = globalThis.__gpuMem.peak;
  return result;
}
