import { attrFloat, attrInt, attrString, type Node } from '../../ir/graph.js';
import { erf } from './math-erf.js';

/**
 * The CPU arithmetic of every unary elementwise op: name -> factory that reads the node's attributes (with the
 * ONNX defaults) once and returns the per-element function. Values arrive as float64 and the result is rounded to
 * the output type afterwards, so float32 results are the correctly rounded float64 ones.
 * Keys must match UNARY_OPS in runtime/ir/ops/elementwise.ts (a test checks it).
 */
export type UnaryFn = (x: number) => number;
export type UnaryFactory = (node: Node) => UnaryFn;

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** log(1 + exp(x)) without overflow for large x or loss of precision for very negative x. */
function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/** 1 / (1 + exp(-x)), never evaluating exp of a large positive number. */
function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** Round half to even (ONNX Round-11, like numpy.round). */
function roundHalfEven(x: number): number {
  if (!Number.isFinite(x)) return x;
  const f = Math.floor(x);
  const d = x - f;
  const r = d < 0.5 ? f : d > 0.5 ? f + 1 : f % 2 === 0 ? f : f + 1;
  return r === 0 && x < 0 ? -0 : r; // -0.4 rounds to -0, as in C and numpy
}

export const UNARY_FNS: Readonly<Record<string, UnaryFactory>> = {
  Relu: () => (x) => (x > 0 ? x : x === x ? 0 : x), // NaN stays NaN
  LeakyRelu: (n) => { const a = attrFloat(n, 'alpha', 0.01); return (x) => (x >= 0 ? x : a * x); },
  Elu: (n) => { const a = attrFloat(n, 'alpha', 1); return (x) => (x >= 0 ? x : a * Math.expm1(x)); },
  Selu: (n) => {
    const a = attrFloat(n, 'alpha', 1.67326319217681884765625);
    const g = attrFloat(n, 'gamma', 1.05070102214813232421875);
    return (x) => (x > 0 ? g * x : g * a * Math.expm1(x));
  },
  Celu: (n) => { const a = attrFloat(n, 'alpha', 1); return (x) => Math.max(0, x) + Math.min(0, a * Math.expm1(x / a)); },
  ThresholdedRelu: (n) => { const a = attrFloat(n, 'alpha', 1); return (x) => (x > a ? x : 0); },
  Shrink: (n) => {
    const bias = attrFloat(n, 'bias', 0);
    const lambd = attrFloat(n, 'lambd', 0.5);
    return (x) => (x < -lambd ? x + bias : x > lambd ? x - bias : 0);
  },
  Sigmoid: () => sigmoid,
  HardSigmoid: (n) => {
    const a = attrFloat(n, 'alpha', 0.2);
    const b = attrFloat(n, 'beta', 0.5);
    return (x) => Math.max(0, Math.min(1, a * x + b));
  },
  HardSwish: () => (x) => x * Math.max(0, Math.min(1, x / 6 + 0.5)),
  Tanh: () => Math.tanh,
  Softplus: () => softplus,
  Softsign: () => (x) => x / (1 + Math.abs(x)),
  Mish: () => (x) => x * Math.tanh(softplus(x)),
  // Gelu-20: 0.5 x (1 + erf(x / sqrt 2)), or the tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
  Gelu: (n) =>
    attrString(n, 'approximate', 'none') === 'tanh'
      ? (x) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))
      : (x) => 0.5 * x * (1 + erf(x * Math.SQRT1_2)),
  Erf: () => erf,
  Exp: () => Math.exp,
  Log: () => Math.log,
  Sqrt: () => Math.sqrt,
  Reciprocal: () => (x) => 1 / x,
  Neg: () => (x) => -x,
  Abs: () => Math.abs,
  Sign: () => Math.sign,
  Floor: () => Math.floor,
  Ceil: () => Math.ceil,
  Round: () => roundHalfEven,
  Sin: () => Math.sin, Cos: () => Math.cos, Tan: () => Math.tan,
  Asin: () => Math.asin, Acos: () => Math.acos, Atan: () => Math.atan,
  Sinh: () => Math.sinh, Cosh: () => Math.cosh,
  Asinh: () => Math.asinh, Acosh: () => Math.acosh, Atanh: () => Math.atanh,
  Not: () => (x) => (x ? 0 : 1),
  IsNaN: () => (x) => (Number.isNaN(x) ? 1 : 0),
  IsInf: (n) => {
    const neg = attrInt(n, 'detect_negative', 1) !== 0;
    const pos = attrInt(n, 'detect_positive', 1) !== 0;
    return (x) => ((pos && x === Infinity) || (neg && x === -Infinity) ? 1 : 0);
  },
};
