// Decoder benchmark (issue #10 §4; part of npm run bench): a random-weight GPT decoder large enough for kernels to
// dominate (default 6 layers, d_model 512, 8 heads, context 1024, vocabulary 4096; exported by torch.onnx in the
// Hugging Face layout with past KV by scripts/fixtures/bench_decoder.py into tests/fixtures/generated/, not committed)
// through EdgeKit WebGPU and onnxruntime-web (WebGPU bundle, default bundle with the webgpu EP (JSEP), wasm), in
// headless Chromium (WebGPU on SwiftShader unless the machine has a GPU), each contender in a fresh page
// (bench/decoder-page.js). The same seeded prompt and the same greedy loop for all, the KV cache kept on the GPU by
// each WebGPU contender (onnxruntime-web: preferredOutputLocation 'gpu-buffer' for the presents). Measured after one
// short warm-up generation: time to first token, tokens per second over the rest, peak GPU bytes (bench/page.html
// counts every createBuffer of the page, the same way for every contender). Ratios against the faster of ort-webgpu
// and ort-jsep; targets: tokens/s >= 2x, time to first token <= 0.5x, memory <= 0.7x. Generated tokens are compared
// with ort-wasm's (random weights make near-ties, so the length of the agreeing prefix is printed).
// Writes bench/results/decoder-<stamp>.json. Options: --layers 6 --d 512 --heads 8 --context 1024 --vocab 4096
// --prompt 128 --new 64 --warm 4 --contenders edgekit-webgpu,ort-webgpu,ort-jsep,ort-wasm --timeout <s per contender>
// (edgekit-webgpu-f16, opt-in: EdgeKit with weightPrecision 'float16', half-precision matrix weights; its own row,
// never the one the targets are judged on).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { benchMachine } from './machine.mjs';
import { runContender, writeResults } from './page-runner.mjs';
import { launchChromium, serveRepo } from '../scripts/browser.mjs';

const args = process.argv.slice(2);
const opt = (k, d) => (args.includes(k) ? args[args.indexOf(k) + 1] : d);
const cfg = {
  layers: Number(opt('--layers', 6)),
  d: Number(opt('--d', 512)),
  heads: Number(opt('--heads', 8)),
  context: Number(opt('--context', 1024)),
  vocab: Number(opt('--vocab', 4096)),
};
const promptLength = Number(opt('--prompt', 128));
const newTokens = Number(opt('--new', 64));
const warmTokens = Number(opt('--warm', 4));
// A contender that takes longer than this (seconds; 0 = no limit) is recorded as failed.
const limitS = Number(opt('--timeout', 0));
const contenders = opt('--contenders', 'edgekit-webgpu,ort-webgpu,ort-jsep,ort-wasm').split(',');

const model = `tests/fixtures/generated/bench-decoder-L${cfg.layers}-d${cfg.d}-h${cfg.heads}-c${cfg.context}-v${cfg.vocab}.onnx`;
if (!existsSync(model)) {
  console.error(`decoder bench: exporting ${model} (scripts/fixtures/bench_decoder.py)`);
  const r = spawnSync('/usr/bin/python3', ['scripts/fixtures/bench_decoder.py', '--out', model, '--layers', cfg.layers, '--d', cfg.d, '--heads', cfg.heads, '--context', cfg.context, '--vocab', cfg.vocab].map(String), { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('bench_decoder.py failed (needs Debian python3-torch)');
}
if (!existsSync('dist/browser/edgekit.js')) throw new Error('dist/browser/edgekit.js is missing: npm run build first');

let s = 7;
const prompt = Array.from({ length: promptLength }, () => (s = (s * 16807) % 2147483647) % cfg.vocab);
const pageOpts = { model, prompt, newTokens, warmTokens, layers: cfg.layers, heads: cfg.heads, headDim: cfg.d / cfg.heads, vocab: cfg.vocab };

const { server, origin } = await serveRepo();
const browser = await launchChromium();
const results = {};
try {
  const machine = await benchMachine(browser, origin);
  for (const c of contenders) {
    try {
      results[c] = await runContender(browser, origin, { module: 'bench/decoder-page.js', fn: 'decode', contender: c, options: pageOpts, limitS });
      const { tokens, ...rest } = results[c];
      console.error(`${c}: ${JSON.stringify(rest)}`);
    } catch (e) {
      results[c] = { error: e.message };
      console.error(`${c}: FAILED ${e.message}`);
    }
  }
  const file = writeResults('decoder', { machine, options: { ...cfg, promptLength, newTokens, warmTokens, model }, results });
  console.log(table(results));
  console.log(`\nwrote ${file}`);
} finally {
  await browser.close();
  server.close();
}

function table(r) {
  const ok = (c) => r[c] && !r[c].error;
  const ref = r['ort-wasm']?.tokens;
  const agree = (t) => {
    if (!ref || !t) return '-';
    let k = 0;
    while (k < t.length && t[k] === ref[k]) k++;
    return `${k}/${t.length}`;
  };
  const best = (k, better) => ['ort-webgpu', 'ort-jsep'].filter(ok).map((c) => r[c][k]).reduce((a, b) => (a === undefined ? b : better(b, a) ? b : a), undefined);
  const base = { tps: best('tokensPerSecond', (a, b) => a > b), ttft: best('ttftMs', (a, b) => a < b), mem: best('peakGpuBytes', (a, b) => a < b) };
  const MB = (b) => (b / 2 ** 20).toFixed(1);
  const rows = [
    `decoder: ${cfg.layers} layers, d ${cfg.d}, ${cfg.heads} heads, context ${cfg.context}, vocab ${cfg.vocab}; prompt ${promptLength} tokens, ${newTokens} new (greedy)`,
    '',
    '| contender | time to first token | tokens/s | peak GPU MB | vs. ORT-web WebGPU (best): TTFT / tok/s / memory | tokens = ort-wasm |',
    '|---|---|---|---|---|---|',
  ];
  for (const c of contenders) {
    const x = r[c];
    if (!ok(c)) {
      rows.push(`| ${c} | failed: ${(x?.error ?? '').split('\n')[0].slice(0, 120)} | | | | |`);
      continue;
    }
    const ratio = (a, b) => (b ? (a / b).toFixed(2) + 'x' : '-');
    const mem = c === 'ort-wasm' ? '-' : MB(x.peakGpuBytes) + (x.weightBytes ? ` (weights ${MB(x.weightBytes)})` : '');
    rows.push(`| ${c} | ${x.ttftMs.toFixed(0)} ms | ${x.tokensPerSecond.toFixed(2)} | ${mem} | ${ratio(x.ttftMs, base.ttft)} / ${ratio(x.tokensPerSecond, base.tps)} / ${c === 'ort-wasm' ? '-' : ratio(x.peakGpuBytes, base.mem)} | ${agree(x.tokens)} |`);
  }
  const e = r['edgekit-webgpu'];
  if (ok('edgekit-webgpu') && base.tps) {
    const pass = (b) => (b ? 'met' : 'MISSED');
    rows.push('', `targets: tokens/s >= 2x: ${pass(e.tokensPerSecond >= 2 * base.tps)}; TTFT <= 0.5x: ${pass(e.ttftMs <= 0.5 * base.ttft)}; memory <= 0.7x: ${pass(e.peakGpuBytes <= 0.7 * base.mem)}`);
  }
  return rows.join('\n');
}
