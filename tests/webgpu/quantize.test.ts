import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PACKED_DOT_FEATURE, detectQuantDotPath, setQuantDotPath, type QuantDotPath } from '../../runtime/backends/webgpu/kernels/quant-dot.js';
import { GPU_KERNELS } from '../../runtime/backends/webgpu/kernels/index.js';
import { findGpu } from '../../runtime/backends/webgpu/device.js';
import { ShaderBuilder } from '../../runtime/backends/webgpu/wgsl/builder.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, tensorToNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import { allClose } from '../helpers/compare.js';
import { attr } from '../helpers/ir-builder.js';
import { runOrtNode, singleNodeModel } from '../helpers/ort-single-node.js';
import { Rng } from '../helpers/random.js';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';

/**
 * Quantized ops on WebGPU (issue #11 §1) through InferenceSession.create(bytes, { backend: 'webgpu' }): every case
 * runs with the packed dot4I8Packed path and with the unpack-and-multiply path, and is compared with the CPU
 * reference (exactly, integer outputs) and with onnxruntime-node where it has a kernel for the form.
 */

const rng = new Rng(2024);
const sessions: InferenceSession[] = [];
const PATHS: QuantDotPath[] = ['packed', 'unpacked'];
const RANGE: Record<string, [number, number]> = { int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535], int32: [-2000, 2000] };

beforeAll(async () => {
  console.log(`quantize WebGPU suite on ${describeDevice(await gpuForTests())}`);
});
afterEach(() => setQuantDotPath(undefined));
afterAll(async () => {
  for (const s of sessions) await s.release();
});

const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const ints = (dtype: DType, shape: number[], lo = RANGE[dtype]![0], hi = RANGE[dtype]![1]) =>
  tensorFromNumbers(dtype, shape, Array.from({ length: count(shape) }, () => rng.int(lo, hi)));
const floats = (shape: number[], lo = -1, hi = 1) => tensorFromNumbers('float32', shape, Array.from({ length: count(shape) }, () => rng.uniform(lo, hi)));
/** The values of a float32 tensor as float16 (rounded to nearest even). */
const asFloat16 = (t: HostTensor) => tensorFromNumbers('float16', t.shape, tensorToNumbers(t));
const zp = (dtype: DType, shape: number[]) => ints(dtype, shape, dtype === 'int8' ? -6 : 118, dtype === 'int8' ? 6 : 138);
const a = (v: number | number[] | string) => attr(v);

async function runSession(bytes: Uint8Array, backend: 'cpu' | 'webgpu', feeds: Record<string, HostTensor>): Promise<HostTensor[]> {
  const s = await InferenceSession.create(bytes, { backend });
  sessions.push(s);
  const tensors: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(feeds)) tensors[k] = new Tensor(t.dtype, t.data, t.shape);
  const out = await s.run<Record<string, Tensor>>(tensors);
  return s.outputNames.map((n) => out[n]!.toHost());
}

interface Case {
  op: string;
  attrs?: Record<string, Attr>;
  inputs: (HostTensor | undefined)[];
  /** Inputs baked in as initializers (weights, scales). */
  constants?: number[];
  outputs?: number;
  /** onnxruntime-node has a kernel for this form. */
  ort?: boolean;
  /** Allowed difference from onnxruntime (its requantization rounds in another order: one step at a tie). */
  ortTol?: number;
  /** Float outputs: relative tolerance against the CPU. */
  rtol?: number;
  /** A pipeline key prefix the WebGPU plan must use (which kernel ran). */
  kernel?: string;
}

/** Runs one case on WebGPU with each dot-product path, against the CPU reference and onnxruntime-node. */
async function check(c: Case): Promise<void> {
  const bytes = singleNodeModel(c.op, c.attrs ?? {}, c.inputs, { outputs: c.outputs, constants: c.constants });
  const feeds: Record<string, HostTensor> = {};
  c.inputs.forEach((t, i) => t && !(c.constants ?? []).includes(i) && (feeds[`in${i}`] = t));
  const cpu = await runSession(bytes, 'cpu', feeds);
  for (const path of PATHS) {
    setQuantDotPath(path);
    const gpu = await runSession(bytes, 'webgpu', feeds);
    if (c.kernel) {
      const keys = sessions[sessions.length - 1]!.report().nodes.flatMap((n) => n.kernels ?? []);
      expect(keys.some((k) => k.startsWith(`${c.kernel}:`) && k.split(':').includes(path)), `${c.op} kernels: ${keys.join(' ')}`).toBe(true);
    }
    cpu.forEach((want, i) => {
      const got = gpu[i]!;
      expect([got.dtype, got.shape], `${c.op} output ${i} (${path})`).toEqual([want.dtype, want.shape]);
      const r = allClose(got, want, { rtol: c.rtol ?? 0, atol: 0 });
      if (!r.ok) expect.fail(`${c.op} output ${i} on WebGPU (${path}) vs CPU: ${r.message}`);
    });
  }
  if (c.ort) {
    const ort = await runOrtNode(c.op, c.attrs ?? {}, c.inputs, { outputs: c.outputs, constants: c.constants });
    ort.forEach((want, i) => {
      const r = allClose(cpu[i]!, want, { rtol: c.rtol ?? 0, atol: c.ortTol ?? 0 });
      if (!r.ok) expect.fail(`${c.op} output ${i}: the reference disagrees with onnxruntime: ${r.message}`);
    });
  }
}

describe('the dot-product paths', () => {
  it(`Dawn reports ${PACKED_DOT_FEATURE}, and detection picks the packed path`, async () => {
    const has = (await findGpu()).wgslLanguageFeatures.has(PACKED_DOT_FEATURE);
    expect(await detectQuantDotPath()).toBe(has ? 'packed' : 'unpacked');
  });

  it("a session, with no path pinned, takes the device's answer: packed where Dawn reports the feature", async () => {
    const has = (await findGpu()).wgslLanguageFeatures.has(PACKED_DOT_FEATURE);
    const bytes = singleNodeModel('MatMulInteger', {}, [tensorFromNumbers('uint8', [2, 4], [1, 2, 3, 4, 5, 6, 7, 8]), tensorFromNumbers('int8', [4, 3], [1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6])]);
    const s = await InferenceSession.create(bytes, { backend: 'webgpu' });
    try {
      const keys = s.report().nodes.flatMap((n) => n.kernels ?? []);
      expect(keys.some((k) => k.includes(has ? ':packed:' : ':unpacked:')), keys.join(' ')).toBe(true);
    } finally {
      await s.release();
    }
  });

  it('the packed path multiplies with dot4I8Packed, the other unpacks by shifts', () => {
    const A = { dtype: 'uint8' as DType, shape: [4, 8], storage: 'u32' as const };
    const B = { dtype: 'int8' as DType, shape: [8, 3], storage: 'i32' as const };
    const Y = { dtype: 'int32' as DType, shape: [4, 3], storage: 'i32' as const };
    const node = { name: 'n', op: 'MatMulInteger', domain: '', inputs: ['a', 'b'], outputs: ['y'], attrs: {} };
    const wgsl = (path: QuantDotPath) => {
      setQuantDotPath(path);
      const plan = GPU_KERNELS.MatMulInteger!.plan(node, [A, B], [Y], { f16: false, limits: {} as never, maxElements: 1 << 30 });
      const p = plan.calls[0]!.program;
      const b = new ShaderBuilder(p, { f16: false });
      p.source(b);
      return { key: p.key, text: b.build() };
    };
    const packed = wgsl('packed');
    const unpacked = wgsl('unpacked');
    expect(packed.text).toContain('dot4I8Packed(');
    expect(packed.text).toContain('pack4xI8(');
    expect(unpacked.text).not.toContain('dot4I8Packed');
    expect(unpacked.text).toContain('unpack_i8');
    expect(packed.key).not.toBe(unpacked.key);
  });
});

describe('QuantizeLinear / DequantizeLinear on WebGPU', () => {
  const layouts: [string, number[], number[], Record<string, Attr>][] = [
    ['per tensor', [3, 70], [], {}],
    ['per axis 0', [5, 3, 2], [5], { axis: a(0) }],
    ['per axis -1', [4, 9], [9], { axis: a(-1) }],
    ['blocked, ragged last block', [2, 7, 3], [2, 3, 3], { axis: a(1), block_size: a(3) }],
  ];
  for (const [name, xs, ss, attrs] of layouts) {
    for (const dt of ['int8', 'uint8', 'int16', 'uint16'] as DType[]) {
      it(`QuantizeLinear ${name} to ${dt}`, async () => {
        await check({ op: 'QuantizeLinear', attrs, inputs: [floats(xs, -3, 3), floats(ss, 0.005, 0.05), zp(dt, ss)], constants: [1], ort: true });
      });
      it(`DequantizeLinear ${name} from ${dt}`, async () => {
        await check({ op: 'DequantizeLinear', attrs, inputs: [ints(dt, xs), floats(ss, 0.01, 0.1), zp(dt, ss)], ort: true, rtol: 1e-6 });
      });
    }
  }

  it('ties round half to even and out-of-range values saturate; no zero point means uint8', async () => {
    const v = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, 127.5, -128.5, 300, -300, 1e9, -1e9, 254.5, 255.5];
    const x = tensorFromNumbers('float32', [v.length], v);
    const one = tensorFromNumbers('float32', [], [1]);
    for (const dt of ['int8', 'uint8', 'int16'] as DType[]) await check({ op: 'QuantizeLinear', inputs: [x, one, zp(dt, [])], ort: true });
    await check({ op: 'QuantizeLinear', inputs: [x, one], ort: true });
    await check({ op: 'QuantizeLinear', attrs: { output_dtype: a(3) }, inputs: [x, one], ort: true });
  });

  it('float16 inputs and scales (f16 output rounded once, as on the CPU)', async () => {
    const h = asFloat16;
    await check({ op: 'QuantizeLinear', inputs: [h(floats([4, 9], -2, 2)), h(floats([9], 0.01, 0.05)), zp('int8', [9])], ort: true });
    await check({ op: 'DequantizeLinear', inputs: [ints('uint8', [4, 9]), h(floats([], 0.01, 0.05)), zp('uint8', [])], ort: true });
    const q = [ints('uint8', [3, 8]), h(floats([], 0.01, 0.03)), zp('uint8', []), ints('uint8', [8, 5]), h(floats([], 0.01, 0.03)), zp('uint8', []), h(floats([], 0.05, 0.2)), zp('uint8', [])];
    await check({ op: 'QLinearMatMul', inputs: q });
  });

  it('int32 dequantization (a QLinear bias) and a missing zero point', async () => {
    await check({ op: 'DequantizeLinear', inputs: [ints('int32', [33]), floats([], 0.001, 0.01)], ort: true, rtol: 1e-6 });
    await check({ op: 'DequantizeLinear', attrs: { axis: a(0) }, inputs: [ints('int8', [3, 5]), floats([3], 0.01, 0.1)], ort: true, rtol: 1e-6 });
  });
});

describe('DynamicQuantizeLinear on WebGPU', () => {
  const inputs: [string, HostTensor][] = [
    ['mixed signs, more elements than the workgroup', floats([7, 111], -4, 6)],
    ['all positive', floats([40], 0.5, 3)],
    ['all negative', floats([3, 3], -5, -0.1)],
    ['all zero', tensorFromNumbers('float32', [5], [0, 0, 0, 0, 0])],
  ];
  for (const [name, x] of inputs) {
    it(name, async () => {
      // y_scale and y_zero_point must agree exactly; y is then exact whenever x / scale is not within an ulp of a tie.
      await check({ op: 'DynamicQuantizeLinear', inputs: [x], outputs: 3, ort: true });
    });
  }
});

describe('MatMulInteger / QLinearMatMul on WebGPU', () => {
  const shapes: [number[], number[]][] = [[[3, 5], [5, 4]], [[7, 33], [33, 9]], [[2, 3, 6], [6, 5]], [[2, 1, 3, 4], [3, 4, 2]], [[13], [13, 3]], [[4, 64], [64]]];
  for (const [as, bs] of shapes) {
    for (const [at, bt] of [['uint8', 'uint8'], ['int8', 'int8'], ['uint8', 'int8']] as [DType, DType][]) {
      it(`MatMulInteger [${as}] x [${bs}] ${at} x ${bt}`, async () => {
        // Per-column b zero points for a 2-D B (onnxruntime refuses them for batched B).
        const n = bs.length === 2 ? bs[1]! : 1;
        await check({ op: 'MatMulInteger', inputs: [ints(at, as), ints(bt, bs), zp(at, []), zp(bt, bs.length === 2 ? [n] : [])], constants: [1], ort: true });
        await check({ op: 'MatMulInteger', inputs: [ints(at, as), ints(bt, bs)], ort: true });
      });
    }
  }

  it('MatMulInteger with a per-row a zero point (CPU reference only: onnxruntime takes a scalar)', async () => {
    await check({ op: 'MatMulInteger', inputs: [ints('uint8', [5, 7]), ints('uint8', [7, 3]), zp('uint8', [5]), zp('uint8', [])] });
  });

  const q: [number[], number[], DType, DType, boolean][] = [
    [[2, 4], [4, 3], 'uint8', 'uint8', false],
    [[5, 16], [16, 7], 'int8', 'int8', false],
    [[3, 31], [31, 6], 'uint8', 'int8', true],
    [[2, 3, 9], [2, 9, 4], 'int8', 'int8', false],
    [[2, 3, 9], [9, 4], 'int8', 'int8', true],
  ];
  for (const [as, bs, at, bt, perCol] of q) {
    it(`QLinearMatMul [${as}] x [${bs}] ${at} x ${bt}${perCol ? ' per-column b' : ''}`, async () => {
      const n = bs[bs.length - 1]!;
      const inputs = [
        ints(at, as), floats([], 0.01, 0.03), zp(at, []),
        ints(bt, bs), floats(perCol ? [n] : [], 0.01, 0.03), zp(bt, perCol ? [n] : []),
        floats([], 0.05, 0.2), zp(at, []),
      ];
      await check({ op: 'QLinearMatMul', inputs, constants: [1, 3, 4, 5, 6, 7], ort: true, ortTol: 1 });
    });
  }
});

describe('QLinearMatMul per-row parameters on WebGPU', () => {
  it('per-row a and y scales and zero points (CPU reference only: onnxruntime takes scalars)', async () => {
    const inputs = [
      ints('int8', [5, 12]), floats([5], 0.01, 0.03), zp('int8', [5]),
      ints('int8', [12, 3]), floats([3], 0.01, 0.03), zp('int8', [3]),
      floats([5], 0.05, 0.2), zp('int8', [5]),
    ];
    await check({ op: 'QLinearMatMul', inputs });
  });
});

describe('ConvInteger / QLinearConv on WebGPU', () => {
  const geoms: [string, number[], number[], Record<string, Attr>][] = [
    ['3x3 pads', [2, 3, 6, 5], [4, 3, 3, 3], { pads: a([1, 1, 1, 1]) }],
    ['strides, dilations, asymmetric pads', [1, 2, 9, 8], [3, 2, 3, 2], { strides: a([2, 1]), dilations: a([1, 2]), pads: a([0, 1, 2, 1]) }],
    ['grouped', [1, 4, 5, 5], [6, 2, 3, 3], { group: a(2) }],
    ['depthwise SAME_UPPER', [1, 3, 7, 6], [3, 1, 3, 3], { group: a(3), auto_pad: a('SAME_UPPER'), strides: a([2, 2]) }],
    ['1-D', [2, 5, 11], [3, 5, 4], { pads: a([2, 1]) }],
  ];
  for (const [name, xs, ws, attrs] of geoms) {
    it(`ConvInteger ${name}`, async () => {
      await check({ op: 'ConvInteger', attrs, inputs: [ints('uint8', xs), ints('uint8', ws), zp('uint8', []), zp('uint8', [])], constants: [1], ort: true });
      await check({ op: 'ConvInteger', attrs, inputs: [ints('int8', xs), ints('int8', ws)], ort: true });
      await check({ op: 'ConvInteger', attrs, inputs: [ints('uint8', xs), ints('int8', ws), zp('uint8', []), zp('int8', [ws[0]!])] });
    });
    for (const [dt, perChannel] of [['uint8', false], ['int8', true]] as [DType, boolean][]) {
      it(`QLinearConv ${name} ${dt}${perChannel ? ' per-channel w' : ''}, with bias`, async () => {
        const m = ws[0]!;
        const z = (shape: number[]) => (dt === 'int8' ? tensorFromNumbers('int8', shape, new Array(count(shape)).fill(0)) : zp('uint8', shape));
        const inputs = [
          ints(dt, xs), floats([], 0.01, 0.03), z([]),
          ints(dt, ws), floats(perChannel ? [m] : [], 0.01, 0.03), z(perChannel ? [m] : []),
          floats([], 0.2, 0.5), z([]), ints('int32', [m]),
        ];
        await check({ op: 'QLinearConv', attrs, inputs, constants: [3, 4, 5, 8], ort: true, ortTol: 1 });
      });
    }
  }
});

/**
 * Constant weights (the quantizer's int8-dynamic files): ConvInteger's w and MatMulInteger's b, with a constant or
 * no zero point, are packed four codes per u32 at plan time and run on the register-blocked kernels. Exact against
 * the CPU, on shapes that leave partial blocks: K not a multiple of 4, channels and pixels past the block, groups.
 */
describe('ConvInteger / MatMulInteger with packed constant weights on WebGPU', () => {
  const geoms: [string, number[], number[], Record<string, Attr>][] = [
    ['3x3 pads (K = 27, 4 channels)', [2, 3, 6, 5], [4, 3, 3, 3], { pads: a([1, 1, 1, 1]) }],
    ['strides, dilations, asymmetric pads, 11 channels', [1, 2, 9, 8], [11, 2, 3, 2], { strides: a([2, 1]), dilations: a([1, 2]), pads: a([0, 1, 2, 1]) }],
    ['grouped, 6 channels per group', [1, 4, 5, 5], [12, 2, 3, 3], { group: a(2) }],
    ['grouped, 3 channels per group', [1, 4, 5, 5], [6, 2, 3, 3], { group: a(2) }],
    ['depthwise SAME_UPPER', [1, 3, 7, 6], [3, 1, 3, 3], { group: a(3), auto_pad: a('SAME_UPPER'), strides: a([2, 2]) }],
    ['1-D', [2, 5, 11], [3, 5, 4], { pads: a([2, 1]) }],
    ['1x1 over 9 channels, 17 outputs', [1, 9, 3, 5], [17, 9, 1, 1], {}],
    ['33 outputs (16-channel blocks, the last partial), stride 2', [2, 8, 7, 7], [33, 8, 3, 3], { strides: a([2, 2]), pads: a([1, 1, 1, 1]) }],
  ];
  for (const [name, xs, ws, attrs] of geoms) {
    it(`ConvInteger ${name}`, async () => {
      const k = 'quant-conv-packed';
      // The quantizer's form: uint8 weights with zero point 128 (0 in the int8 domain: no sum of x).
      const w128 = tensorFromNumbers('uint8', [], [128]);
      await check({ op: 'ConvInteger', attrs, inputs: [ints('uint8', xs), ints('uint8', ws), zp('uint8', []), w128], constants: [1, 3], ort: true, kernel: k });
      await check({ op: 'ConvInteger', attrs, inputs: [ints('uint8', xs), ints('uint8', ws), zp('uint8', []), zp('uint8', [])], constants: [1, 3], ort: true, kernel: k });
      // The 16-channel kernel compiles slowly on SwiftShader: the two forms above only.
      if (ws[0]! >= 32) return;
      await check({ op: 'ConvInteger', attrs, inputs: [ints('int8', xs), ints('int8', ws)], constants: [1], ort: true, kernel: k });
      await check({ op: 'ConvInteger', attrs, inputs: [ints('uint8', xs), ints('uint8', ws)], constants: [1], ort: true, kernel: k });
      await check({ op: 'ConvInteger', attrs, inputs: [ints('uint8', xs), ints('int8', ws), zp('uint8', []), zp('int8', [ws[0]!])], constants: [1, 3], kernel: k });
    });
  }

  const shapes: [number[], number[]][] = [[[3, 5], [5, 4]], [[7, 33], [33, 9]], [[2, 3, 6], [6, 17]], [[13], [13, 3]], [[1, 64], [64, 10]]];
  for (const [as, bs] of shapes) {
    for (const [at, bt] of [['uint8', 'uint8'], ['int8', 'int8'], ['uint8', 'int8']] as [DType, DType][]) {
      it(`MatMulInteger [${as}] x [${bs}] ${at} x ${bt}`, async () => {
        const k = 'quant-matmul-packed';
        await check({ op: 'MatMulInteger', inputs: [ints(at, as), ints(bt, bs), zp(at, []), zp(bt, [bs[1]!])], constants: [1, 3], ort: true, kernel: k });
        await check({ op: 'MatMulInteger', inputs: [ints(at, as), ints(bt, bs), zp(at, []), zp(bt, [])], constants: [1, 3], ort: true, kernel: k });
        await check({ op: 'MatMulInteger', inputs: [ints(at, as), ints(bt, bs)], constants: [1], ort: true, kernel: k });
      });
    }
  }

  it('MatMulInteger with a per-row a zero point and a batched a', async () => {
    await check({ op: 'MatMulInteger', inputs: [ints('uint8', [2, 5, 7]), ints('uint8', [7, 3]), zp('uint8', [5]), zp('uint8', [])], constants: [1, 3], kernel: 'quant-matmul-packed' });
  });

  it('a feed w keeps the generic kernel', async () => {
    await check({ op: 'ConvInteger', inputs: [ints('uint8', [1, 3, 4, 4]), ints('uint8', [2, 3, 3, 3]), zp('uint8', []), zp('uint8', [])], constants: [1], kernel: 'quant-conv' });
  });

  it('resident weights: the codes four per u32 (about 1/4 of float32), no copy of the initializer', async () => {
    const conv = ints('uint8', [32, 16, 3, 3]);
    const fc = ints('uint8', [288, 40]);
    const w128 = tensorFromNumbers('uint8', [], [128]);
    const floatBytes = (count(conv.shape) + count(fc.shape)) * 4;
    const cases: [string, Uint8Array][] = [
      ['ConvInteger', singleNodeModel('ConvInteger', { pads: a([1, 1, 1, 1]) }, [ints('uint8', [1, 16, 6, 6]), conv, zp('uint8', []), w128], { constants: [1, 3] })],
      ['MatMulInteger', singleNodeModel('MatMulInteger', {}, [ints('uint8', [2, 288]), fc, zp('uint8', []), w128], { constants: [1, 3] })],
    ];
    let resident = 0;
    for (const [op, bytes] of cases) {
      const s = await InferenceSession.create(bytes, { backend: 'webgpu' });
      sessions.push(s);
      const r = s.report();
      const keys = r.nodes.flatMap((n) => n.kernels ?? []);
      expect(keys.some((k) => k.includes('-packed:')), `${op}: ${keys.join(' ')}`).toBe(true);
      resident += r.weightBytes;
    }
    // Packed words (K multiple of 4 here: exactly 1/4) plus each channel's weight sum and zero point (8 B each).
    const packed = floatBytes / 4 + 8 * (32 + 40);
    expect(resident).toBeLessThanOrEqual(packed + 64);
    expect(resident / floatBytes).toBeLessThan(0.27);
  });
});
