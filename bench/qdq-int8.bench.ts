import { afterAll, beforeAll, bench, describe } from 'vitest';
import { GpuGraphPlan, type GpuResources } from '../runtime/backends/webgpu/executor.js';
import { setQuantDotPath } from '../runtime/backends/webgpu/kernels/quant-dot.js';
import { importOnnx } from '../importers/onnx/import.js';
import { optimize, specialize } from '../runtime/ir/passes/index.js';
import type { HostTensor } from '../runtime/ir/tensor.js';
import { qdqModel, type LayerSpec } from '../tests/helpers/qdq-models.js';
import { gpuForTests } from '../tests/helpers/webgpu-env.js';

/**
 * The QDQ rewrite (runtime/backends/webgpu/fuse-qdq.ts, docs/quantization.md) on a small static-int8 CNN
 * (conv 3x3 -> conv 3x3 stride 2 -> gemm, tests/helpers/qdq-models.ts), warm runs of the same specialized graph on
 * this machine's WebGPU adapter (SwiftShader where there is no GPU): the int8 kernels with dot4I8Packed, with the
 * unpacked dot product, and the graph as written (DequantizeLinear -> float Conv/Gemm -> QuantizeLinear):
 *
 *   npx vitest bench --run bench/qdq-int8.bench.ts
 *
 * Each plan prints its dispatches and resident bytes. Each run writes the input, encodes every dispatch into one
 * submit and reads the output back.
 */

const SHAPE = [1, 16, 32, 32];
const base: Omit<LayerSpec, 'kind' | 'out'> = { wType: 'int8', perChannel: true, bias: 'int32', act: 'relu', yScale: 0.05 };
const LAYERS: LayerSpec[] = [
  { ...base, kind: 'conv', out: 32, kernel: 3, pad: 1 },
  { ...base, kind: 'conv', out: 64, kernel: 3, stride: 2, pad: 1 },
  { ...base, kind: 'gemm', out: 10, transB: true, act: 'none', floatOut: true },
];
let res: GpuResources;
const plans: Record<string, GpuGraphPlan> = {};
let feeds: Record<string, HostTensor>;

beforeAll(async () => {
  res = await gpuForTests();
  const m = qdqModel(SHAPE, LAYERS, 'uint8');
  const g = specialize(optimize((await importOnnx(m.bytes)).graph).graph, { x: SHAPE });
  setQuantDotPath('packed');
  plans['int8 packed dot'] = await GpuGraphPlan.create(res, g);
  setQuantDotPath('unpacked');
  plans['int8 unpacked dot'] = await GpuGraphPlan.create(res, g);
  setQuantDotPath(undefined);
  plans['as written (float)'] = await GpuGraphPlan.create(res, g, { fuse: false });
  feeds = m.feeds;
  for (const [k, p] of Object.entries(plans)) {
    await p.run(feeds);
    const r = p.report();
    console.log(`${k}: ${r.dispatches} dispatches, plan constants ${r.weightBytes} bytes, float32 weights would be ${m.floatWeightBytes}`);
  }
});
afterAll(() => {
  for (const p of Object.values(plans)) p.dispose();
});

describe(`QDQ CNN [${SHAPE.join(', ')}]`, () => {
  for (const name of ['int8 packed dot', 'int8 unpacked dot', 'as written (float)']) {
    bench(name, async () => {
      await plans[name]!.run(feeds);
    }, { iterations: 20, warmupIterations: 3, time: 0 });
  }
});
