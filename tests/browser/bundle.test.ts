import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { useBrowserPage } from '../helpers/browser-page.js';

// The rollup browser bundle in headless Chromium (WebGPU on SwiftShader), importing only dist/browser/edgekit.js.
describe('browser bundle in headless Chromium', () => {
  const b = useBrowserPage();

  it('WebGPU is available to pages (SwiftShader when there is no GPU)', async () => {
    const info = await b.page.evaluate(async () => {
      const adapter = await navigator.gpu?.requestAdapter();
      return adapter ? { ok: true, features: [...adapter.features] } : { ok: false, features: [] };
    });
    expect(info.ok, `no WebGPU adapter in Chromium; page log:\n${b.log.join('\n')}`).toBe(true);
  });

  it('loads the bundle and classifies the held-out digits on WebGPU as on the CPU', async () => {
    const meta = JSON.parse(readFileSync('tests/fixtures/digits/meta.json', 'utf8')) as { test_correct: number };
    // A string, so vitest does not rewrite the page's dynamic import().
    const r = (await b.page.evaluate(`import('${b.origin}/tests/browser/digits-page.js').then((m) => m.run('${b.origin}'))`)) as Record<string, unknown>;
    expect(r, b.log.join('\n')).toMatchObject({
      names: ['input'],
      backend: 'webgpu',
      dims: [360, 10],
      gpuCorrect: meta.test_correct,
      cpuCorrect: meta.test_correct,
      keptLocation: 'gpu-buffer',
      keptSame: true,
      err: 'InvalidArgumentError:INVALID_ARGUMENT',
    });
    expect(r.relDiff as number).toBeLessThan(1e-3);
    expect(r.dispatches as number).toBeGreaterThan(0);
  }, 120_000);

  it('runs dynamic-shape exports by URL at several shapes on WebGPU as on the CPU, data-dependent ones staged', async () => {
    const r = (await b.page.evaluate(`import('${b.origin}/tests/browser/dynamic-page.js').then((m) => m.run('${b.origin}'))`)) as Record<string, { worst: number; shapes: string[]; stages: number; readbacks: number }>;
    expect(r.vit!.shapes, b.log.join('\n')).toEqual(['1x5', '3x5']);
    expect(r.vit!.worst).toBeLessThan(1e-3);
    expect(r.vit!.stages).toBe(1);
    expect(r.ragged!.shapes).toEqual(['2x6', '2x6']);
    expect(r.ragged!.worst).toBeLessThan(1e-3);
    expect(r.ragged!.readbacks).toBe(1);
  }, 120_000);
});
