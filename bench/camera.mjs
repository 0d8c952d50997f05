// Camera pipeline benchmark (issue #13 §4; part of npm run bench): in headless Chromium with a fake camera
// (--use-fake-device-for-media-stream; --video <file.y4m|.mjpeg> plays a file instead of Chromium's test pattern),
// WebGPU on SwiftShader unless the machine has a GPU, bench/camera-page.js runs frames from getUserMedia through an
// ImageNet-style classifier (default mobilenet_v2 from the torchvision fixtures, 224 px) to a top-1 label for a fixed
// time, each contender in a fresh page:
//   edgekit-worker  Tensor.fromImage (GPU resize/normalize) + a worker session, queue 'latest-only' (the camera demo)
//   edgekit-page    the same on a main-thread session
//   ort-webgpu      onnxruntime-web WebGPU bundle, CPU-side preprocessing (canvas, getImageData, JS loop to NCHW)
//   ort-wasm        onnxruntime-web wasm (one thread), the same preprocessing
// Measured: labels per second, frame-to-label latency (median, p95), the longest main-thread task and how often a
// requestAnimationFrame loop painted; ratios EdgeKit / ORT-web WebGPU. A fixed 224x224 image is classified by every
// contender first: its top-1 and max |logit difference| against ort-wasm check that the pipelines compute the same.
// Writes bench/results/camera-<stamp>.json and prints a table.
// Options: --model mobilenet_v2|squeezenet1_1|resnet18 --seconds 30 --warm 2 --video FILE
//          --contenders edgekit-worker,edgekit-page,ort-webgpu,ort-wasm --timeout <s per contender, 0 = none>
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { benchMachine } from './machine.mjs';
import { runContender, writeResults } from './page-runner.mjs';
import { launchChromium, serveRepo } from '../scripts/browser.mjs';

const args = process.argv.slice(2);
const opt = (k, d) => (args.includes(k) ? args[args.indexOf(k) + 1] : d);
const modelName = opt('--model', 'mobilenet_v2');
const seconds = Number(opt('--seconds', 30));
const warm = Number(opt('--warm', 2));
const video = opt('--video', undefined);
const limitS = Number(opt('--timeout', 0));
const contenders = opt('--contenders', 'edgekit-worker,edgekit-page,ort-webgpu,ort-wasm').split(',');
const model = `tests/fixtures/generated/${modelName}.onnx`;

if (!existsSync(model)) {
  console.error(`camera bench: generating the torchvision fixtures (scripts/fixtures/make_fixtures.py)`);
  const r = spawnSync('/usr/bin/python3', ['scripts/fixtures/make_fixtures.py'], { stdio: 'inherit' });
  if (r.status !== 0 || !existsSync(model)) throw new Error(`${model} is missing and make_fixtures.py did not make it (needs Debian python3-torch and python3-torchvision)`);
}
if (!existsSync('dist/browser/edgekit.js')) throw new Error('dist/browser/edgekit.js is missing: npm run build first');
if (video && !existsSync(video)) throw new Error(`--video ${video} does not exist`);

const cameraArgs = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--autoplay-policy=no-user-gesture-required'];
if (video) cameraArgs.push(`--use-file-for-fake-video-capture=${resolve(video)}`);

const { server, origin } = await serveRepo();
const browser = await launchChromium(cameraArgs);
const results = {};
try {
  const machine = await benchMachine(browser, origin);
  for (const c of contenders) {
    try {
      results[c] = await runContender(browser, origin, { module: 'bench/camera-page.js', fn: 'run', contender: c, options: { model, seconds, warm }, limitS });
      const { reference, ...rest } = results[c];
      console.error(`${c}: ${JSON.stringify(rest)}`);
    } catch (e) {
      results[c] = { error: e.message };
      console.error(`${c}: FAILED ${e.message}`);
    }
  }
  // The fixed image through each pipeline against onnxruntime-web wasm (float32 on the CPU).
  const ref = results['ort-wasm']?.reference;
  const argmax = (a) => a.reduce((b, v, i) => (v > a[b] ? i : b), 0);
  for (const r of Object.values(results)) {
    if (!r.reference) continue;
    r.referenceTop1 = argmax(r.reference);
    if (ref) {
      let d = 0, m = 0;
      r.reference.forEach((v, i) => { d = Math.max(d, Math.abs(v - ref[i])); m = Math.max(m, Math.abs(ref[i])); });
      r.referenceRelErrVsWasm = m ? d / m : d;
      r.referenceTop1AgreesWithWasm = r.referenceTop1 === argmax(ref);
    }
    delete r.reference;
  }
  const file = writeResults('camera', { machine, options: { model, seconds, warm, video: video ?? 'Chromium fake camera test pattern', contenders }, results });
  console.log(table(results));
  console.log(`\nwrote ${file}`);
} finally {
  await browser.close();
  server.close();
}

function table(r) {
  const ok = (c) => r[c] && !r[c].error;
  const base = ok('ort-webgpu') ? r['ort-webgpu'] : undefined;
  const x = (a, b) => (b ? `${(a / b).toFixed(2)}x` : '-');
  const rows = [
    `camera -> ${modelName} (224 px) -> top-1, ${seconds} s per contender after ${warm} warm-up frames; ${video ?? 'fake camera test pattern'} at 640x480`,
    '',
    '| contender | labels/s | latency median | latency p95 | longest main-thread task | long tasks | rAF paints/s | vs. ORT-web WebGPU: labels/s / median / p95 / longest task | fixed image: top-1 = wasm, rel. err |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const c of contenders) {
    const e = r[c];
    if (!ok(c)) {
      rows.push(`| ${c} | failed: ${(e?.error ?? '').split('\n')[0].slice(0, 120)} | | | | | | | |`);
      continue;
    }
    const ratios = base && c !== 'ort-webgpu'
      ? `${x(e.labelsPerSecond, base.labelsPerSecond)} / ${x(e.latencyMedianMs, base.latencyMedianMs)} / ${x(e.latencyP95Ms, base.latencyP95Ms)} / ${x(e.longestTaskMs, base.longestTaskMs)}`
      : '-';
    const agree = e.referenceTop1AgreesWithWasm === undefined ? '-' : `${e.referenceTop1AgreesWithWasm ? 'yes' : 'NO'}, ${e.referenceRelErrVsWasm.toExponential(1)}`;
    rows.push(
      `| ${c} | ${e.labelsPerSecond.toFixed(2)} (${e.labelled} in ${(e.windowMs / 1000).toFixed(0)} s) | ${e.latencyMedianMs.toFixed(0)} ms | ${e.latencyP95Ms.toFixed(0)} ms | ` +
        `${e.longestTaskMs.toFixed(0)} ms | ${e.longTasks} | ${e.paintsPerSecond.toFixed(0)} | ${ratios} | ${agree} |`,
    );
  }
  return rows.join('\n');
}
