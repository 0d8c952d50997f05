import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { importOnnx } from '../../importers/onnx/import.js';
import { GpuGraphPlan, type GpuResources } from '../../runtime/backends/webgpu/executor.js';
import { setQuantDotPath, type QuantDotPath } from '../../runtime/backends/webgpu/kernels/quant-dot.js';
import { setDepthwiseRowWindow } from '../../runtime/backends/webgpu/kernels/qdq-depthwise.js';
import { optimize, specialize } from '../../runtime/ir/passes/index.js';
import { tensorToNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession } from '../../sdk/node.js';
import { steps } from '../helpers/compare.js';
import { chain, INVERTED_RESIDUAL, type ChainWeights, type Layer } from '../helpers/qdq-chain.js';
import { runHost } from '../helpers/session-runs.js';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';

/**
 * int4 / uint4 Conv weights stay 4 bits on the GPU (issue #11 §1; runtime/backends/webgpu/kernels/qdq-weights.ts):
 * opset-21 QDQ conv chains whose weights are INT4 / UINT4 initializers (per output channel, zero points 0 or not),
 * as onnxruntime's quantizer writes a CNN with weight_type QInt4 / QUInt4. Each model has a twin that holds the same
 * weight values in int8 / uint8 initializers: the 4-bit plan must equal the twin's plan bit for bit (the codes, sums
 * and accumulators are the same; only the weight words differ), on the kernels of a CPU adapter (direct, 1x1, depthwise
 * row-window and per-pixel) and of a GPU adapter (workgroup-tiled), on both dot-product paths, and read its weights
 * through the 4-bit form (':w4' in every int8 conv kernel's key). The CPU backend running the model as written and
 * onnxruntime-node (graph optimizations off: DequantizeLinear then a float Conv) are the references, within a few
 * quantization steps as in qdq-packed.test.ts. Through the public API (InferenceSession on WebGPU) a chain of wide
 * layers holds its weights in about 1/8 of float32 bytes, half the twin's.
 */

let res: GpuResources;
const PATHS: QuantDotPath[] = ['packed', 'unpacked'];
const sessions: InferenceSession[] = [];

beforeAll(async () => {
  res = await gpuForTests();
  console.log(`int4 QDQ conv weights on ${describeDevice(res)}`);
});
afterEach(() => {
  setQuantDotPath(undefined);
  setDepthwiseRowWindow(true);
});
afterAll(async () => {
  for (const s of sessions) await s.release();
});

async function planRun(bytes: Uint8Array, x: HostTensor, cpuAdapter: boolean): Promise<{ y: HostTensor; kernels: string[] }> {
  const { graph } = await importOnnx(bytes);
  const plan = await GpuGraphPlan.create(res, specialize(optimize(graph).graph, { [graph.inputs[0]!.name]: x.shape as number[] }), { cpuAdapter });
  try {
    const kernels = plan.report().nodes.flatMap((n) => n.kernels ?? []);
    const y = Object.values(await plan.run({ [plan.graph.inputs[0]!.name]: x }))[0]!;
    return { y, kernels };
  } finally {
    plan.dispose();
  }
}

async function session(bytes: Uint8Array, backend: 'cpu' | 'webgpu'): Promise<InferenceSession> {
  const s = await InferenceSession.create(bytes, { backend });
  sessions.push(s);
  return s;
}

/** onnxruntime-node with graph optimizations off: the model as written (DequantizeLinear, float Conv, QuantizeLinear). */
async function runOrt(bytes: Uint8Array, x: HostTensor): Promise<HostTensor> {
  const ort = await import('onnxruntime-node');
  const s = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'disabled' });
  try {
    const y = (await s.run({ x: new ort.Tensor('float32', x.data as Float32Array, x.shape) })).y!;
    return { dtype: 'float32', shape: [...y.dims], data: y.data as Float32Array };
  } finally {
    await s.release();
  }
}

const CASES: [string, number[], Layer[], 'int8' | 'uint8', boolean, 'int4' | 'uint4'][] = [
  // [title, x shape, layers, activation type, nonzero weight zero points, weight type]
  ['mobilenet block: 3x3 stride 2 from 3 channels (odd quads per row), depthwise, 1x1, int4, uint8 activations', [1, 3, 13, 11], [
    { kind: 'conv', out: 12, k: 3, stride: 2, pad: 1, act: 'clip' },
    { kind: 'conv', out: 12, k: 3, pad: 1, group: 12, act: 'relu' },
    { kind: 'conv', out: 20, k: 1 },
    { kind: 'conv', out: 20, k: 3, stride: 2, pad: 1, group: 20, act: 'clip' },
    { kind: 'conv', out: 7, k: 1, act: 'relu' },
  ], 'uint8', false, 'int4'],
  ['uint4 with zero points: 16 x 8 blocks, a grouped conv, dilation, a dilated depthwise (per-pixel form), int8 activations', [2, 5, 9, 10], [
    { kind: 'conv', out: 20, k: 3, pad: 1, act: 'relu' },
    { kind: 'conv', out: 16, k: 3, pad: 1, group: 2 },
    { kind: 'conv', out: 9, k: 3, pad: 2, dil: 2, act: 'clip' },
    { kind: 'conv', out: 9, k: 3, pad: 2, dil: 2, group: 9 },
    { kind: 'conv', out: 5, k: 1 },
  ], 'int8', true, 'uint4'],
  ['inverted residual with an Add, int4 with zero points, C = 7 (a partial word of channels)', [1, 7, 8, 9], INVERTED_RESIDUAL, 'int8', true, 'int4'],
];

describe('4-bit QDQ conv weights: bit-identical to the same values held as int8, on every kernel form', () => {
  for (const [title, shape, layers, act, zw, type] of CASES) {
    it(title, async () => {
      const weights: ChainWeights = { type };
      const { bytes, x, step } = chain(shape, layers, act, zw, 7, weights);
      const twin = chain(shape, layers, act, zw, 7, { type, as8: true }).bytes;
      const cpu = await runHost(await session(bytes, 'cpu'), { x });
      const ort = await runOrt(bytes, x);
      // The CPU backend and onnxruntime run the same float computation: within a step of each other nearly everywhere.
      expect(steps(cpu.y!, ort, step).max, `${title}: CPU vs onnxruntime`).toBeLessThanOrEqual(1);
      for (const cpuAdapter of [true, false]) {
        for (const path of PATHS) {
          setQuantDotPath(path);
          for (const rows of cpuAdapter ? [true, false] : [true]) {
            setDepthwiseRowWindow(rows);
            const what = `${title} (${cpuAdapter ? 'CPU' : 'GPU'}-adapter kernels, ${path}${rows ? '' : ', per-pixel depthwise'})`;
            const four = await planRun(bytes, x, cpuAdapter);
            const eight = await planRun(twin, x, cpuAdapter);
            const convs = four.kernels.filter((k) => k.startsWith('qdq-conv') || k.startsWith('qdq-gemm'));
            expect(convs.length, `${what}: ${four.kernels.join(' ')}`).toBe(layers.filter((l) => l.kind === 'conv').length);
            for (const k of convs) expect(k, what).toMatch(/:w4o(0|8)$/);
            expect(eight.kernels.some((k) => k.includes(':w4')), what).toBe(false);
            if (!cpuAdapter) expect(convs.some((k) => k.startsWith('qdq-gemm-tiled')), what).toBe(true);
            if (!rows) expect(convs.some((k) => k.includes(':row')), what).toBe(false);
            expect(Array.from(tensorToNumbers(four.y)), what).toEqual(Array.from(tensorToNumbers(eight.y)));
            for (const [ref, name] of [[cpu.y!, 'CPU'], [ort, 'onnxruntime']] as const) {
              const d = steps(four.y, ref, step);
              expect(d.max, `${what} vs ${name}: max steps`).toBeLessThanOrEqual(3);
              expect(d.within1, `${what} vs ${name}: share within one step`).toBeGreaterThanOrEqual(0.97);
            }
          }
        }
      }
    }, 300_000);
  }
});

describe('4-bit conv weights through the public API', () => {
  it('wide layers hold their weights in about 1/8 of float32 bytes on WebGPU, half the int8 twin', async () => {
    const layers: Layer[] = [
      { kind: 'conv', out: 64, k: 3, pad: 1, act: 'relu' },
      { kind: 'conv', out: 64, k: 3, pad: 1, act: 'relu' },
      { kind: 'conv', out: 128, k: 1 },
      { kind: 'conv', out: 128, k: 3, pad: 1, group: 128, act: 'relu' },
      { kind: 'conv', out: 32, k: 1 },
    ];
    const shape = [1, 16, 12, 12];
    let C = shape[1]!;
    let floatBytes = 0;
    for (const l of layers) {
      if (l.kind !== 'conv') continue;
      floatBytes += 4 * l.out * (C / (l.group ?? 1)) * l.k * l.k;
      C = l.out;
    }
    const { bytes, x, step } = chain(shape, layers, 'uint8', false, 11, { type: 'int4' });
    const twin = chain(shape, layers, 'uint8', false, 11, { type: 'int4', as8: true }).bytes;
    const four = await session(bytes, 'webgpu');
    const eight = await session(twin, 'webgpu');
    const y4 = (await runHost(four, { x })).y!;
    const y8 = (await runHost(eight, { x })).y!;
    expect(Array.from(tensorToNumbers(y4))).toEqual(Array.from(tensorToNumbers(y8)));
    const cpu = (await runHost(await session(bytes, 'cpu'), { x })).y!;
    expect(steps(y4, cpu, step).max).toBeLessThanOrEqual(3);
    const w4 = four.report().weightBytes;
    const w8 = eight.report().weightBytes;
    console.log(`resident weight bytes: 4-bit ${w4} (${(w4 / floatBytes).toFixed(3)} of float32 ${floatBytes}), int8 twin ${w8} (${(w8 / floatBytes).toFixed(3)})`);
    // Codes: 1/8 of float32 (rows padded to whole words), plus the small f32 parameter tables: measured 0.125.
    expect(w4 / floatBytes, `resident ${w4} B vs float32 ${floatBytes} B`).toBeLessThanOrEqual(0.15);
    expect(w8 / floatBytes, `int8 twin ${w8} B vs float32 ${floatBytes} B`).toBeGreaterThanOrEqual(0.25);
    expect(w4 / w8).toBeLessThanOrEqual(0.56);
  }, 120_000);
});
