import { DTypeError, InvalidArgumentError, ShapeError } from '../../errors.js';
import { isFloat, toNumbers, type DType } from '../dtype.js';
import type { Dim } from '../graph.js';
import type { InferContext, InferInput } from './schema.js';

/**
 * Type constraints and input accessors shared by the math op schemas (elementwise, matmul, conv, pool,
 * normalization, reduce). The classes mirror the type-constraint lists of the ONNX operator docs closely enough
 * to reject models that can never run, without enumerating every opset's exact list.
 */
export type TypeClass =
  /** float16, bfloat16, float32, float64 */
  | 'float'
  /** floats and signed integers */
  | 'signed'
  /** every numeric type (floats and all integer widths) */
  | 'numeric'
  /** numeric types and bool */
  | 'numericOrBool'
  | 'bool'
  /** integers only */
  | 'integer'
  /** unsigned integers only (BitShift) */
  | 'unsigned';

const SIGNED_INTS: readonly DType[] = ['int8', 'int16', 'int32', 'int64'];
const UNSIGNED_INTS: readonly DType[] = ['uint8', 'uint16', 'uint32', 'uint64'];

export function inTypeClass(d: DType, cls: TypeClass): boolean {
  switch (cls) {
    case 'float': return isFloat(d);
    case 'signed': return isFloat(d) || SIGNED_INTS.includes(d);
    case 'numeric': return isFloat(d) || SIGNED_INTS.includes(d) || UNSIGNED_INTS.includes(d);
    case 'numericOrBool': return d === 'bool' || inTypeClass(d, 'numeric');
    case 'bool': return d === 'bool';
    case 'integer': return SIGNED_INTS.includes(d) || UNSIGNED_INTS.includes(d);
    case 'unsigned': return UNSIGNED_INTS.includes(d);
  }
}

const CLASS_TEXT: Record<TypeClass, string> = {
  float: 'a floating-point type (float16, bfloat16, float32, float64)',
  signed: 'a floating-point or signed integer type',
  numeric: 'a numeric type',
  numericOrBool: 'a numeric type or bool',
  bool: 'bool',
  integer: 'an integer type',
  unsigned: 'an unsigned integer type (uint8, uint16, uint32, uint64)',
};

export function checkDType(ctx: InferContext, what: string, d: DType, cls: TypeClass): void {
  if (!inTypeClass(d, cls)) {
    throw new DTypeError(`${ctx.node.op} ${what} is ${d}; it must be ${CLASS_TEXT[cls]}.`, { dtype: d });
  }
}

export function checkSameDType(ctx: InferContext, a: DType, b: DType, what: string): void {
  if (a !== b) throw new DTypeError(`${ctx.node.op} needs ${what} of one element type, got ${a} and ${b}; insert a Cast.`, { dtypes: [a, b] });
}

/** A required input; a missing one is a malformed node, reported as such. */
export function requireInput(ctx: InferContext, i: number, what: string): InferInput {
  const x = ctx.inputs[i];
  if (!x) throw new InvalidArgumentError(`${ctx.node.op} input ${i} (${what}) is required but missing.`);
  return x;
}

export function requireRank(ctx: InferContext, shape: readonly Dim[] | undefined, what: string, min: number, max = Infinity): void {
  if (!shape) return;
  if (shape.length < min || shape.length > max) {
    const want = max === Infinity ? `at least ${min}` : min === max ? `${min}` : `${min} to ${max}`;
    throw new ShapeError(`${ctx.node.op} ${what} must have rank ${want}, got shape [${shape.join(', ')}].`, { shape: [...shape] });
  }
}

/** Reads a constant integer input (axes, K...) when its value is known at inference time. */
export function constInts(x: InferInput | undefined): number[] | undefined {
  if (!x?.value) return undefined;
  return Array.from(toNumbers(x.value.dtype, x.value.data));
}

/** Whether two dims certainly differ (symbols might be equal at run time, so they never certainly differ). */
export function dimsConflict(a: Dim, b: Dim): boolean {
  return typeof a === 'number' && typeof b === 'number' && a !== b;
}
