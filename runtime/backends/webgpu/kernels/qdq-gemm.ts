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
 *   quant-dot.ts does), one row of ceil(K / 4) words per output channel (Gemm/MatMul B transposed; a conv's row
 *   tap-major, see packConvWeights), and kept in the session's weight store: resident bytes are 1/4 of float32 and
 *   no other copy of w is uploaded.
 * - Convs are register-blocked (convProgram: 4 pixels x 8 channels per invocation, with a 1x1 form) and depthwise
 *   convs have their own kernel (depthwiseProgram); docs/quantization.md has the measurements.
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

/**
 * Each output channel's sum of its int8-domain weight codes (a row of packed words, padding 0), computed once at plan
 * time: the kernels then need no per-k sum of w. |sum| <= K * 128 < 2^23 (checkK), exact in f32.
 */
function weightSums(packed: HostTensor, rows: number): number[] {
  const words = packed.data as Uint32Array;
  const per = words.length / rows;
  const sums = new Array<number>(rows).fill(0);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let i = r * per; i < (r + 1) * per; i++) {
      const v = words[i]!;
      s += ((v << 24) >> 24) + ((v << 16) >> 24) + ((v << 8) >> 24) + (v >> 24);
    }
    sums[r] = s;
  }
  return sums;
}

/**
 * The f32 parameter table (see the file comment; wsum[C] from weightSums at 4 + 3C), the clamp range of y in its
 * integer type, and whether every weight zero point is 0 in the int8 domain (the kernels then skip the sum of x).
 */
function params(node: Node, inputs: (GpuTensorInfo | undefined)[], y: DType, C: number, wsum: number[]): { table: HostTensor; lo: number; hi: number; zw0: boolean } {
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
  const zw0 = zw.every((z) => z === 0);
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
    const table = hostTensor('float32', [4 + 4 * C], new Float32Array([sx, 1, zx, 0, ...sw, ...zw, ...b, ...wsum]));
    return { table, lo: Math.max(min, -F32_MAX), hi: Math.min(max, F32_MAX), zw0 };
  }
  const [tlo, thi] = QUANT_RANGE[y]!;
  const q = (v: number) => roundHalfEven(f32(v / sy)) + zy;
  const lo = Number.isFinite(min) ? Math.min(thi, Math.max(tlo, q(min))) : tlo;
  const hi = Number.isFinite(max) ? Math.max(tlo, Math.min(thi, q(max))) : thi;
  const table = hostTensor('float32', [4 + 4 * C], new Float32Array([sx, sy, zx, zy, ...sw, ...zw, ...b, ...wsum]));
  return { table, lo, hi, zw0 };
}

const F32_MAX = 3.4028234663852886e38;

/** The statements after `acc` (i32, exact) is known: requantize or dequantize it and store it in y[out]. */
function epilogueTail(b: Parameters<ProgramSpec['source']>[0], y: DType, c: string, out: string): string {
  if (y === 'float32') {
    return `let v = f32(acc) * params[0] * params[4u + ${c}] + params[4u + 2u * u.C + ${c}];
      ${b.store('y', out, 'clamp(v, u.q_lo, u.q_hi)')}`;
  }
  const div = divHelper(b);
  return `let v = ${div}(f32(acc) * params[0] * params[4u + ${c}] + params[4u + 2u * u.C + ${c}], params[1]);
      ${b.store('y', out, `${scalarTypeOf(y)}(clamp(round(v) + params[3], u.q_lo, u.q_hi))`)}`;
}

/**
 * The exact accumulator of channel `c` from the dot loop's sums: sum (x - zx)(w - zw) = sum x w - zx sum w - zw sum x
 * + K zx zw, with sum w from the table (weightSums). When every zw is 0 (zw0: symmetric weights, the quantizer's
 * default) the last two terms vanish and the kernels do not sum x at all.
 */
function accExpr(dxw: string, c: string, zw0: boolean, sx: string): string {
  const base = `${dxw} - zpx * i32(params[4u + 3u * u.C + ${c}])`;
  return zw0 ? base : `${base} - zpw * ${sx} + i32(u.K) * zpx * zpw`;
}

const COMMON_UNIFORMS = ['size', 'C', 'K', 'K4'].map((name) => ({ name, type: 'u32' as const }));
const CLAMP_UNIFORMS = [{ name: 'q_lo', type: 'f32' as const }, { name: 'q_hi', type: 'f32' as const }];

/** Output channels per invocation of the matmul. */
const CB = 4;

/** Output pixels per invocation of a conv (register blocking along P). */
const PB = 4;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * Conv weights tap-major: row m holds T * C4 words, word (t, c4) packing w[m, 4 c4 + j, t] for j < 4 (0 past Cg).
 * The conv's inner loop then reads four consecutive input channels at one tap offset: no division per lane.
 */
function packConvWeights(w: HostTensor, M: number, Cg: number, T: number): HostTensor {
  const key = `conv:${M}:${Cg}:${T}`;
  let byKey = packedCache.get(w);
  const hit = byKey?.get(key);
  if (hit) return hit;
  const v = tensorToNumbers(w);
  const off = int8Offset(w.dtype);
  const C4 = Math.ceil(Cg / 4);
  const words = new Uint32Array(M * T * C4);
  for (let m = 0; m < M; m++) {
    for (let ci = 0; ci < Cg; ci++) {
      for (let t = 0; t < T; t++) {
        const q = (v[(m * Cg + ci) * T + t]! - off) & 0xff;
        words[(m * T + t) * C4 + (ci >> 2)]! |= q << ((ci & 3) * 8);
      }
    }
  }
  const t = hostTensor('uint32', [words.length], words);
  if (!byKey) packedCache.set(w, (byKey = new Map()));
  byKey.set(key, t);
  return t;
}

/**
 * Output channels per invocation of a conv: 16 for wide ungrouped convs (M >= 128), 8 for the others, as the float
 * direct matmul grows its rows with M (matmul.ts chooseTiling); a grouped conv takes what divides its group's
 * channels (8, 4 or 1) so that a block never straddles two groups.
 */
function convChannelBlock(g: ConvShape): number {
  const Mg = g.M / g.group;
  if (g.group === 1) return g.M >= 128 ? 16 : 8;
  return Mg % 8 === 0 ? 8 : Mg % 4 === 0 ? 4 : 1;
}

/**
 * A (grouped) conv, register-blocked: each invocation computes PB output pixels x cb output channels of one image
 * and group. The K loop runs over taps, then over input channels four at a time: a pixel's four lanes are gathered
 * once at the tap's offset (taps[p, t]; -1 is padding, read as x's zero point) and packed, then multiplied with
 * each of the cb channels' packed weight words, and each weight word is loaded once for the PB pixels. The blocks
 * are unrolled (one register per accumulator, no arrays). Pixels past P and channels past C compute on clamped
 * indices and are not stored. Lanes past Cg are 0 in x and w, so they add nothing to any sum. The sum of w comes
 * from the table; the sum of x only when some weight zero point is not 0.
 */
function convProgram(x: GpuTensorInfo, y: GpuTensorInfo, g: ConvShape, path: QuantDotPath, C: number, lo: number, hi: number, zw0: boolean): ProgramSpec {
  const cb = convChannelBlock(g);
  const Mg = g.M / g.group;
  const pb = PB;
  const cblocks = Math.ceil(g.M / cb);
  const pblocks = Math.ceil(g.P / pb);
  const size = g.N * cblocks * pblocks;
  const Cg = g.C / g.group;
  const K = Cg * g.T;
  const C4 = Math.ceil(Cg / 4);
  const I = range(pb);
  const R = range(cb);
  const pointwise = isPointwise(g);
  return {
    key: `qdq-conv:${x.dtype}:${y.dtype}:${path}:cb${cb}:pb${pb}${zw0 ? ':zw0' : ''}${pointwise ? ':1x1' : ''}`,
    bindings: [
      { name: 'x', type: x.storage }, { name: 'w', type: 'u32' }, ...(pointwise ? [] : [{ name: 'taps', type: 'i32' as const }]), { name: 'params', type: 'f32' }, { name: 'y', type: y.storage },
    ],
    uniforms: [{ name: 'size', type: 'u32' }, { name: 'C', type: 'u32' }, { name: 'K', type: 'u32' },
      ...['Cin', 'Cg', 'Mg', 'P', 'Q', 'T', 'C4', 'cblocks', 'pblocks'].map((name) => ({ name, type: 'u32' as const })), ...CLAMP_UNIFORMS],
    workgroupSize: [WG, 1, 1],
    source(s) {
      dotHelpers(s, path);
      const lx = int8Loader(s, 'x', x.dtype);
      // A 1x1 conv with stride 1 and no padding over whole words of channels reads x directly: no tap or lane test.
      const lane = pointwise
        ? (i: number, j: number) => `${lx}(xo${i} + q${j})`
        : (i: number, j: number) => `select(0, select(zpx, ${lx}(xo${i} + q${j}), ok${i}), ci + ${j}u < u.Cg)`;
      const stores = I.flatMap((i) => R.map((r) => `if (p0 + ${i}u < u.P && c0 + ${r}u < u.C) {
    let m = c0 + ${r}u;
    ${zw0 ? '' : 'let zpw = i32(params[4u + u.C + m]);\n    '}let acc = ${accExpr(`d${i}_${r}`, 'm', zw0, `sx${i}`)};
    ${epilogueTail(s, y.dtype, 'm', `(n * u.C + m) * u.P + p0 + ${i}u`)}
  }`));
      const sumX = (i: number, v: string) => (zw0 ? '' : `\n      sx${i} = sx${i} + ${v};`);
      s.main(`${s.linearIndex('u.size')}
  let p0 = (index % u.pblocks) * ${pb}u;
  let c0 = ((index / u.pblocks) % u.cblocks) * ${cb}u;
  let n = index / (u.pblocks * u.cblocks);
  let x_base = (n * u.Cin + (c0 / u.Mg) * u.Cg) * u.Q;
  let zpx = i32(params[2]);
  ${path === 'packed' && !zw0 ? 'let ones = 0x01010101u;' : ''}
  ${I.map((i) => `let pp${i} = min(p0 + ${i}u, u.P - 1u) * u.T;`).join('\n  ')}
  ${R.map((r) => `let wr${r} = min(c0 + ${r}u, u.C - 1u) * u.T * u.C4;`).join('\n  ')}
  ${zw0 ? '' : I.map((i) => `var sx${i} = 0;`).join(' ')}
  ${I.map((i) => R.map((r) => `var d${i}_${r} = 0;`).join(' ')).join('\n  ')}
  for (var t = 0u; t < u.T; t = t + 1u) {
    ${I.map((i) => pointwise ? `let xo${i} = x_base + pp${i};` : `let off${i} = ${s.load('taps', `pp${i} + t`)};
    let ok${i} = off${i} >= 0;
    let xo${i} = x_base + u32(max(off${i}, 0));`).join('\n    ')}
    let wt = t * u.C4;
    for (var c4 = 0u; c4 < u.C4; c4 = c4 + 1u) {
      let ci = c4 * 4u;
      ${range(4).map((j) => pointwise ? `let q${j} = (ci + ${j}u) * u.Q;` : `let q${j} = min(ci + ${j}u, u.Cg - 1u) * u.Q;`).join('\n      ')}
      ${path === 'packed' ? `${I.map((i) => `let px${i} = pack_i8(vec4<i32>(${range(4).map((j) => lane(i, j)).join(', ')}));${sumX(i, `dot4_i8(px${i}, ones)`)}`).join('\n      ')}
      ${R.map((r) => `let pw${r} = w[wr${r} + wt + c4];
      ${I.map((i) => `d${i}_${r} = d${i}_${r} + dot4_i8(px${i}, pw${r});`).join(' ')}`).join('\n      ')}`
    // Unpacked: x stays in registers as it was loaded and each weight word is unpacked once for the PB pixels.
    : `${I.map((i) => `let xv${i} = vec4<i32>(${range(4).map((j) => lane(i, j)).join(', ')});${sumX(i, `dot(xv${i}, vec4<i32>(1))`)}`).join('\n      ')}
      ${R.map((r) => `let wv${r} = unpack_i8(w[wr${r} + wt + c4]);
      ${I.map((i) => `d${i}_${r} = d${i}_${r} + dot(xv${i}, wv${r});`).join(' ')}`).join('\n      ')}`}
    }
  }
  ${stores.join('\n  ')}`);
    },
    run: () => ({
      workgroups: dispatchLinear(size, WG),
      uniforms: { size, C, K, Cin: g.C, Cg, Mg, P: g.P, Q: g.Q, T: g.T, C4, cblocks, pblocks, q_lo: lo, q_hi: hi },
    }),
  };
}

/** A 1x1 conv, stride 1, no padding, whole words of input channels per group: x is read without the tap table. */
const isPointwise = (g: ConvShape) => g.T === 1 && (g.C / g.group) % 4 === 0 && g.P === g.Q && g.taps.every((o, p) => o === p);

/** Output pixels per invocation of a depthwise conv. */
const DW_PB = 4;

/**
 * A depthwise conv (group = input channels = output channels): each invocation computes DW_PB pixels of one
 * channel. K is only T (9 for 3x3), so the exact products (x - zx)(w - zw) are summed in i32 directly; each tap's
 * weight is unpacked once from the packed row (ceil(T / 4) words) for the DW_PB pixels.
 */
function depthwiseProgram(x: GpuTensorInfo, y: GpuTensorInfo, g: ConvShape, C: number, lo: number, hi: number): ProgramSpec {
  const pb = DW_PB;
  const pblocks = Math.ceil(g.P / pb);
  const size = g.N * g.M * pblocks;
  const I = range(pb);
  return {
    key: `qdq-conv-depthwise:${x.dtype}:${y.dtype}:pb${pb}`,
    bindings: [
      { name: 'x', type: x.storage }, { name: 'w', type: 'u32' }, { name: 'taps', type: 'i32' }, { name: 'params', type: 'f32' }, { name: 'y', type: y.storage },
    ],
    uniforms: [...['size', 'C', 'K4', 'P', 'Q', 'T', 'pblocks'].map((name) => ({ name, type: 'u32' as const })), ...CLAMP_UNIFORMS],
    workgroupSize: [WG, 1, 1],
    source(s) {
      const lx = int8Loader(s, 'x', x.dtype);
      s.main(`${s.linearIndex('u.size')}
  let p0 = (index % u.pblocks) * ${pb}u;
  let m = (index / u.pblocks) % u.C;
  let n = index / (u.pblocks * u.C);
  let x_base = (n * u.C + m) * u.Q;
  let zpx = i32(params[2]);
  let zw = i32(params[4u + u.C + m]);
  ${I.map((i) => `let pp${i} = min(p0 + ${i}u, u.P - 1u) * u.T;`).join('\n  ')}
  ${I.map((i) => `var a${i} = 0;`).join(' ')}
  for (var t = 0u; t < u.T; t = t + 1u) {
    let wd = ((bitcast<i32>(w[m * u.K4 + (t >> 2u)]) << (24u - 8u * (t & 3u))) >> 24u) - zw;
    ${I.map((i) => `let off${i} = ${s.load('taps', `pp${i} + t`)};
    a${i} = a${i} + select(0, ${lx}(x_base + u32(max(off${i}, 0))) - zpx, off${i} >= 0) * wd;`).join('\n    ')}
  }
  ${I.map((i) => `if (p0 + ${i}u < u.P) {
    let acc = a${i};
    ${epilogueTail(s, y.dtype, 'm', `(n * u.C + m) * u.P + p0 + ${i}u`)}
  }`).join('\n  ')}`);
    },
    run: () => ({
      workgroups: dispatchLinear(size, WG),
      uniforms: { size, C, K4: Math.ceil(g.T / 4), P: g.P, Q: g.Q, T: g.T, pblocks, q_lo: lo, q_hi: hi },
    }),
  };
}

/**
 * x [rows, K] times the packed w rows, CB output channels per invocation: x's four lanes of a word are loaded and
 * (packed path) packed once for the CB channels; channels past C read the last row and are not stored.
 */
function matmulProgram(x: GpuTensorInfo, y: GpuTensorInfo, rows: number, K: number, C: number, path: QuantDotPath, lo: number, hi: number, zw0: boolean): ProgramSpec {
  const blocks = Math.ceil(C / CB);
  const size = rows * blocks;
  const R = range(CB);
  return {
    key: `qdq-matmul:${x.dtype}:${y.dtype}:${path}:cb${CB}${zw0 ? ':zw0' : ''}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'w', type: 'u32' }, { name: 'params', type: 'f32' }, { name: 'y', type: y.storage }],
    uniforms: [...COMMON_UNIFORMS, { name: 'blocks', type: 'u32' }, ...CLAMP_UNIFORMS],
    workgroupSize: [WG, 1, 1],
    source(s) {
      dotHelpers(s, path);
      const lx = int8Loader(s, 'x', x.dtype);
      const sumX = zw0 ? '' : `\n    sx = sx + ${path === 'packed' ? 'dot4_i8(px, 0x01010101u)' : 'dot(vx, vec4<i32>(1))'};`;
      s.main(`${s.linearIndex('u.size')}
  let c0 = (index % u.blocks) * ${CB}u;
  let row = index / u.blocks;
  let x_row = row * u.K;
  let zpx = i32(params[2]);
  ${R.map((r) => `let wr${r} = min(c0 + ${r}u, u.C - 1u) * u.K4;`).join('\n  ')}
  ${zw0 ? '' : 'var sx = 0;'}
  ${R.map((r) => `var d${r} = 0;`).join(' ')}
  for (var k4 = 0u; k4 < u.K4; k4 = k4 + 1u) {
    var vx = vec4<i32>(0);
    for (var j = 0u; j < 4u; j = j + 1u) {
      let k = k4 * 4u + j;
      vx[j] = select(0, ${lx}(x_row + min(k, u.K - 1u)), k < u.K);
    }${path === 'packed' ? '\n    let px = pack_i8(vx);' : ''}${sumX}
    ${R.map((r) => path === 'packed' ? `d${r} = d${r} + dot4_i8(px, w[wr${r} + k4]);` : `d${r} = d${r} + dot(vx, unpack_i8(w[wr${r} + k4]));`).join('\n    ')}
  }
  ${R.map((r) => `if (c0 + ${r}u < u.C) {
    let m = c0 + ${r}u;
    ${zw0 ? '' : 'let zpw = i32(params[4u + u.C + m]);\n    '}let acc = ${accExpr(`d${r}`, 'm', zw0, 'sx')};
    ${epilogueTail(s, y.dtype, 'm', 'row * u.C + m')}
  }`).join('\n  ')}`);
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
    const depthwise = g.group > 1 && g.C === g.group && g.M === g.group;
    const packed = depthwise ? packWeights(w!.value, g.M, K, K, 1) : packConvWeights(w!.value, g.M, g.C / g.group, g.T);
    const { table, lo, hi, zw0 } = params(node, inputs, y!.dtype, g.M, weightSums(packed, g.M));
    const program = depthwise ? depthwiseProgram(x!, y!, g, g.M, lo, hi) : convProgram(x!, y!, g, quantDotPath(env.packedDot), g.M, lo, hi, zw0);
    if (!depthwise && isPointwise(g)) {
      return { calls: [{ program, tensors: [{ input: 0 }, { constant: 0 }, { constant: 1 }, { output: 0 }] }], constants: [packed, table], sharedConstants: [0] };
    }
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
    const { table, lo, hi, zw0 } = params(node, inputs, y!.dtype, N, weightSums(packed, N));
    const rows = sizeOfShape(x!.shape) / K;
    const program = matmulProgram(x!, y!, rows, K, N, quantDotPath(env.packedDot), lo, hi, zw0);
    const tensors: TensorSlot[] = [{ input: 0 }, { constant: 0 }, { constant: 1 }, { output: 0 }];
    return { calls: [{ program, tensors }], constants: [packed, table], sharedConstants: [0] };
  },
};

export const kernels: Record<string, GpuKernel> = { [QDQ_CONV]: qdqConv, [QDQ_MATMUL]: qdqMatMul };
