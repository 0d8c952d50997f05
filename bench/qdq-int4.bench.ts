import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { GpuGraphPlan } from '../runtime/backends/webgpu/executor.js';
import { importOnnx } from '../importers/onnx/import.js';
import { optimize, specialize } from '../runtime/ir/passes/index.js';
import { tensorFromNumbers, type HostTensor } from '../runtime/ir/tensor.js';
import { FIXTURES } from '../tests/models/fixture-files.js';
import { Rng } from '../tests/helpers/random.js';
import { gpuForTests } from '../tests/helpers/webgpu-env.js';

/**
 * 4-bit QDQ weights on WebGPU (runtime/backends/webgpu/fuse-int4.ts, docs/quantization.md): the 256 x 512 int4 layer
 * of tests/fixtures/qdq-int4 (DequantizeLinear blocked 128 with zero points -> MatMul, x [2, 256]), warm runs on this
 * machine's WebGPU adapter (SwiftShader where there is no GPU): rewritten into MatMulNBits (codes packed eight per
 * word, dequantized in registers) against the graph as written (the DequantizeLinear kernel writes W as float32
 * into the arena on every run, then the float MatMul):
 *
 *   npx vitest bench --run bench/qdq-int4.bench.ts
 *
 * Each plan prints its dispatches, resident weight bytes and arena bytes. Each run writes the input, encodes every
 * dispatch into one submit and reads the output back.
 */

const NAME = 'int4-matmul-256x512-block128';
const SHAPE = [2, 256];
const FUSED = 'MatMulNBits (fuse-int4)';
const AS_WRITTEN = 'as written (DequantizeLinear + MatMul)';
const plans: Record<string, GpuGraphPlan> = {};
let feeds: Record<string, HostTensor>;

beforeAll(async () => {
  const res = await gpuForTests();
  const bytes = new Uint8Array(readFileSync(join(FIXTURES, 'qdq-int4', `${NAME}.onnx`)));
  const g = specialize(optimize((await importOnnx(bytes)).graph).graph, { x: SHAPE });
  plans[FUSED] = await GpuGraphPlan.create(res, g);
  plans[AS_WRITTEN] = await GpuGraphPlan.create(res, g, { fuse: false });
  const rng = new Rng(1);
  feeds = { x: tensorFromNumbers('float32', SHAPE, Array.from({ length: SHAPE[0]! * SHAPE[1]! }, () => rng.uniform(-1, 1))) };
  for (const [k, p] of Object.entries(plans)) {
    await p.run(feeds);
    const r = p.report();
    console.log(`${k}: ${r.dispatches} dispatches, resident weights ${r.weightBytes} bytes, arena ${r.arenaBytes} bytes (float32 W: ${256 * 512 * 4})`);
  }
});
afterAll(() => {
  for (const p of Object.values(plans)) p.dispose();
});

describe(`int4 layer ${NAME}, x [${SHAPE.join(', ')}]`, () => {
  for (const name of [FUSED, AS_WRITTEN]) {
    bench(name, async () => {
      await plans[name]!.run(feeds);
    }, { iterations: 30, warmupIterations: 3, time: 0 });
  }
});
