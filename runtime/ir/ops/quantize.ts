import { DTypeError, InternalError, InvalidArgumentError, ShapeError, UnsupportedOpError } from '../../errors.js';
import { isFloat, toNumbers, type DType } from '../dtype.js';
import { attrInt, type Dim, type Node } from '../graph.js';
import { schemas as convSchemas } from './conv.js';
import { matmulGeometry } from './matmul.js';
import { checkDType, checkSameDType, dimsConflict, requireInput } from './math-types.js';
import { defineOps, type InferContext, type InferInput, type OpSchema } from './schema.js';

/**
 * Linear quantization in its opset-21 form (ONNX QuantizeLinear-21, DequantizeLinear-21, DynamicQuantizeLinear-11,
 * MatMulInteger-10, ConvInteger-10, QLinearMatMul-21, QLinearConv-10):
 *   q = saturate(round_half_even(x / scale) + zero_point),  x = (q - zero_point) * scale.
 * The scale/zero-point layout is per tensor (scalar or one element), per axis (1-D along `axis`) or blocked
 * (same rank as x, `ceil(D_axis / block_size)` along `axis`; a ragged last block is allowed, as in the spec and
 * onnxruntime). Float8 types have no EdgeKit storage (dtype.ts) and are refused with UnsupportedOpError.
 *
 * int4 and uint4 (opset 21) are held unpacked, one value per byte, as int8 (-8..7) and uint8 (0..15): the importer
 * unpacks 4-bit tensors (importers/onnx/tensor.ts). A QuantizeLinear producing 4 bits says so by output_dtype 22/21
 * or, when its zero point is a 4-bit constant, by the attribute storage_bits = 4 that the importer adds; it then
 * saturates to the 4-bit range (quantRange). A DequantizeLinear whose x is a 4-bit constant (a weight) carries
 * storage_bits = 4 too: the values are already in range, so the CPU reference ignores it; the WebGPU plan reads it
 * to keep those weights packed eight codes per word (backends/webgpu/fuse-int4.ts). `saturate` (opset 19) only
 * concerns float8 outputs and is ignored.
 */

/** The integer types a QuantizeLinear may produce, with their ranges. */
export const QUANT_RANGE: Readonly<Partial<Record<DType, [number, number]>>> = {
  int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535],
};

/** Element types DequantizeLinear reads (int32 too: the bias of a QLinear model is int32). */
const DEQUANT_TYPES: readonly DType[] = ['int8', 'uint8', 'int16', 'uint16', 'int32'];
/** Element types of the integer matrix products (MatMulInteger, ConvInteger, QLinearMatMul, QLinearConv). */
const INT8_TYPES: readonly DType[] = ['int8', 'uint8'];

/** ONNX TensorProto.DataType codes of output_dtype (QuantizeLinear-21). */
const OUTPUT_DTYPE: Record<number, DType> = { 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 21: 'uint8', 22: 'int8' };
const NO_STORAGE: Record<number, string> = {
  17: 'float8e4m3fn', 18: 'float8e4m3fnuz', 19: 'float8e5m2', 20: 'float8e5m2fnuz', 23: 'float4e2m1',
};

const FOUR_BIT_RANGE: Partial<Record<DType, [number, number]>> = { int8: [-8, 7], uint8: [0, 15] };

/** Whether a QuantizeLinear node produces 4-bit values (output_dtype int4/uint4, or storage_bits = 4). */
export function isFourBit(node: Node): boolean {
  const code = attrInt(node, 'output_dtype', 0);
  return code === 21 || code === 22 || attrInt(node, 'storage_bits', 0) === 4;
}

/** The range a QuantizeLinear node saturates to: its output type's, or the 4-bit one (see the file comment). */
export function quantRange(node: Node, dtype: DType): [number, number] {
  const r = isFourBit(node) ? FOUR_BIT_RANGE[dtype] : QUANT_RANGE[dtype];
  if (!r) throw new InternalError(`${node.op}: no quantized range for ${dtype}`);
  return r;
}

/** Round half to even (the spec's rounding for every quantizing op; numpy.rint). */
export function roundHalfEven(v: number): number {
  const r = Math.round(v); // rounds halves toward +inf
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Where the scale of each element of x lives. `block` is 1 for per axis; `scaleDim` is the scale's size along the axis. */
export interface QuantLayout {
  kind: 'tensor' | 'axis' | 'block';
  /** Product of x's dims after the axis. */
  inner: number;
  /** x's size along the axis. */
  dim: number;
  block: number;
  scaleDim: number;
}

/** The scale index of element i of x (row-major), for a layout. */
export function scaleIndex(l: QuantLayout, i: number): number {
  if (l.kind === 'tensor') return 0;
  const a = Math.floor(i / l.inner) % l.dim;
  if (l.kind === 'axis') return a;
  const outer = Math.floor(i / (l.inner * l.dim));
  return (outer * l.scaleDim + Math.floor(a / l.block)) * l.inner + (i % l.inner);
}

function fail(ctx: InferContext, reason: string): never {
  throw new UnsupportedOpError([{ op: ctx.node.op, domain: '', opset: 21, node: ctx.node.name, reason }]);
}

/**
 * Checks the scale (and zero-point) shapes of Quantize/DequantizeLinear against x and returns the layout when x's
 * shape is concrete. Typed errors: an axis out of range, a scale length that mismatches the axis, a blocked scale of
 * the wrong shape, a zero point whose shape differs from the scale's.
 */
export function quantLayout(ctx: InferContext, x: readonly Dim[] | undefined, scale: readonly Dim[] | undefined, zp: InferInput | undefined): QuantLayout | undefined {
  const op = ctx.node.op;
  if (zp?.shape && scale) {
    if (zp.shape.length !== scale.length || zp.shape.some((d, i) => dimsConflict(d, scale[i]!))) {
      throw new ShapeError(`${op} zero point shape [${zp.shape.join(', ')}] differs from the scale's [${scale.join(', ')}].`);
    }
  }
  const block = attrInt(ctx.node, 'block_size', 0);
  if (!Number.isInteger(block) || block < 0) throw new InvalidArgumentError(`${op} block_size must be a non-negative integer, got ${block}.`);
  if (!x || !scale) return undefined;
  const rank = x.length;
  const scaleCount = scale.every((d): d is number => typeof d === 'number') ? scale.reduce((a, b) => a * b, 1) : undefined;
  if (block === 0 && scale.length <= 1 && (scale.length === 0 || scaleCount === 1)) {
    return x.every((d) => typeof d === 'number') ? { kind: 'tensor', inner: 1, dim: 1, block: 1, scaleDim: 1 } : undefined;
  }
  const rawAxis = attrInt(ctx.node, 'axis', 1);
  if (rawAxis < -rank || rawAxis >= rank) throw new InvalidArgumentError(`${op} axis ${rawAxis} is out of range for an input of rank ${rank}.`);
  const axis = rawAxis < 0 ? rawAxis + rank : rawAxis;
  const dim = x[axis]!;
  if (block === 0) {
    if (scale.length !== 1 || dimsConflict(scale[0]!, dim)) {
      throw new ShapeError(
        `${op} per-axis scale must be 1-D with one value per index of axis ${axis} (${dim}), got shape [${scale.join(', ')}].`,
        { x: [...x], scale: [...scale], axis },
      );
    }
  } else {
    if (scale.length !== rank) throw new ShapeError(`${op} blocked scale must have x's rank ${rank}, got shape [${scale.join(', ')}].`);
    for (let i = 0; i < rank; i++) {
      const want = i === axis && typeof x[i] === 'number' ? Math.ceil((x[i] as number) / block) : x[i]!;
      if (dimsConflict(scale[i]!, want)) {
        throw new ShapeError(
          `${op} blocked scale [${scale.join(', ')}] must match x [${x.join(', ')}] with ceil(${x[i]} / block_size ${block}) = ${want} along axis ${axis}.`,
          { x: [...x], scale: [...scale], axis, block },
        );
      }
    }
  }
  if (!x.every((d): d is number => typeof d === 'number')) return undefined;
  const xs = x as number[];
  const inner = xs.slice(axis + 1).reduce((a, b) => a * b, 1);
  return block === 0
    ? { kind: 'axis', inner, dim: xs[axis]!, block: 1, scaleDim: xs[axis]! }
    : { kind: 'block', inner, dim: xs[axis]!, block, scaleDim: Math.ceil(xs[axis]! / block) };
}

/** A constant scale must be positive and finite: a zero scale divides by zero, a negative one flips the range. */
function checkScaleValues(ctx: InferContext, what: string, s: InferInput | undefined): void {
  if (!s?.value) return;
  const v = toNumbers(s.value.dtype, s.value.data);
  for (const x of v) {
    if (!(x > 0) || !Number.isFinite(x)) throw new InvalidArgumentError(`${ctx.node.op} ${what} holds ${x}; a scale must be positive and finite.`, { node: ctx.node.name });
  }
}

function checkFloatScale(ctx: InferContext, what: string, s: InferInput): void {
  if (!isFloat(s.dtype) || s.dtype === 'float64') throw new DTypeError(`${ctx.node.op} ${what} is ${s.dtype}; it must be float32, float16 or bfloat16.`);
  checkScaleValues(ctx, what, s);
}

function checkInt8(ctx: InferContext, what: string, d: DType): void {
  if (!INT8_TYPES.includes(d)) throw new DTypeError(`${ctx.node.op} ${what} is ${d}; it must be int8 or uint8.`, { dtype: d });
}

/** An operand of an integer product (int8 or uint8) and its zero point, when given, of the same type. */
function checkIntOperand(ctx: InferContext, what: string, d: DType, zp: { dtype: DType } | undefined): void {
  checkInt8(ctx, what, d);
  if (zp) checkSameDType(ctx, d, zp.dtype, `${what} and ${what.toLowerCase()}_zero_point`);
}

/** A scalar or single-element tensor, or a 1-D tensor of `n` values when `n` is given. */
function checkScalarOr1D(ctx: InferContext, what: string, s: readonly Dim[] | undefined, n?: Dim, nWhat = ''): void {
  if (!s) return;
  const one = s.length === 0 || (s.length === 1 && s[0] === 1);
  if (one) return;
  if (n !== undefined && s.length === 1 && !dimsConflict(s[0]!, n)) return;
  throw new ShapeError(`${ctx.node.op} ${what} must be a scalar${n !== undefined ? ` or 1-D with ${n} values (${nWhat})` : ''}, got shape [${s.join(', ')}].`);
}

/** The integer type QuantizeLinear-21 produces: the zero point's, else output_dtype, else uint8. */
function quantizeOutput(ctx: InferContext, zp: InferInput | undefined): DType {
  const code = attrInt(ctx.node, 'output_dtype', 0);
  if (zp) {
    if (code !== 0 && OUTPUT_DTYPE[code] !== zp.dtype) throw new DTypeError(`QuantizeLinear output_dtype ${code} differs from the zero point's type ${zp.dtype}.`);
    if (!QUANT_RANGE[zp.dtype]) fail(ctx, `quantizing to ${zp.dtype} (EdgeKit quantizes to int8, uint8, int16, uint16)`);
    return zp.dtype;
  }
  if (code === 0) return 'uint8';
  const d = OUTPUT_DTYPE[code];
  if (!d) fail(ctx, `output_dtype ${NO_STORAGE[code] ?? code}: EdgeKit has no storage for this element type (int4, uint4, int8, uint8, int16, uint16 work)`);
  return d;
}

/** A constant zero point must lie in the range the node quantizes to (4-bit zero points in -8..7 or 0..15). */
function checkZeroPointRange(ctx: InferContext, zp: InferInput | undefined, dtype: DType): void {
  if (!zp?.value || !isFourBit(ctx.node)) return;
  const [lo, hi] = quantRange(ctx.node, dtype);
  for (const v of toNumbers(zp.value.dtype, zp.value.data)) {
    if (v < lo || v > hi) throw new InvalidArgumentError(`QuantizeLinear zero point ${v} is outside the 4-bit range [${lo}, ${hi}] of its output.`, { node: ctx.node.name });
  }
}

const quantizeLinear: OpSchema = {
  op: 'QuantizeLinear',
  inputs: [2, 3],
  outputs: [1, 1],
  infer(ctx) {
    const x = requireInput(ctx, 0, 'x');
    const s = requireInput(ctx, 1, 'y_scale');
    const zp = ctx.inputs[2];
    checkDType(ctx, 'x', x.dtype, 'float');
    checkFloatScale(ctx, 'y_scale', s);
    const dtype = quantizeOutput(ctx, zp);
    checkZeroPointRange(ctx, zp, dtype);
    quantLayout(ctx, x.shape, s.shape, zp);
    return [{ dtype, shape: x.shape }];
  },
};

const dequantizeLinear: OpSchema = {
  op: 'DequantizeLinear',
  inputs: [2, 3],
  outputs: [1, 1],
  infer(ctx) {
    const x = requireInput(ctx, 0, 'x');
    const s = requireInput(ctx, 1, 'x_scale');
    const zp = ctx.inputs[2];
    if (!DEQUANT_TYPES.includes(x.dtype)) fail(ctx, `x of type ${x.dtype} (EdgeKit dequantizes int8, uint8, int16, uint16, int32)`);
    checkFloatScale(ctx, 'x_scale', s);
    if (zp) {
      checkSameDType(ctx, x.dtype, zp.dtype, 'x and x_zero_point');
      if (x.dtype === 'int32' && zp.value && toNumbers(zp.value.dtype, zp.value.data).some((v) => v !== 0)) {
        throw new InvalidArgumentError('DequantizeLinear of int32 needs a zero point of 0 (ONNX DequantizeLinear-21).');
      }
    }
    quantLayout(ctx, x.shape, s.shape, zp);
    return [{ dtype: s.dtype, shape: x.shape }];
  },
};

/** DynamicQuantizeLinear-11: x float32 -> y uint8, y_scale float32 [], y_zero_point uint8 []. */
const dynamicQuantizeLinear: OpSchema = {
  op: 'DynamicQuantizeLinear',
  inputs: [1, 1],
  outputs: [3, 3],
  infer(ctx) {
    const x = requireInput(ctx, 0, 'x');
    if (x.dtype !== 'float32') throw new DTypeError(`DynamicQuantizeLinear x is ${x.dtype}; it must be float32.`);
    return [{ dtype: 'uint8', shape: x.shape }, { dtype: 'float32', shape: [] }, { dtype: 'uint8', shape: [] }];
  },
};

/**
 * MatMulInteger-10: (A - a_zero_point) @ (B - b_zero_point) in int32; a_zero_point is a scalar or one per row of A
 * ([M]), b_zero_point a scalar or one per column of B ([N]).
 */
const matmulInteger: OpSchema = {
  op: 'MatMulInteger',
  inputs: [2, 4],
  outputs: [1, 1],
  infer(ctx) {
    const a = requireInput(ctx, 0, 'A');
    const b = requireInput(ctx, 1, 'B');
    const [azp, bzp] = [ctx.inputs[2], ctx.inputs[3]];
    checkIntOperand(ctx, 'A', a.dtype, azp);
    checkIntOperand(ctx, 'B', b.dtype, bzp);
    if (!a.shape || !b.shape) return [{ dtype: 'int32' }];
    const g = matmulGeometry(ctx, a.shape, b.shape);
    checkScalarOr1D(ctx, 'a_zero_point', azp?.shape, g.m, 'one per row of A');
    checkScalarOr1D(ctx, 'b_zero_point', bzp?.shape, g.n, 'one per column of B');
    return [{ dtype: 'int32', shape: g.out }];
  },
};

/**
 * QLinearMatMul-21: y = saturate(round((a - a_zp) @ (b - b_zp) * a_scale * b_scale / y_scale) + y_zp); a's scale and
 * zero point (and y's) are per tensor or per row [M], b's per tensor or per column [N].
 */
const qlinearMatMul: OpSchema = {
  op: 'QLinearMatMul',
  inputs: [8, 8],
  outputs: [1, 1],
  infer(ctx) {
    const names = ['a', 'a_scale', 'a_zero_point', 'b', 'b_scale', 'b_zero_point', 'y_scale', 'y_zero_point'];
    const [a, as, azp, b, bs, bzp, ys, yzp] = names.map((n, i) => requireInput(ctx, i, n)) as InferInput[];
    checkIntOperand(ctx, 'a', a!.dtype, azp!);
    checkIntOperand(ctx, 'b', b!.dtype, bzp!);
    checkInt8(ctx, 'y_zero_point', yzp!.dtype);
    for (const [n, s] of [['a_scale', as], ['b_scale', bs], ['y_scale', ys]] as const) checkFloatScale(ctx, n, s!);
    if (!a!.shape || !b!.shape) return [{ dtype: yzp!.dtype }];
    const g = matmulGeometry(ctx, a!.shape, b!.shape);
    checkScalarOr1D(ctx, 'a_scale', as!.shape, g.m, 'one per row of a');
    checkScalarOr1D(ctx, 'a_zero_point', azp!.shape, g.m, 'one per row of a');
    checkScalarOr1D(ctx, 'b_scale', bs!.shape, g.n, 'one per column of b');
    checkScalarOr1D(ctx, 'b_zero_point', bzp!.shape, g.n, 'one per column of b');
    checkScalarOr1D(ctx, 'y_scale', ys!.shape, g.m, 'one per row of y');
    checkScalarOr1D(ctx, 'y_zero_point', yzp!.shape, g.m, 'one per row of y');
    return [{ dtype: yzp!.dtype, shape: g.out }];
  },
};

/** Conv's output shape for integer operands: Conv-11's inference on float stand-ins of x and w. */
function convShape(ctx: InferContext, x: InferInput, w: InferInput): Dim[] | undefined {
  const node = { ...ctx.node, op: 'Conv' };
  const [o] = convSchemas.Conv!.infer({ ...ctx, node, inputs: [{ dtype: 'float32', shape: x.shape }, { dtype: 'float32', shape: w.shape }] });
  return o!.shape;
}

/** ConvInteger-10: Conv over (x - x_zero_point) and (w - w_zero_point) in int32; w's zero point per tensor or per output channel. */
const convInteger: OpSchema = {
  op: 'ConvInteger',
  inputs: [2, 4],
  outputs: [1, 1],
  infer(ctx) {
    const x = requireInput(ctx, 0, 'x');
    const w = requireInput(ctx, 1, 'w');
    const [xzp, wzp] = [ctx.inputs[2], ctx.inputs[3]];
    checkIntOperand(ctx, 'x', x.dtype, xzp);
    checkIntOperand(ctx, 'w', w.dtype, wzp);
    checkScalarOr1D(ctx, 'x_zero_point', xzp?.shape);
    checkScalarOr1D(ctx, 'w_zero_point', wzp?.shape, w.shape?.[0], 'one per output channel');
    return [{ dtype: 'int32', shape: convShape(ctx, x, w) }];
  },
};

/**
 * QLinearConv-10: y = saturate(round((conv(x - x_zp, w - w_zp) + B) * x_scale * w_scale / y_scale) + y_zp); w's scale
 * and zero point per tensor or per output channel [M], B int32 [M].
 */
const qlinearConv: OpSchema = {
  op: 'QLinearConv',
  inputs: [8, 9],
  outputs: [1, 1],
  infer(ctx) {
    const names = ['x', 'x_scale', 'x_zero_point', 'w', 'w_scale', 'w_zero_point', 'y_scale', 'y_zero_point'];
    const [x, xs, xzp, w, ws, wzp, ys, yzp] = names.map((n, i) => requireInput(ctx, i, n)) as InferInput[];
    const bias = ctx.inputs[8];
    checkIntOperand(ctx, 'x', x!.dtype, xzp!);
    checkIntOperand(ctx, 'w', w!.dtype, wzp!);
    checkInt8(ctx, 'y_zero_point', yzp!.dtype);
    for (const [n, s] of [['x_scale', xs], ['w_scale', ws], ['y_scale', ys]] as const) checkFloatScale(ctx, n, s!);
    const m = w!.shape?.[0];
    checkScalarOr1D(ctx, 'x_scale', xs!.shape);
    checkScalarOr1D(ctx, 'x_zero_point', xzp!.shape);
    checkScalarOr1D(ctx, 'w_scale', ws!.shape, m, 'one per output channel');
    checkScalarOr1D(ctx, 'w_zero_point', wzp!.shape, m, 'one per output channel');
    checkScalarOr1D(ctx, 'y_scale', ys!.shape);
    checkScalarOr1D(ctx, 'y_zero_point', yzp!.shape);
    if (bias) {
      if (bias.dtype !== 'int32') throw new DTypeError(`QLinearConv bias B is ${bias.dtype}; it must be int32.`);
      if (bias.shape && m !== undefined && (bias.shape.length !== 1 || dimsConflict(bias.shape[0]!, m))) {
        throw new ShapeError(`QLinearConv bias B must have shape [${m}], got [${bias.shape.join(', ')}].`);
      }
    }
    return [{ dtype: yzp!.dtype, shape: convShape(ctx, x!, w!) }];
  },
};

export const schemas = defineOps(quantizeLinear, dequantizeLinear, dynamicQuantizeLinear, matmulInteger, qlinearMatMul, convInteger, qlinearConv);
