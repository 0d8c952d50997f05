import type { DType } from '../../../ir/dtype.js';
import { attrFloat, attrInt, type Node } from '../../../ir/graph.js';
import { QUANT_RANGE, roundHalfEven } from '../../../ir/ops/quantize.js';
import { hostTensor, tensorToNumbers, type HostTensor } from '../../../ir/tensor.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, type GpuKernel, type GpuTensorInfo, type ProgramSpec, type TensorSlot } from '../program.js';
import { dotHelpers, int32Constant, int8Offset, planQuantDotPath, type QuantDotPath } from './quant-dot.js';
import { formKey, packRows, weightForm, weightReader, weightUniforms, weightUniformValues, type PackedWeight, type WeightForm } from './qdq-weights.js';
import { checkK, convShape, int8Loader, type ConvShape } from './quant-matmul.js';
import { depthwiseConvProgram, depthwiseSums, packDepthwiseWeights, window2d } from './qdq-depthwise.js';
import { accExpr, c4Type, CLAMP_UNIFORMS, epilogueTail, layoutKey, range, storeC4, unpackU8, WG, type Io } from './qdq-epilogue.js';

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
 *   no other copy of w is uploaded. A weight the model stores in 4 bits (int4 / uint4, w_bits = 4) is held eight
 *   codes per word, 1/8 of float32, and unpacked in registers (qdq-weights.ts).
 * - On GPU adapters, ungrouped convs and matmuls are workgroup-tiled implicit GEMMs (tiledProgram: 64 x 64 tiles,
 *   x packed four codes per u32 once per tile). On CPU adapters (SwiftShader), as the float matmul does, the kernels
 *   are direct and register-blocked (convProgram: 8 x 8, 16 x 8 or smaller blocks of channels x pixels, see
 *   convBlocks, with a 1x1 form; matmulProgram: 4 channels). Depthwise convs have their own kernels
 *   (qdq-depthwise.ts) everywhere. docs/quantization.md has the measurements.
 * - The accumulator is exact i32: sum (x - zx)(w - zw) = sum x w - zx sum w - zw sum x + K zx zw, sum w per channel
 *   computed at plan time, sum x only when a weight zero point is not 0; the products by dot4I8Packed where the
 *   implementation has it and the adapter is not a CPU one, else unpacked (planQuantDotPath; both tested).
 * - Epilogue: v = acc * M[c] + B[c] with the multiplier M[c] = x_scale * w_scale[c] / y_scale and B[c] = bias[c] /
 *   y_scale (float64 on the host, rounded once to float32), then y = clamp(round_half_even(v) + y_zero_point, lo, hi),
 *   as onnxruntime's own int8 kernels requantize. It is the float chain's value (acc * x_scale * w_scale[c] + bias[c])
 *   / y_scale within a few float32 ulps, so a code differs from the chain's only where v lies that close to a
 *   rounding tie; a division per element (correctly rounded, as WGSL's is not) cost 8-10% of the int8 convs' time
 *   on SwiftShader (docs/quantization.md). Relu and Clip become that clamp: quantization is monotone,
 *   so Q(clip(t, a, b)) = clamp(Q(t), Q(a), Q(b)) exactly, and Relu is clip(t, 0, inf).
 * - A group that ends without a QuantizeLinear (a classifier's logits) stores float32: y = clamp(acc * x_scale *
 *   w_scale[c] + bias[c], clip_min, clip_max), as DequantizeLinear -> Gemm -> Relu/Clip computes it.
 * - Every scale, zero point and bias is a constant, gathered on the host into one f32 table:
 *   [x_scale, y_scale, x_zp (int8 domain), y_zp, M[C], w_zp[C] (int8 domain), B[C], w sums[C]], with M = w_scale and
 *   B = bias for a float32 output (y = acc * x_scale * M[c] + B[c]).
 * - x and y of a QdqConv may be in the packed activation layout "c4" (x_layout / y_layout, qdq-layout.ts): uint32
 *   [N, ceil(C / 4), ...spatial], four int8-domain codes per word. Every conv form reads and writes it (c4Type, Io,
 *   storeC4); the codes are the same as unpacked, so the outputs are bit-identical.
 */

export const QDQ_CONV = 'QdqConv';
export const QDQ_MATMUL = 'QdqMatMul';

/** w as [rows, ceil(K / 4)] quads; element (r, k) of w is at r * rowStride + k * kStride. */
function packWeights(w: HostTensor, f: WeightForm, rows: number, K: number, rowStride: number, kStride: number): PackedWeight {
  const K4 = Math.ceil(K / 4);
  return packRows(w, f, `${rows}:${K}:${rowStride}:${kStride}`, rows, K4, (v, quads) => {
    for (let r = 0; r < rows; r++) {
      for (let k = 0; k < K; k++) quads[r * K4 + (k >> 2)]! |= (v[r * rowStride + k * kStride]! & 0xff) << ((k & 3) * 8);
    }
  });
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
 * The f32 parameter table (see the file comment; wsum[C] from weightSums at 4 + 3C), the clamp range of y in its
 * integer type, and whether every weight zero point is 0 in the int8 domain (the kernels then skip the sum of x).
 */
function params(node: Node, inputs: (GpuTensorInfo | undefined)[], y: DType, C: number, wsum: number[], wf: WeightForm): { table: HostTensor; lo: number; hi: number; zw0: boolean } {
  const [x, xs, xz, , ws, wz, ys, yz, bias, bs] = inputs;
  const f32 = Math.fround;
  const sx = constant(node, xs, 'x_scale')[0]!;
  // A float32 output (a group that ends before any QuantizeLinear: logits) has no y scale or zero point.
  const floatOut = y === 'float32';
  const sy = floatOut ? 1 : constant(node, ys, 'y_scale')[0]!;
  const zx = (xz ? constant(node, xz, 'x_zero_point')[0]! : 0) - int8Offset(x!.dtype);
  const zy = yz ? constant(node, yz, 'y_zero_point')[0]! : 0;
  const sw = perChannel(node, ws, C, 'w_scale');
  const zw = perChannel(node, wz, C, 'w_zero_point').map((z) => z - wf.offset);
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
  // Requantization by a multiplier per channel: v = acc M[c] + B[c], M = sx sw[c] / sy and B = bias[c] / sy computed
  // in float64 and rounded once to float32 (see the file comment).
  const M = sw.map((w) => (sx * w) / sy);
  const B = b.map((v) => v / sy);
  const table = hostTensor('float32', [4 + 4 * C], new Float32Array([sx, sy, zx, zy, ...M, ...zw, ...B, ...wsum]));
  return { table, lo, hi, zw0 };
}

const F32_MAX = 3.4028234663852886e38;

const COMMON_UNIFORMS = ['size', 'C', 'K', 'K4'].map((name) => ({ name, type: 'u32' as const }));
/** A QdqMatMul with at most this many rows of x runs the direct kernel on every adapter. */
const MATMUL_DIRECT_ROWS = 4;

/** Output channels per invocation of the matmul. */
const CB = 4;

/** Output pixels per invocation of a conv (register blocking along P). */
const PB = 4;

/**
 * Conv weights tap-major: row m holds T * C4 quads, quad (t, c4) packing w[m, 4 c4 + j, t] for j < 4 (0 past Cg).
 * The conv's inner loop then reads four consecutive input channels at one tap offset: no division per lane.
 */
function packConvWeights(w: HostTensor, f: WeightForm, M: number, Cg: number, T: number): PackedWeight {
  const C4 = Math.ceil(Cg / 4);
  return packRows(w, f, `conv:${M}:${Cg}:${T}`, M, T * C4, (v, quads) => {
    for (let m = 0; m < M; m++) {
      for (let ci = 0; ci < Cg; ci++) {
        for (let t = 0; t < T; t++) quads[(m * T + t) * C4 + (ci >> 2)]! |= (v[(m * Cg + ci) * T + t]! & 0xff) << ((ci & 3) * 8);
      }
    }
  });
}

/**
 * Output channels x output pixels per invocation of a direct conv (CPU adapters). An ungrouped 1x1 conv takes 8 x 8:
 * each weight word is unpacked once for 8 pixels and each x word for 8 channels, 16 loads and unpacks per 64 dot
 * products instead of the 20 of 16 x 4. Other ungrouped convs of 16 or more channels take 16 x 8: each pixel's tap
 * (a table load, a padding test, a gather) serves 16 channels and each weight word 8 pixels. Measured on SwiftShader
 * with bench/qdq-tiles.bench.ts (docs/quantization.md): 8 x 8 against 16 x 4 for mobilenet_v2's wide 1x1 convs about
 * 10% less GPU time, against 8 x 4 for its narrow ones about 4%; 16 x 8 against 16 x 4 for resnet18's convs about
 * 40%. A grouped conv takes what divides its group's channels (8, 4 or 1) so that a block never straddles two groups.
 */
function convBlocks(g: ConvShape): { cb: number; pb: number } {
  const chosen = blocksOverride?.(g);
  if (chosen) return chosen;
  const Mg = g.M / g.group;
  if (g.group === 1) return isPointwise(g) ? { cb: 8, pb: 8 } : g.M >= 16 ? { cb: 16, pb: 8 } : { cb: 8, pb: PB };
  return { cb: Mg % 8 === 0 ? 8 : Mg % 4 === 0 ? 4 : 1, pb: PB };
}

let blocksOverride: ((g: ConvShape) => { cb: number; pb: number } | undefined) | undefined;

/**
 * Plans made from now on take the direct conv's blocks from `choose` where it returns some (benchmarks compare
 * tilings: bench/qdq-tiles.bench.ts; cb a multiple of 4, or of what divides a group's channels); undefined restores
 * convBlocks' choice.
 */
export function setConvBlocks(choose: ((g: ConvShape) => { cb: number; pb: number } | undefined) | undefined): void {
  blocksOverride = choose;
}

/**
 * A (grouped) conv, register-blocked: each invocation computes PB output pixels x cb output channels of one image
 * and group. The K loop runs over taps, then over input channels four at a time: a pixel's four lanes are gathered
 * once at the tap's offset (taps[p, t]; -1 is padding, read as x's zero point) and packed, then multiplied with
 * each of the cb channels' packed weight words, and each weight word is loaded once for the PB pixels. The blocks
 * are unrolled (one register per accumulator, no arrays). Pixels past P and channels past C compute on clamped
 * indices and are not stored. Lanes past Cg are 0 in x and w, so they add nothing to any sum. The sum of w comes
 * from the table; the sum of x only when some weight zero point is not 0.
 *
 * A c4 x (io.xc4: Cg a multiple of 4 or one group) is read one word per pixel, tap and four channels, with no lane
 * test: its pad lanes hold x's zero point against weight lanes of 0, so only the sum of x sees them, and the kernel
 * subtracts what they add (u.xpad = T (4 C4 - Cg) zx; a padding tap reads zx in all four lanes). A c4 y (io.yc4: cb a
 * multiple of 4) stores each pixel's channels one word per four (storeC4).
 */
function convProgram(io: Io, g: ConvShape, wf: WeightForm, path: QuantDotPath, C: number, lo: number, hi: number, zw0: boolean, zx: number): ProgramSpec {
  const { x, y, xc4, yc4 } = io;
  const { cb, pb } = convBlocks(g);
  if (yc4 && cb % 4 !== 0) throw new GpuUnsupported(`QdqConv: a c4 output needs 4 | channels per group (block ${cb})`);
  const Mg = g.M / g.group;
  const cblocks = Math.ceil(g.M / cb);
  const pblocks = Math.ceil(g.P / pb);
  const size = g.N * cblocks * pblocks;
  const Cg = g.C / g.group;
  const K = Cg * g.T;
  const C4 = Math.ceil(Cg / 4);
  const I = range(pb);
  const R = range(cb);
  const pointwise = isPointwise(g);
  // A c4 x multiplied unpacked takes its codes as uint8 values (code + 128, unpack_u8), x's zero point too.
  const u8 = path === 'unpacked' && xc4;
  const zxk = u8 ? zx + 128 : zx;
  return {
    key: `qdq-conv:${x.dtype}:${y.dtype}:${path}:cb${cb}:pb${pb}${zw0 ? ':zw0' : ''}${pointwise ? ':1x1' : ''}${layoutKey(io)}${formKey(wf)}`,
    bindings: [
      { name: 'x', type: x.storage }, { name: 'w', type: 'u32' }, ...(pointwise ? [] : [{ name: 'taps', type: 'i32' as const }]), { name: 'params', type: 'f32' }, { name: 'y', type: y.storage },
    ],
    uniforms: [{ name: 'size', type: 'u32' }, { name: 'C', type: 'u32' }, { name: 'K', type: 'u32' },
      ...['Cin', 'Cg', 'Mg', 'P', 'Q', 'T', 'C4', 'cblocks', 'pblocks', ...(yc4 ? ['YC4'] : [])].map((name) => ({ name, type: 'u32' as const })),
      ...(xc4 ? [{ name: 'xpad', type: 'i32' as const }] : []), ...weightUniforms(wf), ...CLAMP_UNIFORMS],
    workgroupSize: [WG, 1, 1],
    source(s) {
      dotHelpers(s, path);
      const wr = weightReader(s, wf);
      if (u8) unpackU8(s);
      const ux = u8 ? 'unpack_u8' : 'unpack_i8';
      const lx = xc4 ? '' : int8Loader(s, 'x', x.dtype);
      // A 1x1 conv with stride 1 and no padding over whole words of channels reads x directly: no tap or lane test.
      const lane = pointwise
        ? (i: number, j: number) => `${lx}(xo${i} + q${j})`
        : (i: number, j: number) => `select(0, select(zpx, ${lx}(xo${i} + q${j}), ok${i}), ci + ${j}u < u.Cg)`;
      const word = (i: number) => s.load('x', `xo${i} + c4 * u.Q`);
      // The epilogue is written once, in a loop over the block's pixels: a switch copies pixel i's accumulators
      // into e0 .. e{cb-1} (and its sum of x into ex), so the requantization is compiled cb times, not pb * cb
      // (SwiftShader's compile time of the unrolled form grew with it: docs/quantization.md).
      const acc = (r: number) => `${zw0 ? '' : 'let zpw = i32(params[4u + u.C + m]);\n      '}let acc = ${accExpr(`e${r}`, 'm', zw0, xc4 ? '(ex - u.xpad)' : 'ex')};`;
      const stores = yc4
        ? range(cb / 4).map((r4) => `if (c0 + ${4 * r4}u < u.C) ${storeC4(s, y.dtype, `c0 + ${4 * r4}u`,
          `(n * u.YC4 + c0 / 4u + ${r4}u) * u.P + p0 + i`, (j) => acc(4 * r4 + j))}`)
        : R.map((r) => `if (c0 + ${r}u < u.C) {
      let m = c0 + ${r}u;
      ${acc(r)}
      ${epilogueTail(s, y.dtype, 'm', '(n * u.C + m) * u.P + p0 + i')}
    }`);
      const epilogue = `for (var i = 0u; i < ${pb}u; i = i + 1u) {
    if (p0 + i >= u.P) { break; }
    ${R.map((r) => `var e${r} = 0;`).join(' ')}${zw0 ? '' : ' var ex = 0;'}
    switch i {
      ${I.map((i) => `case ${i}u: { ${R.map((r) => `e${r} = d${i}_${r};`).join(' ')}${zw0 ? '' : ` ex = sx${i};`} }`).join('\n      ')}
      default: {}
    }
    ${stores.join('\n    ')}
  }`;
      const sumX = (i: number, v: string) => (zw0 ? '' : `\n      sx${i} = sx${i} + ${v};`);
      const packedX = xc4
        ? (i: number) => (pointwise ? word(i) : `select(zxw, ${word(i)}, ok${i})`)
        : (i: number) => `pack_i8(vec4<i32>(${range(4).map((j) => lane(i, j)).join(', ')}))`;
      const unpackedX = xc4
        ? (i: number) => (pointwise ? `${ux}(${word(i)})` : `select(vec4<i32>(zpx), ${ux}(${word(i)}), ok${i})`)
        : (i: number) => `vec4<i32>(${range(4).map((j) => lane(i, j)).join(', ')})`;
      s.main(`${s.linearIndex('u.size')}
  let p0 = (index % u.pblocks) * ${pb}u;
  let c0 = ((index / u.pblocks) % u.cblocks) * ${cb}u;
  let n = index / (u.pblocks * u.cblocks);
  let x_base = (n * u.Cin + (c0 / u.Mg) * u.Cg) * u.Q;
  let zpx = i32(params[2])${u8 ? ' + 128' : ''};
  ${path === 'packed' && !zw0 ? 'let ones = 0x01010101u;' : ''}${path === 'packed' && xc4 && !pointwise ? '\n  let zxw = pack_i8(vec4<i32>(zpx));' : ''}
  ${I.map((i) => `let pp${i} = min(p0 + ${i}u, u.P - 1u) * u.T;`).join('\n  ')}
  ${R.map((r) => `let wr${r} = min(c0 + ${r}u, u.C - 1u) * ${wr.stride('u.T * u.C4')};`).join('\n  ')}
  ${zw0 ? '' : I.map((i) => `var sx${i} = 0;`).join(' ')}
  ${I.map((i) => R.map((r) => `var d${i}_${r} = 0;`).join(' ')).join('\n  ')}
  for (var t = 0u; t < u.T; t = t + 1u) {
    ${I.map((i) => pointwise ? `let xo${i} = x_base + pp${i};` : `let off${i} = ${s.load('taps', `pp${i} + t`)};
    let ok${i} = off${i} >= 0;
    let xo${i} = x_base + u32(max(off${i}, 0));`).join('\n    ')}
    let wt = t * u.C4;
    for (var c4 = 0u; c4 < u.C4; c4 = c4 + 1u) {
      ${xc4 ? '' : `let ci = c4 * 4u;
      ${range(4).map((j) => pointwise ? `let q${j} = (ci + ${j}u) * u.Q;` : `let q${j} = min(ci + ${j}u, u.Cg - 1u) * u.Q;`).join('\n      ')}
      `}${path === 'packed' ? `${I.map((i) => `let px${i} = ${packedX(i)};${sumX(i, `dot4_i8(px${i}, ones)`)}`).join('\n      ')}
      ${R.map((r) => `let pw${r} = ${wr.word(`wr${r}`, 'wt + c4')};
      ${I.map((i) => `d${i}_${r} = d${i}_${r} + dot4_i8(px${i}, pw${r});`).join(' ')}`).join('\n      ')}`
    // Unpacked: x stays in registers as it was loaded and each weight word is unpacked once for the PB pixels.
    : `${I.map((i) => `let xv${i} = ${unpackedX(i)};${sumX(i, `dot(xv${i}, vec4<i32>(1))`)}`).join('\n      ')}
      ${R.map((r) => `let wv${r} = ${wr.quad(`wr${r}`, 'wt + c4')};
      ${I.map((i) => `d${i}_${r} = d${i}_${r} + dot(xv${i}, wv${r});`).join(' ')}`).join('\n      ')}`}
    }
  }
  ${epilogue}`);
    },
    run: () => ({
      workgroups: dispatchLinear(size, WG),
      // A c4 x is addressed in words: a group's Cg channels are C4 words, an image's C channels group * C4.
      uniforms: { size, C, K, Cin: xc4 ? g.group * C4 : g.C, Cg: xc4 ? C4 : Cg, Mg, P: g.P, Q: g.Q, T: g.T, C4, cblocks, pblocks,
        ...(yc4 ? { YC4: Math.ceil(C / 4) } : {}), ...(xc4 ? { xpad: g.T * (4 * C4 - Cg) * zxk } : {}), ...weightUniformValues(wf, g.T * C4), q_lo: lo, q_hi: hi },
    }),
  };
}

/** A 1x1 conv, stride 1, no padding, whole words of input channels per group: x is read without the tap table. */
export const isPointwise = (g: ConvShape) => g.T === 1 && (g.C / g.group) % 4 === 0 && g.P === g.Q && g.taps.every((o, p) => o === p);

/**
 * x [rows, K] times the packed w rows, CB output channels per invocation: x's four lanes of a word are loaded and
 * (packed path) packed once for the CB channels; channels past C read the last row and are not stored.
 */
function matmulProgram(x: GpuTensorInfo, y: GpuTensorInfo, rows: number, K: number, C: number, wf: WeightForm, path: QuantDotPath, lo: number, hi: number, zw0: boolean): ProgramSpec {
  const blocks = Math.ceil(C / CB);
  const size = rows * blocks;
  const R = range(CB);
  return {
    key: `qdq-matmul:${x.dtype}:${y.dtype}:${path}:cb${CB}${zw0 ? ':zw0' : ''}${formKey(wf)}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'w', type: 'u32' }, { name: 'params', type: 'f32' }, { name: 'y', type: y.storage }],
    uniforms: [...COMMON_UNIFORMS, { name: 'blocks', type: 'u32' }, ...weightUniforms(wf), ...CLAMP_UNIFORMS],
    workgroupSize: [WG, 1, 1],
    source(s) {
      dotHelpers(s, path);
      const wr = weightReader(s, wf);
      const lx = int8Loader(s, 'x', x.dtype);
      const sumX = zw0 ? '' : `\n    sx = sx + ${path === 'packed' ? 'dot4_i8(px, 0x01010101u)' : 'dot(vx, vec4<i32>(1))'};`;
      s.main(`${s.linearIndex('u.size')}
  let c0 = (index % u.blocks) * ${CB}u;
  let row = index / u.blocks;
  let x_row = row * u.K;
  let zpx = i32(params[2]);
  ${R.map((r) => `let wr${r} = min(c0 + ${r}u, u.C - 1u) * ${wr.stride('u.K4')};`).join('\n  ')}
  ${zw0 ? '' : 'var sx = 0;'}
  ${R.map((r) => `var d${r} = 0;`).join(' ')}
  for (var k4 = 0u; k4 < u.K4; k4 = k4 + 1u) {
    var vx = vec4<i32>(0);
    for (var j = 0u; j < 4u; j = j + 1u) {
      let k = k4 * 4u + j;
      vx[j] = select(0, ${lx}(x_row + min(k, u.K - 1u)), k < u.K);
    }${path === 'packed' ? '\n    let px = pack_i8(vx);' : ''}${sumX}
    ${R.map((r) => path === 'packed' ? `d${r} = d${r} + dot4_i8(px, ${wr.word(`wr${r}`, 'k4')});` : `d${r} = d${r} + dot(vx, ${wr.quad(`wr${r}`, 'k4')});`).join('\n    ')}
  }
  ${R.map((r) => `if (c0 + ${r}u < u.C) {
    let m = c0 + ${r}u;
    ${zw0 ? '' : 'let zpw = i32(params[4u + u.C + m]);\n    '}let acc = ${accExpr(`d${r}`, 'm', zw0, 'sx')};
    ${epilogueTail(s, y.dtype, 'm', 'row * u.C + m')}
  }`).join('\n  ')}`);
    },
    run: () => ({ workgroups: dispatchLinear(size, WG), uniforms: { size, C, K, K4: Math.ceil(K / 4), blocks, ...weightUniformValues(wf, Math.ceil(K / 4)), q_lo: lo, q_hi: hi } }),
  };
}

/** The workgroup-tiled int8 GEMM (GPU adapters): workgroup size, accumulators per invocation, K words per slice. */
const TILE = { wx: 16, wy: 16, rm: 4, rn: 4, tkw: 4 } as const;

type TiledForm = 'conv' | '1x1' | 'matmul';

/**
 * The int8 product as a workgroup-tiled implicit GEMM, for adapters that are real GPUs (KernelEnv.cpuAdapter false):
 * output channels x pixels (a conv of one group, per image) or output columns x rows (a matmul) cut into TM x TN
 * tiles (64 x 64), one per workgroup. K is walked TKW words (16 int8 codes) at a time: the workgroup loads its
 * channels' packed weight words and its pixels' x codes into workgroup memory cooperatively, one word of each per
 * invocation, x's four lanes gathered (through the tap table for a conv) and packed into one u32 ONCE per tile, so the
 * 64 channels of the tile share each gather. Each invocation then keeps RM x RN = 4 x 4 i32 accumulators (channels
 * lid.y + r WY, pixels lid.x + c WX), reading RM weight and RN x words per k word for RM RN dot products (unpacked:
 * each word unpacked once for those). Words past K, channels past C and pixels past P load as 0 and are not stored,
 * so the exact sums and the epilogue are the direct kernels' (bit-identical outputs).
 *
 * On CPU adapters (SwiftShader) the direct kernels stay: there a barrier switches between the workgroup's
 * coroutines and a tiled kernel compiles several times slower (matmul.ts chooseTiling has the numbers).
 *
 * A conv's c4 x (io.xc4) goes into x_tile as loaded, one word per pixel, tap and four channels (a padding tap: x's
 * zero point in every lane; pad lanes past C subtracted from the sum of x as convProgram does, u.xpad). A c4 y
 * (io.yc4) needs each invocation to own four consecutive channels: rows are then lid.y RM + r instead of lid.y + r WY,
 * and each pixel's four channels are stored as one word (storeC4).
 */
function tiledProgram(io: Io, form: TiledForm, dims: { N: number; P: number; K: number; Kw: number; g?: ConvShape }, wf: WeightForm,
  path: QuantDotPath, C: number, lo: number, hi: number, zw0: boolean, zx = 0): ProgramSpec {
  const { x, y, xc4, yc4 } = io;
  const { wx, wy, rm, rn, tkw } = TILE;
  if ((xc4 || yc4) && form === 'matmul') throw new GpuUnsupported('QdqMatMul: no c4 layout');
  if (yc4 && rm !== 4) throw new GpuUnsupported(`QdqConv: a c4 output needs 4 rows per invocation, not ${rm}`);
  // The tile row of accumulator r of this invocation.
  const row = (r: number) => (yc4 ? `lid.y * ${rm}u + ${r}u` : `lid.y + ${r * wy}u`);
  const tm = wy * rm;
  const tn = wx * rn;
  const threads = wx * wy;
  const g = dims.g;
  const RM = range(rm);
  const RN = range(rn);
  return {
    key: `qdq-gemm-tiled:${form}:${x.dtype}:${y.dtype}:${path}:${wx}x${wy}:${rm}x${rn}:k${tkw}${zw0 ? ':zw0' : ''}${layoutKey(io)}${formKey(wf)}`,
    bindings: [
      { name: 'x', type: x.storage }, { name: 'w', type: 'u32' }, ...(form === 'conv' ? [{ name: 'taps', type: 'i32' as const }] : []), { name: 'params', type: 'f32' }, { name: 'y', type: y.storage },
    ],
    uniforms: [...['C', 'K', 'Kw', 'P', 'Q', 'T', 'C4', 'Cg', ...(yc4 ? ['YC4'] : [])].map((name) => ({ name, type: 'u32' as const })),
      ...(xc4 ? [{ name: 'xpad', type: 'i32' as const }] : []), ...weightUniforms(wf), ...CLAMP_UNIFORMS],
    workgroupSize: [wx, wy, 1],
    source(s) {
      dotHelpers(s, path);
      const wr = weightReader(s, wf);
      const lx = xc4 ? '' : int8Loader(s, 'x', x.dtype);
      s.helper(`var<workgroup> x_tile: array<u32, ${tkw * tn}>; // [TKW=${tkw}, TN=${tn}] packed x words`);
      s.helper(`var<workgroup> w_tile: array<u32, ${tm * tkw}>; // [TM=${tm}, TKW=${tkw}] packed w words`);
      // The four lanes of x's word kw at pixel (or row) p, for kw < Kw and p < P.
      let lanes: string;
      if (xc4) {
        lanes = form === 'conv'
          ? `let t = kw / u.C4;
      let off = ${s.load('taps', 'p * u.T + t')};
      word = select(zxw, ${s.load('x', 'x_base + (kw - t * u.C4) * u.Q + u32(max(off, 0))')}, off >= 0);`
          : `word = ${s.load('x', 'x_base + kw * u.Q + p')};`;
      } else if (form === 'conv') {
        lanes = `let t = kw / u.C4;
      let ci = (kw - t * u.C4) * 4u;
      let off = ${s.load('taps', 'p * u.T + t')};
      let xo = x_base + u32(max(off, 0));
      ${range(4).map((j) => `let l${j} = select(0, select(zpx, ${lx}(xo + min(ci + ${j}u, u.Cg - 1u) * u.Q), off >= 0), ci + ${j}u < u.Cg);`).join('\n      ')}`;
      } else if (form === '1x1') {
        lanes = range(4).map((j) => `let l${j} = ${lx}(x_base + p + (kw * 4u + ${j}u) * u.Q);`).join('\n      ');
      } else {
        lanes = range(4).map((j) => `let l${j} = select(0, ${lx}(p * u.K + min(kw * 4u + ${j}u, u.K - 1u)), kw * 4u + ${j}u < u.K);`).join('\n      ');
      }
      const compute = path === 'packed'
        ? `${RN.map((c) => `let xw${c} = x_tile[kk * ${tn}u + lid.x + ${c * wx}u];`).join(' ')}
      ${RM.map((r) => `let ww${r} = w_tile[(${row(r)}) * ${tkw}u + kk];`).join(' ')}
      ${zw0 ? '' : RN.map((c) => `sx${c} = sx${c} + dot4_i8(xw${c}, 0x01010101u);`).join(' ')}
      ${RM.map((r) => RN.map((c) => `d${r}_${c} = d${r}_${c} + dot4_i8(xw${c}, ww${r});`).join(' ')).join('\n      ')}`
        : `${RN.map((c) => `let xv${c} = unpack_i8(x_tile[kk * ${tn}u + lid.x + ${c * wx}u]);`).join(' ')}
      ${RM.map((r) => `let wv${r} = unpack_i8(w_tile[(${row(r)}) * ${tkw}u + kk]);`).join(' ')}
      ${zw0 ? '' : RN.map((c) => `sx${c} = sx${c} + dot(xv${c}, vec4<i32>(1));`).join(' ')}
      ${RM.map((r) => RN.map((c) => `d${r}_${c} = d${r}_${c} + dot(xv${c}, wv${r});`).join(' ')).join('\n      ')}`;
      const out = form === 'matmul' ? 'p * u.C + m' : '(wid.z * u.C + m) * u.P + p';
      const acc = (r: number, c: number) => `${zw0 ? '' : 'let zpw = i32(params[4u + u.C + m]);\n      '}let acc = ${accExpr(`d${r}_${c}`, 'm', zw0, xc4 ? `(sx${c} - u.xpad)` : `sx${c}`)};`;
      const stores = yc4 ? RN.map((c) => `{
    let m0 = row0 + lid.y * ${rm}u;
    let p = col0 + lid.x + ${c * wx}u;
    if (m0 < u.C && p < u.P) ${storeC4(s, y.dtype, 'm0', '(wid.z * u.YC4 + m0 / 4u) * u.P + p', (j) => acc(j, c))}
  }`) : RM.flatMap((r) => RN.map((c) => `{
    let m = row0 + lid.y + ${r * wy}u;
    let p = col0 + lid.x + ${c * wx}u;
    if (m < u.C && p < u.P) {
      ${acc(r, c)}
      ${epilogueTail(s, y.dtype, 'm', out)}
    }
  }`));
      s.main(`let row0 = wid.y * ${tm}u;
  let col0 = wid.x * ${tn}u;
  let tid = lid.y * ${wx}u + lid.x;
  let x_base = wid.z * ${form === 'matmul' ? '0u' : 'u.Cg * u.Q'};
  let zpx = i32(params[2]);${xc4 && form === 'conv' ? '\n  let zxw = pack_i8(vec4<i32>(zpx));' : ''}
  ${zw0 ? '' : RN.map((c) => `var sx${c} = 0;`).join(' ')}
  ${RM.map((r) => RN.map((c) => `var d${r}_${c} = 0;`).join(' ')).join('\n  ')}
  let slices = (u.Kw + ${tkw - 1}u) / ${tkw}u;
  // No early return: every invocation must reach the barriers.
  for (var sl = 0u; sl < slices; sl = sl + 1u) {
    let k0 = sl * ${tkw}u;
    for (var i = tid; i < ${tkw * tn}u; i = i + ${threads}u) {
      let kw = k0 + i / ${tn}u;
      let p = col0 + i % ${tn}u;
      var word = 0u;
      if (kw < u.Kw && p < u.P) {
      ${xc4 ? lanes : `${lanes}
        word = pack_i8(vec4<i32>(l0, l1, l2, l3));`}
      }
      x_tile[i] = word;
    }
    for (var i = tid; i < ${tm * tkw}u; i = i + ${threads}u) {
      let m = row0 + i / ${tkw}u;
      let kw = k0 + i % ${tkw}u;
      var word = 0u;
      if (m < u.C && kw < u.Kw) { word = ${wr.word(`m * ${wr.stride('u.Kw')}`, 'kw')}; }
      w_tile[i] = word;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${tkw}u; kk = kk + 1u) {
      ${compute}
    }
    workgroupBarrier();
  }
  ${stores.join('\n  ')}`);
    },
    run: () => ({
      workgroups: [Math.ceil(dims.P / tn), Math.ceil(C / tm), dims.N],
      // A c4 x is addressed in words: an image's C channels are C4 words.
      uniforms: { C, K: dims.K, Kw: dims.Kw, P: dims.P, Q: g?.Q ?? 0, T: g?.T ?? 1, C4: g ? Math.ceil(g.C / 4) : 0, Cg: g ? (xc4 ? Math.ceil(g.C / 4) : g.C) : 0,
        ...(yc4 ? { YC4: Math.ceil(C / 4) } : {}), ...(xc4 ? { xpad: g!.T * (4 * Math.ceil(g!.C / 4) - g!.C) * zx } : {}),
        ...weightUniformValues(wf, dims.Kw), q_lo: lo, q_hi: hi },
    }),
  };
}

function requireInt8(node: Node, t: GpuTensorInfo, what: string): void {
  if (t.dtype !== 'int8' && t.dtype !== 'uint8') throw new GpuUnsupported(`${node.op}: ${what} is ${t.dtype}; int8 or uint8 expected`);
}

// The weights (input 3) and every parameter are read on the host at plan time; only x is bound as a tensor.
const HOST = [1, 2, 3, 4, 5, 6, 7, 8, 9];

/**
 * A QdqConv's x and y as the kernels see them: a c4 value (x_layout / y_layout, c4Type) with its quantized type and
 * logical shape [N, C, ...spatial] (C from w for x, the output channels M for y), its uint32 storage kept.
 */
function convIo(node: Node, x: GpuTensorInfo, y: GpuTensorInfo, w: GpuTensorInfo): Io {
  const group = attrInt(node, 'group', 1);
  const xq = c4Type(node, 'x');
  const yq = c4Type(node, 'y');
  const logical = (t: GpuTensorInfo, q: DType | undefined, C: number): GpuTensorInfo => {
    if (!q) return t;
    if (t.dtype !== 'uint32' || t.shape[1] !== Math.ceil(C / 4)) throw new GpuUnsupported(`${node.op}: a c4 value must be uint32 [N, ${Math.ceil(C / 4)}, ...], not ${t.dtype} [${t.shape.join(', ')}]`);
    return { ...t, dtype: q, shape: [t.shape[0]!, C, ...t.shape.slice(2)] };
  };
  return { x: logical(x, xq, w.shape[1]! * group), y: logical(y, yq, w.shape[0]!), xc4: !!xq, yc4: !!yq };
}

const qdqConv: GpuKernel = {
  hostInputs: HOST,
  plan(node, inputs, [out], env) {
    const [, , , w] = inputs as GpuTensorInfo[];
    const io = convIo(node, inputs[0]!, out!, w!);
    const { x, y } = io;
    requireInt8(node, x, 'x');
    requireInt8(node, w!, 'w');
    if (!w!.value) throw new GpuUnsupported(`${node.op}: w must be a constant`);
    if (sizeOfShape(y.shape) === 0) return { calls: [] };
    const g = convShape(node, x, w!);
    const K = (g.C / g.group) * g.T;
    checkK(node.op, K);
    const depthwise = g.group > 1 && g.C === g.group && g.M === g.group;
    if (io.xc4 && !depthwise && g.group > 1 && (g.C / g.group) % 4 !== 0) throw new GpuUnsupported(`${node.op}: a c4 x needs 4 | input channels per group`);
    const wf = weightForm(node, w!.value);
    const conv = depthwise ? undefined : packConvWeights(w!.value, wf, g.M, g.C / g.group, g.T);
    const packed = conv?.store ?? packDepthwiseWeights(w!.value, wf, g.M, g.T);
    // A depthwise conv's table holds each channel's sum of w over its taps, a conv's over its row of K.
    const { table, lo, hi, zw0 } = params(node, [x, ...inputs.slice(1)], y.dtype, g.M, conv?.sums ?? depthwiseSums(w!.value, wf, g.M, g.T), wf);
    const zx = (table.data as Float32Array)[2]!;
    const path = planQuantDotPath(env);
    const pointwise = !depthwise && isPointwise(g);
    // A GPU adapter tiles ungrouped convs through workgroup memory; CPU adapters keep the direct kernels.
    const tiled = !depthwise && !env.cpuAdapter && g.group === 1;
    const win = depthwise ? window2d(node, x.shape.slice(2), w!.shape.slice(2)) : undefined;
    const program = depthwise ? depthwiseConvProgram(io, g, win, wf, g.M, lo, hi)
      : tiled ? tiledProgram(io, pointwise ? '1x1' : 'conv', { N: g.N, P: g.P, K, Kw: g.T * Math.ceil(g.C / 4), g }, wf, path, g.M, lo, hi, zw0, zx)
      : convProgram(io, g, wf, path, g.M, lo, hi, zw0, zx);
    if (pointwise || win) {
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
    const wf = weightForm(node, w!.value);
    const { store: packed, sums } = transB ? packWeights(w!.value, wf, N, K, K, 1) : packWeights(w!.value, wf, N, K, 1, N);
    const { table, lo, hi, zw0 } = params(node, inputs, y!.dtype, N, sums, wf);
    const rows = sizeOfShape(x!.shape) / K;
    const path = planQuantDotPath(env);
    // Tiled on GPU adapters unless x has a few rows only (a classifier's GEMV: each weight word is used once anyway).
    const program = !env.cpuAdapter && rows > MATMUL_DIRECT_ROWS
      ? tiledProgram({ x: x!, y: y!, xc4: false, yc4: false }, 'matmul', { N: 1, P: rows, K, Kw: Math.ceil(K / 4) }, wf, path, N, lo, hi, zw0)
      : matmulProgram(x!, y!, rows, K, N, wf, path, lo, hi, zw0);
    const tensors: TensorSlot[] = [{ input: 0 }, { constant: 0 }, { constant: 1 }, { output: 0 }];
    return { calls: [{ program, tensors }], constants: [packed, table], sharedConstants: [0] };
  },
};

export const kernels: Record<string, GpuKernel> = { [QDQ_CONV]: qdqConv, [QDQ_MATMUL]: qdqMatMul };
