// Recurrent benchmark (part of npm run bench): the repo's LSTM and GRU digit models (tests/fixtures/rnn) and a large
// random-weight LSTM (hidden 512, input 256, sequence 256; scripts/fixtures/rnn_bench_fixture.py, generated into
// tests/fixtures/generated/ when missing) through EdgeKit WebGPU and onnxruntime-web (WebGPU bundle, default bundle
// with the webgpu EP (JSEP), wasm) in one headless Chromium, each contender in a fresh page. Warm median/p90 latency
// per whole sequence, and, for the models with state inputs/outputs, per streamed chunk with the state carried
// (EdgeKit: session.createStream; onnxruntime-web: Y_h/Y_c fed back as initial_h/initial_c, kept on the GPU with
// preferredOutputLocation 'gpu-buffer' for its WebGPU variants). Ratios divide by the faster of ort-webgpu and
// ort-jsep, like bench/run.mjs. For each onnxruntime-web variant the table says which execution provider runs the
// recurrent nodes, read from onnxruntime's own verbose "Node placements" log of a separate probe session.
// Output agreement: max|d| / max|ref| against onnxruntime-web wasm's whole-sequence output (streamed outputs
// concatenated); an output more than 1e-2 off is marked wrong and never sets the baseline. A second ratio divides by
// ort-webgpu alone, the variant that (in onnxruntime-web 1.30) runs the recurrent nodes on the GPU too.
// Writes bench/results/rnn-<stamp>.json. Options: --models a,b --runs N --contenders x,y;
// --table <results.json> prints an earlier run's table.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { benchMachine } from './machine.mjs';
import { launchChromium, serveRepo } from '../scripts/browser.mjs';

const args = process.argv.slice(2);
const opt = (k, d) => (args.includes(k) ? args[args.indexOf(k) + 1] : d);
const GENERATOR = 'scripts/fixtures/rnn_bench_fixture.py';
const lstmState = (layers, hidden) => ({
  initial_h: { output: 'Y_h', dims: [layers, 1, hidden] },
  initial_c: { output: 'Y_c', dims: [layers, 1, hidden] },
});
// Batch 1 everywhere: one sequence, as an on-device app runs it. maxRuns caps --runs for a model whose sequence takes
// seconds on SwiftShader.
const MODELS = {
  lstm2: { path: 'tests/fixtures/rnn/lstm2.onnx', input: 'rows', dims: [1, 8, 8], output: 'logits', seqAxis: 1, what: 'LSTM 8→32 ×2 layers + Linear, T=8' },
  bigru: { path: 'tests/fixtures/rnn/bigru.onnx', input: 'rows', dims: [1, 8, 8], output: 'logits', seqAxis: 1, what: 'bidirectional GRU 8→24 + Linear, T=8' },
  'lstm2-stream': {
    path: 'tests/fixtures/generated/lstm2-stream.onnx', input: 'x', dims: [1, 32, 8], output: 'y', seqAxis: 1, chunk: 1,
    state: lstmState(2, 32), generated: true, what: 'lstm2\'s LSTM (8→32 ×2, random weights) with state I/O, T=32, 1-step chunks',
  },
  lstm512: {
    path: 'tests/fixtures/generated/lstm512.onnx', input: 'x', dims: [256, 1, 256], output: 'y', seqAxis: 0, chunk: 16,
    state: lstmState(1, 512), generated: true, maxRuns: 10, what: 'LSTM 256→512 (random weights) with state I/O, T=256, 16-step chunks',
  },
};
const models = opt('--models', 'lstm2,bigru,lstm2-stream,lstm512').split(',');
const contenders = opt('--contenders', 'edgekit-webgpu,ort-webgpu,ort-jsep,ort-wasm').split(',');
const runs = Number(opt('--runs', '10'));
/** A result whose output is more than 1e-2 (relative) off onnxruntime-web wasm's is wrong, and sets no baseline. */
const WRONG = 1e-2;
const RECURRENT = new Set(['LSTM', 'GRU', 'RNN']);
const EP_SHORT = { CPUExecutionProvider: 'CPU', WebGpuExecutionProvider: 'WebGPU', JsExecutionProvider: 'WebGPU (JSEP)' };

if (opt('--table')) {
  // Prints the table of an earlier results file again (no browser).
  const { results } = JSON.parse(readFileSync(opt('--table'), 'utf8'));
  console.log(`${table(results)}\n\n${targets(results)}`);
  process.exit(0);
}

const missing = models.filter((m) => MODELS[m]?.generated && !existsSync(MODELS[m].path));
if (missing.length) {
  console.error(`rnn bench: generating ${missing.join(', ')} (${GENERATOR})`);
  const r = spawnSync('/usr/bin/python3', [GENERATOR], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`${GENERATOR} failed (needs Debian's python3-torch: node scripts/setup-test-env.mjs installs it)`);
}

const { server, origin } = await serveRepo();
const browser = await launchChromium();
const results = [];
try {
  const machine = await benchMachine(browser, origin);
  for (const m of models) {
    const spec = MODELS[m];
    if (!spec || !existsSync(spec.path)) { console.error(`skipping ${m}: ${spec ? spec.path + ' is missing' : 'unknown model'}`); continue; }
    const pageSpec = { url: `/${spec.path}`, input: spec.input, dims: spec.dims, output: spec.output, seqAxis: spec.seqAxis, state: spec.state, chunk: spec.chunk };
    for (const c of contenders) {
      const row = { model: m, contender: c };
      if (c.startsWith('ort-')) {
        try { row.placement = await probePlacement(c, pageSpec.url); } catch (e) { row.placement = { error: String(e.message ?? e).split('\n')[0] }; }
      } else row.placement = { recurrent: 'WebGPU (every node)' }; // EdgeKit has no per-node CPU fallback
      const page = await browser.newPage();
      await page.goto(`${origin}/bench/page.html`);
      try {
        const r = await page.evaluate(async (c, s, runs) => {
          const { runRnnContender } = await import('/bench/rnn-contenders.js');
          return runRnnContender(c, s, runs);
        }, c, pageSpec, Math.min(runs, spec.maxRuns ?? runs));
        Object.assign(row, r);
        console.error(`${m} ${c}: sequence median ${r.median.toFixed(2)} ms${r.stream ? `, chunk median ${r.stream.median.toFixed(2)} ms` : ''}`);
      } catch (e) {
        row.error = String(e.message ?? e).split('\n')[0];
        console.error(`${m} ${c}: ${row.error}`);
      }
      results.push(row);
      await page.close();
    }
  }
  agreement(results);
  for (const r of results) { delete r.full; if (r.stream) delete r.stream.full; }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = `bench/results/rnn-${stamp}.json`;
  const git = spawnSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
  writeFileSync(file, JSON.stringify({ machine, git, runs, models: Object.fromEntries(models.map((m) => [m, MODELS[m]])), results }, null, 2));
  console.log(table(results));
  console.log(`\n${targets(results)}`);
  console.log(`\nmachine: ${JSON.stringify(machine)}\nwritten: ${file}`);
} finally {
  await browser.close();
  server.close();
}

/**
 * Which execution provider onnxruntime-web gives each node, from its own log: a probe session created with
 * logSeverityLevel 0 prints "Node(s) placed on [EP]. Number of nodes: n" followed by one "  OpType (name)" line per
 * node (or "All nodes placed on [EP]"). Returns the recurrent nodes' providers and the per-provider node counts.
 */
async function probePlacement(c, url) {
  const page = await browser.newPage();
  const lines = [];
  page.on('console', (msg) => lines.push(msg.text()));
  await page.goto(`${origin}/bench/page.html`);
  try {
    await page.evaluate(async (c, url) => {
      const { probeOrtPlacement } = await import('/bench/rnn-contenders.js');
      await probeOrtPlacement(c, url);
    }, c, url);
  } finally {
    await page.close();
  }
  const counts = {};
  const recurrent = {};
  let ep;
  for (const line of lines) {
    const all = /All nodes placed on \[(\w+)\]\. Number of nodes: (\d+)/.exec(line);
    if (all) { counts[all[1]] = Number(all[2]); ep = all[1]; continue; }
    const head = /Node\(s\) placed on \[(\w+)\]\. Number of nodes: (\d+)/.exec(line);
    if (head) { ep = head[1]; counts[ep] = Number(head[2]); continue; }
    const node = /VerifyEachNodeIsAssignedToAnEp\]\s{3}(\w+) \((.*)\)\s*$/.exec(line);
    if (node && ep && RECURRENT.has(node[1])) (recurrent[node[1]] ??= {})[ep] = (recurrent[node[1]][ep] ?? 0) + 1;
  }
  if (!Object.keys(counts).length) throw new Error('onnxruntime-web printed no node placements');
  // "All nodes placed on" does not list them; then every recurrent node is on that provider.
  const summary = Object.keys(recurrent).length
    ? Object.entries(recurrent).map(([op, eps]) => `${op} ×${Object.values(eps).reduce((a, b) => a + b, 0)} on ${Object.keys(eps).map((e) => EP_SHORT[e] ?? e).join(' + ')}`).join('; ')
    : Object.keys(counts).length === 1 ? `every node on ${EP_SHORT[ep] ?? ep}` : 'no recurrent node listed';
  return { recurrent: summary, nodes: recurrent, countsByProvider: counts };
}

/** max|d| / max|ref| of each output (whole sequence, and streamed chunks concatenated) against ort-wasm's whole run. */
function agreement(rows) {
  const rel = (a, ref) => {
    if (a.length !== ref.length) return NaN;
    let d = 0, m = 0;
    a.forEach((v, i) => { d = Math.max(d, Math.abs(v - ref[i])); m = Math.max(m, Math.abs(ref[i])); });
    return m ? d / m : d;
  };
  for (const r of rows) {
    const ref = rows.find((x) => x.model === r.model && x.contender === 'ort-wasm' && x.full);
    if (!ref) continue;
    if (r.full) r.relErrVsWasm = rel(r.full, ref.full);
    if (r.stream?.full) r.stream.relErrVsWasm = rel(r.stream.full, ref.full);
  }
}

/** The warm median of a result, unless its output is wrong (then it sets no baseline). */
function timeOf(x, mode) {
  const r = mode === 'sequence' ? x : x.stream;
  return r && !(r.relErrVsWasm > WRONG) ? r.median : undefined;
}

/**
 * The faster of onnxruntime-web's two WebGPU variants for this model and mode (undefined when neither ran), or with
 * `only`, that one variant.
 */
function best(rows, model, mode, only) {
  const v = rows
    .filter((x) => x.model === model && !x.error && (only ? x.contender === only : x.contender === 'ort-webgpu' || x.contender === 'ort-jsep'))
    .map((x) => timeOf(x, mode))
    .filter((x) => x > 0);
  return v.length ? Math.min(...v) : undefined;
}

function table(rows) {
  const fmt = (v) => (v === undefined || Number.isNaN(v) ? '-' : v.toExponential(1));
  const lines = [
    '| model | mode | contender | recurrent nodes run on | warm median ms | p90 ms | × faster ort WebGPU | × ort-webgpu | rel. err vs wasm | state between chunks |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const where = r.placement?.recurrent ?? (r.placement?.error ? `? (${r.placement.error.slice(0, 40)})` : '-');
    if (r.error) { lines.push(`| ${r.model} | - | ${r.contender} | ${where} | error: ${r.error.slice(0, 80)} | | | | | |`); continue; }
    const ratio = (v, b) => (b ? (v / b).toFixed(2) : '-');
    const err = (e) => `${fmt(e)}${e > WRONG ? ' (wrong)' : ''}`;
    const T = MODELS[r.model].dims[MODELS[r.model].seqAxis];
    lines.push(`| ${r.model} | sequence (T=${T}) | ${r.contender} | ${where} | ${r.median.toFixed(2)} | ${r.p90.toFixed(2)} | ${ratio(r.median, best(rows, r.model, 'sequence'))} | ${ratio(r.median, best(rows, r.model, 'sequence', 'ort-webgpu'))} | ${err(r.relErrVsWasm)} | |`);
    if (r.stream) {
      const s = r.stream;
      lines.push(`| ${r.model} | chunk (${s.chunk} step${s.chunk > 1 ? 's' : ''}) | ${r.contender} | ${where} | ${s.median.toFixed(2)} | ${s.p90.toFixed(2)} | ${ratio(s.median, best(rows, r.model, 'chunk'))} | ${ratio(s.median, best(rows, r.model, 'chunk', 'ort-webgpu'))} | ${err(s.relErrVsWasm)} | ${s.stateLocation} |`);
    }
  }
  return lines.join('\n');
}

/** EdgeKit against the issue's target: warm latency <= 0.5x the faster onnxruntime-web WebGPU variant. */
function targets(rows) {
  const lines = ['Target (EdgeKit / faster onnxruntime-web WebGPU variant): warm latency <= 0.5 (in brackets: / ort-webgpu alone)'];
  for (const r of rows.filter((x) => x.contender.startsWith('edgekit') && !x.error)) {
    const check = (label, mode) => {
      const v = timeOf(r, mode);
      const b = best(rows, r.model, mode);
      const w = best(rows, r.model, mode, 'ort-webgpu');
      if (v === undefined) return `${label} - (EdgeKit's output is wrong)`;
      return b === undefined ? `${label} - (no onnxruntime-web WebGPU result)` : `${label} ${(v / b).toFixed(2)} ${v / b <= 0.5 ? 'met' : 'NOT met'}${w ? ` (${(v / w).toFixed(2)})` : ''}`;
    };
    const parts = [check('sequence', 'sequence')];
    if (r.stream) parts.push(check('chunk', 'chunk'));
    lines.push(`- ${r.model}: ${parts.join('; ')}`);
  }
  return lines.join('\n');
}
