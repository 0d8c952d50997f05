import type { Node } from '../../../ir/graph.js';
import { concreteWindow, readWindowAttrs } from '../../../ir/ops/conv-geometry.js';
import type { HostTensor } from '../../../ir/tensor.js';
import { dispatchLinear, type ProgramSpec } from '../program.js';
import { dotHelpers } from './quant-dot.js';
import { int8Loader, type ConvShape } from './quant-matmul.js';
import { CLAMP_UNIFORMS, epilogueTail, layoutKey, range, storeC4, unpackU8, WG, type Io } from './qdq-epilogue.js';
import { formKey, packRows, weightCodes, weightReader, weightUniforms, weightUniformValues, type WeightForm } from './qdq-weights.js';

/**
 * The depthwise QdqConv kernels (group = input channels = output channels; kernels/qdq-gemm.ts plans them on every
 * adapter): four channels per invocation as vec4<i32> lanes, a per-pixel form (any window, 1-D to 3-D) and a
 * row-window form for 1-D/2-D windows with column dilation 1. docs/quantization.md has the measurements.
 */

/**
 * The stores of a depthwise block (accumulators a0 .. a{n-1}, vec4<i32> of channels m0 .. m0 + 3, minus zsw),
 * written once: a loop over the block's pixels, a switch picking pixel i's accumulator, so the requantization is
 * compiled 4 times, not 4 n (SwiftShader's compile time grew with the unrolled form). `past` is true for a pixel
 * past the end (with i in scope); `out4` is pixel i's c4 word, `out` element m of pixel i.
 */
function depthwiseEpilogue(s: Parameters<ProgramSpec['source']>[0], io: Io, n: number, past: string, out4: string, out: string): string {
  const body = io.yc4
    ? storeC4(s, io.y.dtype, 'm0', out4, (j) => `let acc = e[${j}] - zsw[${j}];`)
    : range(4).map((j) => `if (m0 + ${j}u < u.C) {
      let m = m0 + ${j}u;
      let acc = e[${j}] - zsw[${j}];
      ${epilogueTail(s, io.y.dtype, 'm', out)}
    }`).join('\n    ');
  return `for (var i = 0u; i < ${n}u; i = i + 1u) {
    if (${past}) { break; }
    var e = vec4<i32>(0);
    switch i {
      ${range(n).map((i) => `case ${i}u: { e = a${i}; }`).join('\n      ')}
      default: {}
    }
    ${body}
  }`;
}

/** Output pixels per invocation of a depthwise conv. */
const DW_PB = 4;

/** A 1-D or 2-D conv's window as rows [H, W] (a 1-D conv is one row), for index arithmetic instead of a tap table. */
export interface Window2d {
  H: number; W: number; OW: number; KH: number; KW: number; sh: number; sw: number; dh: number; dw: number; ph: number; pw: number;
}

export function window2d(node: Node, spatial: number[], kernel: number[]): Window2d | undefined {
  if (spatial.length > 2) return undefined;
  const a = readWindowAttrs(node, spatial.length, kernel);
  const win = concreteWindow(spatial, a);
  // [rows axis, columns axis]: a 1-D window is the row of a 1-row image.
  const two = (v: number[], d: number): [number, number] => (v.length === 2 ? [v[0]!, v[1]!] : [d, v[0]!]);
  const [H, W] = two(spatial, 1);
  const [KH, KW] = two(a.kernel, 1);
  const [sh, sw] = two(a.strides, 1);
  const [dh, dw] = two(a.dilations, 1);
  const [ph, pw] = two(win.padsBegin, 0);
  return { H, W, OW: two(win.out, 1)[1], KH, KW, sh, sw, dh, dw, ph, pw };
}

/**
 * Depthwise weights [M, 1, ...kernel] as rows of four channels, quad t of row c4 packing w[4 c4 + j, 0, t] in code j
 * (0 past M): one quad serves the four channels of an invocation at a tap. Held in form f (qdq-weights.ts).
 */
export function packDepthwiseWeights(w: HostTensor, f: WeightForm, M: number, T: number): HostTensor {
  return packRows(w, f, `dw:${M}:${T}`, Math.ceil(M / 4), T, (v, quads) => {
    for (let m = 0; m < M; m++) {
      for (let t = 0; t < T; t++) quads[(m >> 2) * T + t]! |= (v[m * T + t]! & 0xff) << ((m & 3) * 8);
    }
  }).store;
}

/** Each channel's sum of its int8-domain depthwise weight codes over the T taps (the table's w sums). */
export function depthwiseSums(w: HostTensor, f: WeightForm, M: number, T: number): number[] {
  const v = weightCodes(w, f);
  return Array.from({ length: M }, (_, m) => {
    let sum = 0;
    for (let t = 0; t < T; t++) sum += v[m * T + t]!;
    return sum;
  });
}

/**
 * A depthwise conv (group = input channels = output channels): each invocation computes DW_PB pixels of four
 * channels, as vec4<i32> lanes. K is only T (9 for 3x3), so the exact products are summed in i32 directly, as
 * sum_t x'(w - zw) - zx sum_t (w - zw) = sum_t (x' - zx)(w - zw), where x' is x, or zx at a padding tap (which then
 * adds nothing): no subtraction per tap, sum_t (w - zw) from the table (depthwiseSums, less T zw). Each tap's weight
 * word (four channels, packDepthwiseWeights) is loaded and unpacked once for the DW_PB pixels. A 1-D or 2-D conv
 * finds each tap's input position by index arithmetic (stride, dilation, pads from the node: no per-pixel tap-table
 * load; rows and columns outside the input are padding); a 3-D one reads the tap table. A c4 x is read one word per pixel and tap for the four
 * channels, else four codes; a c4 y is stored one word per pixel (storeC4), else one code per channel. Channels past
 * C compute on clamped indices and are not stored (a c4 y holds the zero point there).
 */
function depthwiseProgram(io: Io, g: ConvShape, win: Window2d | undefined, wf: WeightForm, C: number, lo: number, hi: number): ProgramSpec {
  const { x, y, xc4, yc4 } = io;
  const pb = DW_PB;
  const C4 = Math.ceil(C / 4);
  const pblocks = Math.ceil(g.P / pb);
  const size = g.N * C4 * pblocks;
  const I = range(pb);
  const J = range(4);
  const geometry = ['H', 'W', 'OW', 'KH', 'KW', 'sh', 'sw', 'dh', 'dw', 'ph', 'pw'] as const;
  return {
    key: `qdq-conv-depthwise:${x.dtype}:${y.dtype}:pb${pb}${win ? ':2d' : ':taps'}${layoutKey(io)}${formKey(wf)}`,
    bindings: [
      { name: 'x', type: x.storage }, { name: 'w', type: 'u32' }, ...(win ? [] : [{ name: 'taps', type: 'i32' as const }]), { name: 'params', type: 'f32' }, { name: 'y', type: y.storage },
    ],
    uniforms: [...['size', 'C', 'C4', 'P', 'Q', 'T', 'pblocks', ...(win ? geometry : [])].map((name) => ({ name, type: 'u32' as const })), ...weightUniforms(wf), ...CLAMP_UNIFORMS],
    workgroupSize: [WG, 1, 1],
    source(s) {
      dotHelpers(s, 'unpacked'); // pack_i8 / unpack_i8 only: the products are vec4<i32>
      const wr = weightReader(s, wf);
      if (xc4) unpackU8(s);
      const lx = xc4 ? '' : int8Loader(s, 'x', x.dtype);
      // x's four channels at spatial offset o: int8-domain codes, or a c4 word's as uint8 values (unpack_u8).
      const load = (o: string) => (xc4 ? `unpack_u8(${s.load('x', `x_base + ${o}`)})` : `vec4<i32>(${J.map((j) => `${lx}(xb${j} + ${o})`).join(', ')})`);
      const mac = (i: number, ok: string, o: string) => `let o${i} = select(0u, ${o}, ${ok});
      a${i} = a${i} + select(zx4, ${load(`o${i}`)}, ${ok}) * wv;`;
      const loop = win
        ? `for (var kh = 0u; kh < u.KH; kh = kh + 1u) {
    ${I.map((i) => `let h${i} = ih${i} + i32(kh * u.dh);
    let rh${i} = u32(h${i}) < u.H;
    let row${i} = u32(h${i}) * u.W;`).join('\n    ')}
    for (var kw = 0u; kw < u.KW; kw = kw + 1u) {
      let wv = ${wr.quad(`c4 * ${wr.stride('u.T')}`, 'kh * u.KW + kw')} - zw;
      ${I.map((i) => `let c${i} = iw${i} + i32(kw * u.dw);
      let ok${i} = rh${i} && u32(c${i}) < u.W;
      ${mac(i, `ok${i}`, `row${i} + u32(c${i})`)}`).join('\n      ')}
    }
  }`
        : `for (var t = 0u; t < u.T; t = t + 1u) {
    let wv = ${wr.quad(`c4 * ${wr.stride('u.T')}`, 't')} - zw;
    ${I.map((i) => `let off${i} = ${s.load('taps', `pp${i} + t`)};
    ${mac(i, `off${i} >= 0`, `u32(max(off${i}, 0))`)}`).join('\n    ')}
  }`;
      const stores = depthwiseEpilogue(s, io, pb, 'p0 + i >= u.P', '(n * u.C4 + c4) * u.P + p0 + i', '(n * u.C + m) * u.P + p0 + i');
      s.main(`${s.linearIndex('u.size')}
  let p0 = (index % u.pblocks) * ${pb}u;
  let c4 = (index / u.pblocks) % u.C4;
  let n = index / (u.pblocks * u.C4);
  let m0 = c4 * 4u;
  let zx4 = vec4<i32>(i32(params[2])${xc4 ? ' + 128' : ''});
  let zw = vec4<i32>(${J.map((j) => `i32(params[4u + u.C + min(m0 + ${j}u, u.C - 1u)])`).join(', ')});
  // zx sum_t (w - zw) per channel, from the sum of w in the table: subtracted once instead of zx at every tap.
  let zsw = zx4 * (vec4<i32>(${J.map((j) => `i32(params[4u + 3u * u.C + min(m0 + ${j}u, u.C - 1u)])`).join(', ')}) - i32(u.T) * zw);
  ${xc4 ? 'let x_base = (n * u.C4 + c4) * u.Q;' : J.map((j) => `let xb${j} = (n * u.C + min(m0 + ${j}u, u.C - 1u)) * u.Q;`).join('\n  ')}
  ${win ? I.map((i) => `let pix${i} = min(p0 + ${i}u, u.P - 1u);
  let ih${i} = i32((pix${i} / u.OW) * u.sh) - i32(u.ph);
  let iw${i} = i32((pix${i} % u.OW) * u.sw) - i32(u.pw);`).join('\n  ') : I.map((i) => `let pp${i} = min(p0 + ${i}u, u.P - 1u) * u.T;`).join('\n  ')}
  ${I.map((i) => `var a${i} = vec4<i32>(0);`).join(' ')}
  ${loop}
  ${stores}`);
    },
    run: () => ({
      workgroups: dispatchLinear(size, WG),
      uniforms: { size, C, C4, P: g.P, Q: g.Q, T: g.T, pblocks, ...(win ?? {}), ...weightUniformValues(wf, g.T), q_lo: lo, q_hi: hi },
    }),
  };
}

/** Output pixels of one row per invocation of the row-window depthwise kernel (depthwiseRowProgram). */
const DW_ROW = 8;

let rowWindows = true;

/** Plans made from now on take the row-window depthwise kernel where it applies (true, the default) or not (tests). */
export function setDepthwiseRowWindow(on: boolean): void {
  rowWindows = on;
}

/** Whether the row-window depthwise kernel takes a window: 2-D (or 1-D), no column dilation, a small unrolled row. */
const rowWindow = (win: Window2d | undefined): win is Window2d => rowWindows && !!win && win.dw === 1 && win.KW <= 7 && win.sw <= 4;

/**
 * A depthwise conv whose window slides along a row with column dilation 1 (mobilenet's 3x3, stride 1 or 2): each
 * invocation computes DW_ROW consecutive pixels of one output row, for four channels. The pixels of a row share
 * input columns: for each kernel row, the (DW_ROW - 1) sw + KW columns they read are loaded and unpacked once
 * (6 for a 3x3 stride-1 window instead of 12 per kernel row, 9 instead of 12 at stride 2), then each tap's weight word
 * is unpacked once for the DW_ROW pixels. KW and sw are unrolled, so they are in the pipeline key. Otherwise as
 * depthwiseProgram: the exact sums sum_t x'(w - zw) - zx sum_t (w - zw), padding columns and rows read x's zero
 * point, c4 or one code per word on either side. Pixels past the row's end compute on clamped columns and are not
 * stored.
 */
function depthwiseRowProgram(io: Io, g: ConvShape, win: Window2d, wf: WeightForm, C: number, lo: number, hi: number): ProgramSpec {
  const { x, y, xc4, yc4 } = io;
  const rw = DW_ROW;
  const C4 = Math.ceil(C / 4);
  const OH = g.P / win.OW;
  const rblocks = Math.ceil(win.OW / rw);
  const size = g.N * C4 * OH * rblocks;
  const I = range(rw);
  const J = range(4);
  const cols = range((rw - 1) * win.sw + win.KW);
  return {
    key: `qdq-conv-depthwise:${x.dtype}:${y.dtype}:row${rw}:k${win.KW}:s${win.sw}${layoutKey(io)}${formKey(wf)}`,
    bindings: [
      { name: 'x', type: x.storage }, { name: 'w', type: 'u32' }, { name: 'params', type: 'f32' }, { name: 'y', type: y.storage },
    ],
    uniforms: [...['size', 'C', 'C4', 'P', 'Q', 'T', 'OH', 'rblocks', 'H', 'W', 'OW', 'KH', 'sh', 'dh', 'ph', 'pw'].map((name) => ({ name, type: 'u32' as const })), ...weightUniforms(wf), ...CLAMP_UNIFORMS],
    workgroupSize: [WG, 1, 1],
    source(s) {
      dotHelpers(s, 'unpacked');
      const wr = weightReader(s, wf);
      if (xc4) unpackU8(s);
      const lx = xc4 ? '' : int8Loader(s, 'x', x.dtype);
      const load = (o: string) => (xc4 ? `unpack_u8(${s.load('x', `x_base + ${o}`)})` : `vec4<i32>(${J.map((j) => `${lx}(xb${j} + ${o})`).join(', ')})`);
      const stores = depthwiseEpilogue(s, io, rw, 'ow0 + i >= u.OW', '(n * u.C4 + c4) * u.P + pix0 + i', '(n * u.C + m) * u.P + pix0 + i');
      s.main(`${s.linearIndex('u.size')}
  let ow0 = (index % u.rblocks) * ${rw}u;
  let oh = (index / u.rblocks) % u.OH;
  let c4 = (index / (u.rblocks * u.OH)) % u.C4;
  let n = index / (u.rblocks * u.OH * u.C4);
  let m0 = c4 * 4u;
  let pix0 = oh * u.OW + ow0;
  let wb = c4 * ${wr.stride('u.T')};
  let zx4 = vec4<i32>(i32(params[2])${xc4 ? ' + 128' : ''});
  let zw = vec4<i32>(${J.map((j) => `i32(params[4u + u.C + min(m0 + ${j}u, u.C - 1u)])`).join(', ')});
  let zsw = zx4 * (vec4<i32>(${J.map((j) => `i32(params[4u + 3u * u.C + min(m0 + ${j}u, u.C - 1u)])`).join(', ')}) - i32(u.T) * zw);
  ${xc4 ? 'let x_base = (n * u.C4 + c4) * u.Q;' : J.map((j) => `let xb${j} = (n * u.C + min(m0 + ${j}u, u.C - 1u)) * u.Q;`).join('\n  ')}
  let ih = i32(oh * u.sh) - i32(u.ph);
  let iw = i32(ow0 * ${win.sw}u) - i32(u.pw);
  ${cols.map((c) => `let okc${c} = u32(iw + ${c}) < u.W;`).join('\n  ')}
  ${I.map((i) => `var a${i} = vec4<i32>(0);`).join(' ')}
  for (var kh = 0u; kh < u.KH; kh = kh + 1u) {
    let h = ih + i32(kh * u.dh);
    let rh = u32(h) < u.H;
    let row = u32(h) * u.W;
    ${cols.map((c) => `let ok${c} = rh && okc${c};
    let x${c} = select(zx4, ${load(`select(0u, row + u32(iw + ${c}), ok${c})`)}, ok${c});`).join('\n    ')}
    let wt = kh * ${win.KW}u;
    ${range(win.KW).map((kw) => `let wv${kw} = ${wr.quad('wb', `wt + ${kw}u`)} - zw;
    ${I.map((i) => `a${i} = a${i} + x${i * win.sw + kw} * wv${kw};`).join(' ')}`).join('\n    ')}
  }
  ${stores}`);
    },
    run: () => ({
      workgroups: dispatchLinear(size, WG),
      uniforms: { size, C, C4, P: g.P, Q: g.Q, T: g.T, OH, rblocks, H: win.H, W: win.W, OW: win.OW, KH: win.KH, sh: win.sh, dh: win.dh, ph: win.ph, pw: win.pw, ...weightUniformValues(wf, g.T), q_lo: lo, q_hi: hi },
    }),
  };
}

/** The depthwise program for a conv's window: the row-window form where it applies, else the per-pixel one. */
export function depthwiseConvProgram(io: Io, g: ConvShape, win: Window2d | undefined, wf: WeightForm, C: number, lo: number, hi: number): ProgramSpec {
  return rowWindow(win) ? depthwiseRowProgram(io, g, win, wf, C, lo, hi) : depthwiseProgram(io, g, win, wf, C, lo, hi);
}
