// npm run bench: the same models and inputs through EdgeKit (WebGPU) and onnxruntime-web (WebGPU bundle, default
// bundle with the webgpu EP, and wasm) in one headless Chromium, each contender in a fresh page. Prints a table of
// cold start, warm median and p90, peak GPU memory, each also as a ratio to onnxruntime-web WebGPU; writes JSON to
// bench/results/. The issue's targets are against "the faster onnxruntime-web WebGPU variant": each ratio divides by
// the better (smaller) of ort-webgpu and ort-jsep on that metric, so a contender that fails a model or is worse on
// one metric never flatters EdgeKit on it. Options: --models a,b --runs N --contenders x,y
import { existsSync, writeFileSync } from 'node:fs';
import { benchMachine } from './machine.mjs';
import { launchChromium, serveRepo } from '../scripts/browser.mjs';

const args = process.argv.slice(2);
const opt = (k, d) => (args.includes(k) ? args[args.indexOf(k) + 1] : d);
const MODELS = {
  digits: { path: 'tests/fixtures/digits/digits-cnn.onnx', input: 'input', dims: [1, 1, 8, 8] },
  squeezenet1_1: { path: 'tests/fixtures/generated/squeezenet1_1.onnx', input: 'input', dims: [1, 3, 224, 224] },
  mobilenet_v2: { path: 'tests/fixtures/generated/mobilenet_v2.onnx', input: 'input', dims: [1, 3, 224, 224] },
  resnet18: { path: 'tests/fixtures/generated/resnet18.onnx', input: 'input', dims: [1, 3, 224, 224] },
};
const models = opt('--models', 'squeezenet1_1,mobilenet_v2,resnet18').split(',');
const contenders = opt('--contenders', 'edgekit-webgpu,edgekit-webgpu-f16w,ort-webgpu,ort-jsep,ort-wasm').split(',');
const runs = Number(opt('--runs', '20'));

const { server, origin } = await serveRepo();
const browser = await launchChromium();
const results = [];
try {
  const machine = await benchMachine(browser, origin);
  for (const m of models) {
    const spec = MODELS[m];
    if (!spec || !existsSync(spec.path)) { console.error(`skipping ${m}: ${spec ? spec.path + ' is missing (run npm test once to generate it)' : 'unknown model'}`); continue; }
    for (const c of contenders) {
      const page = await browser.newPage();
      await page.goto(`${origin}/bench/page.html`);
      try {
        const r = await page.evaluate(async (c, url, input, dims, runs) => {
          const { runContender } = await import('/bench/contenders.js');
          return runContender(c, url, input, dims, runs);
        }, c, `/${spec.path}`, spec.input, spec.dims, runs);
        results.push({ model: m, contender: c, ...r });
        console.error(`${m} ${c}: median ${r.median.toFixed(2)} ms`);
      } catch (e) {
        results.push({ model: m, contender: c, error: String(e.message ?? e).split('\n')[0] });
        console.error(`${m} ${c}: ${String(e.message ?? e).split('\n')[0]}`);
      }
      await page.close();
    }
  }
  // Output agreement with onnxruntime-web's wasm backend (float32 on the CPU): max|d| / max|ref| and top-1.
  for (const r of results) {
    const ref = results.find((x) => x.model === r.model && x.contender === 'ort-wasm' && x.full);
    if (r.full && ref) {
      let d = 0, m = 0;
      r.full.forEach((v, i) => { d = Math.max(d, Math.abs(v - ref.full[i])); m = Math.max(m, Math.abs(ref.full[i])); });
      const top = (a) => a.reduce((b, v, i) => (v > a[b] ? i : b), 0);
      r.relErrVsWasm = m ? d / m : d;
      r.top1AgreesWithWasm = top(r.full) === top(ref.full);
    }
  }
  for (const r of results) delete r.full;
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = `bench/results/${stamp}.json`;
  writeFileSync(file, JSON.stringify({ machine, runs, results }, null, 2));
  console.log(table(results));
  console.log(`\n${targets(results)}`);
  console.log(`\nmachine: ${JSON.stringify(machine)}\nwritten: ${file}`);
} finally {
  await browser.close();
  server.close();
}

function table(rows) {
  const lines = [
    '| model | contender | cold ms | first run ms | warm median ms | p90 ms | peak GPU MiB | cold × | warm × | mem × | first/warm | rel. err vs wasm |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    if (r.error) { lines.push(`| ${r.model} | ${r.contender} | error: ${r.error.slice(0, 80)} | | | | | | | | | |`); continue; }
    const ratio = (k) => { const b = best(rows, r.model, k); return b ? (r[k] / b).toFixed(2) : '-'; };
    const mem = ratio('peakGpuBytes');
    lines.push(
      `| ${r.model} | ${r.contender} | ${r.cold.toFixed(1)} | ${r.firstRun.toFixed(1)} | ${r.median.toFixed(2)} | ${r.p90.toFixed(2)} | ` +
        `${(r.peakGpuBytes / 2 ** 20).toFixed(1)} | ${ratio('cold')} | ${ratio('median')} | ${mem} | ${(r.firstRun / r.median).toFixed(2)} | ` +
        `${r.relErrVsWasm === undefined ? '-' : `${r.relErrVsWasm.toExponential(1)}${r.top1AgreesWithWasm ? '' : ' (top-1 differs)'}`} |`,
    );
  }
  return lines.join('\n');
}

/** The better of onnxruntime-web's two WebGPU variants on metric k for this model (undefined when neither ran). */
function best(rows, model, k) {
  const v = rows.filter((x) => x.model === model && !x.error && (x.contender === 'ort-webgpu' || x.contender === 'ort-jsep')).map((x) => x[k]).filter((x) => x > 0);
  return v.length ? Math.min(...v) : undefined;
}

/** EdgeKit against the issue's targets, one line per model. */
function targets(rows) {
  const lines = ['Targets (EdgeKit / better onnxruntime-web WebGPU variant): warm <= 0.5, cold <= 0.3, memory <= 0.7, first run <= 1.5x warm'];
  for (const r of rows.filter((x) => x.contender.startsWith('edgekit-webgpu') && !x.error)) {
    const check = (label, v, limit) => (v === undefined ? `${label} - (no onnxruntime-web WebGPU result)` : `${label} ${v.toFixed(2)} ${v <= limit ? 'met' : 'NOT met'}`);
    const ratio = (k) => { const b = best(rows, r.model, k); return b ? r[k] / b : undefined; };
    lines.push(`- ${r.model} (${r.contender}): ${[check('warm', ratio('median'), 0.5), check('cold', ratio('cold'), 0.3), check('memory', ratio('peakGpuBytes'), 0.7), check('first/warm', r.firstRun / r.median, 1.5)].join('; ')}`);
  }
  return lines.join('\n');
}
