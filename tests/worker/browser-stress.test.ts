import { describe, expect, it } from 'vitest';
import { useBrowserPage } from '../helpers/browser-page.js';
import { encodeModel } from '../helpers/onnx-model.js';

// The module worker in headless Chromium on WebGPU (SwiftShader), from the built bundle (tests/browser/
// worker-stress-page.js): 1,000 concurrent runs, a worker terminated mid-run, and the Cache Storage model cache.
describe('browser module worker under load, termination, the model cache and load progress', () => {
  const b = useBrowserPage();
  const scale = (k: number) =>
    Array.from(
      encodeModel({
        nodes: [{ op: 'Mul', inputs: ['x', 'k'], outputs: ['y'] }],
        inputs: { x: { dtype: 'float32', shape: [16], data: new Float32Array(16) } },
        initializers: { k: { dtype: 'float32', shape: [1], data: new Float32Array([k]) } },
        outputs: ['y'],
      }),
    );

  it('answers 1,000 concurrent runs once each; termination rejects with a typed error; cache, integrity and progress', async () => {
    const r = (await b.page.evaluate(`import('${b.origin}/tests/browser/worker-stress-page.js').then((m) => m.run('${b.origin}', ${JSON.stringify([1, 2, 3, 4].map(scale))}))`)) as Record<string, any>;
    expect(r, `${JSON.stringify(r)}\n${b.log.join('\n')}`).toMatchObject({
      concurrent: { answered: 1000, once: true, wrong: 0, failed: [] },
      afterTerminate: 'SessionReleasedError',
      freshWorker: [6, 6],
      cache: { first: { fromCache: false }, second: { fromCache: true }, off: { fromCache: false }, wrong: 'true:MODEL_FORMAT', keysAfterWrong: 0 },
    });
    // Every seventh run was aborted right after it was sent: it is cancelled, or (already running) answered.
    expect(r.concurrent.ok + r.concurrent.cancelled).toBe(1000);
    expect(r.concurrent.cancelled).toBeGreaterThan(100);
    // Runs sent just before terminate(): the worker answers them in order, so those that finished first are a prefix
    // (how long, the machine decides); every later one, at least the last, rejects with SessionReleasedError.
    const done = r.terminated.indexOf('SessionReleasedError');
    expect(done, JSON.stringify(r.terminated)).toBeGreaterThanOrEqual(0);
    expect(r.terminated.slice(0, done)).toEqual(Array(done).fill('ok'));
    expect(r.terminated.slice(done)).toEqual(Array(40 - done).fill('SessionReleasedError'));
    expect(r.cache.keys).toEqual([`${b.origin}/tests/fixtures/digits/digits-cnn.onnx`]);
    expect(r.cache.second.loaded).toBe(r.cache.size);
    // A worker's load reports to the page: every byte, then pipelines compiled to the last one.
    expect(r.progress.lastFetch).toEqual({ loaded: r.cache.size, fromCache: false });
    expect(r.progress.compileLast.total).toBeGreaterThan(0);
    expect(r.progress.compileLast.done).toBe(r.progress.compileLast.total);
    expect(r.progress.order).toBe(true);
  }, 240_000);
});
