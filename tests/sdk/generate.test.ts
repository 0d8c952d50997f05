import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CancelledError, ContextLengthError, InferenceSession, ModelLayoutError, NonFiniteLogitsError, Tensor, TextGenerator, VocabularyMismatchError,
  loadTokenizer, type Backend, type GenerateOptions,
} from '../../sdk/node.js';
import { tinyDecoder } from '../helpers/tiny-decoder.js';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';
import { model, vi } from '../importer/model-builder.js';

/**
 * TextGenerator through the public API on a tiny random-weight decoder in the Hugging Face layout
 * (tests/helpers/tiny-decoder.ts), on the CPU and on WebGPU: cached greedy decoding equals recomputing the whole
 * sequence each step, a seed gives the same tokens on both backends, batches pad on the left and stop per row,
 * streaming / callbacks / abort / stop ids, the KV cache never crosses to the host on WebGPU (the device's readback
 * counter moves by the sampled ids only), and the bad-input errors. Then the fixture GPT (tests/fixtures/gpt, trained
 * by scripts/fixtures/gpt_fixture.py): greedy generate() reproduces PyTorch's continuations exactly, in all three
 * exports (HF layout, the older layout without attention_mask, the com.microsoft form), on both backends.
 */

const BACKENDS: Backend[] = ['cpu', 'webgpu'];
const bytes = tinyDecoder({ vocab: 50, context: 32, layers: 2 });
const sessions: Record<string, InferenceSession> = {};

beforeAll(async () => {
  console.log(`generate suite WebGPU on ${describeDevice(await gpuForTests())}`);
  for (const b of BACKENDS) sessions[b] = await InferenceSession.create(bytes, { backend: b });
});
afterAll(async () => {
  for (const s of Object.values(sessions)) await s.release();
});

/** Greedy continuation without a cache: the whole sequence each step (empty past), arg max of the last logits. */
async function recomputeGreedy(s: InferenceSession, prompt: number[], n: number): Promise<number[]> {
  const seq = [...prompt];
  const layers = s.inputNames.filter((x) => x.startsWith('past_key_values.'));
  for (let i = 0; i < n; i++) {
    const T = seq.length;
    const feeds: Record<string, Tensor> = {
      input_ids: new Tensor('int64', BigInt64Array.from(seq, BigInt), [1, T]),
      attention_mask: new Tensor('int64', BigInt64Array.from(seq, () => 1n), [1, T]),
      position_ids: new Tensor('int64', BigInt64Array.from(seq, (_, k) => BigInt(k)), [1, T]),
    };
    for (const p of layers) feeds[p] = new Tensor('float32', new Float32Array(0), [1, 2, 0, 4]);
    const { logits } = await s.run(feeds, ['logits']);
    const row = (logits!.data as Float32Array).subarray((T - 1) * 50, T * 50);
    let best = 0;
    row.forEach((x, k) => x > row[best]! && (best = k));
    seq.push(best);
  }
  return seq.slice(prompt.length);
}

const PROMPT = [3, 14, 15, 9, 26];

describe.each(BACKENDS)('TextGenerator on %s', (backend) => {
  it('greedy decoding with the KV cache equals recomputing the whole sequence', async () => {
    const gen = await TextGenerator.create(sessions[backend]!);
    expect(gen.contextLength).toBe(32); // the position table's rows
    expect(gen.layout).toMatchObject({ kind: 'hf', heads: 2, headDim: 4, layers: [{ pastKey: 'past_key_values.0.key' }, { presentValue: 'present.1.value' }] });
    const r = await gen.generate(PROMPT, { maxNewTokens: 8 });
    expect(r.tokens).toEqual(await recomputeGreedy(sessions.cpu!, PROMPT, 8));
    expect(r.steps).toBe(8);
    expect(r.rows[0]!.finishReason).toBe('length');
    expect(r.timeToFirstTokenMs).toBeGreaterThan(0);
    expect(r.tokensPerSecond).toBeGreaterThan(0);
  });

  it('stream() yields the tokens generate() returns, onToken sees each once, stop ids end a row', async () => {
    const gen = await TextGenerator.create(sessions[backend]!);
    const want = (await gen.generate(PROMPT, { maxNewTokens: 6 })).tokens;
    const seen: number[] = [];
    const streamed: number[] = [];
    const it = gen.stream(PROMPT, { maxNewTokens: 6, onToken: (t) => seen.push(t.id) });
    let res = await it.next();
    while (!res.done) {
      streamed.push(res.value.id);
      res = await it.next();
    }
    expect(streamed).toEqual(want);
    expect(seen).toEqual(want);
    expect(res.value.tokens).toEqual(want);
    const stop = want[2]!;
    const first = want.indexOf(stop);
    const r = await gen.generate(PROMPT, { maxNewTokens: 6, stopTokenIds: [stop] });
    expect(r.tokens).toEqual(want.slice(0, first + 1));
    expect(r.rows[0]!.finishReason).toBe('stop');
  });

  it('a batch of two prompts of different lengths: each row equals its own generation, and stops on its own', async () => {
    const gen = await TextGenerator.create(sessions[backend]!);
    const other = [7, 1, 42];
    const a = (await gen.generate(PROMPT, { maxNewTokens: 5 })).tokens;
    const b = (await gen.generate(other, { maxNewTokens: 5 })).tokens;
    const r = await gen.generate([PROMPT, other], { maxNewTokens: 5 });
    expect(r.rows.map((x) => x.tokens)).toEqual([a, b]);
    // Row 0 stops at its first token; row 1 (unless it produces the same id) runs to the end.
    const stop = a[0]!;
    const s = await gen.generate([PROMPT, other], { maxNewTokens: 5, stopTokenIds: [stop] });
    expect(s.rows[0]).toMatchObject({ tokens: [stop], finishReason: 'stop' });
    const cut = b.indexOf(stop);
    expect(s.rows[1]!.tokens).toEqual(cut < 0 ? b : b.slice(0, cut + 1));
  });

  it('breaking out of a stream frees it for the next call; a stream never iterated blocks nobody', async () => {
    const gen = await TextGenerator.create(sessions[backend]!);
    const idle = gen.stream(PROMPT, { maxNewTokens: 3 });
    const got: number[] = [];
    for await (const t of gen.stream(PROMPT, { maxNewTokens: 10 })) {
      got.push(t.id);
      if (got.length === 2) break;
    }
    const full = await gen.generate(PROMPT, { maxNewTokens: 4 });
    expect(full.tokens.slice(0, 2)).toEqual(got);
    expect((await gen.generate(PROMPT, { maxNewTokens: 0 })).rows[0]).toEqual({ tokens: [], text: '', finishReason: 'length' });
    await idle.return(undefined as never);
  });

  it('abort cancels between steps with a CancelledError', async () => {
    const gen = await TextGenerator.create(sessions[backend]!);
    const ctl = new AbortController();
    let n = 0;
    const run = gen.generate(PROMPT, { maxNewTokens: 10, signal: ctl.signal, onToken: () => ++n === 2 && ctl.abort() });
    await expect(run).rejects.toBeInstanceOf(CancelledError);
    expect(n).toBe(2);
    const pre = new AbortController();
    pre.abort();
    await expect(gen.generate(PROMPT, { signal: pre.signal })).rejects.toMatchObject({ code: 'CANCELLED', details: { step: 0 } });
  });
});

describe('sampling across backends', () => {
  const opts: GenerateOptions = { maxNewTokens: 8, temperature: 0.9, topK: 12, topP: 0.9, repetitionPenalty: 1.2, seed: 1234 };

  it('the same seed gives the same tokens on the CPU and on WebGPU, and again on a second call', async () => {
    const cpu = await (await TextGenerator.create(sessions.cpu!)).generate([PROMPT, [1, 2]], opts);
    const gpuGen = await TextGenerator.create(sessions.webgpu!);
    const gpu = await gpuGen.generate([PROMPT, [1, 2]], opts);
    expect(gpu.rows.map((r) => r.tokens)).toEqual(cpu.rows.map((r) => r.tokens));
    expect((await gpuGen.generate([PROMPT, [1, 2]], opts)).rows.map((r) => r.tokens)).toEqual(cpu.rows.map((r) => r.tokens));
    expect(cpu.seed).toBe(1234);
    const other = await gpuGen.generate([PROMPT, [1, 2]], { ...opts, seed: 99 });
    expect(other.rows.map((r) => r.tokens)).not.toEqual(cpu.rows.map((r) => r.tokens));
  });

  it('WebGPU: keys and values never come back to the host, only the sampled ids (8 bytes a row a step)', async () => {
    const s = sessions.webgpu!;
    const res = await gpuForTests();
    const gen = await TextGenerator.create(s);
    const opts = { maxNewTokens: 6, temperature: 0.7, seed: 3 };
    await gen.generate([PROMPT, [1, 2]], opts); // the plans for these shapes are made (and kept by the session)
    await res.memory.settle();
    const before = { report: s.report().gpu!, leased: res.memory.stats().leasedBytes };
    const r = await gen.generate([PROMPT, [1, 2]], opts);
    await res.memory.settle();
    const after = { report: s.report().gpu!, leased: res.memory.stats().leasedBytes };
    expect(r.steps).toBe(6);
    expect(after.report.readbackBytes - before.report.readbackBytes).toBe(6 * 2 * 8);
    // Every cache tensor and sampler buffer is released at the end.
    expect(after.leased).toBe(before.leased);
  });
});

describe('bad input', () => {
  it('a prompt longer than the context: ContextLengthError naming both numbers', async () => {
    const gen = await TextGenerator.create(sessions.cpu!);
    const long = Array.from({ length: 40 }, (_, i) => i % 50);
    const e = await gen.generate(long).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ContextLengthError);
    expect((e as Error).message).toMatch(/40 tokens long, more than the model's context of 32 tokens/);
    // A context given explicitly wins over the position table.
    const short = await TextGenerator.create(sessions.cpu!, { contextLength: 4 });
    await expect(short.generate(PROMPT)).rejects.toThrow(/5 tokens long, more than the model's context of 4/);
  });

  it('generation stops at the context length', async () => {
    const gen = await TextGenerator.create(sessions.cpu!, { contextLength: 8 });
    const r = await gen.generate(PROMPT, { maxNewTokens: 10 });
    // 5 prompt tokens, then 3 fed back: positions 0..7; the token chosen after position 7 is the 4th.
    expect(r.tokens.length).toBe(4);
    expect(r.rows[0]!.finishReason).toBe('length');
  });

  it('an unknown layout: ModelLayoutError listing the inputs found and expected', async () => {
    const m = model({ nodes: [{ op: 'Identity', inputs: ['tokens'], outputs: ['logits'] }], inputs: [vi('tokens', 1, [1, 4])], outputs: [vi('logits', 1, [1, 4])] });
    const e = await TextGenerator.create(m, { session: { backend: 'cpu' } }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ModelLayoutError);
    expect((e as Error).message).toMatch(/no input named 'input_ids'.*Inputs found: tokens; outputs found: logits\. Expected inputs input_ids, attention_mask/);
  });

  it('a model without its KV cache is an unknown layout too', async () => {
    const m = model({ nodes: [{ op: 'Cast', inputs: ['input_ids'], outputs: ['logits'], attrs: [{ name: 'to', type: 2, i: 1 }] }], inputs: [vi('input_ids', 7, [1, 4])], outputs: [vi('logits', 1, [1, 4])] });
    await expect(TextGenerator.create(m, { session: { backend: 'cpu' } })).rejects.toThrow(/no past_key_values/);
  });

  it('NaN logits stop generation with NonFiniteLogitsError naming the step', async () => {
    const gen = await TextGenerator.create(sessions.cpu!);
    const ok = (await gen.generate(PROMPT, { maxNewTokens: 4 })).tokens;
    // Make the embedding of the second generated token NaN: steps 0 and 1 run as before; step 2 feeds it.
    const bad = ok[1]!;
    expect(PROMPT.includes(bad) || ok[0] === bad).toBe(false);
    for (const backend of BACKENDS) {
      const g = await TextGenerator.create(tinyDecoder({ vocab: 50, context: 32, layers: 2, nanToken: bad }), { session: { backend } });
      const e = await g.generate(PROMPT, { maxNewTokens: 4 }).catch((x: unknown) => x);
      expect(e, backend).toBeInstanceOf(NonFiniteLogitsError);
      expect((e as Error).message).toMatch(/NaN at generation step 2 \(row 0\)/);
      expect((e as NonFiniteLogitsError).details.tokens).toEqual([ok.slice(0, 2)]);
      await g.release();
    }
  });

  it('a tokenizer larger than the logits: VocabularyMismatchError at setup', async () => {
    const tokenizer = { encode: (t: string) => [...t].map((c) => c.charCodeAt(0) % 60), decode: (ids: readonly number[]) => ids.join(' '), vocabSize: 60 };
    const e = await TextGenerator.create(sessions.cpu!, { tokenizer }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(VocabularyMismatchError);
    expect((e as Error).message).toMatch(/tokenizer has 60 tokens but the model's logits are 50 wide/);
  });

  it('option checks', async () => {
    const gen = await TextGenerator.create(sessions.cpu!);
    await expect(gen.generate(PROMPT, { topP: 0 })).rejects.toThrow(/topP must be in \(0, 1\]/);
    await expect(gen.generate(PROMPT, { seed: -1 })).rejects.toThrow(/seed must be an integer/);
    await expect(gen.generate('text')).rejects.toThrow(/needs a tokenizer/);
    await expect(gen.generate([60, 1])).rejects.toThrow(/token id 60, outside the model's 50 logits/);
  });
});

describe('older layout without attention_mask', () => {
  it('generates as a plain step-by-step loop does, on both backends', async () => {
    const legacy = tinyDecoder({ vocab: 50, layout: 'legacy', seed: 3 });
    const results: number[][] = [];
    for (const backend of BACKENDS) {
      const gen = await TextGenerator.create(legacy, { session: { backend } });
      expect(gen.layout.kind).toBe('legacy');
      expect(gen.contextLength).toBe(Infinity);
      results.push((await gen.generate([PROMPT, [5, 6, 7, 8, 9]], { maxNewTokens: 4 })).rows.flatMap((r) => r.tokens));
      await expect(gen.generate([PROMPT, [1]])).rejects.toThrow(/no attention_mask input.*equal lengths \(got 5, 1\)/);
      await gen.release();
    }
    expect(results[1]).toEqual(results[0]);
  });
});

describe('fixture GPT: greedy generate() reproduces PyTorch', () => {
  const dir = 'tests/fixtures/gpt';
  const golden = JSON.parse(readFileSync(`${dir}/gpt.json`, 'utf8')) as {
    generations: { prompt: string; prompt_ids: number[]; new_ids: number[]; text: string }[];
  };
  const tokenizerJson = readFileSync(`${dir}/tokenizer.json`, 'utf8');

  it('the tokenizer.json encodes the golden prompts to their ids', async () => {
    const tokenizer = await loadTokenizer(tokenizerJson);
    expect(tokenizer.vocabSize).toBe(256);
    for (const g of golden.generations) {
      expect(tokenizer.encode(g.prompt)).toEqual(g.prompt_ids);
      expect(tokenizer.decode(g.new_ids)).toBe(g.text);
    }
  });

  it.each(BACKENDS)('gpt-op17.onnx (HF layout) on %s: every golden prompt alone, and all of them as one left-padded batch', async (backend) => {
    const tokenizer = await loadTokenizer(tokenizerJson);
    const gen = await TextGenerator.create(readFileSync(`${dir}/gpt-op17.onnx`), { tokenizer, session: { backend } });
    expect(gen.contextLength).toBe(128);
    // SwiftShader is slow: WebGPU runs the batch only (every row must still equal its golden continuation).
    if (backend === 'cpu') {
      for (const g of golden.generations) {
        const r = await gen.generate(g.prompt, { maxNewTokens: g.new_ids.length });
        expect(r.tokens, g.prompt).toEqual(g.new_ids);
        expect(r.text).toBe(g.text);
      }
    }
    const batch = await gen.generate(golden.generations.map((g) => g.prompt), { maxNewTokens: 32 });
    expect(batch.rows.map((r) => r.tokens)).toEqual(golden.generations.map((g) => g.new_ids));
    expect(batch.rows.map((r) => r.text)).toEqual(golden.generations.map((g) => g.text));
    await gen.release();
  });

  it.each(BACKENDS)('gpt-nomask-op14.onnx (older layout) and gpt-contrib.onnx (com.microsoft) on %s', async (backend) => {
    const tokenizer = await loadTokenizer(tokenizerJson);
    const g = golden.generations[0]!;
    for (const file of ['gpt-nomask-op14.onnx', 'gpt-contrib.onnx']) {
      const gen = await TextGenerator.create(readFileSync(`${dir}/${file}`), { tokenizer, session: { backend } });
      expect(gen.layout.kind).toBe(file.includes('nomask') ? 'legacy' : 'hf');
      const r = await gen.generate(g.prompt, { maxNewTokens: g.new_ids.length });
      expect(r.tokens, file).toEqual(g.new_ids);
      await gen.release();
    }
  });
});
