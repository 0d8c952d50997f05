import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleRow, samplingKeys, type SamplingParams } from '../../runtime/backends/cpu/sampling.js';
import type { GpuResources } from '../../runtime/backends/webgpu/executor.js';
import { GpuSampler } from '../../runtime/backends/webgpu/kernels/sampling.js';
import type { GpuBufferLease } from '../../runtime/backends/webgpu/memory.js';
import { Rng } from '../helpers/random.js';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';

/**
 * The WebGPU token sampler (runtime/backends/webgpu/kernels/sampling.ts) against its CPU twin: the same seed gives
 * the same tokens for every mix of temperature, top-k, top-p and repetition penalty; and, on crafted logits, the
 * distributions are the ones each step defines (many rows per dispatch: every row draws independently).
 */

let res: GpuResources;
const leases: GpuBufferLease[] = [];
beforeAll(async () => {
  res = await gpuForTests();
  console.log(`sampling suite on ${describeDevice(res)}`);
});
afterAll(() => {
  for (const l of leases) res.memory.release(l);
});

const params = (p: Partial<SamplingParams> & { seed?: number }): SamplingParams => ({
  temperature: p.temperature ?? 1,
  topK: p.topK ?? 0,
  topP: p.topP ?? 1,
  repetitionPenalty: p.repetitionPenalty ?? 1,
  keys: samplingKeys(p.seed ?? 1),
});

/** Uploads logits [rows, seq, vocab] and samples them on the GPU at `step`. */
async function gpuSample(logits: Float32Array, rows: number, seq: number, vocab: number, p: SamplingParams, step: number, seen?: number[][]) {
  const lease = res.memory.acquire(logits.byteLength);
  leases.push(lease);
  res.memory.upload(lease.buffer, 0, logits);
  const sampler = await GpuSampler.create(res, rows, vocab);
  try {
    sampler.setSeen(seen ?? []);
    return await sampler.sample({ buffer: lease.buffer, offset: 0, storage: 'f32', dtype: 'float32', shape: [rows, seq, vocab] }, p, step);
  } finally {
    sampler.dispose();
  }
}

function cpuSample(logits: Float32Array, rows: number, seq: number, vocab: number, p: SamplingParams, step: number, seen?: number[][]) {
  const tokens: number[] = [];
  for (let r = 0; r < rows; r++) {
    const flags = new Uint8Array(vocab);
    for (const id of seen?.[r] ?? []) flags[id] = 1;
    tokens.push(sampleRow(logits, (r * seq + seq - 1) * vocab, vocab, flags, p, r, step).token);
  }
  return tokens;
}

function randomLogits(rng: Rng, n: number, scale: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * scale);
}

describe('GPU sampler matches the CPU twin', () => {
  it('greedy: the arg max of the last position, lowest index on ties, over rows longer than a workgroup', async () => {
    const rng = new Rng(11);
    const [rows, seq, vocab] = [3, 2, 1003];
    const logits = randomLogits(rng, rows * seq * vocab, 2);
    // Row 1: a tie for the max at 700 and 900; the lower index wins.
    logits[(1 * seq + 1) * vocab + 700] = 50;
    logits[(1 * seq + 1) * vocab + 900] = 50;
    const p = params({ temperature: 0 });
    const gpu = await gpuSample(logits, rows, seq, vocab, p, 0);
    expect(Array.from(gpu.tokens)).toEqual(cpuSample(logits, rows, seq, vocab, p, 0));
    expect(gpu.tokens[1]).toBe(700);
    expect(gpu.nan).toEqual([false, false, false]);
  });

  const mixes: [string, Partial<SamplingParams>][] = [
    ['temperature 1', {}],
    ['temperature 0.7, top-k 40', { temperature: 0.7, topK: 40 }],
    ['top-p 0.9', { topP: 0.9 }],
    ['top-k 50, top-p 0.8, temperature 1.3', { topK: 50, topP: 0.8, temperature: 1.3 }],
    ['repetition penalty 1.3, top-p 0.95', { repetitionPenalty: 1.3, topP: 0.95 }],
  ];
  for (const [name, mix] of mixes) {
    it(`same seed, same tokens: ${name}`, async () => {
      const rng = new Rng(name.length * 31);
      const [rows, vocab] = [16, 517];
      const logits = randomLogits(rng, rows * vocab, 3);
      const seen = Array.from({ length: rows }, () => Array.from({ length: 20 }, () => rng.int(0, vocab - 1)));
      for (const [seed, step] of [[1, 0], [2024, 5], [7, 123]] as const) {
        const p = params({ ...mix, seed });
        const gpu = await gpuSample(logits, rows, 1, vocab, p, step, seen);
        expect(Array.from(gpu.tokens), `seed ${seed} step ${step}`).toEqual(cpuSample(logits, rows, 1, vocab, p, step, seen));
      }
    });
  }

  it('a different seed or step gives different draws', async () => {
    const rng = new Rng(5);
    const [rows, vocab] = [32, 300];
    const logits = randomLogits(rng, rows * vocab, 0.5);
    const a = await gpuSample(logits, rows, 1, vocab, params({ seed: 1 }), 0);
    const b = await gpuSample(logits, rows, 1, vocab, params({ seed: 2 }), 0);
    const c = await gpuSample(logits, rows, 1, vocab, params({ seed: 1 }), 1);
    expect(Array.from(a.tokens)).not.toEqual(Array.from(b.tokens));
    expect(Array.from(a.tokens)).not.toEqual(Array.from(c.tokens));
  });

  it('flags a NaN per row and leaves the other rows sampled', async () => {
    const vocab = 40;
    const logits = Float32Array.from({ length: 2 * vocab }, (_, i) => (i % vocab) / 10);
    logits[vocab + 7] = NaN;
    const gpu = await gpuSample(logits, 2, 1, vocab, params({ temperature: 0 }), 0);
    expect(gpu.nan).toEqual([false, true]);
    expect(Array.from(gpu.tokens)).toEqual([vocab - 1, -1]);
    expect(cpuSample(logits, 2, 1, vocab, params({ temperature: 0 }), 0)).toEqual([vocab - 1, -1]);
  });
});

describe('distributions on crafted logits (GPU, 256 rows per dispatch)', () => {
  // SwiftShader runs a 256-invocation workgroup's 64 search rounds slowly: 256 rows keep each dispatch to seconds.
  const rows = 256;
  /** Frequencies of each token over `rows` independent rows with the same logits. */
  async function frequencies(row: number[], p: SamplingParams, seen?: number[]) {
    const vocab = row.length;
    const logits = new Float32Array(rows * vocab);
    for (let r = 0; r < rows; r++) logits.set(row, r * vocab);
    const out = await gpuSample(logits, rows, 1, vocab, p, 3, seen ? Array.from({ length: rows }, () => seen) : undefined);
    const counts = new Array<number>(vocab).fill(0);
    for (const t of out.tokens) counts[t]!++;
    return counts.map((c) => c / rows);
  }
  const softmax = (x: number[]) => {
    const m = Math.max(...x);
    const e = x.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  };
  /** Each frequency within 4.5 standard errors of its probability (a false alarm about once in 10^5 per token). */
  const expectClose = (freq: number[], prob: number[]) => {
    prob.forEach((q, i) => {
      const se = Math.sqrt(Math.max(q * (1 - q), 1e-9) / rows);
      expect(Math.abs(freq[i]! - q), `token ${i}: frequency ${freq[i]} vs probability ${q}`).toBeLessThanOrEqual(4.5 * se + 1e-9);
    });
  };
  const logits = [2, 1.5, 1, 0.5, 0, -0.5, -1, -3];

  it('temperature 1 and 2 follow softmax(l / T)', async () => {
    expectClose(await frequencies(logits, params({ temperature: 1, seed: 9 })), softmax(logits));
    expectClose(await frequencies(logits, params({ temperature: 2, seed: 9 })), softmax(logits.map((x) => x / 2)));
  });

  it('top-k 3 renormalizes over the three largest; ties with the k-th are kept', async () => {
    const top = softmax(logits.slice(0, 3));
    expectClose(await frequencies(logits, params({ topK: 3, seed: 4 })), [...top, 0, 0, 0, 0, 0]);
    const tied = [1, 3, 2, 2, 0];
    const kept = softmax([3, 2, 2]);
    expectClose(await frequencies(tied, params({ topK: 2, seed: 4 })), [0, kept[0]!, kept[1]!, kept[2]!, 0]);
  });

  it('top-p keeps the smallest set with mass >= p', async () => {
    const probs = [0.5, 0.3, 0.15, 0.05];
    const l = probs.map(Math.log);
    // 0.5 < 0.8 <= 0.5 + 0.3: tokens 0 and 1, renormalized.
    expectClose(await frequencies(l, params({ topP: 0.8, seed: 21 })), [0.5 / 0.8, 0.3 / 0.8, 0, 0]);
    expectClose(await frequencies(l, params({ topP: 0.4, seed: 21 })), [1, 0, 0, 0]);
  });

  it('repetition penalty divides positive and multiplies negative logits of seen tokens', async () => {
    const l = [1, 0.8, -0.2, -0.3];
    // Token 0 seen: 1 / 2 = 0.5 < 0.8, so greedy picks 1; token 2 seen: -0.4 < -0.3.
    const greedy = await frequencies(l, params({ temperature: 0, repetitionPenalty: 2 }), [0]);
    expect(greedy[1]).toBe(1);
    expectClose(await frequencies(l, params({ repetitionPenalty: 2, seed: 3 }), [0, 2]), softmax([0.5, 0.8, -0.4, -0.3]));
  });

  it('the dispatch marks the chosen token as seen for the next step', async () => {
    const vocab = 6;
    const lease = res.memory.acquire(vocab * 4);
    leases.push(lease);
    res.memory.upload(lease.buffer, 0, Float32Array.from([0, 3, 2.9, 1, 0, 0]));
    const sampler = await GpuSampler.create(res, 1, vocab);
    try {
      sampler.setSeen([[]]);
      const ref = { buffer: lease.buffer, offset: 0, storage: 'f32' as const, dtype: 'float32' as const, shape: [1, 1, vocab] };
      const p = params({ temperature: 0, repetitionPenalty: 1.5 });
      expect((await sampler.sample(ref, p, 0)).tokens[0]).toBe(1);
      expect((await sampler.sample(ref, p, 1)).tokens[0]).toBe(2); // 3 / 1.5 = 2 < 2.9
      expect((await sampler.sample(ref, p, 2)).tokens[0]).toBe(1); // 2 > 2.9 / 1.5
    } finally {
      sampler.dispose();
    }
  });
});

describe('the CPU twin against a sort-based reference (transformers-style warpers)', () => {
  it('temperature, top-k then top-p: 4,000 draws land on the sorted definition with its probabilities', () => {
    const rng = new Rng(77);
    const vocab = 60;
    const logits = randomLogits(rng, vocab, 2);
    const [T, k, p] = [1.3, 12, 0.7];
    // Reference: sort by z descending, keep the first k, then the shortest prefix whose softmax mass reaches p.
    const z = Array.from(logits, (x) => x / T);
    const order = z.map((_, i) => i).sort((a, b) => z[b]! - z[a]!).slice(0, k);
    const e = order.map((i) => Math.exp(z[i]! - z[order[0]!]!));
    const total = e.reduce((a, b) => a + b, 0);
    let mass = 0;
    let n = 0;
    while (mass < p * total) mass += e[n++]!;
    const kept = order.slice(0, n);
    const keptMass = e.slice(0, n).reduce((a, b) => a + b, 0);
    const draws = 4000;
    const counts = new Map<number, number>();
    const params = { temperature: T, topK: k, topP: p, repetitionPenalty: 1, keys: samplingKeys(5) };
    for (let step = 0; step < draws; step++) {
      const t = sampleRow(logits, 0, vocab, undefined, params, 0, step).token;
      counts.set(t, (counts.get(t) ?? 0) + 1);
    }
    expect([...counts.keys()].every((t) => kept.includes(t))).toBe(true);
    kept.forEach((t, j) => {
      const q = e[j]! / keptMass;
      const f = (counts.get(t) ?? 0) / draws;
      expect(Math.abs(f - q), `token ${t}`).toBeLessThanOrEqual(4.5 * Math.sqrt((q * (1 - q)) / draws));
    });
  });
});
