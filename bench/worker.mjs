// Worker benchmark (issue #12 §5; part of npm run bench): in headless Chromium (WebGPU on SwiftShader unless the
// machine has a GPU), from the built bundle, bench/worker-page.js measures
//   1. main-thread responsiveness: mobilenet_v2 run continuously in the module worker against the same loop on the
//      page: the longest main-thread task (PerformanceObserver 'longtask', target <= 50 ms), the number of long
//      tasks and the frames per second a requestAnimationFrame loop got; on WebGPU and on the CPU backend;
//   2. the worker hop: median latency of a 16-float model in the worker minus on the page (target <= 1 ms);
//   3. two models on one device: mobilenet_v2 and squeezenet1_1 in one worker, issued at once (interleaved by the
//      worker's scheduler) against one after the other: total time and each model's median latency.
// Writes bench/results/worker-<stamp>.json and prints a table. Options: --runs N (continuous runs, default 8),
// --hop-runs N (default 200), --pair-runs N (default 4), --cpu-runs N (CPU backend continuous runs, default 2),
// --trace (records a Chromium trace of the continuous measurements and reports what each long main-thread task
// was: its thread CPU time against its wall time, and the trace events inside it; see longTaskAttribution()),
// --only NAME,NAME (run only those measurements, e.g. --only continuous-worker-webgpu).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import onnx from 'onnx-proto';
import { benchMachine } from './machine.mjs';
import { launchChromium, serveRepo } from '../scripts/browser.mjs';

const args = process.argv.slice(2);
const opt = (k, d) => (args.includes(k) ? Number(args[args.indexOf(k) + 1]) : d);
const runs = opt('--runs', 8);
const hopRuns = opt('--hop-runs', 200);
const pairRuns = opt('--pair-runs', 4);
const cpuRuns = opt('--cpu-runs', 2);
const trace = args.includes('--trace');
/** What the trace records: the renderer's tasks with their thread time, V8 (GC, compile) and Blink's timeline. */
const TRACE_CATEGORIES = ['toplevel', 'devtools.timeline', 'disabled-by-default-devtools.timeline', 'v8', 'disabled-by-default-v8.gc', 'blink', 'blink.console', 'benchmark'];
const only = args.includes('--only') ? args[args.indexOf('--only') + 1].split(',') : undefined;

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

// The machine's 1-minute load average at the start and the end: long tasks measure wall time, and on a shared
// machine a main thread waiting for a core shows as a long task (--trace tells the two apart).
const loadAtStart = loadavg()[0];
const { server, origin } = await serveRepo();
const browser = await launchChromium();
const results = {};
const measure = async (name, fn, ...a) => {
  if (only && !only.includes(name)) return;
  const page = await browser.newPage();
  const log = [];
  page.on('pageerror', (e) => log.push(e.message));
  await page.goto(`${origin}/bench/page.html`);
  const tracePath = trace && fn === 'continuous' ? join(tmpdir(), `edgekit-worker-trace-${process.pid}.json`) : undefined;
  if (tracePath) await page.tracing.start({ path: tracePath, categories: TRACE_CATEGORIES });
  try {
    const r = await page.evaluate(`import('${origin}/bench/worker-page.js').then((m) => m.${fn}('${origin}', ${a.map((x) => JSON.stringify(x)).join(', ')}))`);
    if (tracePath) {
      await page.tracing.stop();
      const tasks = longTaskAttribution(JSON.parse(readFileSync(tracePath, 'utf8')), r.window);
      rmSync(tracePath, { force: true });
      const cpu = tasks.map((t) => t.threadCpuMs ?? NaN);
      r.trace = { longestTaskCpuMs: cpu.length ? Math.max(...cpu) : 0, tasksOver50msCpu: cpu.filter((c) => c >= 50).length, tasks };
    }
    results[name] = r;
    const { trace: t, longTasksAt: _at, window: _w, ...brief } = r;
    console.error(`${name}: ${JSON.stringify(brief)}${t ? ` trace: ${t.tasks.length} long tasks, at most ${t.longestTaskCpuMs} ms of main-thread CPU in one, ${t.tasksOver50msCpu} with over 50 ms of CPU` : ''}`);
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
  writeFileSync(file, JSON.stringify({ machine, git, loadAverage: { start: +loadAtStart.toFixed(1), end: +loadavg()[0].toFixed(1) }, options: { runs, hopRuns, pairRuns, cpuRuns, trace }, results }, null, 2));
  console.log(table(results));
  console.log(`\nwrote ${file}`);
} finally {
  await browser.close();
  server.close();
}

/**
 * The page's long tasks (>= 50 ms) on its main thread (CrRendererMain) inside the measured loop (`window`, the
 * loop's start and end on the page's clock, matched to the trace by the 'edgekit-loop' console.time marks), each
 * with its wall time, the thread's CPU time in it (tdur: far below the wall time means the thread was waiting for a
 * core, not working), and the trace events inside it with the most wall time.
 */
function longTaskAttribution(t, window) {
  const events = t.traceEvents ?? t;
  const names = new Map(events.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => [`${e.pid}:${e.tid}`, e.args.name]));
  const mark = events.find((e) => e.name === 'edgekit-loop' && (e.ph === 'b' || e.ph === 'B' || e.ph === 'S' || e.ph === 'X'));
  const main = mark ? `${mark.pid}:${mark.tid}` : [...names].find(([, n]) => n === 'CrRendererMain')?.[0];
  const onMain = events.filter((e) => `${e.pid}:${e.tid}` === main && e.ph === 'X' && typeof e.dur === 'number');
  const start = mark?.ts ?? -Infinity;
  const end = mark && window ? start + (window.end - window.start) * 1000 : Infinity;
  const all = onMain.filter((e) => (e.name === 'ThreadControllerImpl::RunTask' || e.name === 'RunTask') && e.dur >= 50_000 && e.ts + e.dur >= start && e.ts <= end);
  // Chromium nests a RunTask inside a ThreadControllerImpl::RunTask: keep the outermost.
  const tasks = all.filter((t) => !all.some((o) => o !== t && o.ts <= t.ts && o.ts + o.dur >= t.ts + t.dur && (o.dur > t.dur || o.name === 'ThreadControllerImpl::RunTask')));
  return tasks.map((task) => {
    const inside = onMain.filter((e) => e !== task && e.ts >= task.ts && e.ts + e.dur <= task.ts + task.dur);
    const byName = new Map();
    for (const e of inside) byName.set(e.name, (byName.get(e.name) ?? 0) + e.dur);
    return {
      atMs: Math.round((task.ts - start) / 1000), // negative: the task began before the loop (the loop runs inside it)
      wallMs: +(task.dur / 1000).toFixed(1),
      threadCpuMs: task.tdur === undefined ? undefined : +(task.tdur / 1000).toFixed(1),
      inside: [...byName].filter(([n]) => !n.endsWith('RunTask')).sort((a, b) => b[1] - a[1]).slice(0, 5).map(([n, d]) => `${n} ${(d / 1000).toFixed(1)} ms`),
    };
  });
}

function table(r) {
  const rows = ['| measurement | worker | page (main thread) |', '|---|---|---|'];
  for (const b of ['webgpu', 'cpu']) {
    const w = r[`continuous-worker-${b}`], p = r[`continuous-page-${b}`];
    const cell = (x) =>
      !x ? 'not run'
      : x.error ? 'failed'
      : `longest task ${x.longestTaskMs} ms${x.trace ? ` (${x.trace.longestTaskCpuMs} ms of main-thread CPU at most)` : ''}, ${x.longTasks} long tasks, ${x.framesPerSecond} fps, ${x.msPerRun} ms/run`;
    rows.push(`| mobilenet_v2 continuously, ${b} (${w?.runs ?? '?'} runs) | ${cell(w)} | ${cell(p)} |`);
  }
  for (const b of ['cpu', 'webgpu']) {
    const h = r[`hop-${b}`];
    if (!h) continue;
    rows.push(`| 16-float model, ${b}: median per run | ${h.error ? 'failed' : `${h.workerMedianMs} ms (hop ${h.hopMs} ms)`} | ${h.error ? '' : `${h.pageMedianMs} ms`} |`);
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
