import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferenceSession, ModelLayoutError, SentenceEncoder, Tensor, VocabularyMismatchError, loadTokenizer, type Backend } from '../../sdk/node.js';
import { tensorFromNumbers } from '../../runtime/ir/tensor.js';
import { tensorProto } from '../helpers/ort-single-node.js';
import { Rng } from '../helpers/random.js';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';
import { int, ints, model, vi } from '../importer/model-builder.js';

/**
 * SentenceEncoder through the public API on the CPU and WebGPU: embed() pools the hidden states of a padded batch
 * (mean over the mask, or the first token) as the same model run on each text alone does, normalized or not, and
 * classify() is the softmax of the logits with the labels given; a word-level tokenizer.json through loadTokenizer;
 * chat templates; the layout and vocabulary errors. Then the fixture BERT (tests/fixtures/bert, trained by
 * scripts/fixtures/bert_fixture.py): embed() and classify() match PyTorch's golden outputs on both backends.
 */

const BACKENDS: Backend[] = ['cpu', 'webgpu'];
const [V, H, C] = [30, 6, 3];

/** A tiny encoder: tanh(word + token-type embeddings) mixed by one attention-free layer; logits from the mean. */
function tinyEncoder(): Uint8Array {
  const rng = new Rng(17);
  const w = (name: string, shape: number[]) => tensorProto(name, tensorFromNumbers('float32', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal())));
  return model({
    nodes: [
      { op: 'Gather', inputs: ['wte', 'input_ids'], outputs: ['tok'] },
      { op: 'Gather', inputs: ['wtt', 'token_type_ids'], outputs: ['typ'] },
      { op: 'Add', inputs: ['tok', 'typ'], outputs: ['emb'] },
      { op: 'MatMul', inputs: ['emb', 'w1'], outputs: ['mix'] },
      { op: 'Tanh', inputs: ['mix'], outputs: ['last_hidden_state'] },
      { op: 'ReduceMean', inputs: ['last_hidden_state'], outputs: ['mean'], attrs: [ints('axes', [1]), int('keepdims', 0)] },
      { op: 'MatMul', inputs: ['mean', 'wc'], outputs: ['logits'] },
      // attention_mask is an input the graph reads (as exporters keep it), without changing the values here.
      { op: 'Cast', inputs: ['attention_mask'], outputs: ['mask_f'], attrs: [int('to', 1)] },
      { op: 'ReduceSum', inputs: ['mask_f'], outputs: ['tokens'], attrs: [int('keepdims', 0)] },
    ],
    inputs: [vi('input_ids', 7, ['batch', 'sequence']), vi('attention_mask', 7, ['batch', 'sequence']), vi('token_type_ids', 7, ['batch', 'sequence'])],
    outputs: [vi('last_hidden_state', 1, ['batch', 'sequence', H]), vi('logits', 1, ['batch', C]), vi('tokens', 1, [])],
    initializers: [w('wte', [V, H]), w('wtt', [2, H]), w('w1', [H, H]), w('wc', [H, C])],
    opset: 13,
  });
}

const bytes = tinyEncoder();
const sessions: Record<string, InferenceSession> = {};
beforeAll(async () => {
  console.log(`embed suite WebGPU on ${describeDevice(await gpuForTests())}`);
  for (const b of BACKENDS) sessions[b] = await InferenceSession.create(bytes, { backend: b });
});
afterAll(async () => {
  for (const s of Object.values(sessions)) await s.release();
});

/** last_hidden_state of one text run alone (no padding). */
async function hiddenAlone(s: InferenceSession, ids: number[]): Promise<Float32Array> {
  const t = (v: number[]) => new Tensor('int64', BigInt64Array.from(v, BigInt), [1, ids.length]);
  const out = await s.run({ input_ids: t(ids), attention_mask: t(ids.map(() => 1)), token_type_ids: t(ids.map(() => 0)) }, ['last_hidden_state']);
  return out.last_hidden_state!.data as Float32Array;
}

const TEXTS = [[1, 5, 9, 2], [3, 4], [7, 8, 11, 12, 13, 2]];

describe.each(BACKENDS)('SentenceEncoder on %s', (backend) => {
  it('mean pooling over the mask, normalized, equals each text run alone', async () => {
    const enc = await SentenceEncoder.create(sessions[backend]!);
    const got = await enc.embed(TEXTS);
    const raw = await enc.embed(TEXTS, { normalize: false });
    for (let r = 0; r < TEXTS.length; r++) {
      const h = await hiddenAlone(sessions.cpu!, TEXTS[r]!);
      const n = TEXTS[r]!.length;
      const mean = Array.from({ length: H }, (_, k) => {
        let s = 0;
        for (let i = 0; i < n; i++) s += h[i * H + k]!;
        return s / n;
      });
      const norm = Math.hypot(...mean);
      for (let k = 0; k < H; k++) {
        expect(raw[r]![k]).toBeCloseTo(mean[k]!, 5);
        expect(got[r]![k]).toBeCloseTo(mean[k]! / norm, 5);
      }
      expect(Math.hypot(...got[r]!)).toBeCloseTo(1, 6);
    }
  });

  it("'cls' pooling takes the first token", async () => {
    const enc = await SentenceEncoder.create(sessions[backend]!);
    const got = await enc.embed(TEXTS, { pooling: 'cls', normalize: false });
    for (let r = 0; r < TEXTS.length; r++) {
      const h = await hiddenAlone(sessions.cpu!, TEXTS[r]!);
      for (let k = 0; k < H; k++) expect(got[r]![k]).toBeCloseTo(h[k]!, 5);
    }
  });

  it('classify() is the softmax of the logits, with the labels given', async () => {
    const labels = ['red', 'green', 'blue'];
    const enc = await SentenceEncoder.create(sessions[backend]!, { labels });
    const got = await enc.classify([TEXTS[0]!, TEXTS[0]!]);
    const t = (v: number[]) => new Tensor('int64', BigInt64Array.from(v, BigInt), [1, v.length]);
    const ids = TEXTS[0]!;
    const { logits } = await sessions.cpu!.run({ input_ids: t(ids), attention_mask: t(ids.map(() => 1)), token_type_ids: t(ids.map(() => 0)) }, ['logits']);
    const l = Array.from(logits!.data as Float32Array);
    const e = l.map((x) => Math.exp(x - Math.max(...l)));
    const p = e.map((x) => x / e.reduce((a, b) => a + b, 0));
    const best = p.indexOf(Math.max(...p));
    expect(got[0]).toMatchObject({ label: labels[best], score: expect.closeTo(p[best]!, 5) });
    got[0]!.scores.forEach((s, i) => expect(s).toBeCloseTo(p[i]!, 5));
    expect(got[1]!.label).toBe(got[0]!.label);
  });
});

describe('tokenizers and errors', () => {
  // A word-level tokenizer.json with a [CLS] ... [SEP] template, as BERT-style tokenizers write them.
  const vocab: Record<string, number> = { '[PAD]': 0, '[UNK]': 1, '[CLS]': 2, '[SEP]': 3, hello: 4, world: 5, cats: 6, dogs: 7 };
  const tokenizerJson = {
    version: '1.0',
    added_tokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]'].map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'Lowercase' },
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [],
      special_tokens: { '[CLS]': { id: '[CLS]', ids: [2], tokens: ['[CLS]'] }, '[SEP]': { id: '[SEP]', ids: [3], tokens: ['[SEP]'] } },
    },
    decoder: null,
    model: { type: 'WordLevel', vocab, unk_token: '[UNK]' },
  };
  const config = {
    pad_token: '[PAD]',
    eos_token: '[SEP]',
    chat_template: "{% for m in messages %}<{{ m.role }}>{{ m.content }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}",
  };

  it('loadTokenizer reads a tokenizer.json: special tokens, template, pad and EOS ids, chat template', async () => {
    const tok = await loadTokenizer(JSON.stringify(tokenizerJson), config);
    expect(tok.encode('Hello cats')).toEqual([2, 4, 6, 3]);
    expect(tok.vocabSize).toBe(8);
    expect(tok.padTokenId).toBe(0);
    expect(tok.eosTokenId).toBe(3);
    expect(tok.applyChatTemplate!([{ role: 'user', content: 'hi' }])).toBe('<user>hi[SEP]<assistant>');
    expect(tok.applyChatTemplate!([{ role: 'user', content: 'hi' }], { addGenerationPrompt: false })).toBe('<user>hi[SEP]');
    const plain = await loadTokenizer(tokenizerJson, {}, { addSpecialTokens: false });
    expect(plain.encode('dogs world')).toEqual([7, 5]);
    expect(plain.applyChatTemplate).toBeUndefined();
    await expect(loadTokenizer({ version: '1.0' })).rejects.toThrow(/not a tokenizer.json: it has no 'model'/);
  });

  it('embed() takes text through the tokenizer (padding with its pad id)', async () => {
    const tokenizer = await loadTokenizer(tokenizerJson, config);
    const enc = await SentenceEncoder.create(sessions.cpu!, { tokenizer });
    const [a, b] = await enc.embed(['hello world cats', 'dogs']);
    const [a2] = await enc.embed([[2, 4, 5, 6, 3]]);
    const [b2] = await enc.embed([[2, 7, 3]]);
    expect(Array.from(a!)).toEqual(Array.from(a2!));
    b!.forEach((x, k) => expect(x).toBeCloseTo(b2![k]!, 6));
  });

  it('errors: unknown layout, a tokenizer larger than the embedding table, bad pooling, no output to classify', async () => {
    const m = model({ nodes: [{ op: 'Identity', inputs: ['pixels'], outputs: ['y'] }], inputs: [vi('pixels', 1, [1, 4])], outputs: [vi('y', 1, [1, 4])] });
    const e = await SentenceEncoder.create(m, { session: { backend: 'cpu' } }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ModelLayoutError);
    expect((e as Error).message).toMatch(/Inputs found: pixels\. Expected input_ids, and optionally attention_mask and token_type_ids/);
    const big = { encode: () => [1], decode: () => '', vocabSize: 31 };
    await expect(SentenceEncoder.create(sessions.cpu!, { tokenizer: big })).rejects.toBeInstanceOf(VocabularyMismatchError);
    const enc = await SentenceEncoder.create(sessions.cpu!);
    await expect(enc.embed([[1]], { pooling: 'max' as 'mean' })).rejects.toThrow(/pooling must be 'mean' or 'cls'/);
    const noLogits = model({
      nodes: [{ op: 'Cast', inputs: ['input_ids'], outputs: ['last_hidden_state'], attrs: [int('to', 1)] }],
      inputs: [vi('input_ids', 7, ['batch', 'sequence'])],
      outputs: [vi('last_hidden_state', 1, ['batch', 'sequence'])],
    });
    const enc2 = await SentenceEncoder.create(noLogits, { session: { backend: 'cpu' } });
    await expect(enc2.classify('x')).rejects.toThrow(/reads a 'logits' output/);
    await enc2.release();
  });
});

describe('fixture BERT: embed() and classify() match PyTorch', () => {
  const dir = 'tests/fixtures/bert';
  const meta = JSON.parse(readFileSync(`${dir}/bert.json`, 'utf8')) as {
    classes: string[];
    tokens: { pad: number };
    golden: { sentences: string[]; input_ids: number[][]; attention_mask: number[][]; mean_pooled_normalized: number[][]; cls: number[][]; cls_normalized: number[][]; logits: number[][] };
  };
  const g = meta.golden;
  const tokenizerJson = readFileSync(`${dir}/tokenizer.json`, 'utf8');

  it('the tokenizer.json gives the golden ids ([CLS] bytes [SEP])', async () => {
    const tok = await loadTokenizer(tokenizerJson);
    g.sentences.forEach((s, r) => expect(tok.encode(s)).toEqual(g.input_ids[r]!.filter((_, i) => g.attention_mask[r]![i])));
  });

  it.each([['cpu', 1e-4], ['webgpu', 1e-3]] as const)('on %s (within %s)', async (backend, tol) => {
    const tokenizer = await loadTokenizer(tokenizerJson);
    const enc = await SentenceEncoder.create(readFileSync(`${dir}/bert-op14.onnx`), { tokenizer, padTokenId: meta.tokens.pad, labels: meta.classes, session: { backend } });
    const close = (got: Float32Array[] | number[][], want: number[][], what: string) =>
      want.forEach((row, r) => row.forEach((x, k) => expect(Math.abs(got[r]![k]! - x), `${what} [${r}, ${k}]`).toBeLessThanOrEqual(tol)));
    close(await enc.embed(g.sentences), g.mean_pooled_normalized, 'mean pooled');
    close(await enc.embed(g.sentences, { pooling: 'cls', normalize: false }), g.cls, 'cls');
    close(await enc.embed(g.sentences, { pooling: 'cls' }), g.cls_normalized, 'cls normalized');
    const got = await enc.classify(g.sentences);
    g.logits.forEach((l, r) => {
      const e = l.map((x) => Math.exp(x - Math.max(...l)));
      const p = e.map((x) => x / e.reduce((a, b) => a + b, 0));
      expect(got[r]!.label).toBe(meta.classes[p.indexOf(Math.max(...p))]);
      close([got[r]!.scores], [p], `scores row ${r}`);
    });
    await enc.release();
  });
});
