import type { DType } from '../../../ir/dtype.js';
import type { Node } from '../../../ir/graph.js';
import { concreteWindow, readWindowAttrs } from '../../../ir/ops/conv-geometry.js';
import { attrInt } from '../../../ir/graph.js';
import { hostTensor, tensorToNumbers, type HostTensor } from '../../../ir/tensor.js';
import { tapTable } from '../../cpu/conv-taps.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, stridesFor, type GpuKernel, type GpuTensorInfo, type ProgramSpec, type TensorSlot } from '../program.js';
import type { ShaderBuilder } from '../wgsl/builder.js';
import { dotHelpers, int32Constant, int8Offset, planQuantDotPath, quantDotPath, type QuantDotPath } from './quant-dot.js';
import { saturateExpr } from './quantize.js';

/**
 * MatMulInteger-10, QLinearMatMul-21, ConvInteger-10 and QLinearConv-10 on WebGPU with integer arithmetic
 * (CPU twins: cpu/kernels/quantize.ts). Each invocation computes one output element over K in steps of four:
 * four operand values are packed into a u32 and multiplied with dot4_i8 (quant-dot.ts), accumulating in i32:
 *   sum_k (a_k - za)(b_k - zb) = sum a_k b_k - za sum b_k - zb sum a_k + K za zb,
 * with the sums of a and b taken by the same dot product against 0x01010101. The QLinear ops requantize in the
 * epilogue: y = saturate(round_half_even(acc * a_scale * b_scale / y_scale) + y_zero_point) (bias first for conv).
 * The conv reads its input through a tap table (the im2col indices, built at plan time as on the CPU), so every
 * spatial rank, pad, stride, dilation and auto_pad shares one kernel; padding contributes x_zero_point, i.e. zero.
 *
 * When ConvInteger's w or MatMulInteger's b is a constant (the quantizer's int8-dynamic files), with a constant or no
 * zero point, the weights are packed at plan time instead (packRows: four int8-domain codes per u32, kept in the
 * session's weight store; the initializer itself is never uploaded, KernelPlan.unboundInputs) and the kernels are
 * register-blocked (packedConvProgram, packedMatmulProgram), with each channel's sum of weight codes and zero point
 * computed on the host.
 */

const WG = 64;

/** `fn <name>(i: u32) -> i32`: element i of a quantized binding moved into the int8 domain. */
export function int8Loader(b: ShaderBuilder, name: string, dtype: DType): string {
  b.helper(`fn ${name}_i8(i: u32) -> i32 {
  return i32(${b.load(name, 'i')}) - ${int8Offset(dtype)};
}`);
  return `${name}_i8`;
}

/** Parameters read per row (m) or column (n): stride 1 for a 1-D tensor, 0 for a scalar. */
const stride = (t: GpuTensorInfo | undefined) => (t && sizeOfShape(t.shape) > 1 ? 1 : 0);

interface Requant {
  y: DType;
}

/**
 * The epilogue statement storing acc (i32) into y, requantized when `rq` is set. The QLinear scales and y's zero
 * point are read from `params` (f32: a's or x's scales, then b's or w's, then y's, then y's zero point), gathered
 * by paramsProgram, so the conv stays within WebGPU's default of 8 storage buffers per stage.
 */
function epilogue(b: ShaderBuilder, rq: Requant | undefined, row: string, col: string): string {
  if (!rq) return b.store('y', 'index', 'acc');
  return `let mult = (params[${row} * u.sa_stride] * params[u.off_sb + ${col} * u.sb_stride]) / params[u.off_sy + ${row} * u.sy_stride];
  let v = f32(acc) * mult;
  ${b.store('y', 'index', saturateExpr('v', `params[u.off_zy + ${row} * u.zy_stride]`, rq.y))}`;
}

const REQUANT_UNIFORMS = ['sa_stride', 'sb_stride', 'sy_stride', 'zy_stride', 'off_sb', 'off_sy', 'off_zy'].map((name) => ({ name, type: 'u32' as const }));

/** Uniform values of the epilogue for the four parameter tensors (scale a, scale b, scale y, zero point y). */
function requantUniforms(t: GpuTensorInfo[]) {
  const n = t.map((x) => sizeOfShape(x.shape));
  const [sa_stride, sb_stride, sy_stride, zy_stride] = t.map(stride);
  return { sa_stride, sb_stride, sy_stride, zy_stride, off_sb: n[0]!, off_sy: n[0]! + n[1]!, off_zy: n[0]! + n[1]! + n[2]! };
}

/** Copies the four requantization parameter tensors into one f32 scratch table (zero points are exact in f32). */
function paramsProgram(t: GpuTensorInfo[]): ProgramSpec {
  const n = t.map((x) => sizeOfShape(x.shape));
  const size = n.reduce((x, y) => x + y, 0);
  const names = ['sa', 'sb', 'sy', 'zy'];
  return {
    key: 'quant-params',
    bindings: [...names.map((name, i) => ({ name, type: t[i]!.storage })), { name: 'params', type: 'f32' }],
    uniforms: ['size', 'n0', 'n1', 'n2'].map((name) => ({ name, type: 'u32' as const })),
    workgroupSize: [WG, 1, 1],
    source(b) {
      b.main(`${b.linearIndex('u.size')}
  let i1 = index - u.n0;
  let i2 = i1 - u.n1;
  let i3 = i2 - u.n2;
  var v = 0.0;
  if (index < u.n0) { v = ${b.loadAs('sa', 'index', 'f32')}; }
  else if (i1 < u.n1) { v = ${b.loadAs('sb', 'i1', 'f32')}; }
  else if (i2 < u.n2) { v = ${b.loadAs('sy', 'i2', 'f32')}; }
  else { v = f32(${b.load('zy', 'i3')}); }
  params[index] = v;`);
    },
    run: () => ({ workgroups: dispatchLinear(size, WG), uniforms: { size, n0: n[0]!, n1: n[1]!, n2: n[2]! } }),
  };
}

const paramsInfo = (t: GpuTensorInfo[]): GpuTensorInfo => ({ dtype: 'float32', shape: [t.reduce((x, y) => x + sizeOfShape(y.shape), 0)], storage: 'f32' });

// ---- matrix product ----

export interface MatMulShape {
  M: number;
  N: number;
  K: number;
  batch: number[];
  aStrides: number[];
  bStrides: number[];
}

/** Batch dims of y with the element strides of A's and B's batches in them (0 where broadcast). */
export function matmulShape(a: GpuTensorInfo, b: GpuTensorInfo, y: GpuTensorInfo): MatMulShape {
  const as = a.shape.length === 1 ? [1, a.shape[0]!] : a.shape;
  const bs = b.shape.length === 1 ? [b.shape[0]!, 1] : b.shape;
  const [M, K] = as.slice(-2) as [number, number];
  const N = bs[bs.length - 1]!;
  const batch = y.shape.slice(0, y.shape.length - (a.shape.length === 1 ? 0 : 1) - (b.shape.length === 1 ? 0 : 1));
  const batchStrides = (s: number[]) => {
    const own = s.slice(0, -2);
    const st = stridesFor(own).map((x) => x * s[s.length - 2]! * s[s.length - 1]!);
    return batch.map((d, i) => {
      const j = i - (batch.length - own.length);
      return j < 0 || own[j] === 1 ? 0 : st[j]!;
    });
  };
  return { M, N, K, batch, aStrides: batchStrides(as), bStrides: batchStrides(bs) };
}

/** t: a, b, za, zb, [params], y; rqParams: the four requantization tensors (for the epilogue's uniforms). */
function matmulProgram(t: GpuTensorInfo[], rq: Requant | undefined, path: QuantDotPath, g: MatMulShape, zaStride: number, zbStride: number, rqParams: GpuTensorInfo[]): ProgramSpec {
  const [a, b] = t as [GpuTensorInfo, GpuTensorInfo];
  const R = g.batch.length;
  const size = sizeOfShape(g.batch) * g.M * g.N;
  const names = rq ? ['a', 'b', 'za', 'zb', 'params', 'y'] : ['a', 'b', 'za', 'zb', 'y'];
  return {
    key: `quant-matmul:${a.dtype}:${b.dtype}:${rq ? rq.y : 'int32'}:${path}:r${R}`,
    bindings: names.map((name, i) => ({ name, type: t[i]!.storage })),
    uniforms: [
      ...['size', 'M', 'N', 'K', 'K4', 'za_stride', 'zb_stride'].map((name) => ({ name, type: 'u32' as const })),
      ...(rq ? REQUANT_UNIFORMS : []),
      { name: 'batch', type: 'u32', length: R }, { name: 'a_bstride', type: 'u32', length: R }, { name: 'b_bstride', type: 'u32', length: R },
    ],
    workgroupSize: [WG, 1, 1],
    source(s) {
      dotHelpers(s, path);
      const la = int8Loader(s, 'a', a.dtype);
      const lb = int8Loader(s, 'b', b.dtype);
      const coords = s.coordsFn('batch_coords', 'batch', R);
      s.main(`${s.linearIndex('u.size')}
  let n = index % u.N;
  let m = (index / u.N) % u.M;
  let c = ${coords}(index / (u.M * u.N));
  let a_row = ${s.offset('c', 'a_bstride', R)} + m * u.K;
  let b_col = ${s.offset('c', 'b_bstride', R)} + n;
  let zpa = i32(${s.load('za', 'm * u.za_stride')}) - ${int8Offset(a.dtype)};
  let zpb = i32(${s.load('zb', 'n * u.zb_stride')}) - ${int8Offset(b.dtype)};
  var dab = 0;
  var sum_a = 0;
  var sum_b = 0;
  for (var k4 = 0u; k4 < u.K4; k4 = k4 + 1u) {
    var va = vec4<i32>(0);
    var vb = vec4<i32>(0);
    for (var j = 0u; j < 4u; j = j + 1u) {
      let k = k4 * 4u + j;
      let kk = min(k, u.K - 1u);
      va[j] = select(0, ${la}(a_row + kk), k < u.K);
      vb[j] = select(0, ${lb}(b_col + kk * u.N), k < u.K);
    }
    let pa = pack_i8(va);
    let pb = pack_i8(vb);
    dab = dab + dot4_i8(pa, pb);
    sum_a = sum_a + dot4_i8(pa, 0x01010101u);
    sum_b = sum_b + dot4_i8(pb, 0x01010101u);
  }
  let acc = dab - zpa * sum_b - zpb * sum_a + i32(u.K) * zpa * zpb;
  ${epilogue(s, rq, 'm', 'n')}`);
    },
    run: () => ({
      workgroups: dispatchLinear(size, WG),
      uniforms: {
        size, M: g.M, N: g.N, K: g.K, K4: Math.ceil(g.K / 4), za_stride: zaStride, zb_stride: zbStride,
        ...(rq ? requantUniforms(rqParams) : {}),
        batch: g.batch, a_bstride: g.aStrides, b_bstride: g.bStrides,
      },
    }),
  };
}

const ZERO: GpuTensorInfo = { dtype: 'int32', shape: [1], storage: 'i32' };

/** Bindings for optional zero points: the input when given, else a constant 0 (constants: index of the next table). */
function zeroPoints(inputs: (GpuTensorInfo | undefined)[], idx: number[]): { infos: GpuTensorInfo[]; slots: TensorSlot[]; constants: ReturnType<typeof int32Constant>[] } {
  const constants: ReturnType<typeof int32Constant>[] = [];
  const slots: TensorSlot[] = [];
  const infos: GpuTensorInfo[] = [];
  for (const i of idx) {
    const t = inputs[i];
    if (t) {
      infos.push(t);
      slots.push({ input: i });
    } else {
      infos.push(ZERO);
      slots.push({ constant: constants.length });
      constants.push(int32Constant([1], new Int32Array(1)));
    }
  }
  return { infos, slots, constants };
}

export function checkK(op: string, K: number): void {
  // dot4 sums of int8 differences stay far inside i32 below 2^16 terms (|acc| <= K * 255 * 255).
  if (K >= 1 << 16) throw new GpuUnsupported(`${op} with a reduction of ${K} terms could overflow the i32 accumulator on WebGPU`);
}

const matmulInteger: GpuKernel = {
  plan(node, inputs, [y], env) {
    const [a, b] = inputs as [GpuTensorInfo, GpuTensorInfo];
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    const g = matmulShape(a, b, y!);
    checkK(node.op, g.K);
    if (g.K === 0) throw new GpuUnsupported('MatMulInteger with K = 0 has no WebGPU kernel');
    // A constant 2-D b (the quantizer's weights): packed at plan time, several columns per invocation.
    if (b.value && b.shape.length === 2 && (!inputs[3] || inputs[3].value)) {
      const packed = packRows(b.value, 'matmul', g.N, 1, g.K, (n, _t, k) => k * g.N + n);
      const table = channelTable(packed, g.N, inputs[3], b.dtype);
      const rows = sizeOfShape(a.shape) / g.K;
      const za = inputs[2];
      const program = packedMatmulProgram(a, za ?? ZERO, y!, rows, g, stride(za), planQuantDotPath(env), table.zw0);
      const tensors: TensorSlot[] = [{ input: 0 }, za ? { input: 2 } : { constant: 2 }, { constant: 0 }, { constant: 1 }, { output: 0 }];
      return {
        calls: [{ program, tensors }],
        constants: [packed.words, table.table, ...(za ? [] : [int32Constant([1], new Int32Array(1))])],
        sharedConstants: [0],
        unboundInputs: [1, 3],
      };
    }
    const zp = zeroPoints(inputs, [2, 3]);
    const program = matmulProgram([a, b, ...zp.infos, y!], undefined, quantDotPath(env.packedDot), g, stride(inputs[2]), stride(inputs[3]), []);
    return { calls: [{ program, tensors: [{ input: 0 }, { input: 1 }, ...zp.slots, { output: 0 }] }], constants: zp.constants };
  },
};

function requireF32Scales(node: Node, inputs: (GpuTensorInfo | undefined)[], idx: number[]): void {
  for (const i of idx) {
    const d = inputs[i]!.dtype;
    if (d !== 'float32' && d !== 'float16') throw new GpuUnsupported(`${node.op} with ${d} scales has no WebGPU kernel (float32 and float16 do)`);
  }
}

const qlinearMatMul: GpuKernel = {
  plan(node, inputs, [y], env) {
    requireF32Scales(node, inputs, [1, 4, 6]);
    const [a, as, az, b, bs, bz, ys, yz] = inputs as GpuTensorInfo[];
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    const g = matmulShape(a!, b!, y!);
    checkK(node.op, g.K);
    const rqParams = [as!, bs!, ys!, yz!];
    const program = matmulProgram([a!, b!, az!, bz!, paramsInfo(rqParams), y!], { y: y!.dtype }, quantDotPath(env.packedDot), g, stride(az), stride(bz), rqParams);
    return {
      calls: [
        { program: paramsProgram(rqParams), tensors: [{ input: 1 }, { input: 4 }, { input: 6 }, { input: 7 }, { scratch: 0 }] },
        { program, tensors: [{ input: 0 }, { input: 3 }, { input: 2 }, { input: 5 }, { scratch: 0 }, { output: 0 }] },
      ],
      scratch: [paramsInfo(rqParams)],
    };
  },
};

// ---- convolution ----

export interface ConvShape {
  N: number;
  C: number;
  M: number;
  group: number;
  P: number;
  Q: number;
  T: number;
  taps: Int32Array;
}

export function convShape(node: Node, x: GpuTensorInfo, w: GpuTensorInfo): ConvShape {
  const [N, C] = x.shape as [number, number];
  const M = w.shape[0]!;
  const inSpatial = x.shape.slice(2);
  const attrs = readWindowAttrs(node, inSpatial.length, w.shape.slice(2));
  const win = concreteWindow(inSpatial, attrs);
  const taps = tapTable({ src: win.out, dst: inSpatial, kernel: attrs.kernel, strides: attrs.strides, dilations: attrs.dilations, padsBegin: win.padsBegin, padsEnd: win.padsEnd });
  return { N, C, M, group: attrInt(node, 'group', 1), P: sizeOfShape(win.out), Q: sizeOfShape(inSpatial), T: sizeOfShape(attrs.kernel), taps };
}

/** t: x, w, zx, zw, taps, [params], [bias], y; rqParams: the four requantization tensors. */
function convProgram(t: GpuTensorInfo[], rq: Requant | undefined, hasBias: boolean, path: QuantDotPath, g: ConvShape, zwStride: number, rqParams: GpuTensorInfo[]): ProgramSpec {
  const [x, w] = t as [GpuTensorInfo, GpuTensorInfo];
  const size = g.N * g.M * g.P;
  const Cg = g.C / g.group;
  const K = Cg * g.T;
  const names = ['x', 'w', 'zx', 'zw', 'taps', ...(rq ? ['params'] : []), ...(hasBias ? ['bias'] : []), 'y'];
  return {
    key: `quant-conv:${x.dtype}:${w.dtype}:${rq ? rq.y : 'int32'}:${hasBias ? 'bias' : ''}:${path}`,
    bindings: names.map((name, i) => ({ name, type: t[i]!.storage })),
    uniforms: [
      ...['size', 'C', 'Cg', 'M', 'Mg', 'P', 'Q', 'T', 'K', 'K4', 'zw_stride'].map((name) => ({ name, type: 'u32' as const })),
      ...(rq ? REQUANT_UNIFORMS : []),
    ],
    workgroupSize: [WG, 1, 1],
    source(s) {
      dotHelpers(s, path);
      const lx = int8Loader(s, 'x', x.dtype);
      const lw = int8Loader(s, 'w', w.dtype);
      s.main(`${s.linearIndex('u.size')}
  let p = index % u.P;
  let m = (index / u.P) % u.M;
  let n = index / (u.P * u.M);
  let x_base = (n * u.C + (m / u.Mg) * u.Cg) * u.Q;
  let w_row = m * u.K;
  let zpx = i32(${s.load('zx', '0u')}) - ${int8Offset(x.dtype)};
  let zpw = i32(${s.load('zw', 'm * u.zw_stride')}) - ${int8Offset(w.dtype)};
  var dxw = 0;
  var sx = 0;
  var sw = 0;
  for (var k4 = 0u; k4 < u.K4; k4 = k4 + 1u) {
    var vx = vec4<i32>(0);
    var vw = vec4<i32>(0);
    for (var j = 0u; j < 4u; j = j + 1u) {
      let k = k4 * 4u + j;
      let kk = min(k, u.K - 1u);
      let off = ${s.load('taps', 'p * u.T + kk % u.T')};
      // A padded tap reads the zero point, so (x - zx) is 0 there.
      let xv = select(zpx, ${lx}(x_base + (kk / u.T) * u.Q + u32(max(off, 0))), off >= 0);
      vx[j] = select(0, xv, k < u.K);
      vw[j] = select(0, ${lw}(w_row + kk), k < u.K);
    }
    let px = pack_i8(vx);
    let pw = pack_i8(vw);
    dxw = dxw + dot4_i8(px, pw);
    sx = sx + dot4_i8(px, 0x01010101u);
    sw = sw + dot4_i8(pw, 0x01010101u);
  }
  let acc = dxw - zpx * sw - zpw * sx + i32(u.K) * zpx * zpw${hasBias ? ` + ${s.load('bias', 'm')}` : ''};
  ${epilogue(s, rq, '0u', 'm')}`);
    },
    run: () => ({
      workgroups: dispatchLinear(size, WG),
      uniforms: {
        size, C: g.C, Cg, M: g.M, Mg: g.M / g.group, P: g.P, Q: g.Q, T: g.T, K, K4: Math.ceil(K / 4), zw_stride: zwStride,
        ...(rq ? requantUniforms(rqParams) : {}),
      },
    }),
  };
}

const TAPS = (n: number): GpuTensorInfo => ({ dtype: 'int32', shape: [n], storage: 'i32' });

const convInteger: GpuKernel = {
  plan(node, inputs, [y], env) {
    const [x, w] = inputs as [GpuTensorInfo, GpuTensorInfo];
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    const g = convShape(node, x, w);
    checkK(node.op, (g.C / g.group) * g.T);
    // Constant weights (the quantizer's int8-dynamic convs): packed tap-major at plan time, register-blocked kernel.
    if (w.value && (!inputs[3] || inputs[3].value)) {
      const Cg = g.C / g.group;
      // Fewer than 4 input channels per group (a first layer): whole K = Cg T in w's own order, no padding lanes per tap.
      const packed = Cg < 4 ? packRows(w.value, 'conv-flat', g.M, 1, Cg * g.T, (m, _t, k) => m * Cg * g.T + k) : packRows(w.value, 'conv', g.M, g.T, Cg, (m, t, c) => (m * Cg + c) * g.T + t);
      const table = channelTable(packed, g.M, inputs[3], w.dtype);
      const zx = inputs[2];
      const program = packedConvProgram(x, zx ?? ZERO, y!, g, planQuantDotPath(env), table.zw0);
      const tensors: TensorSlot[] = [{ input: 0 }, zx ? { input: 2 } : { constant: 3 }, { constant: 0 }, { constant: 1 }, { constant: 2 }, { output: 0 }];
      return {
        calls: [{ program, tensors }],
        constants: [packed.words, int32Constant([g.taps.length], g.taps), table.table, ...(zx ? [] : [int32Constant([1], new Int32Array(1))])],
        sharedConstants: [0],
        unboundInputs: [1, 3],
      };
    }
    const zp = zeroPoints(inputs, [2, 3]);
    const taps = int32Constant([g.taps.length], g.taps);
    const program = convProgram([x, w, ...zp.infos, TAPS(g.taps.length), y!], undefined, false, quantDotPath(env.packedDot), g, stride(inputs[3]), []);
    const tensors: TensorSlot[] = [{ input: 0 }, { input: 1 }, ...zp.slots, { constant: zp.constants.length }, { output: 0 }];
    return { calls: [{ program, tensors }], constants: [...zp.constants, taps] };
  },
};

const qlinearConv: GpuKernel = {
  plan(node, inputs, [y], env) {
    requireF32Scales(node, inputs, [1, 4, 6]);
    const [x, xs, xz, w, ws, wz, ys, yz, bias] = inputs as GpuTensorInfo[];
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    const g = convShape(node, x!, w!);
    checkK(node.op, (g.C / g.group) * g.T);
    const taps = int32Constant([g.taps.length], g.taps);
    // x's scale and y's scale and zero point are scalars (the schema checks), so their strides are 0.
    const rqParams = [xs!, ws!, ys!, yz!];
    const infos = [x!, w!, xz!, wz!, TAPS(g.taps.length), paramsInfo(rqParams), ...(bias ? [bias] : []), y!];
    const program = convProgram(infos, { y: y!.dtype }, !!bias, quantDotPath(env.packedDot), g, stride(wz), rqParams);
    const tensors: TensorSlot[] = [
      { input: 0 }, { input: 3 }, { input: 2 }, { input: 5 }, { constant: 0 }, { scratch: 0 }, ...(bias ? [{ input: 8 }] : []), { output: 0 },
    ];
    return {
      calls: [
        { program: paramsProgram(rqParams), tensors: [{ input: 1 }, { input: 4 }, { input: 6 }, { input: 7 }, { scratch: 0 }] },
        { program, tensors },
      ],
      scratch: [paramsInfo(rqParams)],
      constants: [taps],
    };
  },
};

// ---- constant weights: packed at plan time, register-blocked kernels ----

interface PackedRows {
  /** rows x T x C4 u32 words: word (r, t, c4) packs the int8-domain codes of lanes 4 c4 .. 4 c4 + 3 (0 past L). */
  words: HostTensor;
  /** Each row's sum of its int8-domain codes (padding lanes are 0). */
  sums: Int32Array;
}

/** Packed weights per initializer and layout: every plan of a session returns the same tensor (one weight-store upload). */
const packCache = new WeakMap<HostTensor, Map<string, PackedRows>>();

/**
 * Packs a constant weight tensor as rows x T segments of ceil(L / 4) words, four codes per u32 (lane 0 in the low
 * byte), uint8 moved into the int8 domain by -128 as quant-dot.ts does; at(r, t, l) is the element's index in w
 * (`layout` names it in the cache key).
 * A conv packs tap-major (T taps of its Cg input channels), a matmul one segment of K (T = 1).
 */
function packRows(w: HostTensor, layout: string, rows: number, T: number, L: number, at: (r: number, t: number, l: number) => number): PackedRows {
  const key = `${layout}:${rows}:${T}:${L}`;
  let byKey = packCache.get(w);
  const hit = byKey?.get(key);
  if (hit) return hit;
  const v = tensorToNumbers(w);
  const off = int8Offset(w.dtype);
  const L4 = Math.ceil(L / 4);
  const words = new Uint32Array(rows * T * L4);
  const sums = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t < T; t++) {
      for (let l = 0; l < L; l++) {
        const q = v[at(r, t, l)]! - off;
        sums[r]! += q;
        words[(r * T + t) * L4 + (l >> 2)]! |= (q & 0xff) << ((l & 3) * 8);
      }
    }
  }
  const packed = { words: hostTensor('uint32', [words.length], words), sums };
  if (!byKey) packCache.set(w, (byKey = new Map()));
  byKey.set(key, packed);
  return packed;
}

/**
 * The i32 table [wsum[C], zw[C]] of the packed kernels: each output channel's sum of weight codes and its weight zero
 * point, both in the int8 domain; zw0 when every zero point is 0 there (the quantizer's uint8 weights with zero point
 * 128): the kernels then skip the sum of x.
 */
function channelTable(packed: PackedRows, C: number, zw: GpuTensorInfo | undefined, dtype: DType): { table: HostTensor; zw0: boolean } {
  const z = zw ? tensorToNumbers(zw.value!) : new Float64Array(1); // no zero point: 0 in w's type
  const data = new Int32Array(2 * C);
  data.set(packed.sums);
  for (let c = 0; c < C; c++) data[C + c] = z[z.length === 1 ? 0 : c]! - int8Offset(dtype);
  return { table: int32Constant([2 * C], data), zw0: data.subarray(C).every((v) => v === 0) };
}

/** Pixels per invocation of the packed conv. */
const CONV_PB = 4;
/** Columns per invocation of the packed matmul. */
const MATMUL_CB = 8;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * Output channels per invocation of the packed conv: 16 for ungrouped convs of 32 channels or more (Fashion conv2/3
 * ran about 0.7x the time of 8 on SwiftShader, noisy), else 8; for a grouped conv the most of 8, 4, 2, 1 dividing
 * its group's channels, so that a block never straddles two groups.
 */
function convBlock(g: ConvShape): number {
  const Mg = g.M / g.group;
  if (g.group === 1) return g.M >= 32 ? 16 : 8;
  return [8, 4, 2, 1].find((b) => Mg % b === 0)!;
}

/**
 * The exact accumulator of channel m from a dot sum d and x's sum sx: sum (x - zx)(w - zw) = sum x w - zx sum w
 * - zw sum x + K zx zw, sum w and zw from the table (channelTable); without weight zero points the last two vanish.
 */
function packedAcc(d: string, m: string, zw0: boolean, sx: string): string {
  const base = `${d} - zpx * tab[${m}]`;
  return zw0 ? base : `${base} - tab[u.C + ${m}] * ${sx} + i32(u.K) * zpx * tab[u.C + ${m}]`;
}

/**
 * ConvInteger with packed constant weights: each invocation computes CONV_PB pixels x cb output channels of one image
 * and group, with one i32 accumulator per pair (unrolled registers). The reduction runs over taps, then four input
 * channels at a time: each pixel's four lanes are read once at the tap's offset (taps[p, t] < 0 is padding, read as
 * x's zero point) and, on the packed path, packed once for the cb channels; each weight word is read once for the
 * CONV_PB pixels (unpacked once on the unpacked path). Lanes past Cg are 0 in x and w. Pixels past P and channels
 * past M compute on clamped indices and are not stored. With fewer than 4 input channels per group (`flat`, a first
 * layer: Cg = 1 would leave 3 of 4 lanes empty per tap) the words run over k = c T + t instead, each lane's channel
 * and tap computed once per word for the CONV_PB pixels.
 */
function packedConvProgram(x: GpuTensorInfo, zx: GpuTensorInfo, y: GpuTensorInfo, g: ConvShape, path: QuantDotPath, zw0: boolean): ProgramSpec {
  const cb = convBlock(g);
  const pb = CONV_PB;
  const Cg = g.C / g.group;
  const K = Cg * g.T;
  // flat: Cg < 4, w packed over k = c T + t (see convInteger), one loop over ceil(K / 4) words.
  const flat = Cg < 4;
  const C4 = flat ? Math.ceil(K / 4) : Math.ceil(Cg / 4);
  const cblocks = Math.ceil(g.M / cb);
  const pblocks = Math.ceil(g.P / pb);
  const size = g.N * cblocks * pblocks;
  const I = range(pb);
  const R = range(cb);
  return {
    key: `quant-conv-packed:${x.dtype}:${zx.dtype}:${path}:cb${cb}:pb${pb}${zw0 ? ':zw0' : ''}${flat ? ':flat' : ''}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'zx', type: zx.storage }, { name: 'w', type: 'u32' }, { name: 'taps', type: 'i32' }, { name: 'tab', type: 'i32' }, { name: 'y', type: y.storage }],
    uniforms: ['size', 'Cin', 'Cg', 'C', 'Mg', 'P', 'Q', 'T', 'C4', 'K', 'cblocks', 'pblocks'].map((name) => ({ name, type: 'u32' as const })),
    workgroupSize: [WG, 1, 1],
    source(s) {
      dotHelpers(s, path);
      const lx = int8Loader(s, 'x', x.dtype);
      const lane = flat
        ? (i: number, j: number) => `select(0, select(zpx, ${lx}(x_base + q${j} + u32(max(o${i}_${j}, 0))), o${i}_${j} >= 0), k${j} < u.K)`
        : (i: number, j: number) => `select(0, select(zpx, ${lx}(xo${i} + q${j}), ok${i}), ci + ${j}u < u.Cg)`;
      const lanes = (i: number) => `vec4<i32>(${range(4).map((j) => lane(i, j)).join(', ')})`;
      const sumX = (i: number, v: string) => (zw0 ? '' : ` sx${i} = sx${i} + ${v};`);
      const body = path === 'packed'
        ? `${I.map((i) => `let px${i} = pack_i8(${lanes(i)});${sumX(i, `dot4_i8(px${i}, 0x01010101u)`)}`).join('\n      ')}
      ${R.map((r) => `let pw${r} = w[wr${r} + wt + c4];
      ${I.map((i) => `d${i}_${r} = d${i}_${r} + dot4_i8(px${i}, pw${r});`).join(' ')}`).join('\n      ')}`
        : `${I.map((i) => `let xv${i} = ${lanes(i)};${sumX(i, `dot(xv${i}, vec4<i32>(1))`)}`).join('\n      ')}
      ${R.map((r) => `let wv${r} = unpack_i8(w[wr${r} + wt + c4]);
      ${I.map((i) => `d${i}_${r} = d${i}_${r} + dot(xv${i}, wv${r});`).join(' ')}`).join('\n      ')}`;
      const stores = I.flatMap((i) => R.map((r) => `if (p0 + ${i}u < u.P && c0 + ${r}u < u.C) {
    let m = c0 + ${r}u;
    let acc = ${packedAcc(`d${i}_${r}`, 'm', zw0, `sx${i}`)};
    ${s.store('y', `(n * u.C + m) * u.P + p0 + ${i}u`, 'acc')}
  }`));
      s.main(`${s.linearIndex('u.size')}
  let p0 = (index % u.pblocks) * ${pb}u;
  let c0 = ((index / u.pblocks) % u.cblocks) * ${cb}u;
  let n = index / (u.pblocks * u.cblocks);
  let x_base = (n * u.Cin + (c0 / u.Mg) * u.Cg) * u.Q;
  let zpx = i32(${s.load('zx', '0u')}) - ${int8Offset(x.dtype)};
  ${I.map((i) => `let pp${i} = min(p0 + ${i}u, u.P - 1u) * u.T;`).join('\n  ')}
  ${R.map((r) => `let wr${r} = min(c0 + ${r}u, u.C - 1u) * ${flat ? 'u.C4' : 'u.T * u.C4'};`).join('\n  ')}
  ${zw0 ? '' : I.map((i) => `var sx${i} = 0;`).join(' ')}
  ${I.map((i) => R.map((r) => `var d${i}_${r} = 0;`).join(' ')).join('\n  ')}
  ${flat ? `// Lane j of word c4 is k = 4 c4 + j: input channel k / T at tap k % T (lanes past K are 0).
  let wt = 0u;
  for (var c4 = 0u; c4 < u.C4; c4 = c4 + 1u) {
    ${range(4).map((j) => `let k${j} = c4 * 4u + ${j}u;
    let kc${j} = min(k${j}, u.K - 1u) / u.T;
    let q${j} = kc${j} * u.Q;
    let kt${j} = min(k${j}, u.K - 1u) - kc${j} * u.T;
    ${I.map((i) => `let o${i}_${j} = ${s.load('taps', `pp${i} + kt${j}`)};`).join(' ')}`).join('\n    ')}
    ${body}
  }` : `for (var t = 0u; t < u.T; t = t + 1u) {
    ${I.map((i) => `let off${i} = ${s.load('taps', `pp${i} + t`)};
    let ok${i} = off${i} >= 0;
    let xo${i} = x_base + u32(max(off${i}, 0));`).join('\n    ')}
    let wt = t * u.C4;
    for (var c4 = 0u; c4 < u.C4; c4 = c4 + 1u) {
      let ci = c4 * 4u;
      ${range(4).map((j) => `let q${j} = min(ci + ${j}u, u.Cg - 1u) * u.Q;`).join('\n      ')}
      ${body}
    }
  }`}
  ${stores.join('\n  ')}`);
    },
    run: () => ({
      workgroups: dispatchLinear(size, WG),
      uniforms: { size, Cin: g.C, Cg, C: g.M, Mg: g.M / g.group, P: g.P, Q: g.Q, T: g.T, C4, K, cblocks, pblocks },
    }),
  };
}

/**
 * MatMulInteger with a packed constant 2-D b: a's rows (batch dims flattened) times b's columns, MATMUL_CB columns
 * per invocation: a's four values of a word are loaded (and packed) once for the MATMUL_CB columns. Columns past N
 * read the last one and are not stored. a's zero point is per tensor or per row of a's last matrix (za_stride).
 */
function packedMatmulProgram(a: GpuTensorInfo, za: GpuTensorInfo, y: GpuTensorInfo, rows: number, g: MatMulShape, zaStride: number, path: QuantDotPath, zw0: boolean): ProgramSpec {
  const cb = MATMUL_CB;
  const blocks = Math.ceil(g.N / cb);
  const size = rows * blocks;
  const R = range(cb);
  return {
    key: `quant-matmul-packed:${a.dtype}:${za.dtype}:${path}:cb${cb}${zw0 ? ':zw0' : ''}`,
    bindings: [{ name: 'a', type: a.storage }, { name: 'za', type: za.storage }, { name: 'w', type: 'u32' }, { name: 'tab', type: 'i32' }, { name: 'y', type: y.storage }],
    uniforms: ['size', 'M', 'C', 'K', 'K4', 'blocks', 'za_stride'].map((name) => ({ name, type: 'u32' as const })),
    workgroupSize: [WG, 1, 1],
    source(s) {
      dotHelpers(s, path);
      const la = int8Loader(s, 'a', a.dtype);
      const sumX = zw0 ? '' : `\n    sx = sx + ${path === 'packed' ? 'dot4_i8(pa, 0x01010101u)' : 'dot(va, vec4<i32>(1))'};`;
      s.main(`${s.linearIndex('u.size')}
  let c0 = (index % u.blocks) * ${cb}u;
  let row = index / u.blocks;
  let a_row = row * u.K;
  let zpx = i32(${s.load('za', '(row % u.M) * u.za_stride')}) - ${int8Offset(a.dtype)};
  ${R.map((r) => `let wr${r} = min(c0 + ${r}u, u.C - 1u) * u.K4;`).join('\n  ')}
  ${zw0 ? '' : 'var sx = 0;'}
  ${R.map((r) => `var d${r} = 0;`).join(' ')}
  for (var k4 = 0u; k4 < u.K4; k4 = k4 + 1u) {
    let k = k4 * 4u;
    let va = vec4<i32>(${range(4).map((j) => `select(0, ${la}(a_row + min(k + ${j}u, u.K - 1u)), k + ${j}u < u.K)`).join(', ')});${path === 'packed' ? '\n    let pa = pack_i8(va);' : ''}${sumX}
    ${R.map((r) => path === 'packed' ? `d${r} = d${r} + dot4_i8(pa, w[wr${r} + k4]);` : `d${r} = d${r} + dot(va, unpack_i8(w[wr${r} + k4]));`).join('\n    ')}
  }
  ${R.map((r) => `if (c0 + ${r}u < u.C) {
    let m = c0 + ${r}u;
    let acc = ${packedAcc(`d${r}`, 'm', zw0, 'sx')};
    ${s.store('y', 'row * u.C + m', 'acc')}
  }`).join('\n  ')}`);
    },
    run: () => ({
      workgroups: dispatchLinear(size, WG),
      uniforms: { size, M: g.M, C: g.N, K: g.K, K4: Math.ceil(g.K / 4), blocks, za_stride: zaStride },
    }),
  };
}

export const kernels: Record<string, GpuKernel> = {
  MatMulInteger: matmulInteger,
  QLinearMatMul: qlinearMatMul,
  ConvInteger: convInteger,
  QLinearConv: qlinearConv,
};
