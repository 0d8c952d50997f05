import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import { allClose, argmaxRows } from '../helpers/compare.js';
import { runModelOrt } from '../helpers/run-model.js';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { FIXTURES, readBytes, readJson } from './fixture-files.js';

/**
 * The recurrent digit classifiers of scripts/fixtures/rnn_fixture.py (a stacked 2-layer LSTM and a bidirectional
 * GRU, exported by torch.onnx with dynamic batch and sequence axes): through the public InferenceSession API, EdgeKit
 * reproduces PyTorch's logits (1e-4 on the CPU backend, 1e-3 on WebGPU) and exactly the recorded test accuracy, and
 * binds the sequence axis to a shorter length too.
 */

interface ModelRecord {
  file: string;
  test_correct: number;
  test_accuracy: number;
  min_top2_margin: number;
  logits: number[][];
  short_logits: number[][];
}
interface RnnFixture {
  test_labels: number[];
  test_inputs: number[][];
  short: { rows: number; samples: number };
  models: Record<string, ModelRecord>;
}

const dir = join(FIXTURES, 'rnn');
const fx = readJson<RnnFixture>(join(dir, 'rnn.json'));
const n = fx.test_labels.length;
const rows = new Float32Array(fx.test_inputs.flat());
const TOL = { cpu: 1e-4, webgpu: 1e-3 } as const;

/** The first `count` digits' first `t` rows: [count, t, 8]. */
function shortInput(count: number, t: number): Float32Array {
  const out = new Float32Array(count * t * 8);
  for (let i = 0; i < count; i++) out.set(rows.subarray(i * 64, i * 64 + t * 8), i * t * 8);
  return out;
}

const host = (t: Tensor): HostTensor => ({ dtype: 'float32', shape: [...t.dims], data: t.data as Float32Array });
const expected = (logits: number[][]): HostTensor => ({ dtype: 'float32', shape: [logits.length, 10], data: new Float32Array(logits.flat()) });

function expectClose(got: HostTensor, want: HostTensor, tol: number, what: string): void {
  const r = allClose(got, want, { rtol: tol, atol: tol });
  expect(r.ok, `${what}: ${r.ok ? '' : r.message}`).toBe(true);
}

beforeAll(async () => {
  await gpuForTests();
});

for (const name of Object.keys(fx.models)) {
  const rec = fx.models[name]!;
  const bytes = readBytes(join(dir, rec.file));
  describe(`${name} (tests/fixtures/rnn/${rec.file})`, () => {
    it('the fixture is what the tests assume (held-out split, PyTorch accuracy)', async () => {
      expect(n).toBe(360);
      expect(rows.length).toBe(n * 64);
      expect(rec.logits.length).toBe(n);
      expect(argmaxRows(expected(rec.logits)).filter((p, i) => p === fx.test_labels[i]).length).toBe(rec.test_correct);
      // onnxruntime-node agrees with PyTorch on the exported file: the export itself is faithful.
      const ort = await runModelOrt(bytes, { rows: { dtype: 'float32', shape: [n, 8, 8], data: rows } });
      expectClose(ort.logits!, expected(rec.logits), 1e-4, 'onnxruntime vs PyTorch');
    });

    for (const backend of ['cpu', 'webgpu'] as const) {
      it(`${backend}: PyTorch's logits within ${TOL[backend]} and exactly its test accuracy`, async () => {
        const session = await InferenceSession.create(bytes, { backend });
        try {
          const { logits } = await session.run({ rows: new Tensor('float32', rows, [n, 8, 8]) });
          expect(logits!.dims).toEqual([n, 10]);
          const got = host(logits!);
          expectClose(got, expected(rec.logits), TOL[backend], `${backend} vs PyTorch`);
          const correct = argmaxRows(got).filter((p, i) => p === fx.test_labels[i]).length;
          expect(correct).toBe(rec.test_correct);
          expect(correct / n).toBe(rec.test_accuracy);

          // The same session, another batch and sequence length (symbolic N and T bind per run).
          const { samples, rows: t } = fx.short;
          const short = await session.run({ rows: new Tensor('float32', shortInput(samples, t), [samples, t, 8]) });
          expect(short.logits!.dims).toEqual([samples, 10]);
          expectClose(host(short.logits!), expected(rec.short_logits), TOL[backend], `${backend} T=${t} vs PyTorch`);
        } finally {
          await session.release();
        }
      });
    }
  });
}
