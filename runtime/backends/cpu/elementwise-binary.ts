import { InvalidArgumentError } from '../../errors.js';
import { isFloat, type DType } from '../../ir/dtype.js';
import { attrInt, attrString, type Node } from '../../ir/graph.js';

/**
 * The CPU arithmetic of every binary elementwise op: name -> factory (node attributes and the operand type in,
 * per-element function out). Operands arrive as float64; the result is converted to the output type with Cast
 * semantics, which for integer outputs truncates toward zero -- exactly C's integer division for Div.
 * Keys must match BINARY_OPS in runtime/ir/ops/elementwise.ts (a test checks it).
 */
export type BinaryFn = (a: number, b: number) => number;
export type BinaryFactory = (node: Node, dtype: DType) => BinaryFn;

/** C pow(): unlike Math.pow, pow(1, y) = 1 and pow(-1, +-inf) = 1 for every y, NaN included (C99 F.9.4.4). */
function cPow(a: number, b: number): number {
  if (a === 1) return 1;
  if (a === -1 && (b === Infinity || b === -Infinity)) return 1;
  return Math.pow(a, b);
}

/** Integer mod with the sign of the divisor (ONNX Mod-13 with fmod=0, like Python's %). */
function floorMod(a: number, b: number): number {
  const r = a % b;
  return r !== 0 && r < 0 !== b < 0 ? r + b : r;
}

/** BitShift's required `direction`: true for LEFT. */
export function bitShiftLeft(n: Node): boolean {
  const d = attrString(n, 'direction', '');
  if (d !== 'LEFT' && d !== 'RIGHT') throw new InvalidArgumentError(`BitShift direction must be LEFT or RIGHT, got '${d}'.`);
  return d === 'LEFT';
}

export const BINARY_FNS: Readonly<Record<string, BinaryFactory>> = {
  Add: () => (a, b) => a + b,
  Sub: () => (a, b) => a - b,
  // 32-bit products can exceed 2^53; Math.imul keeps the exact low 32 bits, i.e. C's wrapping multiply.
  Mul: (_, t) => (t === 'int32' || t === 'uint32' ? Math.imul : (a, b) => a * b),
  // Integer division by zero has no defined result in ONNX; the Cast of +-inf/NaN to an integer type gives 0.
  Div: () => (a, b) => a / b,
  Mod: (n, t) => (attrInt(n, 'fmod', 0) === 1 || isFloat(t) ? (a, b) => a % b : floorMod),
  // BitShift-11 on unsigned integers; shifting by the width or more gives 0. The output Cast wraps left shifts.
  BitShift: (n) => (bitShiftLeft(n) ? (a, b) => (b >= 64 ? 0 : a * 2 ** b) : (a, b) => (b >= 64 ? 0 : Math.floor(a / 2 ** b))),
  Pow: () => cPow,
  PRelu: () => (x, slope) => (x < 0 ? x * slope : x),
  Equal: () => (a, b) => (a === b ? 1 : 0),
  Less: () => (a, b) => (a < b ? 1 : 0),
  Greater: () => (a, b) => (a > b ? 1 : 0),
  LessOrEqual: () => (a, b) => (a <= b ? 1 : 0),
  GreaterOrEqual: () => (a, b) => (a >= b ? 1 : 0),
  And: () => (a, b) => (a && b ? 1 : 0),
  Or: () => (a, b) => (a || b ? 1 : 0),
  Xor: () => (a, b) => ((a ? 1 : 0) ^ (b ? 1 : 0)),
};
