import type { Server } from 'node:http';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll } from 'vitest';
import { launchChromium, pageLog, serveRepo } from '../../scripts/browser.mjs';

/** What a browser suite uses: the repo served on 127.0.0.1, a blank page there, and the page's console log. */
export interface BrowserPage {
  origin: string;
  page: Page;
  log: string[];
}

/**
 * Registers beforeAll/afterAll hooks that serve the repo, launch headless Chromium (WebGPU on SwiftShader when
 * there is no GPU) and open tests/browser/blank.html; the returned object is filled in by the time tests run.
 */
export function useBrowserPage(): BrowserPage {
  const ctx = {} as BrowserPage;
  let server: Server | undefined;
  let browser: Browser | undefined;
  beforeAll(async () => {
    ({ server, origin: ctx.origin } = await serveRepo());
    browser = await launchChromium();
    ctx.page = await browser.newPage();
    ctx.log = pageLog(ctx.page);
    await ctx.page.goto(`${ctx.origin}/tests/browser/blank.html`);
  });
  afterAll(async () => {
    await browser?.close();
    server?.close();
  });
  return ctx;
}
