import { mkdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { useBrowserPage } from '../helpers/browser-page.js';
import { expectNoLongTasks, observeLongTasks, startLongTaskWatch, stopLongTaskWatch } from '../helpers/long-tasks.js';

/**
 * The diffusion demo's latent model (demos/diffusion/, bundle only) in headless Chromium on SwiftShader: choosing
 * "Fashion-MNIST latent" loads tests/fixtures/latent-diffusion through LatentDiffusionPipeline.load from its URL
 * (diffusers' folder layout: model_index.json, text_encoder, unet, vae_decoder, scheduler, tokenizer); a prompt
 * then gives a 28x28 image with at least two previews decoded by the VAE decoder, and no console errors. The
 * digits model and its checks are tests/browser/diffusion-demo.test.ts. While it generates, no main-thread task is
 * 50 ms of CPU or longer (the page warms the latent model while loading it). Screenshot: test-artifacts/latent-diffusion-demo.png.
 */
describe('diffusion demo: the latent (text-to-image) model', () => {
  const b = useBrowserPage();

  it('loads the diffusers folder from its URL and generates from a prompt with decoded previews', async () => {
    const { page } = b;
    // Every file the page asks for exists (the folder's optional files included), except the browser's favicon.
    const missing: string[] = [];
    page.on('response', (r) => { if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) missing.push(`${r.status()} ${r.url()}`); });
    await observeLongTasks(page);
    await page.goto(`${b.origin}/demos/diffusion/index.html`);
    await page.waitForFunction('window.demo && (window.demo.ready || window.demo.error)', { timeout: 120_000 });
    expect(await page.evaluate('window.demo.error ?? null'), b.log.join('\n')).toBe(null);
    await page.select('#model', 'fashion');
    await page.waitForFunction("window.demo.model === 'fashion' && (window.demo.ready || window.demo.error)", { timeout: 180_000 });
    expect(await page.evaluate('window.demo.error ?? null'), b.log.join('\n')).toBe(null);
    expect(await page.$eval('#prompt-label', (e) => (e as HTMLElement).hidden)).toBe(false);
    expect(await page.$eval('#digit-label', (e) => (e as HTMLElement).hidden)).toBe(true);

    await page.$eval('#prompt', (el) => { (el as HTMLInputElement).value = 'a photo of a trouser'; });
    await page.$eval('#steps', (el) => { (el as HTMLInputElement).value = '6'; });
    const watch = await startLongTaskWatch(page);
    await page.click('#generate');
    await page.waitForFunction('window.demo.runs[0] && (window.demo.runs[0].done || window.demo.runs[0].error)', { timeout: 180_000 });
    // The model was warmed while loading (guided, unguided, a decoded preview): no main-thread long task of 50 ms of
    // CPU or more (tests/helpers/long-tasks.ts).
    expectNoLongTasks(await stopLongTaskWatch(watch));
    const run = (await page.evaluate('window.demo.runs[0]')) as { done: boolean; previews: number; stepMs: number[]; error?: string };
    expect(run.error, b.log.join('\n')).toBeUndefined();
    expect(run.done).toBe(true);
    expect(run.stepMs.length).toBe(6);
    expect(run.previews).toBeGreaterThanOrEqual(2);
    const previews = await page.$$eval('#previews canvas', (cs) => cs.map((c) => [(c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height, c.title]));
    expect(previews.length).toBe(run.previews);
    for (const [w, h, title] of previews) {
      expect([w, h]).toEqual([28, 28]);
      expect(title).toMatch(/\(decoder\)$/);
    }
    // The result is a 28x28 decoded image, not a blank.
    const result = await page.$eval('#result canvas', (c) => {
      const cv = c as HTMLCanvasElement;
      const d = cv.getContext('2d')!.getImageData(0, 0, cv.width, cv.height).data;
      let lo = 255, hi = 0;
      for (let i = 0; i < d.length; i += 4) { lo = Math.min(lo, d[i]!); hi = Math.max(hi, d[i]!); }
      return { w: cv.width, h: cv.height, spread: hi - lo };
    });
    expect(result).toMatchObject({ w: 28, h: 28 });
    expect(result.spread).toBeGreaterThan(100);
    expect(await page.$eval('#status', (e) => e.textContent)).toMatch(/^Done: 6 steps, [\d.]+ ms per step\.$/);
    mkdirSync('test-artifacts', { recursive: true });
    await page.screenshot({ path: 'test-artifacts/latent-diffusion-demo.png' });
    expect(missing).toEqual([]);
    // The console shows no errors (Chromium logs the favicon's 404 as an error without its URL; checked above).
    expect(b.log.filter((l) => (l.startsWith('error:') || l.startsWith('pageerror:')) && !l.includes('404'))).toEqual([]);
  }, 360_000);
});
