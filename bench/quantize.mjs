// npm run bench (quantize part): mobilenet_v2 and resnet18 quantized to static int8 by EdgeKit's quantizer (in Node,
// calibrated on seeded images through the built SDK), then the float32 and int8 files through the same contenders in
// one headless Chromium as bench/run.mjs: EdgeKit WebGPU, onnxruntime-web WebGPU and wasm. Prints, per model and
// contender, cold start, warm median, peak GPU bytes and (EdgeKit) resident weight bytes, with int8 / float32 ratios
// and EdgeKit int8 / onnxruntime-web ratios, then EdgeKit's int8 / float32 ratio measured in one page with the runs
// alternating (bench/alternate.js; the steadier figure on a shared machine). Writes
// bench/results/quantize-<stamp>.json.
// Options: --models a,b --runs N --contenders x,y --samples N (calibration images)
import { existsSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { benchMachine } from './machine.mjs';
import { launchChromium, serveRepo } from '../scripts/browser.mjs';

const args = process.argv.slice(2);
const opt = (k, d) => (args.includes(k) ? args[args.indexOf(k) + 1] : d);
const models = opt('--models', 'mobilenet_v2,resnet18').split(',');
const contenders = opt('--contenders', 'edgekit-webgpu,ort-webgpu,ort-wasm').split(',');
const runs = Number(opt('--runs', '10'));
const samples = Number(opt('--samples', '4'));
const DIMS = [1, 3, 224, 224];

// 1. Quantize (Node, built SDK). Calibration images: smooth seeded patterns, normalized like ImageNet inputs.
const { quantize, formatReport } = await import('../dist/node/index.js');
const files = {};
const reports = {};
for (const m of models) {
  const src = `tests/fixtures/generated/${m}.onnx`;
  if (!existsSync(src)) throw new Error(`${src} is missing: run node scripts/setup-test-env.mjs`);
  const calibration = Array.from({ length: samples }, (_, k) => {
    const data = new Float32Array(3 * 224 * 224);
    let s = 1000 + k;
    for (let i = 0; i < data.length; i++) { s = (s * 16807) % 2147483647; data[i] = Math.sin(i * 0.003 * (k + 1)) + (s / 2147483647 - 0.5); }
    return { input: { dtype: 'float32', shape: DIMS, data } };
  });
  const t0 = performance.now();
  const { model, report } = await quantize(src, { mode: 'int8', calibration, backend: 'cpu', reportSamples: 1 });
  const out = `tests/fixtures/generated/${m}-int8.onnx`;
  writeFileSync(out, model);
  files[m] = { float32: src, int8: out };
  reports[m] = { seconds: (performance.now() - t0) / 1000, weightBytesBefore: report.weightBytesBefore, weightBytesAfter: report.weightBytesAfter, keptFloat: report.keptFloat, fileBytes: { float32: readFileSync(src).length, int8: model.length } };
  console.error(formatReport(report).split('\n').slice(0, 1).join('\n'));
}

// 2. Run every file through every contender, each in a fresh page. A contender's float32 and int8 pages run one right
// after the other, so its int8 / float32 ratio compares runs minutes apart at most, and every page waits a second
// after the previous one closed (onnxruntime-web's wasm threads wind down).
const { server, origin } = await serveRepo();
const browser = await launchChromium();
const results = [];
try {
  const machine = await benchMachine(browser, origin);
  for (const m of models) {
    for (const c of contenders) {
      for (const variant of ['float32', 'int8']) {
        await new Promise((r) => setTimeout(r, 1000));
        const page = await browser.newPage();
        await page.goto(`${origin}/bench/page.html`);
        try {
          const r = await page.evaluate(async (c, url, dims, runs) => {
            const { runContender } = await import('/bench/contenders.js');
            const r = await runContender(c, url, 'input', dims, runs);
            delete r.full;
            if (c === 'edgekit-webgpu') {
              // Resident weight bytes: what the session keeps on the GPU for the model's initializers.
              const ek = await import('/dist/browser/edgekit.js');
              const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
              const s = await ek.InferenceSession.create(bytes, { backend: 'webgpu' });
              r.residentWeightBytes = s.report().weightBytes;
              await s.release();
            }
            return r;
          }, c, `/${files[m][variant]}`, DIMS, runs);
          results.push({ model: m, variant, contender: c, ...r });
          console.error(`${m} ${variant} ${c}: cold ${r.cold.toFixed(0)} ms, median ${r.median.toFixed(1)} ms`);
        } catch (e) {
          results.push({ model: m, variant, contender: c, error: String(e.message ?? e).split('\n')[0] });
          console.error(`${m} ${variant} ${c}: ${String(e.message ?? e).split('\n')[0]}`);
        }
        await page.close();
      }
    }
  }
  // 3. EdgeKit's int8 / float32 ratio in one page, runs alternating (bench/alternate.js): the contenders above run in
  // separate pages minutes apart, and on a shared machine their ratio moves with its slow spells.
  const paired = [];
  if (contenders.includes('edgekit-webgpu')) {
    for (const m of models) {
      const page = await browser.newPage();
      await page.goto(`${origin}/bench/page.html`);
      try {
        const r = await page.evaluate(async (urls, dims, runs) => {
          const { runAlternating } = await import('/bench/alternate.js');
          return runAlternating(urls, dims, runs);
        }, { float32: `/${files[m].float32}`, int8: `/${files[m].int8}` }, DIMS, runs);
        paired.push({ model: m, float32: { cold: r.float32.cold, median: r.float32.median }, int8: { cold: r.int8.cold, median: r.int8.median } });
      } catch (e) {
        paired.push({ model: m, error: String(e.message ?? e).split('\n')[0] });
      }
      await page.close();
    }
  }
  mkdirSync('bench/results', { recursive: true });
  const file = `bench/results/quantize-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, JSON.stringify({ machine, runs, samples, reports, results, paired }, null, 2));
  console.log(table(results));
  for (const p of paired) {
    console.log(p.error
      ? `\n${p.model}: EdgeKit float32 and int8 in one page: error: ${p.error}`
      : `\n${p.model}: EdgeKit int8 / float32 in one page, ${runs} runs each alternating: warm ${(p.int8.median / p.float32.median).toFixed(2)} ` +
        `(${p.int8.median.toFixed(1)} / ${p.float32.median.toFixed(1)} ms), cold ${(p.int8.cold / p.float32.cold).toFixed(2)}`);
  }
  console.log(`\nmachine: ${JSON.stringify(machine)}\nwritten: ${file}`);
} finally {
  await browser.close();
  server.close();
}

function table(rows) {
  const get = (m, v, c) => rows.find((r) => r.model === m && r.variant === v && r.contender === c && !r.error);
  const x = (a, b) => (a !== undefined && b ? (a / b).toFixed(2) : '-');
  const lines = [
    '| model | contender | variant | cold ms | warm median ms | peak GPU MiB | resident weights MiB | int8/f32 warm | int8/f32 cold | int8/f32 weights | EdgeKit int8 / this, warm |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    if (r.error) { lines.push(`| ${r.model} | ${r.contender} | ${r.variant} | error: ${r.error.slice(0, 80)} | | | | | | | |`); continue; }
    const f = get(r.model, 'float32', r.contender);
    const ek8 = get(r.model, 'int8', 'edgekit-webgpu');
    const mib = (b) => (b === undefined ? '-' : (b / 2 ** 20).toFixed(1));
    lines.push(
      `| ${r.model} | ${r.contender} | ${r.variant} | ${r.cold.toFixed(0)} | ${r.median.toFixed(1)} | ${mib(r.peakGpuBytes)} | ${mib(r.residentWeightBytes)} | ` +
        `${r.variant === 'int8' ? x(r.median, f?.median) : ''} | ${r.variant === 'int8' ? x(r.cold, f?.cold) : ''} | ` +
        `${r.variant === 'int8' && r.residentWeightBytes ? x(r.residentWeightBytes, f?.residentWeightBytes) : ''} | ${r.contender === 'edgekit-webgpu' ? '' : x(ek8?.median, r.median)} |`,
    );
  }
  return lines.join('\n');
}
