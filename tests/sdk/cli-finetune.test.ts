import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../../sdk/node.js';

// `edgekit finetune` from source (TypeScript through tests/worker/ts-hooks.mjs), on the transfer fixture: digits 5-9
// into a fresh 10-class head. Progress bars draw only on a terminal; the epoch lines always print.
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const T = join(ROOT, 'tests/fixtures/transfer/');
const HOOKS = `data:text/javascript,import{register}from'node:module';register(${JSON.stringify(new URL('../worker/ts-hooks.mjs', import.meta.url).href)});`;

describe('edgekit finetune', () => {
  it('trains a new head from raw files, prints each epoch, and writes a model that loads and runs', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'edgekit-cli-')), 'tuned.onnx');
    const r = spawnSync(
      process.execPath,
      ['--import', HOOKS, join(ROOT, 'sdk/cli.ts'), 'finetune', join(T, 'digits04-cnn.onnx'), out, '--inputs', join(T, 'train-images.f32'), '--labels', join(T, 'train-labels.u8'), '--classes', '10', '--epochs', '3', '--validation', '0.25'],
      { encoding: 'utf8', timeout: 240_000 },
    );
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    const losses = [...r.stdout.matchAll(/epoch (\d)\/3: loss ([\d.]+), val loss ([\d.]+), val accuracy ([\d.]+)%/g)].map((m) => Number(m[2]));
    expect(losses.length, r.stdout).toBe(3);
    expect(losses[2]!).toBeLessThan(losses[0]!);
    const n = readFileSync(join(T, 'train-labels.u8')).length;
    expect(r.stdout).toContain(`trained ${n - Math.floor(n * 0.25)} examples on cpu`);
    const s = await InferenceSession.create(readFileSync(out), { backend: 'cpu' });
    const y = (await s.run({ [s.inputNames[0]!]: new Tensor('float32', new Float32Array(64), [1, 1, 8, 8]) }))[s.outputNames[0]!]!;
    expect(y.dims).toEqual([1, 10]);
    await s.release();
  }, 300_000);
});
