import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferenceSession, Tensor, TextGenerator } from '../../sdk/node.js';
import { FIXTURES } from '../models/fixture-files.js';
import { tinyDecoder } from '../helpers/tiny-decoder.js';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';

/**
 * Zero-copy GPU inputs and outputs (GpuGraphPlan.execute): a fed 'gpu-buffer' tensor is bound as it is, and a kept
 * output is written straight into the buffer handed to the caller, so a generation step moves no KV-cache bytes on
 * the GPU. Checked through report().gpu.inputCopyBytes / outputCopyBytes on the tiny decoder and the fixture GPT;
 * the results equal host-fed runs, a fed buffer is never written, a feed that cannot be bound (one buffer fed as two
 * inputs) is still copied and counted, and releasing every output returns the device's leased bytes to baseline.
 */

const H = 2;
const D = 4;
const V = 50;
let session: InferenceSession;

beforeAll(async () => {
  console.log(`zero-copy suite WebGPU on ${describeDevice(await gpuForTests())}`);
  session = await InferenceSession.create(tinyDecoder({ vocab: V, context: 32, layers: 2, heads: H, headDim: D }), { backend: 'webgpu' });
});
afterAll(async () => {
  await session?.release();
});

const ids = (xs: number[]) => new Tensor('int64', BigInt64Array.from(xs, BigInt), [1, xs.length]);
const PAST = ['past_key_values.0.key', 'past_key_values.0.value', 'past_key_values.1.key', 'past_key_values.1.value'];
const PRESENT = ['present.0.key', 'present.0.value', 'present.1.key', 'present.1.value'];

/** Prefill of `prompt` (empty past) with every output kept on the GPU. */
async function prefill(prompt: number[]): Promise<Record<string, Tensor>> {
  const feeds: Record<string, Tensor> = {
    input_ids: ids(prompt),
    attention_mask: ids(prompt.map(() => 1)),
    position_ids: ids(prompt.map((_, i) => i)),
  };
  for (const p of PAST) feeds[p] = new Tensor('float32', new Float32Array(0), [1, H, 0, D]);
  return session.run(feeds, { outputs: ['logits', ...PRESENT], preferredOutputLocation: 'gpu-buffer' });
}

/** One decode step of `token` at position `pos` over `past` (PAST name → tensor). */
function stepFeeds(token: number, pos: number, past: Record<string, Tensor>): Record<string, Tensor> {
  return { input_ids: ids([token]), attention_mask: ids(Array.from({ length: pos + 1 }, () => 1)), position_ids: ids([pos]), ...past };
}

const copies = () => {
  const g = session.report().gpu!;
  return { input: g.inputCopyBytes, output: g.outputCopyBytes };
};

describe('zero-copy GPU feeds and kept outputs', () => {
  it('a decode step fed the presents copies nothing, equals the host-fed step, and leaves its fed buffers unwritten', async () => {
    const prompt = [3, 14, 15, 9, 26];
    const pre = await prefill(prompt);
    const past = Object.fromEntries(PAST.map((p, i) => [p, pre[PRESENT[i]!]!]));
    const pastBefore = await Promise.all(PAST.map((p) => past[p]!.getData()));
    // The same step fed from the host (uploads), for reference; its plan is made here, so the GPU-fed run below
    // reuses it.
    const hostPast = Object.fromEntries(PAST.map((p, i) => [p, new Tensor('float32', pastBefore[i] as Float32Array, [1, H, prompt.length, D])]));
    const want = await session.run(stepFeeds(7, prompt.length, hostPast), { outputs: ['logits', ...PRESENT] });

    const c0 = copies();
    const got = await session.run(stepFeeds(7, prompt.length, past), { outputs: ['logits', ...PRESENT], preferredOutputLocation: 'gpu-buffer' });
    const c1 = copies();
    expect(c1.input - c0.input).toBe(0);
    expect(c1.output - c0.output).toBe(0);
    for (const o of ['logits', ...PRESENT]) {
      expect(got[o]!.location).toBe('gpu-buffer');
      expect(Array.from((await got[o]!.getData()) as Float32Array)).toEqual(Array.from(want[o]!.data as Float32Array));
    }
    // The fed past tensors still hold what the prefill wrote.
    for (const [i, p] of PAST.entries()) expect(Array.from((await past[p]!.getData()) as Float32Array)).toEqual(Array.from(pastBefore[i] as Float32Array));
    // A second run over the same fed buffers gives the same logits (nothing of the first run leaked into them).
    const again = await session.run(stepFeeds(7, prompt.length, past), { outputs: ['logits'] });
    expect(Array.from(again.logits!.data as Float32Array)).toEqual(Array.from(want.logits!.data as Float32Array));
    for (const t of [...Object.values(pre), ...Object.values(got)]) t.dispose();
  });

  it('a buffer that cannot be bound as it is (one tensor fed as two inputs) is copied, and the copy is counted', async () => {
    const prompt = [1, 2, 3];
    const pre = await prefill(prompt);
    const k0 = pre['present.0.key']!;
    // Layer 0's key fed as every past input: the first binds the buffer, the three others alias it and are copied.
    const past = Object.fromEntries(PAST.map((p) => [p, k0]));
    const hostK0 = new Tensor('float32', (await k0.getData()) as Float32Array, [1, H, prompt.length, D]);
    const want = await session.run(stepFeeds(4, prompt.length, Object.fromEntries(PAST.map((p) => [p, hostK0]))), { outputs: ['logits'] });
    const c0 = copies();
    const got = await session.run(stepFeeds(4, prompt.length, past), { outputs: ['logits'] });
    const c1 = copies();
    expect(c1.input - c0.input).toBe(3 * H * prompt.length * D * 4);
    expect(Array.from(got.logits!.data as Float32Array)).toEqual(Array.from(want.logits!.data as Float32Array));
    for (const t of Object.values(pre)) t.dispose();
  });

  it('releasing every output returns the leased GPU bytes to their baseline', async () => {
    const res = await gpuForTests();
    /** Prefill then 4 decode steps, each step's past released once fed; returns the last presents. */
    const loop = async () => {
      const pre = await prefill([5, 6]);
      let past = Object.fromEntries(PAST.map((p, i) => [p, pre[PRESENT[i]!]!]));
      pre.logits!.dispose();
      for (let pos = 2; pos < 6; pos++) {
        const out = await session.run(stepFeeds(pos, pos, past), { outputs: ['logits', ...PRESENT], preferredOutputLocation: 'gpu-buffer' });
        for (const t of Object.values(past)) t.dispose();
        out.logits!.dispose();
        past = Object.fromEntries(PAST.map((p, i) => [p, out[PRESENT[i]!]!]));
      }
      return past;
    };
    // Warm-up: the session's plans for these shapes exist (and stay leased) before the baseline.
    for (const t of Object.values(await loop())) t.dispose();
    await res.memory.settle();
    const base = res.memory.stats().leasedBytes;
    const past = await loop();
    expect(res.memory.stats().leasedBytes).toBeGreaterThan(base);
    for (const t of Object.values(past)) t.dispose();
    await res.memory.settle();
    expect(res.memory.stats().leasedBytes).toBe(base);
  });

  it('TextGenerator on the tiny decoder: 0 bytes of KV cache (or logits) copied on the GPU per step', async () => {
    const gen = await TextGenerator.create(session);
    const first = await gen.generate([3, 14, 15, 9, 26], { maxNewTokens: 8 });
    const c0 = copies();
    const r = await gen.generate([3, 14, 15, 9, 26], { maxNewTokens: 8 });
    const c1 = copies();
    expect(r.tokens).toEqual(first.tokens);
    expect(r.steps).toBe(8);
    expect(c1).toEqual(c0);
  });

  it('TextGenerator on the fixture GPT (gpt-op17.onnx): 0 bytes copied per step', async () => {
    const s = await InferenceSession.create(readFileSync(join(FIXTURES, 'gpt', 'gpt-op17.onnx')), { backend: 'webgpu' });
    try {
      const gen = await TextGenerator.create(s);
      const prompt = [84, 104, 101, 32, 112, 114, 111, 103, 114, 97, 109];
      const first = await gen.generate(prompt, { maxNewTokens: 6 });
      const before = s.report().gpu!;
      const r = await gen.generate(prompt, { maxNewTokens: 6 });
      const after = s.report().gpu!;
      expect(r.tokens).toEqual(first.tokens);
      expect(after.inputCopyBytes - before.inputCopyBytes).toBe(0);
      expect(after.outputCopyBytes - before.outputCopyBytes).toBe(0);
    } finally {
      await s.release();
    }
  });
});
