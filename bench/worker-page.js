// Runs in a headless Chromium page for bench/worker.mjs, importing the built bundle (dist/browser/edgekit.js).
// Each export is one measurement; every one starts from a fresh page (the runner opens one per call).

const seeded = (n, seed = 1) => {
  let s = seed;
  return Float32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1);
};
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** Long tasks (>= 50 ms, PerformanceObserver 'longtask') on the page while `loop` runs. */
async function longTasksDuring(loop) {
  const tasks = [];
  const observer = new PerformanceObserver((list) => tasks.push(...list.getEntries()));
  observer.observe({ type: 'longtask' });
  // A frame loop stands for the UI: how often the page could paint while the model runs.
  let frames = 0;
  let painting = true;
  const frame = () => {
    frames++;
    if (painting) requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  const t0 = performance.now();
  console.time('edgekit-loop'); // a trace mark: bench/worker.mjs --trace looks for long tasks after it
  const runs = await loop();
  const ms = performance.now() - t0;
  console.timeEnd('edgekit-loop');
  painting = false;
  await new Promise((r) => setTimeout(r, 100)); // the observer delivers after the task ends
  observer.disconnect();
  return { window: { start: t0, end: t0 + ms }, runs, ms: Math.round(ms), longTasks: tasks.length, longestTaskMs: tasks.length ? Math.round(Math.max(...tasks.map((e) => e.duration))) : 0,
    longTasksAt: tasks.map((e) => ({ atMs: Math.round(e.startTime - t0), ms: Math.round(e.duration) })), framesPerSecond: Math.round((frames * 1000) / ms) };
}

/** mobilenet_v2 run continuously for `runs` runs, on the page or in the worker, on `backend`. */
export async function continuous(origin, where, backend, runs) {
  const { InferenceSession, Tensor, createWorker } = await import(`${origin}/dist/browser/edgekit.js`);
  const url = `${origin}/tests/fixtures/generated/mobilenet_v2.onnx`;
  const pixels = seeded(3 * 224 * 224);
  const worker = where === 'worker' ? await createWorker() : undefined;
  const session = worker ? await worker.createSession(url, { backend, cache: false }) : await InferenceSession.create(url, { backend, cache: false });
  const input = () => new Tensor('float32', pixels.slice(), [1, 3, 224, 224]);
  await session.run({ input: input() }); // warm: plans and pipelines
  await new Promise((r) => setTimeout(r, 0)); // end this task, so the warm run is not counted in the first long task
  const r = await longTasksDuring(async () => {
    for (let i = 0; i < runs; i++) await session.run({ input: input() });
    return runs;
  });
  await session.release();
  await worker?.terminate();
  return { where, backend, ...r, msPerRun: Math.round(r.ms / runs) };
}

/** The worker hop: median latency of a tiny model (y = x * 2, 16 floats) in the worker against on the page. */
export async function hop(origin, model, backend, runs) {
  const { InferenceSession, Tensor, createWorker } = await import(`${origin}/dist/browser/edgekit.js`);
  const bytes = new Uint8Array(model);
  const worker = await createWorker();
  const page = await InferenceSession.create(bytes.slice(), { backend });
  const inWorker = await worker.createSession(bytes.slice(), { backend });
  const x = () => new Tensor('float32', new Float32Array(16).fill(1), [16]);
  const time = async (s) => {
    for (let i = 0; i < 20; i++) await s.run({ x: x() });
    const t = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await s.run({ x: x() });
      t.push(performance.now() - t0);
    }
    return median(t);
  };
  // Alternated, so both see the same machine state.
  const a = [], b = [];
  for (let round = 0; round < 3; round++) {
    a.push(await time(page));
    b.push(await time(inWorker));
  }
  await page.release();
  await inWorker.release();
  await worker.terminate();
  const pageMs = median(a), workerMs = median(b);
  return { backend, runs: runs * 3, pageMedianMs: +pageMs.toFixed(3), workerMedianMs: +workerMs.toFixed(3), hopMs: +(workerMs - pageMs).toFixed(3) };
}

/**
 * Two models on one device (in one worker): each model's K runs, issued by two callers at once (interleaved by the
 * worker's scheduler), against K runs of one then K of the other.
 */
export async function interleaved(origin, backend, runs) {
  const { Tensor, createWorker } = await import(`${origin}/dist/browser/edgekit.js`);
  const worker = await createWorker();
  const models = {
    mobilenet_v2: { url: `${origin}/tests/fixtures/generated/mobilenet_v2.onnx`, dims: [1, 3, 224, 224] },
    squeezenet1_1: { url: `${origin}/tests/fixtures/generated/squeezenet1_1.onnx`, dims: [1, 3, 224, 224] },
  };
  const sessions = {};
  for (const [name, m] of Object.entries(models)) {
    sessions[name] = await worker.createSession(m.url, { backend, cache: false });
    const data = seeded(m.dims.reduce((a, b) => a * b, 1));
    m.input = () => ({ [sessions[name].inputNames[0]]: new Tensor('float32', data.slice(), m.dims) });
    await sessions[name].run(m.input());
  }
  const stream = async (name) => {
    const lat = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await sessions[name].run(models[name].input());
      lat.push(performance.now() - t0);
    }
    return median(lat);
  };
  let t0 = performance.now();
  const seq = { mobilenet_v2: await stream('mobilenet_v2'), squeezenet1_1: await stream('squeezenet1_1') };
  const sequentialMs = performance.now() - t0;
  t0 = performance.now();
  const [m, s] = await Promise.all([stream('mobilenet_v2'), stream('squeezenet1_1')]);
  const interleavedMs = performance.now() - t0;
  for (const s of Object.values(sessions)) await s.release();
  await worker.terminate();
  return {
    backend, runsEach: runs,
    sequential: { totalMs: Math.round(sequentialMs), medianMs: { mobilenet_v2: Math.round(seq.mobilenet_v2), squeezenet1_1: Math.round(seq.squeezenet1_1) } },
    interleaved: { totalMs: Math.round(interleavedMs), medianMs: { mobilenet_v2: Math.round(m), squeezenet1_1: Math.round(s) } },
  };
}
