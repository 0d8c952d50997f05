// EdgeKit float32 against its int8 QDQ file in ONE page of headless Chromium (SwiftShader here), runs alternating so
// that the shared machine's slow spells hit both alike; prints cold starts, warm medians, the int8 / float32 ratios and
// the GPU time by kernel (session.profile, the mean of two profiled runs after one discarded; bench/alternate.js).
// bench/quantize.mjs is the full benchmark (every contender, each in a fresh page, and this pairing without the
// profiles); this one is for comparing kernel changes.
//   npm run build && MODEL=mobilenet_v2 RUNS=9 node bench/qdq-alternate.mjs
// (INT8=path picks another int8 file; the default is tests/fixtures/generated/<model>-int8.onnx, which
// tests/webgpu/qdq-packed.test.ts or bench/quantize.mjs writes.)
import { existsSync } from 'node:fs';
import { launchChromium, serveRepo } from '../scripts/browser.mjs';

const RUNS = Number(process.env.RUNS ?? 7);
const MODEL = process.env.MODEL ?? 'mobilenet_v2';
const files = { float32: `tests/fixtures/generated/${MODEL}.onnx`, int8: process.env.INT8 ?? `tests/fixtures/generated/${MODEL}-int8.onnx` };
for (const f of Object.values(files)) if (!existsSync(f)) throw new Error(`${f} is missing (see the comment at the top of this file)`);
const { server, origin } = await serveRepo();
const browser = await launchChromium();
try {
  const page = await browser.newPage();
  await page.goto(`${origin}/bench/page.html`);
  const r = await page.evaluate(async (files, runs) => {
    const { runAlternating } = await import('/bench/alternate.js');
    return runAlternating(Object.fromEntries(Object.entries(files).map(([k, f]) => [k, '/' + f])), [1, 3, 224, 224], runs, 2);
  }, files, RUNS);
  for (const [k, v] of Object.entries(r)) {
    console.log(`${k}: cold ${v.cold.toFixed(0)} ms, warm median ${v.median.toFixed(1)} ms (${v.times.join(' ')}), GPU ${v.gpu.toFixed(0)} ms`);
    console.log(`  ${v.by.map(([n, t]) => `${n} ${t.toFixed(1)}`).join(', ')}`);
  }
  console.log(`int8 / float32: warm ${(r.int8.median / r.float32.median).toFixed(3)}, GPU ${(r.int8.gpu / r.float32.gpu).toFixed(3)}, cold ${(r.int8.cold / r.float32.cold).toFixed(2)}`);
} finally {
  await browser.close();
  server.close();
}
