import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// These check the built package (npm test builds it first, in its pretest step).
const root = fileURLToPath(new URL('../..', import.meta.url));
const model = join(root, 'tests/fixtures/digits/digits-cnn.onnx');
const script = (from: string) => `
import { InferenceSession, Tensor, EdgeKitError } from ${JSON.stringify(from)};
const s = await InferenceSession.create(${JSON.stringify(model)}, { backend: 'cpu' });
const out = await s.run({ input: new Tensor('float32', new Float32Array(64), [1, 1, 8, 8]) });
console.log(JSON.stringify({ dims: out.logits.dims, err: typeof EdgeKitError }));
`;

describe('the built package', () => {
  it('has the browser bundle, the Node build, the CLI and type declarations', () => {
    for (const f of ['dist/browser/edgekit.js', 'dist/node/index.js', 'dist/node/cli.js', 'dist/types/sdk/index.d.ts']) {
      expect(existsSync(join(root, f)), `${f} is missing: run npm run build`).toBe(true);
    }
    const browser = readFileSync(join(root, 'dist/browser/edgekit.js'), 'utf8');
    expect(browser).not.toMatch(/from ['"]node:/); // no Node built-ins in the browser bundle
    expect(browser).not.toMatch(/import\(['"]node:/);
  });

  it("imports as 'edgekit' inside the repo (package self-reference)", () => {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script('edgekit')], { cwd: root, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ dims: [1, 10], err: 'function' });
  });

  it('imports the built file from outside the repo', () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgekit-outside-'));
    const file = join(dir, 'use.mjs');
    writeFileSync(file, script(join(root, 'dist/node/index.js')));
    const out = execFileSync(process.execPath, [file], { cwd: dir, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ dims: [1, 10], err: 'function' });
  });

  it('runs a model on WebGPU from plain Node, with garbage collection forced (the demo, as a user runs it)', () => {
    // SwiftShader when there is no GPU (the same choice as tests/helpers/webgpu-env.ts); --expose-gc and a gc() in
    // the page of work catch a GPU instance collected under its device, which crashed the process before.
    const env = { ...process.env };
    if (env.EDGEKIT_GPU !== 'hardware' && !env.VK_ICD_FILENAMES) env.VK_ICD_FILENAMES = '/usr/lib/chromium/vk_swiftshader_icd.json';
    const code = `
      import { InferenceSession, Tensor } from 'edgekit';
      const s = await InferenceSession.create(${JSON.stringify(model)}, { backend: 'webgpu' });
      globalThis.gc();
      await new Promise((r) => setTimeout(r, 50));
      globalThis.gc();
      const out = await s.run({ input: new Tensor('float32', new Float32Array(64), [1, 1, 8, 8]) });
      console.log(JSON.stringify({ dims: out.logits.dims, backend: s.report().backend }));
      await s.release();`;
    const out = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', code], { cwd: root, encoding: 'utf8', env });
    expect(JSON.parse(out)).toEqual({ dims: [1, 10], backend: 'webgpu' });
    const demo = execFileSync(process.execPath, ['demos/node-digits/classify.mjs', '--backend', 'webgpu'], { cwd: root, encoding: 'utf8', env });
    expect(demo).toMatch(/backend webgpu/);
    expect(demo).toMatch(/accuracy 99\.72% \(359\/360\)/);
  });

  it('the transfer-learning demo fine-tunes a new head on CPU and WebGPU alike, and its exported ONNX reloads', () => {
    const env = { ...process.env };
    if (env.EDGEKIT_GPU !== 'hardware' && !env.VK_ICD_FILENAMES) env.VK_ICD_FILENAMES = '/usr/lib/chromium/vk_swiftshader_icd.json';
    const accuracies = (backend: string) => {
      const text = execFileSync(process.execPath, ['demos/node-transfer/finetune.mjs', '--backend', backend], { cwd: root, encoding: 'utf8', env });
      expect(text).toMatch(new RegExp(`backend ${backend}`));
      const trained = /held-out accuracy ([\d.]+)%; PyTorch/.exec(text)?.[1];
      const reloaded = /exported model reloaded: held-out accuracy ([\d.]+)%/.exec(text)?.[1];
      expect(trained, text).toBeDefined();
      expect(reloaded).toBe(trained);
      return Number(trained);
    };
    const cpu = accuracies('cpu');
    expect(cpu).toBeGreaterThan(85); // a real transfer: digits 5-9 from features learned on 0-4 (PyTorch's run: 90.6 %)
    expect(Math.abs(accuracies('webgpu') - cpu)).toBeLessThanOrEqual(1);
  }, 120_000);

  it('the CLI inspects and runs a model', () => {
    const cli = join(root, 'dist/node/cli.js');
    const inspect = execFileSync(process.execPath, [cli, 'inspect', model], { encoding: 'utf8' });
    expect(inspect).toMatch(/input\s+input: float32\[/);
    expect(inspect).toMatch(/output logits: float32\[/);
    const run = execFileSync(process.execPath, [cli, 'run', model, '--dim', 'N=3', '--runs', '2'], { encoding: 'utf8' });
    expect(run).toMatch(/logits: float32\[3, 10\]/);
  });

  it('the CLI profiles a model on WebGPU: a line per dispatch and totals per op', () => {
    const cli = join(root, 'dist/node/cli.js');
    const env = { ...process.env };
    if (env.EDGEKIT_GPU !== 'hardware' && !env.VK_ICD_FILENAMES) env.VK_ICD_FILENAMES = '/usr/lib/chromium/vk_swiftshader_icd.json';
    const out = execFileSync(process.execPath, [cli, 'profile', model, '--dim', 'N=2', '--runs', '2'], { encoding: 'utf8', env });
    expect(out).toMatch(/^\s+[\d.]+ ms\s+[\d.]+%\s+Conv\s+\S+\s+\[\d+x\d+x\d+\] matmul:/m);
    expect(out).toMatch(/per op \(median of 2 profiled runs, \d+ dispatches, [\d.]+ ms GPU in all\):/);
    expect(out).toMatch(/^\s+[\d.]+ ms\s+[\d.]+%\s+Conv x\d+$/m);
  }, 60_000);
});
