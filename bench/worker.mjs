// Worker benchmark (issue #12 §5; part of npm run bench): in headless Chromium (WebGPU on SwiftShader unless the
// machine has a GPU), from the built bundle, bench/worker-page.js measures
//   1. main-thread responsiveness: mobilenet_v2 run continuously in the module worker against the same loop on the
//      page: the longest main-thread task (PerformanceObserver 'longtask', target <= 50 ms), the number of long
//      tasks and the frames per second a requestAnimationFrame loop got; on WebGPU and on the CPU backend;
//   2. the worker hop: median latency of a 16-float model in the worker minus on the page (target <= 1 ms);
//   3. two models on one device: mobilenet_v2 and squeezenet1_1 in one worker, issued at once (interleaved by the
//      worker's scheduler) against one after the other: total time and each model's median latency.
// Writes bench/results/worker-<stamp>.json and prints a table. Options: --runs N (continuous runs, default 8),
// --hop-runs N (default 200), --pair-runs N (default 4), --cpu-runs N (CPU backend continuous runs, default 2).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import onnx from 'onnx-proto';
import { benchMachine } from './machine.mjs';
import { launchChromium, serveRepo } from '../scripts/browser.mjs';

const args = process.argv.slice(2);
const opt = (k, d) => (args.includes(k) ? Number(args[args.indexOf(k) + 1]) : d);
const runs = opt('--runs', 8);
const hopRuns = opt('--hop-runs', 200);
const pairRuns = opt('--pair-runs', 4);
const cpuRuns = opt('--cpu-runs', 2);

for (const f of ['mobilenet_v2', 'squeezenet1_1']) {
  if (!existsSync(`tests/fixtures/generated/${f}.onnx`)) {
    console.error(`worker bench: generating the torchvision fixtures (scripts/fixtures/make_fixtures.py)`);
    const r = spawnSync('/usr/bin/python3', ['scripts/fixtures/make_fixtures.py'], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('make_fixtures.py failed (needs Debian python3-torch and python3-torchvision)');
    break;
  }
}
if (!existsSync('dist/browser/worker.js')) throw new Error('dist/browser/worker.js is missing: npm run build first');

// y = x * 2 on 16 floats: the smallest real model, so the time is the hop, not the work.
const tiny = Array.from(
  onnx.onnx.ModelProto.encode({
    irVersion: 8, opsetImport: [{ domain: '', version: 17 }], producerName: 'edgekit-bench',
    graph: {
      name: 'tiny',
      input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 16 }] } } } }],
      output: [{ name: 'y', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 16 }] } } } }],
      initializer: [{ name: 'k', dims: [1], dataType: 1, floatData: [2] }],
      node: [{ opType: 'Mul', input: ['x', 'k'], output: ['y'] }],
    },
  }).finish(),
);

const { server, origin } = await serveRepo();
const browser = await launchChromium();
const results = {};
const measure = async (name, fn, ...a) => {
  const page = await browser.newPage();
  const log = [];
  page.on('pageerror', (e) => log.push(e.message));
  await page.goto(`${origin}/bench/page.html`);
  try {
    const r = await page.evaluate(`import('${origin}/bench/worker-page.js').then((m) => m.${fn}('${origin}', ${a.map((x) => JSON.stringify(x)).join(', ')}))`);
    results[name] = r;
    console.error(`${name}: ${JSON.stringify(r)}`);
  } catch (e) {
    results[name] = { error: `${e.message}\n${log.join('\n')}` };
    console.error(`${name}: FAILED ${e.message}`);
  } finally {
    await page.close();
  }
};
try {
  const machine = await benchMachine(browser, origin);
  await measure('continuous-worker-webgpu', 'continuous', 'worker', 'webgpu', runs);
  await measure('continuous-page-webgpu', 'continuous', 'page', 'webgpu', runs);
  await measure('continuous-worker-cpu', 'continuous', 'worker', 'cpu', cpuRuns);
  await measure('continuous-page-cpu', 'continuous', 'page', 'cpu', cpuRuns);
  await measure('hop-cpu', 'hop', tiny, 'cpu', hopRuns);
  await measure('hop-webgpu', 'hop', tiny, 'webgpu', hopRuns);
  await measure('two-models-webgpu', 'interleaved', 'webgpu', pairRuns);
  let git = '';
  try {
    git = execFileSync('git', ['rev-parse', '--short', 'HEAD']).toString().trim();
  } catch {}
  const file = `bench/results/worker-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, JSON.stringify({ machine, git, options: { runs, hopRuns, pairRuns, cpuRuns }, results }, null, 2));
  console.log(table(results));
  console.log(`\nwrote ${file}`);
} finally {
  await browser.close();
  server.close();
}

function table(r) {
  const rows = ['| measurement | worker | page (main thread) |', '|---|---|---|'];
  for (const b of ['webgpu', 'cpu']) {
    const w = r[`continuous-worker-${b}`], p = r[`continuous-page-${b}`];
    const cell = (x) => (x?.error ? 'failed' : `longest task ${x.longestTaskMs} ms, ${x.longTasks} long tasks, ${x.framesPerSecond} fps, ${x.msPerRun} ms/run`);
    rows.push(`| mobilenet_v2 continuously, ${b} (${w?.runs ?? '?'} runs) | ${cell(w)} | ${cell(p)} |`);
  }
  for (const b of ['cpu', 'webgpu']) {
    const h = r[`hop-${b}`];
    rows.push(`| 16-float model, ${b}: median per run | ${h?.error ? 'failed' : `${h.workerMedianMs} ms (hop ${h.hopMs} ms)`} | ${h?.error ? '' : `${h.pageMedianMs} ms`} |`);
  }
  const t = r['two-models-webgpu'];
  if (t && !t.error) {
    rows.push('', '| two models, one worker, webgpu | total | mobilenet_v2 median | squeezenet1_1 median |', '|---|---|---|---|');
    for (const mode of ['sequential', 'interleaved']) {
      rows.push(`| ${mode} (${t.runsEach} runs each) | ${t[mode].totalMs} ms | ${t[mode].medianMs.mobilenet_v2} ms | ${t[mode].medianMs.squeezenet1_1} ms |`);
    }
  }
  return rows.join('\n');
}
