import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { GpuGraphPlan, type GpuResources } from '../runtime/backends/webgpu/executor.js';
import { fuseAttention } from '../runtime/backends/webgpu/fuse-attention.js';
import { importOnnx } from '../importers/onnx/import.js';
import { optimize, specialize } from '../runtime/ir/passes/index.js';
import type { HostTensor } from '../runtime/ir/tensor.js';
import { Rng, randomTensor } from '../tests/helpers/random.js';
import { gpuForTests } from '../tests/helpers/webgpu-env.js';

/**
 * The GPU plan's Transformer fusions (docs/fusion.md) on the torch.onnx export of the small encoder block
 * (tests/fixtures/transformer/encoder-block-op14.onnx: LayerNorm and GELU expanded), warm runs of the same
 * specialized graph on this machine's WebGPU adapter (SwiftShader where there is no GPU): every fusion, the attention
 * fusion alone (what the norm, GELU, QKV and epilogue fusions add is the difference to the first), and none:
 *
 *   npx vitest bench --run bench/fusion-transformer.bench.ts
 *
 * Each run writes the input, encodes every dispatch into one submit and reads the output back.
 */

const SHAPE = [4, 128, 24];
let res: GpuResources;
const plans: Record<string, GpuGraphPlan> = {};
let feeds: Record<string, HostTensor>;

beforeAll(async () => {
  res = await gpuForTests();
  const bytes = new Uint8Array(readFileSync('tests/fixtures/transformer/encoder-block-op14.onnx'));
  const g = specialize(optimize((await importOnnx(bytes)).graph).graph, { x: SHAPE });
  plans.fused = await GpuGraphPlan.create(res, g);
  plans['attention only'] = await GpuGraphPlan.create(res, fuseAttention(g), { fuse: false });
  plans.unfused = await GpuGraphPlan.create(res, g, { fuse: false });
  feeds = { x: randomTensor(new Rng(1), 'float32', SHAPE) };
  for (const [k, p] of Object.entries(plans)) {
    await p.run(feeds);
    console.log(`${k}: ${p.report().dispatches} dispatches, arena ${p.report().arenaBytes} bytes`);
  }
});
afterAll(() => {
  for (const p of Object.values(plans)) p.dispose();
});

describe(`encoder-block-op14 [${SHAPE.join(', ')}]`, () => {
  bench('fused', async () => {
    await plans.fused!.run(feeds);
  }, { iterations: 20, warmupIterations: 3, time: 0 });
  bench('attention only', async () => {
    await plans['attention only']!.run(feeds);
  }, { iterations: 20, warmupIterations: 3, time: 0 });
  bench('unfused', async () => {
    await plans.unfused!.run(feeds);
  }, { iterations: 20, warmupIterations: 3, time: 0 });
});
