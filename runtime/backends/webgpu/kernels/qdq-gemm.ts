import type { DType } from '../../../ir/dtype.js';
import { attrFloat, attrInt, type Node } from '../../../ir/graph.js';
import { QUANT_RANGE, roundHalfEven } from '../../../ir/ops/quantize.js';
import { hostTensor, tensorToNumbers, type HostTensor } from '../../../ir/tensor.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, type GpuKernel, type GpuTensorInfo, type ProgramSpec, type TensorSlot } from '../program.js';
import { dotHelpers, int32Constant, int8Offset, quantDotPath, scalarTypeOf, type QuantDotPath } from './quant-dot.js';
import { checkK, convShape, int8Loader, type ConvShape } from './quant-matmul.js';
import { divHelper } from './quantize.js';

/**
 * The int8 kernels of a rewritten QDQ group (fuse-qdq.ts): DequantizeLinear(x), DequantizeLinear(w) -> Conv | MatMul
 * | Gemm (+ bias) (-> Relu | Clip) -> QuantizeLinear run as one integer product. IR ops 'QdqConv' and 'QdqMatMul'
 * exist only in the graph the GPU plans (never in the model's IR), with inputs
 *   x_q, x_scale, x_zero_point, w_q (constant), w_scale, w_zero_point, y_scale, y_zero_point, bias, bias_scale
 * (bias: float, or int32 with bias_scale for a DequantizeLinear'd bias, or int32 in accumulator units with
 * bias_accumulator = 1 for a model's own QLinearConv) and attributes clip_min / clip_max.
 *
 * - The weights are packed at plan time, four int8 codes per u32 (uint8 moved into the int8 domain by -128, as
 *   quant-dot.ts does), one row of ceil(K / 4) words per output channel (Gemm/MatMul B transposed), and kept in the
 *   session's weight store: resident bytes are 1/4 of float32 and no other copy of w is uploaded.
 * - The accumulator is exact i32: sum (x - zx)(w - zw) = sum x w - zx sum w - zw sum x + K zx zw, the products by
 *   dot4I8Packed where the implementation has it, else unpacked (KernelEnv.packedDot; both tested).
 * - Epilogue: v = (acc * x_scale * w_scale[c] + bias[c]) / y_scale (correctly rounded division), then
 *   y = clamp(round_half_even(v) + y_zero_point, lo, hi). Relu and Clip become that clamp: quantization is monotone,
 *   so Q(clip(t, a, b)) = clamp(Q(t), Q(a), Q(b)) exactly, and Relu is clip(t, 0, inf).
 * - A group that ends without a QuantizeLinear (a classifier's logits) stores float32: y = clamp(acc * x_scale *
 *   w_scale[c] + bias[c], clip_min, clip_max), as DequantizeLinear -> Gemm -> Relu/Clip computes it.
 * - Every scale, zero point and bias is a constant, gathered on the host into one f32 table:
 *   [x_scale, y_scale, x_zp (int8 domain), y_zp, w_scale[C], w_zp[C] (int8 domain), bias[C]].
 */

const WG = 64;

export const QDQ_CONV = 'QdqConv';
export const QDQ_MATMUL = 'QdqMatMul';

/** Packed weights per initializer and layout, so every plan of a session shares one weight-store upload. */
const packedCache = new WeakMap<HostTensor, Map<string, HostTensor>>();

/** w as [rows, ceil(K / 4)] u32 words; element (r, k) of w is at r * rowStride + k * kStride. */
function packWeights(w: HostTensor, rows: number, K: number, rowStride: number, kStride: number): HostTensor {
  const key = `${rows}:${K}:${rowStride}:${kStride}`;
  let byKey = packedCache.get(w);
  const hit = byKey?.get(key);
  if (hit) return hit;
  const v = tensorToNumbers(w);
  const off = int8Offset(w.dtype);
  const K4 = Math.ceil(K / 4);
  const words = new Uint32Array(rows * K4);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < K; k++) {
      const q = (v[r * rowStride + k * kStride]! - off) & 0xff;
      words[r * K4 + (k >> 2)]! |= q << ((k & 3) * 8);
    }
  }
  const t = hostTensor('uint32', [words.length], words);
  if (!byKey) packedCache.set(w, (byKey = new Map()));
  byKey.set(key, t);
  return t;
}

const constant = (node: Node, t: GpuTensorInfo | undefined, what: string): Float64Array => {
  if (!t?.value) throw new GpuUnsupported(`${node.op}: ${what} must be a constant`);
  return tensorToNumbers(t.value);
};

/** A per-tensor or per-channel constant as C values. */
function perChannel(node: Node, t: GpuTensorInfo | undefined, C: number, what: string, dflt = 0): number[] {
  if (!t) return new Array<number>(C).fill(dflt);
  const v = constant(node, t, what);
  if (v.length !== 1 && v.length !== C) throw new GpuUnsupported(`${node.op}: ${what} has ${v.length} values for ${C} channels`);
  return Array.from({ length: C }, (_, c) => v[v.length === 1 ? 0 : c]!);
}

/** The f32 parameter table (see the file comment) and the clamp range of y in its integer type. */
function params(node: Node, inputs: (GpuTensorInfo | undefined)[], y: DType, C: number): { table: HostTensor; lo: number; hi: number } {
  const [x, xs, xz, w, ws, wz, ys, yz, bias, bs] = inputs;
  const f32 = Math.fround;
  const sx = constant(node, xs, 'x_scale')[0]!;
  // A float32 output (a group that ends before any QuantizeLinear: logits) has no y scale or zero point.
  const floatOut = y === 'float32';
  const sy = floatOut ? 1 : constant(node, ys, 'y_scale')[0]!;
  const zx = (xz ? constant(node, xz, 'x_zero_point')[0]! : 0) - int8Offset(x!.dtype);
  const zy = yz ? constant(node, yz, 'y_zero_point')[0]! : 0;
  const sw = perChannel(node, ws, C, 'w_scale');
  const zw = perChannel(node, wz, C, 'w_zero_point').map((z) => z - int8Offset(w!.dtype));
  let b = new Array<number>(C).fill(0);
  if (bias) {
    const raw = perChannel(node, bias, C, 'bias');
    const s = bs ? constant(node, bs, 'bias scale') : undefined;
    // A DequantizeLinear'd int32 bias: its float value, rounded to float32 as the DequantizeLinear it replaces.
    // QLinearConv's own bias is in accumulator units: scaled by x_scale * w_scale[c] like the accumulator.
    if (s) b = raw.map((v, c) => f32(v * s[s.length === 1 ? 0 : c]!));
    else if (attrInt(node, 'bias_accumulator', 0) === 1) b = raw.map((v, c) => v * f32(sx * sw[c]!));
    else b = raw;
  }
  const min = attrFloat(node, 'clip_min', -Infinity);
  const max = attrFloat(node, 'clip_max', Infinity);
  if (floatOut) {
    const table = hostTensor('float32', [4 + 3 * C], new Float32Array([sx, 1, zx, 0, ...sw, ...zw, ...b]));
    return { table, lo: Math.max(min, -F32_MAX), hi: Math.min(max, F32_MAX) };
  }
  const [tlo, thi] = QUANT_RANGE[y]!;
  const q = (v: number) => roundHalfEven(f32(v / sy)) + zy;
  const lo = Number.isFinite(min) ? Math.min(thi, Math.max(tlo, q(min))) : tlo;
  const hi = Number.isFinite(max) ? Math.max(tlo, Math.min(thi, q(max))) : thi;
  const table = hostTensor('float32', [4 + 3 * C], new Float32Array([sx, sy, zx, zy, ...sw, ...zw, ...b]));
  return { table, lo, hi };
}

const F32_MAX = 3.4028234663852886e38;

/**
 * Statements storing the accumulator of channel `c` (block lane r) into y[out]: requantized, or (a float32 y)
 * dequantized and clamped.
 */
function epilogue(b: Parameters<ProgramSpec['source']>[0], y: DType, c: string, out: string): string {
  const acc = `dxw[r] - zpx * sw[r] - zpw * sx + i32(u.K) * zpx * zpw`;
  const head = `let zpw = i32(params[4u + u.C + ${c}]);
      let acc = ${acc};`;
  if (y === 'float32') {
    return `${head}
      let v = f32(acc) * params[0] * params[4u + ${c}] + params[4u + 2u * u.C + ${c}];
      ${b.store('y', out, 'clamp(v, u.q_lo, u.q_hi)')}`;
  }
  const div = divHelper(b);
  return `${head}
      let v = ${div}(f32(acc) * params[0] * params[4u + ${c}] + params[4u + 2u * u.C + ${c}], params[1]);
      ${b.store('y', out, `${scalarTypeOf(y)}(clamp(round(v) + params[3], u.q_lo, u.q_hi))`)}`;
}

const COMMON_UNIFORMS = ['size', 'C', 'K', 'K4'].map((name) => ({ name, type: 'u32' as const }));
const CLAMP_UNIFORMS = [{ name: 'q_lo', type: 'f32' as const }, { name: 'q_hi', type: 'f32' as const }];

/**
 * The dot-product loop over K in words for CB output channels c0 .. c0 + CB - 1 at once: x lane k is gathered by
 * `xLane` (after `pre`, both over kk) and packed once, then multiplied with each channel's packed weight word
 * (register blocking: the gather, the costly part of a conv, is shared by CB channels). Channels past C read the
 * last row and are not stored.
 */
function dotLoop(cb: number, pre: string, xLane: string): string {
  return `var dxw = array<i32, ${cb}>();
  var sw = array<i32, ${cb}>();
  var sx = 0;
  for (var k4 = 0u; k4 < u.K4; k4 = k4 + 1u) {
    var vx = vec4<i32>(0);
    for (var j = 0u; j < 4u; j = j + 1u) {
      let k = k4 * 4u + j;
      let kk = min(k, u.K - 1u);${pre}
      vx[j] = select(0, ${xLane}, k < u.K);
    }
    let px = pack_i8(vx);
    sx = sx + dot4_i8(px, 0x01010101u);
    for (var r = 0u; r < ${cb}u; r = r + 1u) {
      let pw = w[min(c0 + r, u.C - 1u) * u.K4 + k4];
      dxw[r] = dxw[r] + dot4_i8(px, pw);
      sw[r] = sw[r] + dot4_i8(pw, 0x01010101u);
    }
  }`;
}

/** Output channels per invocation: 4, unless a conv's channel blocks would straddle groups. */
const CB = 4;

function convProgram(x: GpuTensorInfo, y: GpuTensorInfo, g: ConvShape, path: QuantDotPath, C: number, lo: number, hi: number): ProgramSpec {
  const cb = g.group === 1 || (g.M / g.group) % CB === 0 ? CB : 1;
  const blocks = Math.ceil(g.M / cb);
  const size = g.N * blocks * g.P;
  const K = (g.C / g.group) * g.T;
  return {
    key: `qdq-conv:${x.dtype}:${y.dtype}:${path}:cb${cb}`,
    bindings: [
      { name: 'x', type: x.storage }, { name: 'w', type: 'u32' }, { name: 'taps', type: 'i32' }, { name: 'params', type: 'f32' }, { name: 'y', type: y.storage },
    ],
    uniforms: [...COMMON_UNIFORMS, ...['Cin', 'Cg', 'Mg', 'P', 'Q', 'T', 'blocks'].map((name) => ({ name, type: 'u32' as const })), ...CLAMP_UNIFORMS],
    workgroupSize: [WG, 1, 1],
    source(s) {
      dotHelpers(s, path);
      const lx = int8Loader(s, 'x', x.dtype);
      s.main(`${s.linearIndex('u.size')}
  let p = index % u.P;
  let c0 = ((index / u.P) % u.blocks) * ${cb}u;
  let n = index / (u.P * u.blocks);
  let x_base = (n * u.Cin + (c0 / u.Mg) * u.Cg) * u.Q;
  let zpx = i32(params[2]);
  ${dotLoop(cb, `\n      let off = ${s.load('taps', 'p * u.T + kk % u.T')};`, `select(zpx, ${lx}(x_base + (kk / u.T) * u.Q + u32(max(off, 0))), off >= 0)`)}
  for (var r = 0u; r < ${cb}u; r = r + 1u) {
    let m = c0 + r;
    if (m < u.C) {
      ${epilogue(s, y.dtype, 'm', '(n * u.C + m) * u.P + p')}
    }
  }`);
    },
    run: () => ({
      workgroups: dispatchLinear(size, WG),
      uniforms: { size, C, K, K4: Math.ceil(K / 4), Cin: g.C, Cg: g.C / g.group, Mg: g.M / g.group, P: g.P, Q: g.Q, T: g.T, blocks, q_lo: lo, q_hi: hi },
    }),
  };
}

function matmulProgram(x: GpuTensorInfo, y: GpuTensorInfo, rows: number, K: number, C: number, path: QuantDotPath, lo: number, hi: number): ProgramSpec {
  const blocks = Math.ceil(C / CB);
  const size = rows * blocks;
  return {
    key: `qdq-matmul:${x.dtype}:${y.dtype}:${path}:cb${CB}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'w', type: 'u32' }, { name: 'params', type: 'f32' }, { name: 'y', type: y.storage }],
    uniforms: [...COMMON_UNIFORMS, { name: 'blocks', type: 'u32' }, ...CLAMP_UNIFORMS],
    workgroupSize: [WG, 1, 1],
    source(s) {
      dotHelpers(s, path);
      const lx = int8Loader(s, 'x', x.dtype);
      s.main(`${s.linearIndex('u.size')}
  let c0 = (index % u.blocks) * ${CB}u;
  let row = index / u.blocks;
  let x_row = row * u.K;
  let zpx = i32(params[2]);
  ${dotLoop(CB, '', `${lx}(x_row + kk)`)}
  for (var r = 0u; r < ${CB}u; r = r + 1u) {
    let n = c0 + r;
    if (n < u.C) {
      ${epilogue(s, y.dtype, 'n', 'row * u.C + n')}
    }
  }`);
    },
    run: () => ({ workgroups: dispatchLinear(size, WG), uniforms: { size, C, K, K4: Math.ceil(K / 4), blocks, q_lo: lo, q_hi: hi } }),
  };
}

function requireInt8(node: Node, t: GpuTensorInfo, what: string): void {
  if (t.dtype !== 'int8' && t.dtype !== 'uint8') throw new GpuUnsupported(`${node.op}: ${what} is ${t.dtype}; int8 or uint8 expected`);
}

// The weights (input 3) and every parameter are read on the host at plan time; only x is bound as a tensor.
const HOST = [1, 2, 3, 4, 5, 6, 7, 8, 9];

const qdqConv: GpuKernel = {
  hostInputs: HOST,
  plan(node, inputs, [y], env) {
    const [x, , , w] = inputs as GpuTensorInfo[];
    requireInt8(node, x!, 'x');
    requireInt8(node, w!, 'w');
    if (!w!.value) throw new GpuUnsupported(`${node.op}: w must be a constant`);
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    const g = convShape(node, x!, w!);
    const K = (g.C / g.group) * g.T;
    checkK(node.op, K);
    const packed = packWeights(w!.value, g.M, K, K, 1);
    const { table, lo, hi } = params(node, inputs, y!.dtype, g.M);
    const program = convProgram(x!, y!, g, quantDotPath(env.packedDot), g.M, lo, hi);
    const tensors: TensorSlot[] = [{ input: 0 }, { constant: 0 }, { constant: 1 }, { constant: 2 }, { output: 0 }];
    return { calls: [{ program, tensors }], constants: [packed, int32Constant([g.taps.length], g.taps), table], sharedConstants: [0] };
  },
};

/** MatMul (x [..., K] @ w [K, N]) and Gemm (x [M, K], w [K, N] or [N, K] with transB). */
const qdqMatMul: GpuKernel = {
  hostInputs: HOST,
  plan(node, inputs, [y], env) {
    const [x, , , w] = inputs as GpuTensorInfo[];
    requireInt8(node, x!, 'x');
    requireInt8(node, w!, 'w');
    if (!w!.value || w!.shape.length !== 2) throw new GpuUnsupported(`${node.op}: w must be a 2-D constant`);
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    const transB = attrInt(node, 'transB', 0) !== 0;
    const [K, N] = transB ? [w!.shape[1]!, w!.shape[0]!] : [w!.shape[0]!, w!.shape[1]!];
    checkK(node.op, K);
    const packed = transB ? packWeights(w!.value, N, K, K, 1) : packWeights(w!.value, N, K, 1, N);
    const { table, lo, hi } = params(node, inputs, y!.dtype, N);
    const rows = sizeOfShape(x!.shape) / K;
    const program = matmulProgram(x!, y!, rows, K, N, quantDotPath(env.packedDot), lo, hi);
    const tensors: TensorSlot[] = [{ input: 0 }, { constant: 0 }, { constant: 1 }, { output: 0 }];
    return { calls: [{ program, tensors }], constants: [packed, table], sharedConstants: [0] };
  },
};

export const kernels: Record<string, GpuKernel> = { [QDQ_CONV]: qdqConv, [QDQ_MATMUL]: qdqMatMul };
