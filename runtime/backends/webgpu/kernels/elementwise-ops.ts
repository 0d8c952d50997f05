import { attrFloat, attrInt, attrString, type Node } from '../../../ir/graph.js';
import type { ComputeType } from '../storage.js';

/**
 * THE table of elementwise ops on the GPU: one WGSL expression per op, written once for scalars and vec4 (all
 * builtins are component-wise; constants are `c(...)` splats of the operand type). Broadcasting, vectorization,
 * storage types and dispatch live in elementwise.ts. Semantics: the newest ONNX opset of each op, matched
 * against the CPU reference (runtime/backends/cpu/elementwise-*.ts).
 * Adding an op: one entry here (and its importer line and a test case).
 */

/** Compute kinds: float (f32/f16), signed int (i32), unsigned int (u32), bool (u32 0/1). */
export type Kind = 'f' | 'i' | 'u' | 'b';

export interface ExprCtx {
  /** Operand value names (`a`, `b`, ...), each already of its operand's value type. */
  v: [string, string, string, ...string[]];
  /** Value type of operand 0 (of operand 1 for Where): f32, vec4<f32>, i32... */
  T: string;
  /** Scalar compute type of that operand. */
  S: ComputeType;
  /** Value type of the output. */
  OT: string;
  /** `T(x)`: a constant or scalar expression splatted to T. */
  c(x: number | string): string;
  /** Parameter (attribute) `name`, read from the uniforms and converted to T. */
  p(name: string): string;
  /** A math helper (wgsl/math.ts) for T; returns its function name. */
  fn(name: string): string;
  /** An output-typed 0/1 from a boolean expression (comparisons). */
  bool(cond: string): string;
  /** Operand i converted to T (Pow's exponent may have another type). */
  as(i: number): string;
  /** Whether values are vec4. */
  vec: boolean;
}

export interface EwOp {
  /** Kinds allowed for operand 0 (and the others, unless mixed). */
  kinds: readonly Kind[];
  /** Operand count [min, max]. */
  arity: [number, number];
  /** The output is bool whatever the inputs. */
  boolOut?: boolean;
  /** Operand kinds may differ (Pow's exponent; Where's condition is handled by `condFirst`). */
  mixed?: boolean;
  /** Operand 0 is a bool condition and the value operands start at 1 (Where). */
  condFirst?: boolean;
  /** Float attributes that travel as uniforms, with their ONNX defaults. */
  params?: Readonly<Record<string, (n: Node) => number>>;
  /** Attribute-dependent choice of expression; becomes part of the cache key. */
  variant?: (n: Node) => string;
  /** Needs a scalar helper that has no vec4 form. */
  scalarOnly?: (S: ComputeType) => boolean;
  expr(e: ExprCtx, variant: string): string;
}

const FLOAT: readonly Kind[] = ['f'];
const SIGNED: readonly Kind[] = ['f', 'i'];
const NUMERIC: readonly Kind[] = ['f', 'i', 'u'];
const unary = (kinds: readonly Kind[], expr: EwOp['expr'], extra: Partial<EwOp> = {}): EwOp => ({ kinds, arity: [1, 1], expr, ...extra });
const binary = (kinds: readonly Kind[], expr: EwOp['expr'], extra: Partial<EwOp> = {}): EwOp => ({ kinds, arity: [2, 2], expr, ...extra });
const alpha = (d: number) => ({ alpha: (n: Node) => attrFloat(n, 'alpha', d) });
const isFloatS = (S: ComputeType) => S === 'f32' || S === 'f16';

export const EW_OPS: Readonly<Record<string, EwOp>> = {
  // ---- unary ----
  // Float max/min go through the NaN-propagating helpers (wgsl/math.ts): WGSL's max(NaN, 0) may return 0.
  Relu: unary(SIGNED, ({ v: [x], c, S, fn }) => `${isFloatS(S) ? fn('max_nan') : 'max'}(${x}, ${c(0)})`),
  LeakyRelu: unary(FLOAT, ({ v: [x], c, p }) => `select(${p('alpha')} * ${x}, ${x}, ${x} >= ${c(0)})`, { params: alpha(0.01) }),
  Elu: unary(FLOAT, ({ v: [x], c, p, fn }) => `select(${p('alpha')} * ${fn('expm1')}(${x}), ${x}, ${x} >= ${c(0)})`, { params: alpha(1) }),
  Selu: unary(FLOAT, ({ v: [x], c, p, fn }) => `${p('gamma')} * select(${p('alpha')} * ${fn('expm1')}(${x}), ${x}, ${x} > ${c(0)})`, {
    params: { alpha: (n) => attrFloat(n, 'alpha', 1.67326319217681884765625), gamma: (n) => attrFloat(n, 'gamma', 1.05070102214813232421875) },
  }),
  Celu: unary(FLOAT, ({ v: [x], c, p, fn }) => `${fn('max_nan')}(${c(0)}, ${x}) + ${fn('min_nan')}(${c(0)}, ${p('alpha')} * ${fn('expm1')}(${x} / ${p('alpha')}))`, { params: alpha(1) }),
  ThresholdedRelu: unary(FLOAT, ({ v: [x], c, p }) => `select(${c(0)}, ${x}, ${x} > ${p('alpha')})`, { params: alpha(1) }),
  Shrink: unary(FLOAT, ({ v: [x], c, p }) => `select(select(${c(0)}, ${x} - ${p('bias')}, ${x} > ${p('lambd')}), ${x} + ${p('bias')}, ${x} < -${p('lambd')})`, {
    params: { bias: (n) => attrFloat(n, 'bias', 0), lambd: (n) => attrFloat(n, 'lambd', 0.5) },
  }),
  Sigmoid: unary(FLOAT, ({ v: [x], fn }) => `${fn('sigmoid')}(${x})`),
  HardSigmoid: unary(FLOAT, ({ v: [x], c, p, fn }) => `${fn('clip_nan')}(${p('alpha')} * ${x} + ${p('beta')}, ${c(0)}, ${c(1)})`, {
    params: { alpha: (n) => attrFloat(n, 'alpha', 0.2), beta: (n) => attrFloat(n, 'beta', 0.5) },
  }),
  HardSwish: unary(FLOAT, ({ v: [x], c, fn }) => `${x} * ${fn('clip_nan')}(${x} / ${c(6)} + ${c(0.5)}, ${c(0)}, ${c(1)})`),
  Tanh: unary(FLOAT, ({ v: [x], fn }) => `${fn('tanh')}(${x})`),
  Softplus: unary(FLOAT, ({ v: [x], fn }) => `${fn('softplus')}(${x})`),
  Softsign: unary(FLOAT, ({ v: [x], c }) => `${x} / (${c(1)} + abs(${x}))`),
  Mish: unary(FLOAT, ({ v: [x], fn }) => `${x} * ${fn('tanh')}(${fn('softplus')}(${x}))`),
  // Gelu-20: 0.5 x erfc(-x / sqrt 2) (= 0.5 x (1 + erf(x / sqrt 2)) without cancellation for x < 0), or the tanh form.
  Gelu: unary(
    FLOAT,
    ({ v: [x], c, fn }, variant) =>
      variant === 'tanh'
        ? `${c(0.5)} * ${x} * (${c(1)} + ${fn('tanh')}(${c(Math.sqrt(2 / Math.PI))} * (${x} + ${c(0.044715)} * ${x} * ${x} * ${x})))`
        : `${c(0.5)} * ${x} * ${fn('erfc')}(${x} * ${c(-Math.SQRT1_2)})`,
    { variant: (n) => attrString(n, 'approximate', 'none') },
  ),
  Erf: unary(FLOAT, ({ v: [x], fn }) => `${fn('erf')}(${x})`),
  Exp: unary(FLOAT, ({ v: [x] }) => `exp(${x})`),
  Log: unary(FLOAT, ({ v: [x], fn }) => `${fn('log')}(${x})`),
  Sqrt: unary(FLOAT, ({ v: [x] }) => `sqrt(${x})`),
  Reciprocal: unary(FLOAT, ({ v: [x], c }) => `${c(1)} / ${x}`),
  Neg: unary(SIGNED, ({ v: [x] }) => `-${x}`),
  Abs: unary(NUMERIC, ({ v: [x], S }) => (S === 'u32' ? x : `abs(${x})`)),
  Sign: unary(NUMERIC, ({ v: [x], c, S }) =>
    S === 'u32' ? `select(${c(0)}, ${c(1)}, ${x} > ${c(0)})` : `select(select(${c(0)}, ${c(1)}, ${x} > ${c(0)}), ${c(-1)}, ${x} < ${c(0)})`),
  Floor: unary(FLOAT, ({ v: [x] }) => `floor(${x})`),
  Ceil: unary(FLOAT, ({ v: [x] }) => `ceil(${x})`),
  // WGSL round() rounds half to even, as ONNX Round-11 requires.
  Round: unary(FLOAT, ({ v: [x] }) => `round(${x})`),
  // Trigonometry through wgsl/math.ts: WGSL's builtins promise only ~5e-4 absolute error.
  Sin: unary(FLOAT, ({ v: [x], fn }) => `${fn('sin')}(${x})`),
  Cos: unary(FLOAT, ({ v: [x], fn }) => `${fn('cos')}(${x})`),
  Tan: unary(FLOAT, ({ v: [x], fn }) => `${fn('sin')}(${x}) / ${fn('cos')}(${x})`),
  Asin: unary(FLOAT, ({ v: [x], fn }) => `${fn('asin')}(${x})`),
  Acos: unary(FLOAT, ({ v: [x], fn }) => `${fn('acos')}(${x})`),
  Atan: unary(FLOAT, ({ v: [x], fn }) => `${fn('atan')}(${x})`),
  // sinh = (expm1(x) - expm1(-x)) / 2: the two terms have opposite signs, so nothing cancels near 0.
  Sinh: unary(FLOAT, ({ v: [x], c, fn }) => `(${fn('expm1')}(${x}) - ${fn('expm1')}(-${x})) * ${c(0.5)}`),
  Cosh: unary(FLOAT, ({ v: [x], c }) => `(exp(${x}) + exp(-${x})) * ${c(0.5)}`),
  // asinh x = sign(x) log1p(|x| + x^2 / (1 + sqrt(1 + x^2))); atanh x = log1p(2x / (1 - x)) / 2.
  Asinh: unary(FLOAT, ({ v: [x], c, fn }) => `sign(${x}) * ${fn('log1p')}(abs(${x}) + ${x} * ${x} / (${c(1)} + sqrt(${c(1)} + ${x} * ${x})))`),
  Acosh: unary(FLOAT, ({ v: [x], c }) => `log(${x} + sqrt(${x} * ${x} - ${c(1)}))`),
  Atanh: unary(FLOAT, ({ v: [x], c, fn }) => `${c(0.5)} * ${fn('log1p')}(${c(2)} * ${x} / (${c(1)} - ${x}))`),
  Not: unary(['b'], ({ v: [x], c }) => `${c(1)} - ${x}`),
  // Bit tests, not x != x: shader compilers may assume NaN never occurs.
  IsNaN: unary(['f'], ({ v: [x], bool, vec }) => bool(`(${bits(x, vec)} & ${u32s(vec, '0x7fffffffu')}) > ${u32s(vec, '0x7f800000u')}`), { boolOut: true, scalarOnly: (S) => S === 'f16' }),
  IsInf: unary(
    ['f'],
    ({ v: [x], bool, vec }, variant) => {
      const [neg, pos] = variant.split(',');
      const conds = [];
      if (pos === '1') conds.push(`(${bits(x, vec)} == ${u32s(vec, '0x7f800000u')})`);
      if (neg === '1') conds.push(`(${bits(x, vec)} == ${u32s(vec, '0xff800000u')})`);
      return conds.length ? bool(conds.join(' | ')) : bool(`${bits(x, vec)} != ${bits(x, vec)}`);
    },
    { boolOut: true, variant: (n) => `${attrInt(n, 'detect_negative', 1) ? 1 : 0},${attrInt(n, 'detect_positive', 1) ? 1 : 0}`, scalarOnly: (S) => S === 'f16' },
  ),

  // ---- binary ----
  Add: binary(NUMERIC, ({ v: [a, b] }) => `${a} + ${b}`),
  Sub: binary(NUMERIC, ({ v: [a, b] }) => `${a} - ${b}`),
  Mul: binary(NUMERIC, ({ v: [a, b] }) => `${a} * ${b}`),
  // Integer division by zero is undefined in ONNX; the CPU reference gives 0 (Cast of inf), and so do we.
  Div: binary(NUMERIC, ({ v: [a, b], c, S }) => (isFloatS(S) ? `${a} / ${b}` : `select(${a} / ${b}, ${c(0)}, ${b} == ${c(0)})`)),
  // Mod-13: fmod=1 truncates (C fmod); fmod=0 (integers only) takes the divisor's sign (Python %).
  Mod: binary(NUMERIC, ({ v: [a, b], c, S }, variant) => {
    if (isFloatS(S)) return `${a} - ${b} * trunc(${a} / ${b})`;
    const r = `select(${a} % ${b}, ${c(0)}, ${b} == ${c(0)})`;
    if (variant === 'fmod' || S === 'u32') return r;
    return `select(${r}, ${r} + ${b}, (${r} != ${c(0)}) & ((${r} < ${c(0)}) != (${b} < ${c(0)})))`;
  }, { variant: (n) => (attrInt(n, 'fmod', 0) === 1 ? 'fmod' : 'floor') }),
  // BitShift-11 (unsigned only): a shift by 32 or more gives 0 (WGSL would take the amount mod 32).
  BitShift: binary(['u'], ({ v: [a, b], c }, variant) => `select(${a} ${variant === 'LEFT' ? '<<' : '>>'} ${b}, ${c(0)}, ${b} >= ${c(32)})`, { variant: (n) => attrString(n, 'direction', '') }),
  Pow: binary(SIGNED, ({ v: [a], S, fn, as }) => `${fn(isFloatS(S) ? 'pow' : 'pow_int')}(${a}, ${as(1)})`, { mixed: true, scalarOnly: (S) => !isFloatS(S) }),
  PRelu: binary(SIGNED, ({ v: [x, s], c }) => `select(${x} * ${s}, ${x}, ${x} >= ${c(0)})`),
  Equal: binary(['f', 'i', 'u', 'b'], ({ v: [a, b], bool }) => bool(`${a} == ${b}`), { boolOut: true }),
  Less: binary(NUMERIC, ({ v: [a, b], bool }) => bool(`${a} < ${b}`), { boolOut: true }),
  Greater: binary(NUMERIC, ({ v: [a, b], bool }) => bool(`${a} > ${b}`), { boolOut: true }),
  LessOrEqual: binary(NUMERIC, ({ v: [a, b], bool }) => bool(`${a} <= ${b}`), { boolOut: true }),
  GreaterOrEqual: binary(NUMERIC, ({ v: [a, b], bool }) => bool(`${a} >= ${b}`), { boolOut: true }),
  And: binary(['b'], ({ v: [a, b] }) => `${a} & ${b}`, { boolOut: true }),
  Or: binary(['b'], ({ v: [a, b] }) => `${a} | ${b}`, { boolOut: true }),
  Xor: binary(['b'], ({ v: [a, b] }) => `${a} ^ ${b}`, { boolOut: true }),

  // ---- n-ary ----
  // Variadic ops in one pass over up to 7 operands (the executor chains more); ONNX Sum/Mean-13, Min/Max-13.
  Sum: { kinds: FLOAT, arity: [1, 7], expr: ({ v }) => v.join(' + ') },
  Mean: { kinds: FLOAT, arity: [1, 7], params: { count: (n) => n.inputs.filter(Boolean).length }, expr: ({ v, p }) => `(${v.join(' + ')}) / ${p('count')}` },
  // NaN in any operand gives NaN (as the CPU reference and onnxruntime).
  Min: { kinds: NUMERIC, arity: [1, 7], expr: ({ v, S, fn }) => v.reduce((acc, x) => `${isFloatS(S) ? fn('min_nan') : 'min'}(${acc}, ${x})`) },
  Max: { kinds: NUMERIC, arity: [1, 7], expr: ({ v, S, fn }) => v.reduce((acc, x) => `${isFloatS(S) ? fn('max_nan') : 'max'}(${acc}, ${x})`) },
  // Where-16: condition (bool) first.
  Where: { kinds: ['f', 'i', 'u', 'b'], arity: [3, 3], condFirst: true, expr: ({ v: [cond, x, y], vec }) => `select(${y}, ${x}, ${cond} != ${u32s(vec, '0u')})` },
  // Clip-13: min/max are optional scalar tensors; absent bounds are omitted from the expression (the key says which).
  Clip: {
    kinds: NUMERIC,
    arity: [1, 3],
    variant: (n) => `${n.inputs[1] ? 'lo' : ''}${n.inputs[2] ? 'hi' : ''}`,
    expr: ({ v, S, c, fn }, variant) => {
      let e = v[0]!;
      let k = 1;
      if (variant.includes('lo')) e = `max(${e}, ${v[k++]})`;
      if (variant.includes('hi')) e = `min(${e}, ${v[k++]})`;
      // NaN x passes through unchanged (CPU reference, onnxruntime); WGSL's max/min may drop it.
      return isFloatS(S) ? `select(${e}, ${v[0]}, ${fn('is_nan')}(${v[0]}))` : e;
    },
  },
};

function bits(x: string, vec: boolean): string {
  return vec ? `bitcast<vec4<u32>>(${x})` : `bitcast<u32>(${x})`;
}
function u32s(vec: boolean, lit: string): string {
  return vec ? `vec4<u32>(${lit})` : lit;
}
