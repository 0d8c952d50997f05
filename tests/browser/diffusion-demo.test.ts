import { mkdirSync } from 'node:fs';
import { KnownDevices } from 'puppeteer-core';
import { describe, expect, it } from 'vitest';
import { useBrowserPage } from '../helpers/browser-page.js';
import { expectNoLongTasks, observeLongTasks, startLongTaskWatch, stopLongTaskWatch } from '../helpers/long-tasks.js';

/**
 * The diffusion demo (demos/diffusion/, importing only dist/browser/edgekit.js) in headless Chromium on SwiftShader:
 * it loads, generates a digit with at least two previews and the time per step, then a second run is cancelled
 * from the page's Cancel button and ends as 'Cancelled.' with the controls usable again, with no console errors.
 * While it generates, no main-thread long task uses 50 ms of CPU or more (PerformanceObserver 'longtask' and a trace;
 * tests/helpers/long-tasks.ts; issue #13 §3).
 * A screenshot goes to test-artifacts/ (gitignored). Without navigator.gpu the page says what to do. On a phone-sized
 * viewport with touch (puppeteer's Pixel 5 emulation) the page fits the screen and a tap generates a digit.
 */
describe('diffusion demo in headless Chromium', () => {
  const b = useBrowserPage();

  it('generates an image with previews, reports the time per step, and cancels cleanly', async () => {
    const { page } = b;
    await observeLongTasks(page);
    await page.goto(`${b.origin}/demos/diffusion/index.html`);
    await page.waitForFunction('window.demo && (window.demo.ready || window.demo.error)', { timeout: 120_000 });
    expect(await page.evaluate('window.demo.error ?? null'), b.log.join('\n')).toBe(null);

    await page.$eval('#steps', (el) => { (el as HTMLInputElement).value = '10'; });
    const watch = await startLongTaskWatch(page);
    await page.click('#generate');
    await page.waitForFunction('window.demo.runs[0] && (window.demo.runs[0].done || window.demo.runs[0].error)', { timeout: 120_000 });
    // Main-thread long tasks while it generated (from the click to the drawn result): none of 50 ms of CPU or more.
    expectNoLongTasks(await stopLongTaskWatch(watch));
    const first = (await page.evaluate('window.demo.runs[0]')) as { done: boolean; previews: number; stepMs: number[]; error?: string };
    expect(first.error, b.log.join('\n')).toBeUndefined();
    expect(first.done).toBe(true);
    expect(first.previews).toBeGreaterThanOrEqual(2);
    expect(first.stepMs.length).toBe(10);
    expect(await page.$$eval('#previews canvas', (c) => c.length)).toBe(first.previews);
    expect(await page.$$eval('#result canvas', (c) => c.length)).toBe(1);
    // The result is an image, not a blank: its pixels vary.
    const spread = await page.$eval('#result canvas', (c) => {
      const d = (c as HTMLCanvasElement).getContext('2d')!.getImageData(0, 0, 8, 8).data;
      let lo = 255, hi = 0;
      for (let i = 0; i < d.length; i += 4) { lo = Math.min(lo, d[i]!); hi = Math.max(hi, d[i]!); }
      return hi - lo;
    });
    expect(spread).toBeGreaterThan(100);
    expect(await page.$eval('#status', (e) => e.textContent)).toMatch(/^Done: 10 steps, [\d.]+ ms per step\.$/);
    mkdirSync('test-artifacts', { recursive: true });
    await page.screenshot({ path: 'test-artifacts/diffusion-demo.png' });

    // Cancel after the second step of a long run.
    await page.$eval('#steps', (el) => { (el as HTMLInputElement).value = '100'; });
    await page.click('#generate');
    await page.waitForFunction('window.demo.runs[1] && window.demo.runs[1].stepMs.length >= 2', { timeout: 120_000 });
    await page.click('#cancel');
    await page.waitForFunction('window.demo.runs[1].cancelled || window.demo.runs[1].done || window.demo.runs[1].error', { timeout: 120_000 });
    const second = (await page.evaluate('window.demo.runs[1]')) as { cancelled: boolean; done: boolean; stepMs: number[] };
    expect(second.cancelled).toBe(true);
    expect(second.stepMs.length).toBeLessThan(100);
    expect(await page.$eval('#status', (e) => e.textContent)).toBe('Cancelled.');
    expect(await page.$eval('#generate', (e) => (e as HTMLButtonElement).disabled)).toBe(false);
    expect(await page.$eval('#error', (e) => e.textContent)).toBe('');
    // The console shows no errors (a missing favicon is the server's 404, not the page's).
    expect(b.log.filter((l) => (l.startsWith('error:') || l.startsWith('pageerror:')) && !l.includes('favicon') && !l.includes('404'))).toEqual([]);
  }, 240_000);

  it('tells the user what to do when WebGPU is missing', async () => {
    const page = await b.page.browser().newPage();
    await page.evaluateOnNewDocument(() => {
      Object.defineProperty(navigator, 'gpu', { value: undefined, configurable: true });
    });
    await page.goto(`${b.origin}/demos/diffusion/index.html`);
    await page.waitForFunction('window.demo && window.demo.error', { timeout: 60_000 });
    expect(await page.evaluate('window.demo.error')).toBe('no-webgpu');
    expect(await page.$eval('#error', (e) => e.textContent)).toMatch(/WebGPU is not available in this browser\. Use a recent Chrome or Edge/);
    expect(await page.$eval('#controls', (e) => (e as HTMLFieldSetElement).disabled)).toBe(true);
    await page.close();
  }, 120_000);

  it('renders on a phone-sized screen and generates from a tap', async () => {
    const page = await b.page.browser().newPage();
    const log: string[] = [];
    page.on('pageerror', (e) => log.push(`pageerror: ${(e as Error).message}`));
    await page.emulate(KnownDevices['Pixel 5']);
    await page.goto(`${b.origin}/demos/diffusion/index.html`);
    await page.waitForFunction('window.demo && (window.demo.ready || window.demo.error)', { timeout: 120_000 });
    expect(await page.evaluate('window.demo.error ?? null'), log.join('\n')).toBe(null);
    const layout = await page.evaluate(() => ({
      touch: navigator.maxTouchPoints > 0 && matchMedia('(pointer: coarse)').matches,
      viewport: innerWidth,
      content: document.documentElement.scrollWidth,
      controlsRight: Math.max(...[...document.querySelectorAll('#controls > *')].map((e) => e.getBoundingClientRect().right)),
    }));
    expect(layout.touch).toBe(true);
    expect(layout.viewport).toBe(393);
    expect(layout.content).toBeLessThanOrEqual(layout.viewport); // no horizontal scrolling
    expect(layout.controlsRight).toBeLessThanOrEqual(layout.viewport);
    await page.$eval('#steps', (el) => { (el as HTMLInputElement).value = '4'; });
    await page.tap('#generate');
    await page.waitForFunction('window.demo.runs[0] && (window.demo.runs[0].done || window.demo.runs[0].error)', { timeout: 120_000 });
    const run = (await page.evaluate('window.demo.runs[0]')) as { done: boolean; stepMs: number[]; error?: string };
    expect(run.error, log.join('\n')).toBeUndefined();
    expect(run.stepMs.length).toBe(4);
    expect(await page.$$eval('#result canvas', (c) => c.length)).toBe(1);
    expect(await page.$eval('#status', (e) => e.textContent)).toMatch(/^Done: 4 steps, /);
    mkdirSync('test-artifacts', { recursive: true });
    await page.screenshot({ path: 'test-artifacts/diffusion-demo-mobile.png' });
    await page.close();
  }, 240_000);
});
