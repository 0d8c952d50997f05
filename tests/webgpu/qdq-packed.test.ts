import { existsSync, readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { importOnnx } from '../../importers/onnx/import.js';
import { GpuGraphPlan, type GpuResources } from '../../runtime/backends/webgpu/executor.js';
import { setQuantDotPath, type QuantDotPath } from '../../runtime/backends/webgpu/kernels/quant-dot.js';
import { setDepthwiseRowWindow } from '../../runtime/backends/webgpu/kernels/qdq-depthwise.js';
import { packQdqLayouts, setQdqPacking } from '../../runtime/backends/webgpu/qdq-layout.js';
import { attrString, type Graph } from '../../runtime/ir/graph.js';
import { optimize, specialize } from '../../runtime/ir/passes/index.js';
import { hostTensor, tensorFromNumbers, tensorToNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession, quantize, Tensor } from '../../sdk/node.js';
import { tensorProto } from '../helpers/ort-single-node.js';
import { Rng } from '../helpers/random.js';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';
import { steps } from '../helpers/compare.js';
import { int, ints, model, vi } from '../importer/model-builder.js';
import { chain, INVERTED_RESIDUAL, type Layer } from '../helpers/qdq-chain.js';

/**
 * The packed int8 activation layout "c4" between the fused int8 kernels (runtime/backends/webgpu/qdq-layout.ts,
 * kernels/qdq-gemm.ts, kernels/qdq-add.ts; docs/quantization.md). QDQ chains of convs (depthwise, 1x1, general,
 * grouped; strides, pads, dilations; C not a multiple of 4; int8 and uint8 activations; Relu/Clip; nonzero weight zero
 * points; residual adds) are planned with the layout pass (setQdqPacking(true), the default) and without it: the
 * outputs must be equal bit for bit, on the kernels of a CPU adapter (SwiftShader: direct) and of a GPU adapter
 * (cpuAdapter: false: workgroup-tiled), on both dot-product paths, and the packed plan must really hold its
 * intermediate activations as uint32 c4 values. The CPU backend (the model as written, in float) is the reference
 * within one quantization step for nearly every element (an intermediate layer's one-step difference, a rounding
 * tie, can move the next layer's output by a step or two). mobilenet_v2-int8 runs end to end packed, equal to the
 * unpacked plan.
 */

let res: GpuResources;
const PATHS: QuantDotPath[] = ['packed', 'unpacked'];

beforeAll(async () => {
  res = await gpuForTests();
  console.log(`QDQ packed-layout WebGPU suite on ${describeDevice(res)}`);
});
afterEach(() => {
  setQuantDotPath(undefined);
  setQdqPacking(true);
});

async function planOf(bytes: Uint8Array, shape: number[], cpuAdapter: boolean): Promise<GpuGraphPlan> {
  const { graph } = await importOnnx(bytes);
  return GpuGraphPlan.create(res, specialize(optimize(graph).graph, { [graph.inputs[0]!.name]: shape }), { cpuAdapter });
}

/** The values of the planned graph held c4, and the nodes that read or write one. */
function packedValues(g: Graph): { values: string[]; nodes: string[] } {
  const values = Object.values(g.values).filter((v) => v.dtype === 'uint32' && g.nodes.some((n) => n.outputs[0] === v.name && attrString(n, 'y_layout') === 'c4'));
  const nodes = g.nodes.filter((n) => Object.keys(n.attrs).some((a) => a.endsWith('_layout'))).map((n) => n.op);
  return { values: values.map((v) => v.name), nodes };
}

/** Runs `bytes` planned with and without the layout pass; returns both outputs and the packed plan's c4 values. */
async function bothPlans(bytes: Uint8Array, x: HostTensor, cpuAdapter: boolean): Promise<{ packed: HostTensor; unpacked: HostTensor; c4: { values: string[]; nodes: string[] }; kernels: string }> {
  const out: HostTensor[] = [];
  let c4 = { values: [] as string[], nodes: [] as string[] };
  let kernels = '';
  for (const on of [true, false]) {
    setQdqPacking(on);
    const plan = await planOf(bytes, x.shape as number[], cpuAdapter);
    try {
      if (on) {
        c4 = packedValues(plan.graph);
        kernels = plan.report().nodes.flatMap((n) => n.kernels ?? []).join(' ');
      }
      const name = plan.graph.inputs[0]!.name;
      const y = Object.values(await plan.run({ [name]: x }))[0]!;
      out.push(y);
    } finally {
      plan.dispose();
    }
  }
  return { packed: out[0]!, unpacked: out[1]!, c4, kernels };
}

const sessions: InferenceSession[] = [];
afterAll(async () => {
  for (const s of sessions) await s.release();
});

async function cpuReference(bytes: Uint8Array, x: HostTensor): Promise<HostTensor> {
  const session = await InferenceSession.create(bytes, { backend: 'cpu' });
  sessions.push(session);
  const out = await session.run<Record<string, Tensor>>({ x: new Tensor(x.dtype, x.data, x.shape) });
  return out.y!.toHost();
}

const CHAINS: [string, number[], Layer[], 'int8' | 'uint8', boolean, number][] = [
  // [title, x shape, layers, activation type, nonzero weight zero points, values expected c4 (q_in, the input's
  // QuantizeLinear, writes c4 too: kernels/quantize.ts quantizeC4Program)]
  ['conv 3x3 -> depthwise 3x3 -> 1x1 (mobilenet block), C = 6, Relu and Clip, uint8', [1, 3, 11, 9], [
    { kind: 'conv', out: 6, k: 3, stride: 2, pad: 1, act: 'clip' },
    { kind: 'conv', out: 6, k: 3, pad: 1, group: 6, act: 'relu' },
    { kind: 'conv', out: 10, k: 1 },
    { kind: 'conv', out: 7, k: 1, act: 'relu' },
  ], 'uint8', false, 4],
  ['depthwise stride 2 and dilation 2, C = 13, int8, nonzero weight zero points', [2, 5, 10, 12], [
    { kind: 'conv', out: 13, k: 1, act: 'relu' },
    { kind: 'conv', out: 13, k: 3, stride: 2, pad: 1, group: 13 },
    { kind: 'conv', out: 13, k: 3, pad: 2, dil: 2, group: 13, act: 'clip' },
    { kind: 'conv', out: 9, k: 3, stride: 2, pad: 1, dil: 2 },
    { kind: 'conv', out: 5, k: 1 },
  ], 'int8', true, 5],
  ['grouped convs (4 | channels per group) and a grouped one that is not, 130 channels (16-channel blocks), uint8', [1, 8, 6, 7], [
    { kind: 'conv', out: 16, k: 3, pad: 1, group: 2, act: 'relu' },
    { kind: 'conv', out: 130, k: 1 },
    { kind: 'conv', out: 130, k: 3, pad: 1, group: 130 },
    { kind: 'conv', out: 20, k: 1, act: 'relu' },
    { kind: 'conv', out: 10, k: 3, pad: 1, group: 5 },
    { kind: 'conv', out: 8, k: 1 },
  ], 'uint8', true, 5],
  ['inverted residual: 1x1 -> depthwise -> 1x1 + Add (QdqAdd), C = 7, int8', [1, 7, 9, 9], INVERTED_RESIDUAL, 'int8', false, 6],
  // 16 x 8 blocks of the direct conv (3x3, 20 channels: a partial channel block; 99 pixels: a partial pixel block) and
  // 8 x 8 ones of a 1x1 conv of 12 channels.
  ['3x3 conv of 20 channels (16 x 8 blocks), then 1x1 of 12, uint8', [2, 5, 9, 11], [
    { kind: 'conv', out: 20, k: 3, pad: 1, act: 'relu' },
    { kind: 'conv', out: 12, k: 1, act: 'clip' },
    { kind: 'conv', out: 6, k: 1 },
  ], 'uint8', false, 3],
];

describe('QDQ conv chains: the c4 plan equals the unpacked plan bit for bit', () => {
  for (const [title, shape, layers, act, zw, expectC4] of CHAINS) {
    it(title, async () => {
      const { bytes, x, step } = chain(shape, layers, act, zw);
      const cpu = await cpuReference(bytes, x);
      for (const cpuAdapter of [true, false]) {
        for (const path of PATHS) {
          setQuantDotPath(path);
          const r = await bothPlans(bytes, x, cpuAdapter);
          const what = `${title} (${cpuAdapter ? 'CPU' : 'GPU'}-adapter kernels, ${path})`;
          expect(r.c4.values.length, `${what}: c4 values ${r.c4.values.join(', ')}`).toBe(expectC4);
          if (!cpuAdapter) expect(r.kernels, what).toContain('qdq-gemm-tiled');
          if (cpuAdapter && title.includes('16 x 8')) expect(r.kernels, what).toMatch(/cb16:pb8:.*cb8:pb8:.*1x1/);
          expect(r.kernels, what).toContain('xc4');
          expect(r.packed.dtype).toBe('float32');
          expect(Array.from(tensorToNumbers(r.packed)), what).toEqual(Array.from(tensorToNumbers(r.unpacked)));
          const d = steps(r.packed, cpu, step);
          expect(d.max, `${what} vs CPU: max steps`).toBeLessThanOrEqual(3);
          expect(d.within1, `${what} vs CPU: share within one step`).toBeGreaterThanOrEqual(0.97);
        }
      }
    });
  }
});

describe('QuantizeLinear writing c4 (quantizeC4Program)', () => {
  // Float inputs at the edges of quantization: NaN (-> the zero point), +-Inf and values far past the range
  // (saturation), exact ties of x / scale (half to even), and ordinary values; 3 and 5 channels (a partly filled word,
  // its pad lanes the zero point), batch 2.
  const specials = [NaN, Infinity, -Infinity, 1e30, -1e30, 0.01, -0.01, 0.03, -0.05, 0.07, 2.55, -2.57, 0];
  for (const [C, act] of [[3, 'uint8'], [5, 'int8']] as const) {
    it(`${C} channels, ${act}: bit-identical to one code per word, on both adapter families`, async () => {
      const shape = [2, C, 5, 6];
      const { bytes } = chain(shape, [{ kind: 'conv', out: 8, k: 3, pad: 1 }, { kind: 'conv', out: 4, k: 1 }], act, false);
      const n = shape.reduce((a, b) => a * b, 1);
      const x = tensorFromNumbers('float32', shape, Array.from({ length: n }, (_, i) => (i % 3 === 0 ? specials[(i / 3) % specials.length]! : Math.sin(i) * 3)));
      for (const cpuAdapter of [true, false]) {
        const r = await bothPlans(bytes, x, cpuAdapter);
        expect(r.c4.values).toContain('q_in');
        expect(r.kernels).toContain('quantize-linear-c4');
        expect(Array.from(tensorToNumbers(r.packed))).toEqual(Array.from(tensorToNumbers(r.unpacked)));
      }
    }, 120_000);
  }
});

describe('the depthwise kernel forms: row windows, index arithmetic with column dilation, the tap table', () => {
  const cases: [string, number[], number[], number[], number[], string][] = [
    // [title, x shape, strides, pads (begin and end), dilations, the kernel's form]
    ['1-D, stride 2, pads 1 / 2', [2, 6, 11], [2], [1, 2], [1], 'row8:k3:s2'],
    ['2-D, stride 1, pads 1, 7 columns (a partial row block)', [1, 9, 5, 7], [1, 1], [1, 1, 1, 1], [1, 1], 'row8:k3:s1'],
    ['2-D, stride 1, pads 1 / 0, 19 columns (three row blocks)', [1, 4, 6, 19], [1, 1], [1, 1, 0, 0], [1, 1], 'row8:k3:s1'],
    ['2-D, stride 2, pads 0 / 1, row dilation 2', [2, 5, 9, 10], [2, 2], [0, 0, 1, 1], [2, 1], 'row8:k3:s2'],
    ['2-D, column dilation 2', [1, 6, 6, 9], [1, 1], [1, 2, 1, 2], [1, 2], 'pb4:2d'],
    ['3-D, stride 1, pads 1', [1, 5, 4, 5, 6], [1, 1, 1], [1, 1, 1, 1, 1, 1], [1, 1, 1], 'pb4:taps'],
  ];
  afterEach(() => setDepthwiseRowWindow(true));
  for (const [title, shape, strides, pads, dilations, form] of cases) {
    it(title, async () => {
      const rng = new Rng(shape.length);
      const C = shape[1]!;
      const kernel = strides.map(() => 3);
      const T = 3 ** strides.length;
      const f = (name: string, v: number[], dims: number[] = []) => tensorProto(name, tensorFromNumbers('float32', dims, v));
      const bytes = model({
        opset: 13,
        nodes: [
          { op: 'QuantizeLinear', inputs: ['x', 'xs', 'xz'], outputs: ['xq'], name: 'q_x' },
          { op: 'DequantizeLinear', inputs: ['xq', 'xs', 'xz'], outputs: ['xf'], name: 'dq_x' },
          { op: 'DequantizeLinear', inputs: ['w', 'ws', 'wz'], outputs: ['wf'], name: 'dq_w', attrs: [int('axis', 0)] },
          { op: 'Conv', inputs: ['xf', 'wf'], outputs: ['c'], name: 'conv', attrs: [ints('kernel_shape', kernel), ints('strides', strides), ints('pads', pads), ints('dilations', dilations), int('group', C)] },
          { op: 'QuantizeLinear', inputs: ['c', 'ys', 'yz'], outputs: ['yq'], name: 'q_y' },
          { op: 'DequantizeLinear', inputs: ['yq', 'ys', 'yz'], outputs: ['y'], name: 'dq_y' },
        ],
        inputs: [vi('x', 1, shape)],
        outputs: [vi('y', 1)],
        initializers: [
          f('xs', [0.02]), tensorProto('xz', tensorFromNumbers('uint8', [], [121])), f('ys', [0.03]), tensorProto('yz', tensorFromNumbers('uint8', [], [130])),
          tensorProto('w', tensorFromNumbers('int8', [C, 1, ...kernel], Array.from({ length: C * T }, () => rng.int(-127, 127)))),
          f('ws', Array.from({ length: C }, () => rng.uniform(0.5, 1.5) / (T * 40)), [C]),
          tensorProto('wz', tensorFromNumbers('int8', [C], Array.from({ length: C }, () => rng.int(-9, 9)))),
        ],
      });
      const x = tensorFromNumbers('float32', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(-1, 1)));
      const cpu = await cpuReference(bytes, x);
      for (const cpuAdapter of [true, false]) {
        const r = await bothPlans(bytes, x, cpuAdapter);
        expect(r.kernels).toContain(`qdq-conv-depthwise:uint8:uint8:${form}`);
        expect(Array.from(tensorToNumbers(r.packed))).toEqual(Array.from(tensorToNumbers(r.unpacked)));
        expect(steps(r.packed, cpu, 0.03).max, title).toBeLessThanOrEqual(1);
        if (form.startsWith('row')) {
          // The row-window kernel's sums are exact, as the per-pixel kernel's: the same codes, bit for bit.
          setDepthwiseRowWindow(false);
          const p = await bothPlans(bytes, x, cpuAdapter);
          setDepthwiseRowWindow(true);
          expect(p.kernels).toContain('qdq-conv-depthwise:uint8:uint8:pb4:2d');
          expect(Array.from(tensorToNumbers(p.packed))).toEqual(Array.from(tensorToNumbers(r.packed)));
          expect(Array.from(tensorToNumbers(p.unpacked))).toEqual(Array.from(tensorToNumbers(r.unpacked)));
        }
      }
    });
  }
});

describe('the layout pass marks only what the producer and every reader handle', () => {
  it('a grouped conv with 3 channels per group and a value a DequantizeLinear reads stay one code per word', async () => {
    const shape = [1, 4, 6, 6];
    const { bytes } = chain(shape, [
      { kind: 'conv', out: 6, k: 1 },
      { kind: 'conv', out: 6, k: 3, pad: 1, group: 2 },
      { kind: 'conv', out: 8, k: 1 },
      { kind: 'conv', out: 4, k: 1 },
    ], 'uint8', false);
    setQdqPacking(false);
    const plan = await planOf(bytes, shape, true);
    const fused = plan.graph;
    plan.dispose();
    expect(fused.nodes.map((n) => n.op)).toEqual(['QuantizeLinear', 'QdqConv', 'QdqConv', 'QdqConv', 'QdqConv', 'DequantizeLinear']);
    setQdqPacking(true);
    const packed = packQdqLayouts(fused);
    const layout = (i: number, side: 'x' | 'y') => attrString(packed.nodes.find((n) => n.name === `l${i}_conv_qdq`)!, `${side}_layout`);
    // l1 has 3 input and 3 output channels per group: a word would straddle two groups.
    expect([layout(0, 'y'), layout(1, 'x'), layout(1, 'y'), layout(2, 'x')]).toEqual([undefined, undefined, undefined, undefined]);
    expect([layout(2, 'y'), layout(3, 'x')]).toEqual(['c4', 'c4']);
    expect(packed.values.l2_q).toMatchObject({ dtype: 'uint32', shape: [1, 2, 6, 6] });
    // l3's output is read by the model's last DequantizeLinear.
    expect(layout(3, 'y')).toBeUndefined();
    expect(packed.values.l3_q!.dtype).toBe('uint8');
    // A reader that reaches no output (fuseForGpu drops it afterwards) does not count; a live one does.
    const dq = (name: string, out: string) => ({ name, op: 'DequantizeLinear', domain: '', inputs: ['l2_q', 'l2_s', 'l2_z'], outputs: [out], attrs: {} });
    const withDead = packQdqLayouts({ ...fused, nodes: [...fused.nodes, dq('dead_dq', 'dead')] });
    expect(withDead.values.l2_q!.dtype).toBe('uint32');
    const withLive = packQdqLayouts({ ...fused, nodes: [...fused.nodes, dq('live_dq', 'y2')], outputs: [...fused.outputs, { name: 'y2', dtype: 'float32' }] });
    expect(withLive.values.l2_q!.dtype).toBe('uint8');
  });
});

/**
 * The static int8 file of a generated torchvision model (scripts/setup-test-env.mjs writes the float32 ones):
 * bench/quantize.mjs's, when a benchmark has written it, else quantized here by EdgeKit's quantizer on two seeded
 * smooth images (calibration on the CPU backend, no report). The test compares two plans of the same file, so the
 * calibration only has to be deterministic.
 */
async function int8Model(name: string): Promise<Uint8Array> {
  const made = `tests/fixtures/generated/${name}-int8.onnx`;
  if (existsSync(made)) return readFileSync(made);
  const calibration = [1, 2].map((k) => ({
    input: new Tensor('float32', new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i * 0.003 * k) * 1.5), [1, 3, 224, 224]),
  }));
  const { model: bytes } = await quantize(readFileSync(`tests/fixtures/generated/${name}.onnx`), { mode: 'int8', calibration, backend: 'cpu', reportSamples: 0 });
  return bytes;
}

describe('quantized models end to end', () => {
  // [model, c4 values planned at the time of writing]: mobilenet_v2 packs every conv-to-conv and conv-to-add
  // activation; resnet18 fewer (most of its residual sums are also read by a DequantizeLinear).
  const MODELS: [string, number][] = [['mobilenet_v2', 62], ['resnet18', 23]];
  for (const [name, fewest] of MODELS) {
    it(`${name}-int8: the c4 plan equals the unpacked plan (CPU-adapter kernels)`, async () => {
      const bytes = await int8Model(name);
      const shape = [1, 3, 224, 224];
      const x = hostTensor('float32', shape, new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i * 0.01)));
      const r = await bothPlans(bytes, x, true);
      console.log(`${name}-int8: ${r.c4.values.length} c4 values; nodes with layouts: ${r.c4.nodes.length}`);
      expect(r.c4.values.length).toBeGreaterThanOrEqual(fewest);
      expect(Array.from(tensorToNumbers(r.packed))).toEqual(Array.from(tensorToNumbers(r.unpacked)));
    }, 600_000);
  }
});
