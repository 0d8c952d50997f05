// Runs in headless Chromium (tests/worker/browser-stress.test.ts), from the built bundle: a module worker on WebGPU
// under 1,000 concurrent runs from four models and five callers; a worker terminated mid-run; the model cache
// (Cache Storage) with integrity.
export async function run(origin, models) {
  const { Tensor, CancelledError, SessionReleasedError, InferenceSession, ModelFormatError, createWorker } = await import(`${origin}/dist/browser/edgekit.js`);
  const r = {};
  // 1. Four models (y = x * k, k = 1..4) in one worker; five callers fire 200 runs each without waiting, at mixed
  // priorities, every seventh aborted. Each answer must come once and be x * k for its own x.
  const worker = await createWorker({ maxPending: 2000 });
  const sessions = await Promise.all(models.map((m) => worker.createSession(new Uint8Array(m), { backend: 'webgpu' })));
  const priorities = ['user-blocking', 'user-visible', 'background'];
  const answers = new Map();
  let wrong = 0, cancelled = 0, ok = 0, failed = [];
  const caller = async (c) => {
    const runs = [];
    for (let i = 0; i < 200; i++) {
      const id = c * 1000 + i;
      const k = id % 4;
      const x = Float32Array.from({ length: 16 }, (_, j) => id + j / 16);
      const ac = new AbortController();
      const p = sessions[k].run({ x: new Tensor('float32', x, [16]) }, { priority: priorities[id % 3], signal: ac.signal }).then(
        (out) => {
          answers.set(id, (answers.get(id) ?? 0) + 1);
          const y = out.y.data;
          for (let j = 0; j < 16; j++) if (y[j] !== (id + j / 16) * (k + 1)) { wrong++; break; }
          ok++;
        },
        (e) => {
          answers.set(id, (answers.get(id) ?? 0) + 1);
          if (e instanceof CancelledError) cancelled++;
          else failed.push(`${e.name}: ${e.message}`);
        },
      );
      if (i % 7 === 3) ac.abort();
      runs.push(p);
    }
    await Promise.all(runs);
  };
  const t0 = performance.now();
  await Promise.all([0, 1, 2, 3, 4].map(caller));
  r.concurrent = { answered: answers.size, once: [...answers.values()].every((n) => n === 1), wrong, ok, cancelled, failed: failed.slice(0, 3), ms: Math.round(performance.now() - t0) };

  // 2. Terminated mid-run: the running and the waiting runs reject with SessionReleasedError; a new worker works.
  const big = sessions[0];
  // 40 runs: how many finish before terminate() reaches the worker depends on the machine (two did on a loaded one).
  const pending = Array.from({ length: 40 }, (_, i) => big.run({ x: new Tensor('float32', new Float32Array(16).fill(i), [16]) }).then(() => 'ok', (e) => e));
  await new Promise((res) => setTimeout(res, 0));
  await worker.terminate();
  const outcomes = await Promise.all(pending);
  r.terminated = outcomes.map((o) => (o === 'ok' ? 'ok' : o instanceof SessionReleasedError ? 'SessionReleasedError' : `${o.name}: ${o.message}`));
  r.afterTerminate = await big.run({ x: new Tensor('float32', new Float32Array(16), [16]) }).then(() => 'ok', (e) => e.name);
  const fresh = await createWorker();
  const s2 = await fresh.createSession(new Uint8Array(models[2]), { backend: 'webgpu' });
  r.freshWorker = Array.from((await s2.run({ x: new Tensor('float32', new Float32Array(16).fill(2), [16]) })).y.data.slice(0, 2));
  await fresh.terminate();

  // 3. The model cache: Cache Storage keyed by URL, checked against integrity every time.
  const url = `${origin}/tests/fixtures/digits/digits-cnn.onnx`;
  const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
  const digest = btoa(String.fromCharCode(...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))));
  await caches.delete('edgekit-models');
  const load = async (o) => {
    const events = [];
    const s = await InferenceSession.create(url, { backend: 'cpu', ...o, onProgress: (p) => events.push(p) });
    await s.release();
    const last = events.filter((e) => e.phase === 'fetch').at(-1);
    return { fromCache: last.fromCache, loaded: last.loaded };
  };
  r.cache = {
    first: await load({ integrity: `sha256-${digest}` }),
    second: await load({ integrity: `sha256-${digest}` }),
    off: await load({ cache: false }),
    keys: (await (await caches.open('edgekit-models')).keys()).map((q) => q.url),
    size: bytes.length,
  };
  r.cache.wrong = await InferenceSession.create(url, { backend: 'cpu', integrity: 'sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=' }).then(() => 'loaded', (e) => `${e instanceof ModelFormatError}:${e.code}`);
  // The cached copy failed integrity, so it was dropped; the network copy failed too, so nothing was cached again.
  r.cache.keysAfterWrong = (await (await caches.open('edgekit-models')).keys()).length;

  // 4. Progress from a worker's createSession, on the page: bytes fetched, then the worker's pipelines compiled.
  const w3 = await createWorker();
  const events = [];
  const s3 = await w3.createSession(url, { backend: 'webgpu', cache: false, onProgress: (p) => events.push(p) });
  await new Promise((res) => setTimeout(res, 50)); // progress messages posted just before the answer
  const fetched = events.filter((e) => e.phase === 'fetch');
  const compiled = events.filter((e) => e.phase === 'compile');
  r.progress = {
    lastFetch: fetched.at(-1) && { loaded: fetched.at(-1).loaded, fromCache: fetched.at(-1).fromCache },
    compileLast: compiled.at(-1) && { done: compiled.at(-1).done, total: compiled.at(-1).total },
    order: events.findIndex((e) => e.phase === 'compile') > events.findLastIndex((e) => e.phase === 'fetch'),
  };
  await s3.release();
  await w3.terminate();
  return r;
}
