import type { DType } from '../../../ir/dtype.js';
import type { Node } from '../../../ir/graph.js';
import { concreteWindow, readWindowAttrs } from '../../../ir/ops/conv-geometry.js';
import { attrInt } from '../../../ir/graph.js';
import { tapTable } from '../../cpu/conv-taps.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, stridesFor, type GpuKernel, type GpuTensorInfo, type ProgramSpec, type TensorSlot } from '../program.js';
import type { ShaderBuilder } from '../wgsl/builder.js';
import { dotHelpers, int32Constant, int8Offset, quantDotPath, type QuantDotPath } from './quant-dot.js';
import { int8Loader, packedConvPlan, packedMatmulPlan, scaledOutput } from './quant-matmul-packed.js';
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
 * register-blocked (quant-matmul-packed.ts), with each channel's sum of weight codes and zero point
 * computed on the host.
 *
 * DYNAMIC_CONV and DYNAMIC_MATMUL are the fused dynamic-int8 chains of the GPU plan (fuse-dynamic-int8.ts): the same
 * packed kernels with a float epilogue, inputs x_q, w, x_zero_point, w_zero_point, x_scale, w_scale, bias.
 */

const WG = 64;

/** IR ops that exist only in the graph the GPU plans (fuse-dynamic-int8.ts), never in a model's IR. */
export const DYNAMIC_CONV = 'ConvIntegerToFloat';
export const DYNAMIC_MATMUL = 'MatMulIntegerToFloat';

// The quantized loader, shared with qdq-gemm.ts (which imports it from here).
export { int8Loader };

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
    if (b.value && b.shape.length === 2 && (!inputs[3] || inputs[3].value)) return packedMatmulPlan(inputs, y!, g, env);
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
    if (w.value && (!inputs[3] || inputs[3].value)) return packedConvPlan(inputs, y!, g, env);
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

// ---- fused dynamic-int8 chains (fuse-dynamic-int8.ts) ----

/** What the weight operand of a fused chain must be for the packed kernels (the pass checks it before fusing). */
function requirePackable(node: Node, inputs: (GpuTensorInfo | undefined)[]): void {
  if (!inputs[1]?.value || (inputs[3] && !inputs[3].value)) throw new GpuUnsupported(`${node.op}: the weights and their zero point must be constants`);
}

const dynamicConv: GpuKernel = {
  plan(node, inputs, [y], env) {
    requirePackable(node, inputs);
    const [x, w] = inputs as [GpuTensorInfo, GpuTensorInfo];
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    const g = convShape(node, x, w);
    checkK(node.op, (g.C / g.group) * g.T);
    return packedConvPlan(inputs, y!, g, env, scaledOutput(node, inputs, y!, g.M));
  },
};

const dynamicMatmul: GpuKernel = {
  plan(node, inputs, [y], env) {
    requirePackable(node, inputs);
    const [a, b] = inputs as [GpuTensorInfo, GpuTensorInfo];
    if (b.shape.length !== 2) throw new GpuUnsupported(`${node.op}: b must be 2-D`);
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    const g = matmulShape(a, b, y!);
    checkK(node.op, g.K);
    if (g.K === 0) throw new GpuUnsupported(`${node.op} with K = 0 has no WebGPU kernel`);
    return packedMatmulPlan(inputs, y!, g, env, scaledOutput(node, inputs, y!, g.N));
  },
};

export const kernels: Record<string, GpuKernel> = {
  MatMulInteger: matmulInteger,
  QLinearMatMul: qlinearMatMul,
  ConvInteger: convInteger,
  QLinearConv: qlinearConv,
  [DYNAMIC_CONV]: dynamicConv,
  [DYNAMIC_MATMUL]: dynamicMatmul,
};
