import type { Server } from 'node:http';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, pageLog, serveRepo } from '../../scripts/browser.mjs';

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

  it('runs on WebGPU in the worker with the main thread’s results; transfer, errors and cancellation cross', async () => {
    // A string, so vitest does not rewrite the page's dynamic import().
    const r = (await page.evaluate(`import('${origin}/tests/worker/browser-worker-page.js').then((m) => m.run('${origin}'))`)) as Record<string, unknown>;
    expect(r, log.join('\n')).toMatchObject({
      backend: 'webgpu',
      length: 3600,
      detached: true,
      err: 'true:ShapeError:SHAPE_MISMATCH',
      cancelled: true,
    });
    expect(r.maxDiff as number).toBeLessThan(1e-5);
    expect(r.gpuDispatches as number).toBeGreaterThan(0);
  }, 180_000);
});
