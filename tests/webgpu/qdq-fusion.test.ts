import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { planQuantDotPath, setQuantDotPath, type QuantDotPath } from '../../runtime/backends/webgpu/kernels/quant-dot.js';
import { tensorToNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import { qdqModel, type LayerSpec, type QdqModel } from '../helpers/qdq-models.js';
import { attr } from '../helpers/ir-builder.js';
import { singleNodeModel, tensorProto } from '../helpers/ort-single-node.js';
import { int, ints, model, vi, type NodeSpec } from '../importer/model-builder.js';
import { Rng } from '../helpers/random.js';
import { tensorFromNumbers } from '../../runtime/ir/tensor.js';
import { allClose, steps } from '../helpers/compare.js';
import { runModelOrt } from '../helpers/run-model.js';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';
import { GpuGraphPlan } from '../../runtime/backends/webgpu/executor.js';
import { importOnnx } from '../../importers/onnx/import.js';
import { optimize, specialize } from '../../runtime/ir/passes/index.js';

/**
 * The QDQ rewrite on WebGPU (issue #11 §1; runtime/backends/webgpu/fuse-qdq.ts): statically quantized models
 * (tests/helpers/qdq-models.ts) load through InferenceSession.create(bytes, { backend: 'webgpu' }); every
 * DequantizeLinear -> Conv/MatMul/Gemm (+ bias) (-> Relu/Clip) -> QuantizeLinear group must run as one int8 kernel
 * (the planned nodes are QdqConv/QdqMatMul marked fusion 'qdq', no float Conv/MatMul/Gemm is left), with both the
 * dot4I8Packed path and the unpack path, and agree with the CPU backend (which runs the model as written, in float)
 * and with onnxruntime-node within one quantization step. The weights are resident as int8 packed four per u32.
 */

const sessions: InferenceSession[] = [];
const PATHS: QuantDotPath[] = ['packed', 'unpacked'];

beforeAll(async () => {
  console.log(`QDQ fusion WebGPU suite on ${describeDevice(await gpuForTests())}`);
});
afterEach(() => setQuantDotPath(undefined));
afterAll(async () => {
  for (const s of sessions) await s.release();
});

async function run(m: QdqModel, backend: 'cpu' | 'webgpu'): Promise<{ y: HostTensor; session: InferenceSession }> {
  const session = await InferenceSession.create(m.bytes, { backend });
  sessions.push(session);
  const feeds: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(m.feeds)) feeds[k] = new Tensor(t.dtype, t.data, t.shape);
  const out = await session.run<Record<string, Tensor>>(feeds);
  return { y: out.y!.toHost(), session };
}

const base: Omit<LayerSpec, 'kind' | 'out'> = { wType: 'int8', perChannel: true, bias: 'int32', act: 'none', yScale: 0.05 };

/** One-group models: the fused output may differ from the float path by one step (a rounding tie or near-tie). */
const SINGLE: [string, number[], LayerSpec[], 'uint8' | 'int8'][] = [
  ['Conv 3x3 pad 1, per-channel int8 w, int32 bias, Relu, uint8 activations', [2, 5, 9, 7], [{ ...base, kind: 'conv', out: 6, kernel: 3, pad: 1, act: 'relu' }], 'uint8'],
  ['Conv 3x3 stride 2, per-tensor uint8 w, float bias, Clip(0, 1.5), int8 activations', [1, 4, 10, 10], [{ ...base, kind: 'conv', out: 5, kernel: 3, stride: 2, wType: 'uint8', perChannel: false, bias: 'float', act: 'clip' }], 'int8'],
  ['Conv 1x1 over 8 channels (the pointwise kernel), 13 outputs, Relu', [2, 8, 5, 3], [{ ...base, kind: 'conv', out: 13, kernel: 1, act: 'relu' }], 'uint8'],
  ['grouped Conv 1x1 (group 2), no bias', [1, 6, 5, 5], [{ ...base, kind: 'conv', out: 4, kernel: 1, group: 2, bias: 'none' }], 'uint8'],
  ['MatMul [2, 3, 37] x [37, 11] + Add(int32 bias)', [2, 3, 37], [{ ...base, kind: 'matmul', out: 11 }], 'uint8'],
  ['MatMul without bias, Relu, int8 activations', [4, 20], [{ ...base, kind: 'matmul', out: 9, bias: 'none', act: 'relu' }], 'int8'],
  ['Gemm transB, float bias, Clip', [3, 24], [{ ...base, kind: 'gemm', out: 10, transB: true, bias: 'float', act: 'clip' }], 'uint8'],
  ['Gemm, per-tensor uint8 w, int32 bias', [5, 16], [{ ...base, kind: 'gemm', out: 7, wType: 'uint8', perChannel: false }], 'int8'],
  // No QuantizeLinear after the product (a classifier's logits): fused with a float32 output.
  ['Gemm with float logits out', [4, 30], [{ ...base, kind: 'gemm', out: 10, transB: true, floatOut: true }], 'uint8'],
  ['Conv with Relu and a float output', [1, 3, 6, 6], [{ ...base, kind: 'conv', out: 4, kernel: 3, act: 'relu', floatOut: true }], 'int8'],
];

describe('QDQ groups run as int8 kernels on WebGPU', () => {
  for (const [title, shape, layers, act] of SINGLE) {
    it(title, async () => {
      const m = qdqModel(shape, layers, act);
      const cpu = (await run(m, 'cpu')).y;
      const ort = (await runModelOrt(m.bytes, m.feeds)).y!;
      for (const path of PATHS) {
        setQuantDotPath(path);
        const { y, session } = await run(m, 'webgpu');
        const r = session.report();
        const fused = r.nodes.filter((n) => n.op === 'QdqConv' || n.op === 'QdqMatMul');
        expect(fused.length, `${title}: fused nodes`).toBe(1);
        expect(r.nodes.some((n) => ['Conv', 'MatMul', 'Gemm', 'DequantizeLinear'].includes(n.op) && n.name.startsWith('l0')), 'no float product is left').toBe(false);
        expect(fused[0]!.kernels!.join(' '), 'the kernel takes the pinned dot-product path').toContain(`:${path}`);
        for (const [ref, what] of [[cpu, 'CPU'], [ort, 'onnxruntime']] as const) {
          if (layers[0]!.floatOut) {
            // Float output: the exact integer sum against the float path's rounded one.
            const r = allClose(y, ref, { rtol: 1e-4, atol: 1e-5 });
            if (!r.ok) expect.fail(`${title} (${path}) vs ${what}: ${r.message}`);
            continue;
          }
          const d = steps(y, ref, m.step);
          expect(d.max, `${title} (${path}) vs ${what}: max difference in steps`).toBeLessThanOrEqual(1);
        }
      }
    });
  }
});

describe('a depthwise QDQ conv (group = channels) on WebGPU', () => {
  // Its own kernel (integer products summed directly, several pixels per invocation), the same on both dot paths.
  const cases: [string, number[], LayerSpec[]][] = [
    ['3x3 pad 1, Relu', [1, 8, 7, 9], [{ ...base, kind: 'conv', out: 8, kernel: 3, pad: 1, group: 8, act: 'relu' }]],
    ['3x3 stride 2, per-tensor uint8 w, float bias', [2, 6, 9, 9], [{ ...base, kind: 'conv', out: 6, kernel: 3, stride: 2, pad: 1, group: 6, wType: 'uint8', perChannel: false, bias: 'float' }]],
  ];
  for (const [title, shape, layers] of cases) {
    it(title, async () => {
      const m = qdqModel(shape, layers, 'uint8');
      const cpu = (await run(m, 'cpu')).y;
      const ort = (await runModelOrt(m.bytes, m.feeds)).y!;
      for (const path of PATHS) {
        setQuantDotPath(path);
        const { y, session } = await run(m, 'webgpu');
        const fused = session.report().nodes.filter((n) => n.op === 'QdqConv');
        expect(fused.length).toBe(1);
        expect(fused[0]!.kernels!.join(' ')).toContain('qdq-conv-depthwise');
        for (const ref of [cpu, ort]) expect(steps(y, ref, m.step).max, `${title} (${path})`).toBeLessThanOrEqual(1);
      }
    });
  }
});

describe('a QDQ CNN (conv, conv, gemm) on WebGPU', () => {
  const layers: LayerSpec[] = [
    { ...base, kind: 'conv', out: 16, kernel: 3, pad: 1, act: 'relu', yScale: 0.04 },
    { ...base, kind: 'conv', out: 32, kernel: 3, stride: 2, pad: 1, act: 'clip', bias: 'float', yScale: 0.03 },
    { ...base, kind: 'gemm', out: 10, transB: true, yScale: 0.1, floatOut: true },
  ];
  it('every group fused, outputs within one step of the CPU for nearly all elements, weights resident as int8', async () => {
    const m = qdqModel([2, 3, 12, 12], layers, 'uint8');
    const cpu = (await run(m, 'cpu')).y;
    for (const path of PATHS) {
      setQuantDotPath(path);
      const { y, session } = await run(m, 'webgpu');
      const r = session.report();
      const fused = r.nodes.filter((n) => n.op === 'QdqConv' || n.op === 'QdqMatMul').map((n) => n.name);
      expect(fused).toEqual(['l0_conv_qdq', 'l1_conv_qdq', 'l2_gemm_qdq']);
      // An off-by-one in an early layer moves the logits by up to a step of it times the weights; most agree closely.
      const d = steps(y, cpu, 0.1);
      expect(d.max, `${path}: max steps`).toBeLessThanOrEqual(3);
      expect(d.within1, `${path}: fraction within one step`).toBeGreaterThanOrEqual(0.95);
      // Resident weights: the int8 codes four per u32 (1/4 of float32) and nothing else of the weights.
      expect(r.weightBytes, `resident ${r.weightBytes} B vs float32 ${m.floatWeightBytes} B`).toBeLessThanOrEqual(m.floatWeightBytes * 0.26);
    }
  });
});

describe("a model's own QLinearConv / QLinearMatMul with constant weights run on the packed int8 kernels", () => {
  const rng = new Rng(99);
  const q = (dtype: 'int8' | 'uint8', shape: number[]) =>
    tensorFromNumbers(dtype, shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (dtype === 'int8' ? rng.int(-128, 127) : rng.int(0, 255))));
  const f = (shape: number[], lo: number, hi: number) => tensorFromNumbers('float32', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(lo, hi)));
  const s = (v: number) => tensorFromNumbers('float32', [], [v]);
  const z = (dtype: 'int8' | 'uint8', v: number) => tensorFromNumbers(dtype, [], [v]);
  const cases: [string, string, Record<string, ReturnType<typeof attr>>, (HostTensor | undefined)[]][] = [
    ['QLinearConv uint8 x int8 w per channel, bias, pads', 'QLinearConv', { pads: attr([1, 1, 1, 1]) }, [
      q('uint8', [1, 3, 6, 6]), s(0.02), z('uint8', 128), q('int8', [4, 3, 3, 3]), f([4], 0.001, 0.004), tensorFromNumbers('int8', [4], [0, 0, 0, 0]),
      s(0.1), z('uint8', 120), tensorFromNumbers('int32', [4], [500, -300, 0, 1200]),
    ]],
    ['QLinearMatMul uint8 x int8', 'QLinearMatMul', {}, [q('uint8', [5, 33]), s(0.03), z('uint8', 125), q('int8', [33, 7]), s(0.002), z('int8', 2), s(0.08), z('uint8', 130)]],
  ];
  for (const [title, op, attrs, inputs] of cases) {
    it(title, async () => {
      const constants = inputs.map((_, i) => i).filter((i) => i > 0);
      const m: QdqModel = { bytes: singleNodeModel(op, attrs, inputs, { constants }), feeds: { in0: inputs[0]! }, floatWeightBytes: 0, step: 1 };
      const read = async (backend: 'cpu' | 'webgpu') => {
        const session = await InferenceSession.create(m.bytes, { backend });
        sessions.push(session);
        const out = await session.run<Record<string, Tensor>>({ in0: new Tensor(inputs[0]!.dtype, inputs[0]!.data, inputs[0]!.shape) });
        return { y: out.out0!.toHost(), session };
      };
      const cpu = (await read('cpu')).y;
      const ort = (await runModelOrt(m.bytes, m.feeds)).out0!;
      for (const path of PATHS) {
        setQuantDotPath(path);
        const { y, session } = await read('webgpu');
        expect(session.report().nodes.map((n) => n.op)).toEqual([op === 'QLinearConv' ? 'QdqConv' : 'QdqMatMul']);
        expect(steps(y, cpu, 1).max, `${title} (${path}) vs CPU`).toBeLessThanOrEqual(1);
        expect(steps(y, ort, 1).max, `${title} (${path}) vs onnxruntime`).toBeLessThanOrEqual(1);
      }
    });
  }
});

/**
 * The integer accumulator at the kernels' block edges, checked exactly. DequantizeLinear(x_q) and
 * DequantizeLinear(w_q) -> Conv | MatMul with no QuantizeLinear after it is fused with a float32 output,
 * y = acc * x_scale * w_scale[c]. With power-of-two scales and no bias that product is exact, so y must equal
 * sum (x - zx)(w - zw) * x_scale * w_scale[c] computed here in integers, bit for bit; any lane, channel or pixel a
 * block drops, repeats or reads out of place changes it. The shapes cut the blocks unevenly: input channels not a
 * multiple of 4 (K words with padding lanes), output channels not a multiple of the 8- or 16-channel block,
 * pixel counts not a multiple of 4, groups, two images; weight zero points 0 (the kernels skip the sum of x) and
 * not 0.
 */
describe('the int8 accumulator is exact at block edges', () => {
  interface Case {
    x: number[];
    /** Conv: [M, Cin / group, k, k] with kernel/stride/pad/group; matmul: w [K, N]. */
    conv?: { M: number; k: number; stride: number; pad: number; group: number };
    N?: number;
    wType: 'int8' | 'uint8';
    zwNonZero: boolean;
  }
  const cases: [string, Case][] = [
    ['1x1 conv, 12 -> 130 channels (16-channel blocks, a partial last block and tile), 15 pixels, 2 images, nonzero w zero points', { x: [2, 12, 5, 3], conv: { M: 130, k: 1, stride: 1, pad: 0, group: 1 }, wType: 'int8', zwNonZero: true }],
    ['1x1 conv, 16 -> 140 channels, uint8 w, zero points 128 (no sum of x)', { x: [1, 16, 3, 7], conv: { M: 140, k: 1, stride: 1, pad: 0, group: 1 }, wType: 'uint8', zwNonZero: false }],
    ['1x1 conv, 8 -> 21 channels (8-channel blocks), 9 pixels', { x: [1, 8, 3, 3], conv: { M: 21, k: 1, stride: 1, pad: 0, group: 1 }, wType: 'int8', zwNonZero: false }],
    ['3x3 conv pad 1 stride 2, 5 -> 130 channels (16-channel blocks, padding lanes and taps)', { x: [2, 5, 7, 6], conv: { M: 130, k: 3, stride: 2, pad: 1, group: 1 }, wType: 'int8', zwNonZero: true }],
    ['3x3 conv, 6 -> 19 channels, nonzero w zero points', { x: [1, 6, 6, 5], conv: { M: 19, k: 3, stride: 1, pad: 1, group: 1 }, wType: 'uint8', zwNonZero: true }],
    ['grouped 3x3 conv, 3 groups of 4 -> 8 channels', { x: [1, 12, 5, 5], conv: { M: 24, k: 3, stride: 1, pad: 1, group: 3 }, wType: 'int8', zwNonZero: true }],
    ['grouped 1x1 conv, 2 groups of 8 -> 6 channels', { x: [2, 16, 3, 5], conv: { M: 12, k: 1, stride: 1, pad: 0, group: 2 }, wType: 'int8', zwNonZero: false }],
    ['depthwise 3x3 stride 2, 7 channels', { x: [1, 7, 7, 5], conv: { M: 7, k: 3, stride: 2, pad: 1, group: 7 }, wType: 'int8', zwNonZero: true }],
    ['MatMul [3, 37] x [37, 11], nonzero w zero points', { x: [3, 37], N: 11, wType: 'int8', zwNonZero: true }],
    ['MatMul [70, 50] x [50, 9] (past one 64-row tile), zero points 0', { x: [70, 50], N: 9, wType: 'int8', zwNonZero: false }],
  ];
  for (const [title, c] of cases) {
    it(title, async () => {
      const rng = new Rng(title.length * 31 + 5);
      const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
      const cv = c.conv;
      const Cin = c.x[1]!;
      const wShape = cv ? [cv.M, Cin / cv.group, cv.k, cv.k] : [c.x[1]!, c.N!];
      const M = cv ? cv.M : c.N!;
      const [wlo, whi] = c.wType === 'int8' ? [-128, 127] : [0, 255];
      const w = Array.from({ length: size(wShape) }, () => rng.int(wlo, whi));
      const x = Array.from({ length: size(c.x) }, () => rng.int(0, 255));
      const zx = 131;
      const zwBase = c.wType === 'int8' ? 0 : 128;
      const zw = Array.from({ length: M }, () => zwBase + (c.zwNonZero ? rng.int(-20, 20) : 0));
      const sx = 2 ** -5;
      const sw = Array.from({ length: M }, (_, m) => 2 ** -(3 + (m % 3)));
      const axis = cv ? 0 : 1;
      const inits = [
        tensorProto('xs', tensorFromNumbers('float32', [], [sx])), tensorProto('xz', tensorFromNumbers('uint8', [], [zx])),
        tensorProto('w', tensorFromNumbers(c.wType, wShape, w)), tensorProto('ws', tensorFromNumbers('float32', [M], sw)),
        tensorProto('wz', tensorFromNumbers(c.wType, [M], zw)),
      ];
      const product: NodeSpec = cv
        ? { op: 'Conv', inputs: ['xf', 'wf'], outputs: ['y'], name: 'conv', attrs: [ints('kernel_shape', [cv.k, cv.k]), ints('strides', [cv.stride, cv.stride]), ints('pads', [cv.pad, cv.pad, cv.pad, cv.pad]), int('group', cv.group)] }
        : { op: 'MatMul', inputs: ['xf', 'wf'], outputs: ['y'], name: 'matmul' };
      const bytes = model({
        opset: 13,
        nodes: [
          { op: 'DequantizeLinear', inputs: ['x', 'xs', 'xz'], outputs: ['xf'], name: 'dq_x' },
          { op: 'DequantizeLinear', inputs: ['w', 'ws', 'wz'], outputs: ['wf'], name: 'dq_w', attrs: [int('axis', axis)] },
          product,
        ],
        inputs: [vi('x', 2, c.x)],
        outputs: [vi('y', 1)],
        initializers: inits,
      });
      // The exact reference: integer sums, then the two power-of-two scales.
      const expected: number[] = [];
      if (cv) {
        const [N, , H, W] = c.x as [number, number, number, number];
        const Cg = Cin / cv.group;
        const Mg = cv.M / cv.group;
        const OH = Math.floor((H + 2 * cv.pad - cv.k) / cv.stride) + 1;
        const OW = Math.floor((W + 2 * cv.pad - cv.k) / cv.stride) + 1;
        for (let n = 0; n < N; n++) for (let m = 0; m < cv.M; m++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) {
          let acc = 0;
          const g = Math.floor(m / Mg);
          for (let ci = 0; ci < Cg; ci++) for (let kh = 0; kh < cv.k; kh++) for (let kw = 0; kw < cv.k; kw++) {
            const ih = oh * cv.stride - cv.pad + kh;
            const iw = ow * cv.stride - cv.pad + kw;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
            acc += (x[((n * Cin + g * Cg + ci) * H + ih) * W + iw]! - zx) * (w[((m * Cg + ci) * cv.k + kh) * cv.k + kw]! - zw[m]!);
          }
          expected.push(acc * sx * sw[m]!);
        }
      } else {
        const [R, K] = c.x as [number, number];
        for (let r = 0; r < R; r++) for (let m = 0; m < M; m++) {
          let acc = 0;
          for (let k = 0; k < K; k++) acc += (x[r * K + k]! - zx) * (w[k * M + m]! - zw[m]!);
          expected.push(acc * sx * sw[m]!);
        }
      }
      for (const path of PATHS) {
        setQuantDotPath(path);
        const session = await InferenceSession.create(bytes, { backend: 'webgpu' });
        sessions.push(session);
        const out = await session.run<Record<string, Tensor>>({ x: new Tensor('uint8', Uint8Array.from(x), c.x) });
        const fused = session.report().nodes.filter((n) => n.op === 'QdqConv' || n.op === 'QdqMatMul');
        expect(fused.length, `${title}: fused`).toBe(1);
        expect(Array.from(tensorToNumbers(out.y!.toHost())), `${title} (${path}, ${fused[0]!.kernels!.join(' ')})`).toEqual(expected);
        // The kernels a GPU adapter plans (workgroup-tiled for ungrouped convs and matmuls past 4 rows), forced here.
        const res = await gpuForTests();
        const { graph } = await importOnnx(bytes);
        const plan = await GpuGraphPlan.create(res, specialize(optimize(graph).graph, { x: c.x }), { cpuAdapter: false });
        try {
          const kernels = plan.report().nodes.filter((n) => n.op === 'QdqConv' || n.op === 'QdqMatMul').flatMap((n) => n.kernels).join(' ');
          const tiled = cv ? cv.group === 1 : c.x[0]! > 4;
          expect(kernels.includes('qdq-gemm-tiled'), `${title}: GPU-adapter kernel ${kernels}`).toBe(tiled);
          const y = (await plan.run({ x: tensorFromNumbers('uint8', c.x, x) })).y!;
          expect(Array.from(tensorToNumbers(y)), `${title} (${path}, ${kernels})`).toEqual(expected);
        } finally {
          plan.dispose();
        }
      }
    });
  }
});

describe('the dot-product path is a plan-time choice', () => {
  it('packed where the WGSL implementation has packed_4x8_integer_dot_product, unpacked on a CPU adapter or without it; a pinned path wins', () => {
    expect(planQuantDotPath({ packedDot: true, cpuAdapter: false })).toBe('packed');
    expect(planQuantDotPath({ packedDot: true, cpuAdapter: true })).toBe('unpacked');
    expect(planQuantDotPath({ packedDot: false, cpuAdapter: false })).toBe('unpacked');
    setQuantDotPath('packed');
    expect(planQuantDotPath({ packedDot: true, cpuAdapter: true })).toBe('packed');
    setQuantDotPath('unpacked');
    expect(planQuantDotPath({ packedDot: true, cpuAdapter: false })).toBe('unpacked');
  });

  it("a session's QDQ kernels take the path the device's adapter calls for", async () => {
    const m = qdqModel([1, 8, 4, 4], [{ ...base, kind: 'conv', out: 8, kernel: 1 }], 'uint8');
    const { session } = await run(m, 'webgpu');
    const res = await gpuForTests();
    const want = res.ctx.wgslFeatures.has('packed_4x8_integer_dot_product') && !res.ctx.cpuAdapter ? 'packed' : 'unpacked';
    const kernels = session.report().nodes.filter((n) => n.op === 'QdqConv').flatMap((n) => n.kernels!);
    expect(kernels.join(' ')).toContain(`:${want}:`);
  });
});
