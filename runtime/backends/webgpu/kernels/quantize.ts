import type { DType } from '../../../ir/dtype.js';
import { attrString } from '../../../ir/graph.js';
import { QUANT_RANGE, quantLayout, quantRange, type QuantLayout } from '../../../ir/ops/quantize.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, type GpuKernel, type GpuTensorInfo, type ProgramCall, type ProgramSpec } from '../program.js';
import { computeTypeOf } from '../storage.js';
import type { ShaderBuilder } from '../wgsl/builder.js';
import { castExpr } from './cast.js';
import { dotHelpers, int32Constant, int8Offset, scalarTypeOf } from './quant-dot.js';

/**
 * QuantizeLinear-21, DequantizeLinear-21 and DynamicQuantizeLinear-11 on WebGPU (CPU twin: cpu/kernels/quantize.ts).
 * Elementwise in f32 with integer storage (int8/uint8/int16/uint16 live one per i32/u32, storage.ts). WGSL's round()
 * rounds half to even, as the spec asks. The scale of element i is found from uniforms alone, so one pipeline
 * serves per-tensor, per-axis and blocked layouts:
 *   s = (i / (inner * dim)) * outer_stride + ((i / inner) % dim) / block * axis_stride + (i % inner) * inner_stride.
 */

const WG = 64;

/** Uniform values placing the scale of each element (see the file comment). */
function scaleUniforms(l: QuantLayout) {
  const base = { inner: l.inner, dim: l.dim, block: l.block };
  if (l.kind === 'tensor') return { ...base, outer_stride: 0, axis_stride: 0, inner_stride: 0 };
  if (l.kind === 'axis') return { ...base, outer_stride: 0, axis_stride: 1, inner_stride: 0 };
  return { ...base, outer_stride: l.scaleDim * l.inner, axis_stride: l.inner, inner_stride: 1 };
}

const SCALE_UNIFORMS = ['inner', 'dim', 'block', 'outer_stride', 'axis_stride', 'inner_stride'].map((name) => ({ name, type: 'u32' as const }));

function scaleIndexHelper(b: ShaderBuilder): string {
  b.helper(`fn scale_index(i: u32) -> u32 {
  return (i / (u.inner * u.dim)) * u.outer_stride + ((i / u.inner) % u.dim) / u.block * u.axis_stride + (i % u.inner) * u.inner_stride;
}`);
  return 'scale_index';
}

function layoutFor(node: Parameters<GpuKernel['plan']>[0], x: GpuTensorInfo, s: GpuTensorInfo, z: GpuTensorInfo | undefined): QuantLayout {
  const l = quantLayout({ node, inputs: [], symbol: () => '' }, x.shape, s.shape, z && { dtype: z.dtype, shape: z.shape });
  if (!l) throw new GpuUnsupported(`${node.op}: no scale layout for x [${x.shape.join(', ')}]`);
  return l;
}

/**
 * `div_rn(a, b)`: a / b rounded to nearest as IEEE division is (the CPU's float32 quotient). WGSL only promises
 * 2.5 ulp for f32 division, which would move the spec's round(x / scale) at the edges of a step; one Newton step
 * with the exact residual a - q b (Dekker's two-product, no fma needed) restores the correctly rounded quotient.
 */
export function divHelper(b: ShaderBuilder): string {
  b.helper(`fn split_f32(x: f32) -> vec2<f32> {
  let c = 4097.0 * x;
  let hi = c - (c - x);
  return vec2<f32>(hi, x - hi);
}`);
  b.helper(`fn div_rn(a: f32, b: f32) -> f32 {
  let q = a / b;
  if (q == 0.0 || abs(q) > 1e30 || q != q) { return q; }
  let p = q * b;
  let x = split_f32(q);
  let y = split_f32(b);
  let err = ((x.x * y.x - p) + x.x * y.y + x.y * y.x) + x.y * y.y;
  let r = (a - p) - err;
  return q + r / b;
}`);
  return 'div_rn';
}

/** WGSL for saturate(round(v) + zp) into `dtype`'s range (or `range`: 4-bit outputs), as the storage's scalar type. */
export function saturateExpr(v: string, zp: string, dtype: DType, range = QUANT_RANGE[dtype]!): string {
  const [lo, hi] = range;
  const q = `clamp(round(${v}) + ${zp}, ${lo.toFixed(1)}, ${hi.toFixed(1)})`;
  return `${scalarTypeOf(dtype)}(select(${q}, 0.0, ${v} != ${v}))`;
}

function quantizeProgram(x: GpuTensorInfo, s: GpuTensorInfo, z: GpuTensorInfo, y: GpuTensorInfo, l: QuantLayout, range: [number, number]): ProgramSpec {
  const size = sizeOfShape(y.shape);
  return {
    key: `quantize-linear:${y.dtype}:${range.join('..')}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 's', type: s.storage }, { name: 'z', type: z.storage }, { name: 'y', type: y.storage }],
    uniforms: [{ name: 'size', type: 'u32' }, ...SCALE_UNIFORMS, { name: 'zp_stride', type: 'u32' }],
    workgroupSize: [WG, 1, 1],
    source(b) {
      const si = scaleIndexHelper(b);
      const div = divHelper(b);
      b.main(`${b.linearIndex('u.size')}
  let j = ${si}(index);
  let v = ${div}(${b.loadAs('x', 'index', 'f32')}, ${b.loadAs('s', 'j', 'f32')});
  let zp = f32(${b.load('z', 'j * u.zp_stride')});
  ${b.store('y', 'index', saturateExpr('v', 'zp', y.dtype, range))}`);
    },
    run: () => ({ workgroups: dispatchLinear(size, WG), uniforms: { size, ...scaleUniforms(l), zp_stride: 1 } }),
  };
}

/**
 * QuantizeLinear writing the packed int8 layout "c4" (y_layout = 'c4', y_qtype int8/uint8; qdq-layout.ts): y is uint32
 * [N, ceil(C / 4), ...spatial], one invocation per word, lane j holding channel 4 c4 + j's code moved into the int8
 * domain (q - 128 for uint8), lanes past C the zero point there. Per tensor only (the layout pass asks for a
 * one-element scale): each code is the value quantizeProgram would store, rounded by the same div_rn.
 */
function quantizeC4Program(x: GpuTensorInfo, s: GpuTensorInfo, z: GpuTensorInfo, y: GpuTensorInfo, qtype: DType, C: number, range: [number, number]): ProgramSpec {
  const [N, C4, ...spatial] = y.shape as number[];
  const S = spatial.reduce((a, d) => a * d, 1);
  const size = N! * C4! * S;
  const off = int8Offset(qtype);
  return {
    key: `quantize-linear-c4:${qtype}:${range.join('..')}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 's', type: s.storage }, { name: 'z', type: z.storage }, { name: 'y', type: y.storage }],
    uniforms: ['size', 'C', 'C4', 'S'].map((name) => ({ name, type: 'u32' as const })),
    workgroupSize: [WG, 1, 1],
    source(b) {
      const div = divHelper(b);
      dotHelpers(b, 'unpacked');
      b.main(`${b.linearIndex('u.size')}
  let sp = index % u.S;
  let c0 = ((index / u.S) % u.C4) * 4u;
  let base = (index / (u.S * u.C4)) * u.C * u.S + sp;
  let scale = ${b.loadAs('s', '0u', 'f32')};
  let zp = f32(${b.load('z', '0u')});
  var q4 = vec4<i32>(i32(zp) - ${off});
  for (var j = 0u; j < 4u; j = j + 1u) {
    if (c0 + j < u.C) {
      let v = ${div}(${b.loadAs('x', 'base + (c0 + j) * u.S', 'f32')}, scale);
      q4[j] = i32(${saturateExpr('v', 'zp', qtype, range)}) - ${off};
    }
  }
  ${b.store('y', 'index', 'pack_i8(q4)')}`);
    },
    run: () => ({ workgroups: dispatchLinear(size, WG), uniforms: { size, C, C4: C4!, S } }),
  };
}

function dequantizeProgram(x: GpuTensorInfo, s: GpuTensorInfo, z: GpuTensorInfo, y: GpuTensorInfo, l: QuantLayout, hasZp: boolean): ProgramSpec {
  const size = sizeOfShape(y.shape);
  return {
    key: `dequantize-linear:${y.dtype}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 's', type: s.storage }, { name: 'z', type: z.storage }, { name: 'y', type: y.storage }],
    uniforms: [{ name: 'size', type: 'u32' }, ...SCALE_UNIFORMS, { name: 'zp_stride', type: 'u32' }],
    workgroupSize: [WG, 1, 1],
    source(b) {
      const si = scaleIndexHelper(b);
      // (q - zp) is exact in i32 for every quantized type; one f32 rounding in the product, as on the CPU.
      b.main(`${b.linearIndex('u.size')}
  let j = ${si}(index);
  let q = i32(${b.load('x', 'index')}) - i32(${b.load('z', 'j * u.zp_stride')});
  // A float16 output is rounded to float16 once (kept in f32 registers without shader-f16), as the CPU rounds it.
  ${b.store('y', 'index', castExpr(b, `f32(q) * ${b.loadAs('s', 'j', 'f32')}`, 'f32', y.dtype, computeTypeOf(y.storage)))}`);
    },
    run: () => ({ workgroups: dispatchLinear(size, WG), uniforms: { size, ...scaleUniforms(l), zp_stride: hasZp ? 1 : 0 } }),
  };
}

/** float32 and float16 (f16 storage, or f32 registers without shader-f16) are the scale/input types the GPU takes. */
function requireFloat(op: string, what: string, t: GpuTensorInfo): void {
  if (t.dtype !== 'float32' && t.dtype !== 'float16') throw new GpuUnsupported(`${op} with a ${t.dtype} ${what} has no WebGPU kernel (float32 and float16 do)`);
}

const quantizeLinear: GpuKernel = {
  plan(node, [x, s, z], [y]) {
    requireFloat(node.op, 'input', x!);
    requireFloat(node.op, 'scale', s!);
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    const l = layoutFor(node, x!, s!, z);
    // Without a zero point, a table of zeros shaped like the scale stands in (the output is then uint8 or output_dtype).
    const n = sizeOfShape(s!.shape);
    const zero: GpuTensorInfo = { dtype: 'int32', shape: [n], storage: 'i32' };
    let program: ProgramSpec;
    if (attrString(node, 'y_layout') === 'c4') {
      // A c4 y (qdq-layout.ts): the logical type is y_qtype; the value itself is uint32 [N, ceil(C / 4), ...].
      const qtype = attrString(node, 'y_qtype') as DType;
      if ((qtype !== 'int8' && qtype !== 'uint8') || l.kind !== 'tensor' || x!.shape.length < 2 || y!.dtype !== 'uint32' || y!.shape[1] !== Math.ceil(x!.shape[1]! / 4)) {
        throw new GpuUnsupported(`QuantizeLinear: a c4 output needs a per-tensor int8/uint8 quantization of [N, C, ...] into uint32 [N, ceil(C / 4), ...]`);
      }
      program = quantizeC4Program(x!, s!, z ?? zero, y!, qtype, x!.shape[1]!, quantRange(node, qtype));
    } else {
      program = quantizeProgram(x!, s!, z ?? zero, y!, l, quantRange(node, y!.dtype));
    }
    return {
      calls: [{ program, tensors: [{ input: 0 }, { input: 1 }, z ? { input: 2 } : { constant: 0 }, { output: 0 }] }],
      constants: z ? [] : [int32Constant([n], new Int32Array(n))],
    };
  },
};

const dequantizeLinear: GpuKernel = {
  plan(node, [x, s, z], [y]) {
    requireFloat(node.op, 'scale', s!);
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    const l = layoutFor(node, x!, s!, z);
    const zero: GpuTensorInfo = { dtype: 'int32', shape: [1], storage: 'i32' };
    const program = dequantizeProgram(x!, s!, z ?? zero, y!, l, !!z);
    return {
      calls: [{ program, tensors: [{ input: 0 }, { input: 1 }, z ? { input: 2 } : { constant: 0 }, { output: 0 }] }],
      constants: z ? [] : [int32Constant([1], new Int32Array(1))],
    };
  },
};

/**
 * DynamicQuantizeLinear: one workgroup reduces min and max (each thread a strided slice, then a tree in workgroup
 * memory) and writes y_scale and y_zero_point; a second, elementwise pass quantizes x with them.
 */
const RED = 256;

function rangeProgram(x: GpuTensorInfo, s: GpuTensorInfo, z: GpuTensorInfo): ProgramSpec {
  const size = sizeOfShape(x.shape);
  return {
    key: 'dynamic-quantize-range',
    bindings: [{ name: 'x', type: x.storage }, { name: 's', type: s.storage }, { name: 'z', type: z.storage }],
    uniforms: [{ name: 'size', type: 'u32' }],
    workgroupSize: [RED, 1, 1],
    source(b) {
      const div = divHelper(b);
      b.helper(`var<workgroup> lo_part: array<f32, ${RED}>;`);
      b.helper(`var<workgroup> hi_part: array<f32, ${RED}>;`);
      // The spec's range always contains 0: x_min = min(0, min x), x_max = max(0, max x); scale = range / 255, or 1
      // for an all-zero x (onnxruntime's choice, as on the CPU); zero point = saturate(round(-x_min / scale)).
      b.main(`var lo = 0.0;
  var hi = 0.0;
  for (var i = lid.x; i < u.size; i = i + ${RED}u) {
    let v = ${b.loadAs('x', 'i', 'f32')};
    lo = min(lo, v);
    hi = max(hi, v);
  }
  lo_part[lid.x] = lo;
  hi_part[lid.x] = hi;
  workgroupBarrier();
  for (var step = ${RED / 2}u; step > 0u; step = step >> 1u) {
    if (lid.x < step) {
      lo_part[lid.x] = min(lo_part[lid.x], lo_part[lid.x + step]);
      hi_part[lid.x] = max(hi_part[lid.x], hi_part[lid.x + step]);
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    let range = hi_part[0] - lo_part[0];
    let scale = select(${div}(range, 255.0), 1.0, range == 0.0);
    ${b.store('s', '0', 'scale')}
    ${b.store('z', '0', `u32(clamp(round(0.0 - ${div}(lo_part[0], scale)), 0.0, 255.0))`)}
  }`);
    },
    run: () => ({ workgroups: [1, 1, 1], uniforms: { size } }),
  };
}

function dynamicQuantizeProgram(x: GpuTensorInfo, s: GpuTensorInfo, z: GpuTensorInfo, y: GpuTensorInfo): ProgramSpec {
  const size = sizeOfShape(x.shape);
  return {
    key: 'dynamic-quantize-apply',
    bindings: [{ name: 'x', type: x.storage }, { name: 's', type: s.storage }, { name: 'z', type: z.storage }, { name: 'y', type: y.storage }],
    uniforms: [{ name: 'size', type: 'u32' }],
    workgroupSize: [WG, 1, 1],
    source(b) {
      const div = divHelper(b);
      b.main(`${b.linearIndex('u.size')}
  let v = ${div}(${b.loadAs('x', 'index', 'f32')}, ${b.load('s', '0')});
  ${b.store('y', 'index', saturateExpr('v', `f32(${b.load('z', '0')})`, 'uint8'))}`);
    },
    run: () => ({ workgroups: dispatchLinear(size, WG), uniforms: { size } }),
  };
}

const dynamicQuantizeLinear: GpuKernel = {
  plan(node, [x], [y, s, z]) {
    if (x!.dtype !== 'float32') throw new GpuUnsupported(`DynamicQuantizeLinear of ${x!.dtype} has no WebGPU kernel`);
    const calls: ProgramCall[] = [{ program: rangeProgram(x!, s!, z!), tensors: [{ input: 0 }, { output: 1 }, { output: 2 }] }];
    if (sizeOfShape(x!.shape) > 0) {
      calls.push({ program: dynamicQuantizeProgram(x!, s!, z!, y!), tensors: [{ input: 0 }, { output: 1 }, { output: 2 }, { output: 0 }] });
    }
    return { calls };
  },
};

export const kernels: Record<string, GpuKernel> = {
  QuantizeLinear: quantizeLinear,
  DequantizeLinear: dequantizeLinear,
  DynamicQuantizeLinear: dynamicQuantizeLinear,
};
