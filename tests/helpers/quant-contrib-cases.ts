import { expect } from 'vitest';
import { isFloat, type DType } from '../../runtime/ir/dtype.js';
import { allClose } from './compare.js';
import { tensorFromNumbers, tensorToNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { float, int, ints, model, vi, type PAttr } from '../importer/model-builder.js';
import { tensorProto } from './ort-single-node.js';
import { Rng } from './random.js';

/**
 * One-node com.microsoft models of the quantized contrib ops (issue #11 §1), shared by the CPU suite
 * (tests/reference/quantize-contrib.test.ts) and the WebGPU suite (tests/webgpu/quantize-contrib.test.ts). Each case
 * is a model (weights and scales as initializers, activations fed) plus its feeds; onnxruntime-node is the reference.
 * `tol` is the allowed difference from onnxruntime: 1 (one quantization step) for quantized outputs, whose rounding
 * order differs from onnxruntime's at ties; a relative tolerance for float outputs.
 */

const MS = 'com.microsoft';
const CODES: Partial<Record<DType, number>> = { float32: 1, uint8: 2, int8: 3, int32: 6, float16: 10 };

export interface QuantCase {
  name: string;
  bytes: Uint8Array;
  feeds: Record<string, HostTensor>;
  /** Quantized outputs: max |difference| allowed from onnxruntime. Float outputs: relative tolerance. */
  tol: number;
  /** Bytes of the float32 weights the case replaces (MatMulNBits: N * K * 4), for the resident-weight check. */
  floatWeightBytes?: number;
}

type Input = { name: string; t: HostTensor; init?: boolean } | '';

function build(op: string, inputs: Input[], attrs: PAttr[], outType: DType, outputs = 1): { bytes: Uint8Array; feeds: Record<string, HostTensor> } {
  const feeds: Record<string, HostTensor> = {};
  for (const i of inputs) if (i && !i.init) feeds[i.name] = i.t;
  const outs = Array.from({ length: outputs }, (_, i) => `y${i}`);
  const bytes = model({
    opset: 21,
    extraOpsets: [{ domain: MS, version: 1 }],
    nodes: [{ op, domain: MS, inputs: inputs.map((i) => (i ? i.name : '')), outputs: outs, attrs }],
    inputs: inputs.filter((i): i is Exclude<Input, ''> => !!i && !i.init).map((i) => vi(i.name, CODES[i.t.dtype], i.t.shape)),
    initializers: inputs.filter((i): i is Exclude<Input, ''> => !!i && !!i.init).map((i) => tensorProto(i.name, i.t)),
    outputs: outs.map((o) => vi(o, CODES[outType])),
  });
  return { bytes, feeds };
}

export function quantCases(seed = 11): QuantCase[] {
  const rng = new Rng(seed);
  const n = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  const floats = (shape: number[], lo = -1, hi = 1) => tensorFromNumbers('float32', shape, Array.from({ length: n(shape) }, () => rng.uniform(lo, hi)));
  const qints = (dtype: DType, shape: number[], lo?: number, hi?: number) => {
    const [a, b] = dtype === 'int8' ? [-128, 127] : [0, 255];
    return tensorFromNumbers(dtype, shape, Array.from({ length: n(shape) }, () => rng.int(lo ?? a, hi ?? b)));
  };
  const scalarF = (v: number) => tensorFromNumbers('float32', [], [v]);
  const scalarQ = (dtype: DType, v: number) => tensorFromNumbers(dtype, [], [v]);
  const zpOf = (dtype: DType) => scalarQ(dtype, dtype === 'int8' ? rng.int(-10, 10) : rng.int(118, 138));
  const cases: QuantCase[] = [];
  const add = (name: string, b: ReturnType<typeof build>, tol: number, floatWeightBytes?: number) => cases.push({ name, ...b, tol, floatWeightBytes });

  // ---- MatMulNBits: bits, block sizes, ragged K, zero point forms, bias, A's rank ----
  const nbits = (bits: 4 | 8, block: number, K: number, N: number, aShape: number[], zp: 'none' | 'packed' | 'float', bias: boolean) => {
    const kBlocks = Math.ceil(K / block);
    const blob = (block * bits) / 8;
    const codes = Array.from({ length: N * kBlocks * block }, () => rng.int(0, 2 ** bits - 1));
    const bytes = new Uint8Array(N * kBlocks * blob);
    if (bits === 8) bytes.set(codes);
    else for (let i = 0; i < bytes.length; i++) bytes[i] = codes[2 * i]! | (codes[2 * i + 1]! << 4);
    const B = tensorFromNumbers('uint8', [N, kBlocks, blob], bytes);
    const S = tensorFromNumbers('float32', [N * kBlocks], Array.from({ length: N * kBlocks }, () => rng.uniform(0.005, 0.05)));
    let Z: HostTensor | undefined;
    if (zp === 'float') Z = tensorFromNumbers('float32', [N * kBlocks], Array.from({ length: N * kBlocks }, () => rng.int(0, 2 ** bits - 1)));
    if (zp === 'packed') Z = packedZeroPoints(rng, N, kBlocks, bits);
    const inputs: Input[] = [
      { name: 'A', t: floats([...aShape, K]) }, { name: 'B', t: B, init: true }, { name: 'scales', t: S, init: true },
      Z ? { name: 'zp', t: Z, init: true } : '', '', bias ? { name: 'bias', t: floats([N]), init: true } : '',
    ];
    while (inputs[inputs.length - 1] === '') inputs.pop();
    const attrs = [int('K', K), int('N', N), int('bits', bits), int('block_size', block)];
    add(`MatMulNBits bits=${bits} block=${block} K=${K} N=${N} A=[${aShape}] zp=${zp}${bias ? ' bias' : ''}`, build('MatMulNBits', inputs, attrs, 'float32'), 2e-4, N * K * 4);
  };
  nbits(4, 32, 64, 24, [3], 'none', false);
  nbits(4, 16, 40, 7, [2, 5], 'packed', true);
  nbits(4, 64, 200, 9, [1], 'packed', false);
  nbits(4, 128, 256, 33, [4], 'float', true);
  nbits(4, 256, 300, 5, [2], 'none', true);
  nbits(8, 16, 48, 6, [3], 'packed', false);
  nbits(8, 32, 70, 10, [2, 2], 'none', true);
  nbits(8, 128, 128, 17, [5], 'none', false); // onnxruntime's CPU has no 8-bit float zero points
  nbits(4, 32, 96, 13, [3], 'packed', false); // odd k_blocks: the last packed zero point byte is half used
  // Layers large enough that scales and zero points are small beside W: the resident-weight checks use these.
  nbits(4, 32, 512, 256, [2], 'packed', true);
  nbits(8, 64, 512, 128, [2], 'none', false);

  // ---- QLinearAdd / QLinearMul: types, broadcasting, omitted zero points ----
  for (const op of ['QLinearAdd', 'QLinearMul'] as const) {
    for (const [dt, aShape, bShape, zps] of [['uint8', [2, 3, 4], [2, 3, 4], true], ['int8', [2, 3, 4], [4], true], ['uint8', [3, 1], [1, 5], true]] as const) {
      const inputs: Input[] = [
        { name: 'A', t: qints(dt, [...aShape]) }, { name: 'as', t: scalarF(rng.uniform(0.01, 0.05)), init: true }, zps ? { name: 'az', t: zpOf(dt), init: true } : '',
        { name: 'B', t: qints(dt, [...bShape]) }, { name: 'bs', t: scalarF(rng.uniform(0.01, 0.05)), init: true }, zps ? { name: 'bz', t: zpOf(dt), init: true } : '',
        { name: 'cs', t: scalarF(op === 'QLinearMul' ? rng.uniform(0.05, 0.2) : rng.uniform(0.02, 0.06)), init: true }, { name: 'cz', t: zpOf(dt), init: true },
      ];
      while (inputs[inputs.length - 1] === '') inputs.pop();
      add(`${op} ${dt} [${aShape}] x [${bShape}]`, build(op, inputs, [], dt), 1);
    }
  }

  // ---- QLinearSigmoid / QLinearLeakyRelu ----
  for (const dt of ['uint8', 'int8'] as const) {
    const base = (): Input[] => [{ name: 'X', t: qints(dt, [2, 3, 5]) }, { name: 'xs', t: scalarF(0.05), init: true }, { name: 'xz', t: zpOf(dt), init: true }];
    add(`QLinearSigmoid ${dt}`, build('QLinearSigmoid', [...base(), { name: 'ys', t: scalarF(1 / 256), init: true }, { name: 'yz', t: scalarQ(dt, dt === 'int8' ? -128 : 0), init: true }], [], dt), 1);
    add(`QLinearLeakyRelu ${dt} alpha=0.2`, build('QLinearLeakyRelu', [...base(), { name: 'ys', t: scalarF(0.04), init: true }, { name: 'yz', t: zpOf(dt), init: true }], [float('alpha', 0.2)], dt), 1);
  }

  // ---- QLinearAveragePool / QLinearGlobalAveragePool, channels first and last ----
  for (const dt of ['uint8', 'int8'] as const) {
    for (const last of [0, 1]) {
      const shape = last ? [2, 7, 6, 3] : [2, 3, 7, 6];
      const io = (): Input[] => [
        { name: 'X', t: qints(dt, shape) }, { name: 'xs', t: scalarF(0.03), init: true }, { name: 'xz', t: zpOf(dt), init: true },
        { name: 'ys', t: scalarF(0.025), init: true }, { name: 'yz', t: zpOf(dt), init: true },
      ];
      add(`QLinearGlobalAveragePool ${dt} channels_last=${last}`, build('QLinearGlobalAveragePool', io(), [int('channels_last', last)], dt), 1);
      add(
        `QLinearAveragePool ${dt} 3x3 stride 2 pads 1 channels_last=${last}`,
        build('QLinearAveragePool', io(), [ints('kernel_shape', [3, 3]), ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1]), int('count_include_pad', last), int('channels_last', last)], dt),
        1,
      );
    }
  }

  // ---- QLinearConcat ----
  for (const dt of ['uint8', 'int8'] as const) {
    const parts = [[2, 3, 4], [2, 1, 4], [2, 5, 4]];
    const inputs: Input[] = [{ name: 'ys', t: scalarF(0.04), init: true }, { name: 'yz', t: zpOf(dt), init: true }];
    parts.forEach((s, i) => inputs.push({ name: `x${i}`, t: qints(dt, s) }, { name: `s${i}`, t: scalarF(rng.uniform(0.02, 0.06)), init: true }, { name: `z${i}`, t: zpOf(dt), init: true }));
    add(`QLinearConcat ${dt} axis 1`, build('QLinearConcat', inputs, [int('axis', 1)], dt), 1);
  }

  // ---- MatMulIntegerToFloat / DynamicQuantizeMatMul ----
  for (const [adt, bdt, perCol, bias] of [['uint8', 'int8', true, true], ['int8', 'int8', false, false], ['uint8', 'uint8', true, false]] as const) {
    const [M, K, N] = [5, 19, 7];
    const inputs: Input[] = [
      { name: 'A', t: qints(adt, [M, K]) }, { name: 'B', t: qints(bdt, [K, N]), init: true },
      { name: 'as', t: scalarF(0.02), init: true },
      { name: 'bs', t: perCol ? floats([N], 0.001, 0.01) : scalarF(0.004), init: true },
      { name: 'az', t: zpOf(adt), init: true },
      { name: 'bz', t: perCol ? qints(bdt, [N], bdt === 'int8' ? -3 : 120, bdt === 'int8' ? 3 : 136) : zpOf(bdt), init: true },
      bias ? { name: 'bias', t: floats([N]), init: true } : '',
    ];
    while (inputs[inputs.length - 1] === '') inputs.pop();
    add(`MatMulIntegerToFloat ${adt} x ${bdt}${perCol ? ' per column' : ''}${bias ? ' bias' : ''}`, build('MatMulIntegerToFloat', inputs, [], 'float32'), 1e-5);
  }
  for (const [bdt, zp, bias] of [['int8', true, true], ['uint8', true, false], ['int8', false, false]] as const) {
    const [K, N] = [23, 6];
    const inputs: Input[] = [
      { name: 'A', t: floats([2, 4, K], -2, 3) }, { name: 'B', t: qints(bdt, [K, N]), init: true },
      { name: 'bs', t: floats([N], 0.001, 0.01), init: true },
      zp ? { name: 'bz', t: qints(bdt, [N], bdt === 'int8' ? -3 : 120, bdt === 'int8' ? 3 : 136), init: true } : '',
      bias ? { name: 'bias', t: floats([N]), init: true } : '',
    ];
    while (inputs[inputs.length - 1] === '') inputs.pop();
    add(`DynamicQuantizeMatMul B ${bdt}${zp ? ' zero point' : ''}${bias ? ' bias' : ''}`, build('DynamicQuantizeMatMul', inputs, [], 'float32'), 1e-5);
  }
  return cases;
}

/** Max |a - b| over two tensors of equal shape and dtype (integers), or a line saying why they cannot be compared. */
export function maxIntDiff(a: HostTensor, b: HostTensor): number | string {
  if (a.dtype !== b.dtype || JSON.stringify(a.shape) !== JSON.stringify(b.shape)) return `${a.dtype}[${a.shape}] vs ${b.dtype}[${b.shape}]`;
  const x = tensorToNumbers(a);
  const y = tensorToNumbers(b);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
}

/** Fails the test unless `got` matches `want` within the case's tolerance (see QuantCase.tol). */
export function expectMatches(got: HostTensor, want: HostTensor, c: Pick<QuantCase, 'tol'>, what: string): void {
  if (isFloat(want.dtype)) {
    const r = allClose(got, want, { rtol: c.tol, atol: c.tol });
    if (!r.ok) expect.fail(`${what}: ${r.message}`);
    return;
  }
  const d = maxIntDiff(got, want);
  if (typeof d === 'string' || d > c.tol) expect.fail(`${what}: ${typeof d === 'string' ? d : `max difference ${d} > ${c.tol}`}`);
}


// ---- 4-bit QuantizeLinear / DequantizeLinear (opset 21) ----

/** A 4-bit initializer: values packed two per byte, element 2i in the low nibble (ONNX INT4 = 22, UINT4 = 21). */
export function fourBitProto(name: string, signed: boolean, shape: number[], values: number[]) {
  const bytes = new Uint8Array(Math.ceil(values.length / 2));
  values.forEach((v, i) => (bytes[i >> 1]! |= (v & 15) << ((i & 1) * 4)));
  return { name, dims: shape, dataType: signed ? 22 : 21, rawData: bytes };
}

/**
 * Models exercising int4/uint4: x -> QuantizeLinear(4-bit zero point) -> DequantizeLinear -> y (both ops, per tensor
 * and per axis), and DequantizeLinear of 4-bit constant weights, per axis and blocked (a ragged last block).
 */
export function fourBitCases(seed = 4): QuantCase[] {
  const rng = new Rng(seed);
  const cases: QuantCase[] = [];
  const f32 = (name: string, shape: number[], v: number[]) => tensorProto(name, tensorFromNumbers('float32', shape, v));
  for (const signed of [true, false]) {
    const t = signed ? 'int4' : 'uint4';
    const [lo, hi] = signed ? [-8, 7] : [0, 15];
    // Round trip: the values straddle the 4-bit range, so saturation is exercised.
    for (const [perAxis, opset] of [[false, 21], [true, 21], [true, 23]] as const) {
      const x = tensorFromNumbers('float32', [3, 8], Array.from({ length: 24 }, () => rng.uniform(-1.2, 1.2)));
      const n = perAxis ? 8 : 1;
      const sc = Array.from({ length: n }, () => rng.uniform(0.08, 0.15));
      const zp = Array.from({ length: n }, () => rng.int(signed ? -2 : 6, signed ? 2 : 9));
      const attrs = perAxis ? [int('axis', 1)] : [];
      const bytes = model({
        opset,
        irVersion: opset >= 23 ? 10 : 8,
        nodes: [
          { op: 'QuantizeLinear', inputs: ['x', 's', 'z'], outputs: ['q'], attrs },
          { op: 'DequantizeLinear', inputs: ['q', 's', 'z'], outputs: ['y'], attrs },
        ],
        inputs: [vi('x', 1, [3, 8])],
        outputs: [vi('y', 1)],
        initializers: [f32('s', perAxis ? [n] : [], sc), fourBitProto('z', signed, perAxis ? [n] : [], zp)],
      });
      cases.push({ name: `${t} QuantizeLinear -> DequantizeLinear ${perAxis ? 'per axis' : 'per tensor'} opset ${opset}`, bytes, feeds: { x }, tol: 1e-6 });
    }
    // Weights: DequantizeLinear(4-bit constant) per axis and blocked, times a fed activation.
    for (const block of [0, 3]) {
      const [K, N] = [7, 5];
      const w = Array.from({ length: K * N }, () => rng.int(lo, hi));
      const sShape = block ? [Math.ceil(K / block), N] : [N];
      const count = sShape.reduce((a, b) => a * b, 1);
      const attrs = block ? [int('axis', 0), int('block_size', block)] : [int('axis', 1)];
      const bytes = model({
        opset: 21,
        nodes: [
          { op: 'DequantizeLinear', inputs: ['w', 's', 'z'], outputs: ['wf'], attrs },
          { op: 'MatMul', inputs: ['a', 'wf'], outputs: ['y'] },
        ],
        inputs: [vi('a', 1, [2, K])],
        // wf is an output too: onnxruntime would otherwise fuse DequantizeLinear + MatMul into its own MatMulNBits,
        // whose per-axis form rounds differently (it is the dequantized weights that are under test here).
        outputs: [vi('wf', 1), vi('y', 1)],
        initializers: [
          fourBitProto('w', signed, [K, N], w),
          f32('s', sShape, Array.from({ length: count }, () => rng.uniform(0.05, 0.2))),
          fourBitProto('z', signed, sShape, Array.from({ length: count }, () => rng.int(lo + 2, hi - 2))),
        ],
      });
      const a = tensorFromNumbers('float32', [2, K], Array.from({ length: 2 * K }, () => rng.uniform(-1, 1)));
      cases.push({ name: `${t} weights, DequantizeLinear ${block ? `blocked (block_size ${block}, ragged)` : 'per axis'} -> MatMul`, bytes, feeds: { a }, tol: 1e-5 });
    }
  }
  return cases;
}

/** GatherBlockQuantized over data types (uint8 8-bit, uint8 packed 4-bit, int4, uint4), axes and zero point forms. */
export function gatherBlockCases(seed = 5): QuantCase[] {
  const rng = new Rng(seed);
  const cases: QuantCase[] = [];
  const MS = 'com.microsoft';
  const build = (name: string, dataShape: number[], data: ReturnType<typeof fourBitProto>, scales: HostTensor, zp: ReturnType<typeof fourBitProto> | undefined, indices: HostTensor, attrs: PAttr[]) => {
    const bytes = model({
      opset: 21,
      extraOpsets: [{ domain: MS, version: 1 }],
      nodes: [{ op: 'GatherBlockQuantized', domain: MS, inputs: ['data', 'idx', 'scales', ...(zp ? ['zp'] : [])], outputs: ['y'], attrs }],
      inputs: [vi('idx', indices.dtype === 'int32' ? 6 : 7, indices.shape)],
      outputs: [vi('y', 1)],
      initializers: [data, tensorProto('scales', scales), ...(zp ? [zp] : [])],
    });
    cases.push({ name: `GatherBlockQuantized ${name} data [${dataShape}]`, bytes, feeds: { idx: indices }, tol: 1e-6 });
  };
  const scalesFor = (shape: number[]) => tensorFromNumbers('float32', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(0.01, 0.1)));
  const bytesProto = (name: string, shape: number[], values: number[]) => tensorProto(name, tensorFromNumbers('uint8', shape, values)) as ReturnType<typeof fourBitProto>;
  const vals = (n: number, lo: number, hi: number) => Array.from({ length: n }, () => rng.int(lo, hi));
  const idx = (dtype: 'int32' | 'int64', shape: number[], rows: number) => tensorFromNumbers(dtype, shape, vals(shape.reduce((a, b) => a * b, 1), 0, rows - 1));
  // uint8, 8 bits, zero points given.
  build('uint8 bits=8 block 16 zero points', [6, 32], bytesProto('data', [6, 32], vals(192, 0, 255)), scalesFor([6, 2]), bytesProto('zp', [6, 2], vals(12, 100, 150)), idx('int64', [3], 6), [int('bits', 8), int('block_size', 16)]);
  // uint8 packed 4-bit, default zero point 8, 2-D indices.
  build('uint8 packed bits=4 block 16 default zero point', [5, 16], bytesProto('data', [5, 16], vals(80, 0, 255)), scalesFor([5, 2]), undefined, idx('int32', [2, 2], 5), [int('bits', 4), int('block_size', 16)]);
  // uint8 packed 4-bit with packed zero points.
  build('uint8 packed bits=4 block 32 packed zero points', [4, 32], bytesProto('data', [4, 32], vals(128, 0, 255)), scalesFor([4, 2]), bytesProto('zp', [4, 1], vals(4, 0, 255)), idx('int64', [5], 4), [int('bits', 4), int('block_size', 32)]);
  // int4 with zero points; uint4 without.
  build('int4 block 16 zero points', [3, 48], fourBitProto('data', true, [3, 48], vals(144, -8, 7)), scalesFor([3, 3]), fourBitProto('zp', true, [3, 3], vals(9, -2, 2)), idx('int64', [4], 3), [int('block_size', 16)]);
  build('uint4 block 32 zero points', [4, 32], fourBitProto('data', false, [4, 32], vals(128, 0, 15)), scalesFor([4, 1]), fourBitProto('zp', false, [4, 1], vals(4, 6, 9)), idx('int64', [2], 4), [int('block_size', 32)]);
  // Gather along axis 1, blocks along axis 0.
  build('int4 gather_axis 1 quantize_axis 0', [32, 5], fourBitProto('data', true, [32, 5], vals(160, -8, 7)), scalesFor([2, 5]), undefined, idx('int64', [3], 5), [int('block_size', 16), int('gather_axis', 1), int('quantize_axis', 0)]);
  return cases;
}

/** MatMulNBits' packed zero points: random codes, ceil(kBlocks * bits / 8) bytes per row, two 4-bit codes per byte. */
export function packedZeroPoints(rng: Rng, N: number, kBlocks: number, bits: number): HostTensor {
  const row = Math.ceil((kBlocks * bits) / 8);
  const z = new Uint8Array(N * row);
  for (let r = 0; r < N; r++) {
    for (let b = 0; b < kBlocks; b++) {
      const v = rng.int(0, 2 ** bits - 1);
      if (bits === 8) z[r * row + b] = v;
      else z[r * row + (b >> 1)]! |= b & 1 ? v << 4 : v;
    }
  }
  return tensorFromNumbers('uint8', [N * row], z);
}
