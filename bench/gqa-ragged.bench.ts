import { afterAll, beforeAll, bench, describe } from 'vitest';
import { GpuGraphPlan, type GpuResources } from '../runtime/backends/webgpu/executor.js';
import { importOnnx } from '../importers/onnx/import.js';
import { optimize, specialize } from '../runtime/ir/passes/index.js';
import { tensorFromNumbers, type HostTensor } from '../runtime/ir/tensor.js';
import { attr } from '../tests/helpers/ir-builder.js';
import { encodeModel } from '../tests/helpers/onnx-model.js';
import { Rng, randomTensor } from '../tests/helpers/random.js';
import { gpuForTests } from '../tests/helpers/webgpu-env.js';

/**
 * What the general GroupQueryAttention import costs (importers/onnx/ops/attention.ts, docs/attention.md): one decode
 * step, batch 2, 8 query heads on 2 kv heads of 64, past 1023 (T = 1024), rows of lengths 1024 and 600, on this
 * machine's WebGPU adapter (SwiftShader where there is no GPU):
 *
 *   npx vitest bench --run bench/gqa-ragged.bench.ts      (GQA_NODES=1 also lists each plan's nodes and kernels)
 *
 * - "GQA (general form)": the com.microsoft node as imported now (present gathered per row at the row's offset,
 *   explicit mask, Attention without a past);
 * - "plain Attention + past": the form the importer emitted before, written directly as opset-23 Attention with the
 *   past and a [B, 1, 1, T] key mask (j <= seqlens_k): it appends after the past, so it is exact only for full rows.
 *
 * total_sequence_length is a constant here, as in exported models where it folds from Shape(attention_mask). Each
 * run uploads the inputs (the 2 MiB past included), encodes every dispatch in one submit and reads Y and both
 * presents back.
 */

const [B, N, K, H, P] = [2, 8, 2, 64, 1023];
const lengths = [P + 1, 600];
let res: GpuResources;
const plans: Record<string, GpuGraphPlan> = {};
const feeds: Record<string, Record<string, HostTensor>> = {};

function models() {
  const rng = new Rng(3);
  const r = (shape: number[]) => randomTensor(rng, 'float32', shape, { lo: -1, hi: 1 });
  const [q, k, v, pastK, pastV] = [r([B, 1, N * H]), r([B, 1, K * H]), r([B, 1, K * H]), r([B, K, P, H]), r([B, K, P, H])];
  const seqlens = tensorFromNumbers('int32', [B], lengths.map((l) => l - 1));
  const outs = ['y', 'present_key', 'present_value'];
  const gqa = encodeModel({
    nodes: [{ op: 'GroupQueryAttention', domain: 'com.microsoft', inputs: ['q', 'k', 'v', 'past_key', 'past_value', 'seqlens_k', 'total'], outputs: outs, attrs: { num_heads: attr(N), kv_num_heads: attr(K) } }],
    inputs: { q, k, v, past_key: pastK, past_value: pastV, seqlens_k: seqlens },
    initializers: { total: tensorFromNumbers('int32', [], [P + 1]) },
    outputs: outs,
    opsets: { '': 21, 'com.microsoft': 1 },
  });
  const mask = tensorFromNumbers('bool', [B, 1, 1, P + 1], Array.from({ length: B * (P + 1) }, (_, i) => (i % (P + 1) < lengths[Math.floor(i / (P + 1))]! ? 1 : 0)));
  const plain = encodeModel({
    nodes: [{ op: 'Attention', inputs: ['q', 'k', 'v', 'mask', 'past_key', 'past_value'], outputs: outs, attrs: { q_num_heads: attr(N), kv_num_heads: attr(K), is_causal: attr(1) } }],
    inputs: { q, k, v, mask, past_key: pastK, past_value: pastV },
    outputs: outs,
    opsets: { '': 23 },
  });
  return {
    'GQA (general form)': { bytes: gqa, feeds: { q, k, v, past_key: pastK, past_value: pastV, seqlens_k: seqlens } },
    'plain Attention + past': { bytes: plain, feeds: { q, k, v, mask, past_key: pastK, past_value: pastV } },
  };
}

beforeAll(async () => {
  res = await gpuForTests();
  for (const [name, m] of Object.entries(models())) {
    const shapes = Object.fromEntries(Object.entries(m.feeds).map(([k, x]) => [k, x.shape]));
    const g = specialize(optimize((await importOnnx(m.bytes)).graph).graph, shapes);
    plans[name] = await GpuGraphPlan.create(res, g);
    feeds[name] = m.feeds;
    await plans[name].run(m.feeds);
    const rep = plans[name].report();
    console.log(`${name}: ${rep.dispatches} dispatches, activation arena ${rep.arenaBytes} bytes`);
    if (process.env.GQA_NODES) console.log(rep.nodes.map((x) => `${x.op}:${x.kernels.join('+')}:${x.storage}`).join('\n'));
  }
  // The machine is shared and its load drifts: also time the two forms alternately, run by run, and print medians.
  const names = Object.keys(plans);
  const times: Record<string, number[]> = Object.fromEntries(names.map((k) => [k, []]));
  for (let round = 0; round < 15; round++) {
    for (const name of names) {
      const t0 = performance.now();
      await plans[name]!.run(feeds[name]!);
      times[name]!.push(performance.now() - t0);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  for (const name of names) console.log(`${name}: median ${median(times[name]!).toFixed(1)} ms over 15 alternating runs`);
});
afterAll(() => {
  for (const p of Object.values(plans)) p.dispose();
});

describe('GroupQueryAttention decode step over rows of different lengths: general form vs the plain form', () => {
  for (const name of ['GQA (general form)', 'plain Attention + past']) {
    bench(name, async () => {
      await plans[name]!.run(feeds[name]!);
    }, { iterations: 20, warmupIterations: 2 });
  }
});
