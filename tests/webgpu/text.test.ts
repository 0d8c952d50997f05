import { beforeAll, describe, expect, it } from 'vitest';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession } from '../../sdk/node.js';
import { allClose } from '../helpers/compare.js';
import { attr } from '../helpers/ir-builder.js';
import { encodeModel } from '../helpers/onnx-model.js';
import { Rng } from '../helpers/random.js';
import { runModelCpu, runModelWebGpu } from '../helpers/run-model.js';
import { gpuForTests } from '../helpers/webgpu-env.js';

/**
 * Text ops on WebGPU through InferenceSession: integer TfIdfVectorizer against the CPU reference (every mode, gram
 * range and skip, batched rows, more outputs than a workgroup, shared columns, int64 tokens); string
 * StringNormalizer and TfIdfVectorizer (and the opset-20 string ops) refused at load, saying strings cannot live on
 * the GPU.
 */

const rng = new Rng(9001);
beforeAll(async () => {
  await gpuForTests();
});

const one = (op: string, attrs: Record<string, Attr>, x: HostTensor) =>
  encodeModel({ nodes: [{ op, inputs: ['X'], outputs: ['Y'], attrs }], inputs: { X: x }, outputs: ['Y'] });

function tfIdfAttrs(mode: string, min: number, max: number, skip: number, columns: number): Record<string, Attr> {
  // 30 unigrams, 20 bigrams, 10 trigrams over tokens 0..11, spread over `columns` output columns (some shared).
  const pool = Array.from({ length: 30 + 40 + 30 }, () => rng.int(0, 11));
  const n = 60;
  return {
    mode: attr(mode), min_gram_length: attr(min), max_gram_length: attr(max), max_skip_count: attr(skip),
    ngram_counts: attr([0, 30, 70]), ngram_indexes: attr(Array.from({ length: n }, (_, i) => (i * 7) % columns)),
    pool_int64s: attr(pool), weights: attr(Array.from({ length: n }, () => Math.round(rng.uniform(0.1, 3) * 100) / 100), true),
  };
}

async function check(attrs: Record<string, Attr>, x: HostTensor) {
  const bytes = one('TfIdfVectorizer', attrs, x);
  const want = await runModelCpu(bytes, { X: x });
  const got = await runModelWebGpu(bytes, { X: x });
  const r = allClose(got.Y!, want.Y!, { rtol: 1e-6, atol: 1e-6 });
  if (!r.ok) expect.fail(`TfIdfVectorizer ${JSON.stringify(x.shape)}: ${r.message}`);
}

const tokens = (dtype: DType, shape: number[]) => tensorFromNumbers(dtype, shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.int(0, 11)));

describe('TfIdfVectorizer on WebGPU', () => {
  it('every mode, gram range and skip, 1-D and batched', async () => {
    for (const mode of ['TF', 'IDF', 'TFIDF']) {
      for (const [min, max, skip] of [[1, 1, 0], [1, 3, 2], [2, 3, 0], [3, 3, 4]] as const) {
        await check(tfIdfAttrs(mode, min, max, skip, 45), tokens('int32', [97]));
        await check(tfIdfAttrs(mode, min, max, skip, 45), tokens('int64', [5, 13]));
      }
    }
  });

  it('more outputs than a workgroup, rows shorter than the n-grams', async () => {
    await check(tfIdfAttrs('TFIDF', 1, 3, 1, 60), tokens('int32', [9, 40]));
    await check(tfIdfAttrs('TF', 2, 3, 3, 20), tokens('int32', [4, 2]));
  });
});

describe('strings on WebGPU', () => {
  async function refused(bytes: Uint8Array) {
    const err = await InferenceSession.create(bytes, { backend: 'webgpu' }).then(
      () => undefined,
      (e: unknown) => e as { code?: string; nodes?: { reason?: string }[] },
    );
    expect(err?.code).toBe('UNSUPPORTED_OP');
    expect(err?.nodes?.[0]?.reason).toMatch(/string tensors cannot live on the GPU/);
  }

  it('StringNormalizer, string TfIdfVectorizer, StringConcat, StringSplit and RegexFullMatch do not load, and say why', async () => {
    const x: HostTensor = { dtype: 'string', shape: [3], data: ['a', 'b', 'c'] };
    await refused(one('StringNormalizer', { stopwords: { type: 'strings', value: ['a'] } }, x));
    await refused(one('TfIdfVectorizer', {
      mode: attr('TF'), min_gram_length: attr(1), max_gram_length: attr(1), max_skip_count: attr(0),
      ngram_counts: attr([0]), ngram_indexes: attr([0, 1]), pool_strings: { type: 'strings', value: ['a', 'b'] },
    }, x));
    for (const [op, inputs, outputs, attrs] of [
      ['StringConcat', ['X', 'X'], ['Y'], {}], ['StringSplit', ['X'], ['Y', 'Z'], {}], ['RegexFullMatch', ['X'], ['Y'], { pattern: attr('a.*') }],
    ] as const) {
      await refused(encodeModel({ nodes: [{ op, inputs: [...inputs], outputs: [...outputs], attrs }], inputs: { X: x }, outputs: [...outputs], opsets: { '': 20 } }));
    }
  });
});
