import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { GpuGraphPlan, type GpuResources } from '../runtime/backends/webgpu/executor.js';
import { isPointwise, setConvBlocks } from '../runtime/backends/webgpu/kernels/qdq-gemm.js';
import type { ConvShape } from '../runtime/backends/webgpu/kernels/quant-matmul.js';
import { importOnnx } from '../importers/onnx/import.js';
import { optimize, specialize } from '../runtime/ir/passes/index.js';
import { hostTensor, type HostTensor } from '../runtime/ir/tensor.js';
import { gpuForTests } from '../tests/helpers/webgpu-env.js';

/**
 * Tilings of the direct int8 conv (CPU adapters: SwiftShader) compared on a whole int8 model: the model is planned
 * once per tiling (setConvBlocks) in one process, then profiled round-robin, so the shared machine's slow spells hit
 * every tiling alike; prints, per tiling, the minimum over rounds of the GPU time of its 1x1 convs, of its other
 * direct convs, and of the whole model:
 *
 *   QDQ_MODEL=mobilenet_v2 QDQ_ROUNDS=7 QDQ_TILES=default,small8x8 VK_ICD_FILENAMES=... npx vitest bench --run bench/qdq-tiles.bench.ts
 *
 * (tests/fixtures/generated/<model>-int8.onnx: tests/webgpu/qdq-packed.test.ts or bench/quantize.mjs writes it).
 */

const pointwise = (g: ConvShape) => g.group === 1 && isPointwise(g);
const TILINGS: Record<string, ((g: ConvShape) => { cb: number; pb: number } | undefined) | undefined> = {
  default: undefined,
  // 1x1 convs of fewer than 64 output channels in 8 x 8 blocks too (the default gives them 8 x 4).
  small8x8: (g) => (pointwise(g) && g.M < 64 ? { cb: 8, pb: 8 } : undefined),
  // The wide 1x1 convs in 16 x 4 blocks (the default before 8 x 8).
  wide16x4: (g) => (pointwise(g) && g.M >= 64 ? { cb: 16, pb: 4 } : undefined),
  // The wide 1x1 convs in 16 x 8 or 8 x 16 blocks.
  wide16x8: (g) => (pointwise(g) && g.M >= 64 ? { cb: 16, pb: 8 } : undefined),
  wide8x16: (g) => (pointwise(g) && g.M >= 64 ? { cb: 8, pb: 16 } : undefined),
  // Other ungrouped convs (a first 3x3 conv, resnet's convs) in other blocks.
  conv8x4: (g) => (!pointwise(g) && g.group === 1 ? { cb: 8, pb: 4 } : undefined),
  conv16x8: (g) => (!pointwise(g) && g.group === 1 ? { cb: 16, pb: 8 } : undefined),
  conv8x8: (g) => (!pointwise(g) && g.group === 1 ? { cb: 8, pb: 8 } : undefined),
  conv16x16: (g) => (!pointwise(g) && g.group === 1 ? { cb: 16, pb: 16 } : undefined),
  conv32x8: (g) => (!pointwise(g) && g.group === 1 && g.M >= 32 ? { cb: 32, pb: 8 } : undefined),
};

const MODEL = process.env.QDQ_MODEL ?? 'mobilenet_v2';
const ROUNDS = Number(process.env.QDQ_ROUNDS ?? '7');
const NAMES = (process.env.QDQ_TILES ?? 'default,small8x8').split(',');
const DIMS = [1, 3, 224, 224];
const plans: GpuGraphPlan[] = [];

beforeAll(async () => {
  const res: GpuResources = await gpuForTests();
  const { graph } = await importOnnx(readFileSync(`tests/fixtures/generated/${MODEL}-int8.onnx`));
  const input = graph.inputs[0]!.name;
  const outputs: number[][] = [];
  const feeds: Record<string, HostTensor> = { [input]: hostTensor('float32', DIMS, new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i * 0.01))) };
  for (const name of NAMES) {
    if (!(name in TILINGS)) throw new Error(`QDQ_TILES: no tiling '${name}' (${Object.keys(TILINGS).join(', ')})`);
    setConvBlocks(TILINGS[name]);
    try {
      plans.push(await GpuGraphPlan.create(res, specialize(optimize(graph).graph, { [input]: DIMS }), { cpuAdapter: true }));
    } finally {
      setConvBlocks(undefined);
    }
    const y = Object.values(await plans.at(-1)!.run(feeds))[0]!;
    outputs.push(Array.from(y.data as Float32Array));
    // Every tiling computes the same exact sums: its output must equal the first one's, bit for bit.
    if (outputs.length > 1 && outputs.at(-1)!.some((v, i) => !Object.is(v, outputs[0]![i]))) throw new Error(`${name}: output differs from ${NAMES[0]}'s`);
  }
  const best = NAMES.map(() => ({ pointwise: Infinity, conv: Infinity, depthwise: Infinity, total: Infinity }));
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < plans.length; i++) {
      const t = { pointwise: 0, conv: 0, depthwise: 0, total: 0 };
      for (const d of await plans[i]!.profile(feeds)) {
        const ms = d.ns / 1e6;
        t.total += ms;
        if (d.kernel.startsWith('qdq-conv:')) t[d.kernel.split('|')[0]!.includes(':1x1') ? 'pointwise' : 'conv'] += ms;
        if (d.kernel.startsWith('qdq-conv-depthwise:')) t.depthwise += ms;
      }
      for (const k of ['pointwise', 'conv', 'depthwise', 'total'] as const) best[i]![k] = Math.min(best[i]![k], t[k]);
    }
  }
  NAMES.forEach((name, i) => console.log(`${MODEL} ${name}: min over ${ROUNDS} rounds, GPU ms: 1x1 convs ${best[i]!.pointwise.toFixed(1)}, other direct convs ${best[i]!.conv.toFixed(1)}, depthwise ${best[i]!.depthwise.toFixed(1)}, model ${best[i]!.total.toFixed(1)}`));
}, 3_600_000);
afterAll(() => {
  for (const p of plans) p.dispose();
});

describe(`${MODEL} int8 conv tilings`, () => {
  // The measurement is the printout above (beforeAll); vitest bench needs one case.
  bench('(see the printout)', () => {}, { iterations: 1, warmupIterations: 0, time: 0 });
});
