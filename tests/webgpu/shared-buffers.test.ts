import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferenceSession, Tensor, TextGenerator } from '../../sdk/node.js';
import type { GpuResources } from '../../runtime/backends/webgpu/executor.js';
import { tinyDecoder } from '../helpers/tiny-decoder.js';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';

/**
 * The plans of one WebGPU session share their run-scoped buffers (runtime/backends/webgpu/shared-buffers.ts): one
 * activation arena grown to the largest plan's, input/output buffers made only when a run needs them. A decode
 * loop makes a plan per past length; these tests count the buffers the session leases for them, check a plan still
 * computes the same after a larger plan grew the shared arena under it, and that everything is given back.
 */

const H = 4;
const D = 16;
const bytes = tinyDecoder({ vocab: 60, context: 48, layers: 2, heads: H, headDim: D, seed: 11 });
let res: GpuResources;
let gpu: InferenceSession;
let cpu: InferenceSession;

beforeAll(async () => {
  res = await gpuForTests();
  console.log(`shared-buffers suite WebGPU on ${describeDevice(res)}`);
  gpu = await InferenceSession.create(bytes, { backend: 'webgpu' });
  cpu = await InferenceSession.create(bytes, { backend: 'cpu' });
});
afterAll(async () => {
  await gpu?.release();
  await cpu?.release();
});

/** Counts the labels of every buffer leased from the device's memory manager while `work` runs. */
async function leasedLabels<T>(work: () => Promise<T>): Promise<{ result: T; labels: string[]; sizes: number[] }> {
  const mem = res.memory;
  const acquire = mem.acquire.bind(mem);
  const labels: string[] = [];
  const sizes: number[] = [];
  mem.acquire = (n, usage, label = 'edgekit', exact = false) => {
    labels.push(label);
    sizes.push(n);
    return acquire(n, usage, label, exact);
  };
  try {
    return { result: await work(), labels, sizes };
  } finally {
    mem.acquire = acquire;
  }
}

const ids = (xs: number[]) => new Tensor('int64', BigInt64Array.from(xs, BigInt), [1, xs.length]);

describe('run-scoped buffers shared by the plans of a session', () => {
  it('a 14-step generation (14 plans, 8 cached) leases no past/present buffers of its own and a few arena growths, not one per plan', async () => {
    const prompt = [5, 17, 3, 42, 8, 29];
    const want = await (await TextGenerator.create(cpu)).generate(prompt, { maxNewTokens: 14 });
    const before = res.memory.stats().leasedBytes;
    const gen = await TextGenerator.create(gpu);
    const { result, labels, sizes } = await leasedLabels(() => gen.generate(prompt, { maxNewTokens: 14 }));
    expect(result.tokens).toEqual(want.tokens);
    // Each step's presents are new tensors handed to the generator (edgekit-out-present...); the plans themselves
    // lease no buffer for a past input or a present output, which are bound to the caller's buffers, except the
    // prompt step's empty pasts, fed from the host (4 slots of the minimum 4 bytes, once).
    const planIo = labels.flatMap((l, i) => (/^edgekit-(in:|out:)?(past_key_values|present)/.test(l) ? [`${l} ${sizes[i]}`] : []));
    expect(planIo.sort()).toEqual([0, 1].flatMap((l) => [`edgekit-in:past_key_values.${l}.key 4`, `edgekit-in:past_key_values.${l}.value 4`]).sort());
    expect(labels.filter((l) => l.startsWith('edgekit-out-present')).length).toBe(14 * 2 * 2);
    // Before the arena was shared, every plan leased one (14 here); now only its growths to a larger size class.
    const arenas = labels.filter((l) => l === 'edgekit-arena').length;
    expect(arenas).toBeGreaterThan(0);
    expect(arenas).toBeLessThanOrEqual(4);
    await res.memory.settle();
    // What the 8 cached plans keep: their uniforms and the shared slots (94 KB when written); with an arena and a
    // past and present set per plan, it was several times that.
    expect(res.memory.stats().leasedBytes - before).toBeLessThanOrEqual(128 * 1024);
  });

  it('a plan made before a larger plan grew the shared arena computes the same after it (rebound to the new buffer)', async () => {
    const s = await InferenceSession.create(bytes, { backend: 'webgpu' });
    try {
      const empty = Object.fromEntries(
        [0, 1].flatMap((l) => [`past_key_values.${l}.key`, `past_key_values.${l}.value`]).map((n) => [n, new Tensor('float32', new Float32Array(0), [1, H, 0, D])]),
      );
      const feeds = (prompt: number[]) => ({ input_ids: ids(prompt), attention_mask: ids(prompt.map(() => 1)), position_ids: ids(prompt.map((_, i) => i)), ...empty });
      const short = [1, 2, 3];
      const first = await s.run(feeds(short), { outputs: ['logits', 'present.1.value'] });
      const { labels } = await leasedLabels(() => s.run(feeds(Array.from({ length: 40 }, (_, i) => (i * 7) % 60)), { outputs: ['logits'] }));
      expect(labels).toContain('edgekit-arena'); // the 40-token plan grew the arena
      const again = await s.run(feeds(short), { outputs: ['logits', 'present.1.value'] });
      const want = await cpu.run(feeds(short), { outputs: ['logits', 'present.1.value'] });
      expect(Array.from(again.logits!.data as Float32Array)).toEqual(Array.from(first.logits!.data as Float32Array));
      expect(Array.from(again['present.1.value']!.data as Float32Array)).toEqual(Array.from(first['present.1.value']!.data as Float32Array));
      (again.logits!.data as Float32Array).forEach((v, i) => expect(v).toBeCloseTo((want.logits!.data as Float32Array)[i]!, 3));
    } finally {
      await s.release();
    }
  });

  it('releasing a session gives back its shared buffers', async () => {
    await res.memory.settle();
    const before = res.memory.stats().leasedBytes;
    const s = await InferenceSession.create(bytes, { backend: 'webgpu' });
    const gen = await TextGenerator.create(s);
    await gen.generate([4, 9, 1], { maxNewTokens: 5 });
    await s.release();
    await res.memory.settle();
    expect(res.memory.stats().leasedBytes).toBe(before);
  });
});
