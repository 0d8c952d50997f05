import type { Server } from 'node:http';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, pageLog, serveRepo } from '../../scripts/browser.mjs';
import { encodeModel } from '../helpers/onnx-model.js';

// The built bundle's createWorker() in headless Chromium: a module Worker (dist/browser/worker.js) with WebGPU
// (SwiftShader), against a main-thread session on the same page. Needs `npm run build` (the test script's pretest).
describe('worker sessions in a browser module Worker', () => {
  let server: Server;
  let origin: string;
  let browser: Browser;
  let page: Page;
  let log: string[];

  beforeAll(async () => {
    ({ server, origin } = await serveRepo());
    browser = await launchChromium();
    page = await browser.newPage();
    log = pageLog(page);
    await page.goto(`${origin}/tests/browser/blank.html`);
  });

  afterAll(async () => {
    await browser?.close();
    server?.close();
  });

  it('runs on WebGPU in the worker with the main thread’s results; transfer, errors, cancellation and kept GPU outputs', async () => {
    // A string, so vitest does not rewrite the page's dynamic import().
    const x = { dtype: 'float32' as const, shape: [65536], data: new Float32Array(65536) };
    const square = encodeModel({ nodes: [{ op: 'Mul', inputs: ['x', 'x'], outputs: ['y'] }], inputs: { x }, outputs: ['y'] });
    const r = (await page.evaluate(
      `import('${origin}/tests/worker/browser-worker-page.js').then((m) => m.run('${origin}', ${JSON.stringify(Array.from(square))}))`,
    )) as Record<string, unknown>;
    expect(r, log.join('\n')).toMatchObject({
      backend: 'webgpu',
      length: 3600,
      detached: true,
      err: 'true:ShapeError:SHAPE_MISMATCH',
      cancelled: true,
      kept: {
        remote: true,
        location: 'gpu-buffer',
        dims: [65536],
        x4: [1, 16, 81, 0.0625],
        afterDispose: 'true:TENSOR_DISPOSED',
        cpuOut: 'true:1,256,6561,0.00390625',
      },
    });
    // Each round keeps two 256 KB outputs; after the pool has settled (two rounds), three more rounds add less than
    // one of them (deferred releases may leave a small buffer or two in flight).
    const bytes = (r.kept as { liveBytes: number[] }).liveBytes;
    expect(bytes[4]! - bytes[1]!, `live GPU bytes after each load/keep/dispose/release round: ${bytes.join(', ')}`).toBeLessThan(65536 * 4);
    expect(r.maxDiff as number).toBeLessThan(1e-5);
    expect(r.gpuDispatches as number).toBeGreaterThan(0);
  }, 180_000);
});
