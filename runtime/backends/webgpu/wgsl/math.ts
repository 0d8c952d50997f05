import { InternalError } from '../../../errors.js';
import type { ShaderBuilder } from './builder.js';

/**
 * WGSL math helpers the elementwise table needs beyond the builtins, written once over a type parameter `T`
 * (f32, f16 or vec4 of them: every builtin used is component-wise, constants are `T(...)` splats).
 * Builtins are not used where GPUs differ or lose precision: exp(x) - 1 and log(1 + x) near 0, tanh for large |x|
 * (overflows to NaN on some drivers), erf (no builtin).
 */

type HelperDef = { deps?: string[]; code: (T: string, name: (h: string) => string) => string };

const HELPERS: Record<string, HelperDef> = {
  // exp(x) - 1 without cancellation near 0: Taylor series (5 terms, error < x^6/720 < 2e-9 relative) for |x| < 0.1.
  expm1: {
    code: (T, n) => `fn ${n('expm1')}(x: ${T}) -> ${T} {
  let series = x * (${T}(1) + x * (${T}(0.5) + x * (${T}(1.0 / 6.0) + x * (${T}(1.0 / 24.0) + x * ${T}(1.0 / 120.0)))));
  return select(exp(x) - ${T}(1), series, abs(x) < ${T}(0.1));
}`,
  },
  // log(1 + x) without cancellation near 0: alternating series (7 terms, error < x^8/8) for |x| < 0.1.
  log1p: {
    code: (T, n) => `fn ${n('log1p')}(x: ${T}) -> ${T} {
  let series = x * (${T}(1) - x * (${T}(0.5) - x * (${T}(1.0 / 3.0) - x * (${T}(0.25) - x * (${T}(0.2) - x * (${T}(1.0 / 6.0) - x * ${T}(1.0 / 7.0)))))));
  return select(log(${T}(1) + x), series, abs(x) < ${T}(0.1));
}`,
  },
  // tanh(x) = -expm1(-2|x|) / (2 + expm1(-2|x|)) with x's sign: never overflows, accurate near 0.
  tanh: {
    deps: ['expm1'],
    code: (T, n) => `fn ${n('tanh')}(x: ${T}) -> ${T} {
  let e = ${n('expm1')}(${T}(-2) * abs(x));
  let t = -e / (${T}(2) + e);
  return select(-t, t, x >= ${T}(0));
}`,
  },
  // 1 / (1 + exp(-x)) evaluated on exp(-|x|) so nothing overflows.
  sigmoid: {
    code: (T, n) => `fn ${n('sigmoid')}(x: ${T}) -> ${T} {
  let e = exp(-abs(x));
  return select(e / (${T}(1) + e), ${T}(1) / (${T}(1) + e), x >= ${T}(0));
}`,
  },
  // log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)).
  softplus: {
    deps: ['log1p'],
    code: (T, n) => `fn ${n('softplus')}(x: ${T}) -> ${T} {
  return max(x, ${T}(0)) + ${n('log1p')}(exp(-abs(x)));
}`,
  },
  // erfc(x) for any x. |x| < 0.5: 1 - erf by its Maclaurin series (5 terms, relative error < 1e-6);
  // otherwise Abramowitz & Stegun 7.1.26, erfc(|x|) = t (a1 + t (a2 + ...)) exp(-x^2), t = 1 / (1 + p|x|),
  // absolute error <= 1.5e-7, computed without cancellation; erfc(-|x|) = 2 - erfc(|x|).
  erfc: {
    deps: ['erf_small'],
    code: (T, n) => `fn ${n('erfc')}(x: ${T}) -> ${T} {
  let z = abs(x);
  let t = ${T}(1) / (${T}(1) + ${T}(0.3275911) * z);
  let poly = t * (${T}(0.254829592) + t * (${T}(-0.284496736) + t * (${T}(1.421413741) + t * (${T}(-1.453152027) + t * ${T}(1.061405429)))));
  let tail = poly * exp(-z * z);
  let large = select(${T}(2) - tail, tail, x >= ${T}(0));
  return select(large, ${T}(1) - ${n('erf_small')}(x), z < ${T}(0.5));
}`,
  },
  erf_small: {
    code: (T, n) => `fn ${n('erf_small')}(x: ${T}) -> ${T} {
  let x2 = x * x;
  return ${T}(1.1283791670955126) * x * (${T}(1) - x2 * (${T}(1.0 / 3.0) - x2 * (${T}(0.1) - x2 * (${T}(1.0 / 42.0) - x2 * ${T}(1.0 / 216.0)))));
}`,
  },
  erf: {
    deps: ['erfc', 'erf_small'],
    code: (T, n) => `fn ${n('erf')}(x: ${T}) -> ${T} {
  return select(${T}(1) - ${n('erfc')}(x), ${n('erf_small')}(x), abs(x) < ${T}(0.5));
}`,
  },
  // C pow() on floats (ONNX Pow): negative bases with integral exponents keep their sign rule; pow(x, 0) = 1,
  // pow(1, y) = 1; negative base with a fractional exponent is NaN (made at run time: a NaN constant is a WGSL error).
  pow: {
    code: (T, n) => `fn ${n('pow')}(a: ${T}, b: ${T}) -> ${T} {
  var nan_bits = 0x7fc00000u;
  let nan = ${T}(bitcast<f32>(nan_bits));
  var inf_bits = 0x7f800000u;
  // pow(0, y < 0) is +inf in C; WGSL leaves pow(0, y) undefined.
  let r = select(pow(abs(a), b), select(${T}(0), ${T}(bitcast<f32>(inf_bits)), b < ${T}(0)), a == ${T}(0));
  let integral = floor(b) == b;
  let odd = integral & (abs(b) < ${T}(16777216)) & (floor(b * ${T}(0.5)) != b * ${T}(0.5));
  var out = select(r, -r, (a < ${T}(0)) & odd);
  out = select(out, nan, (a < ${T}(0)) & !integral);
  return select(out, ${T}(1), (b == ${T}(0)) | (a == ${T}(1)));
}`,
  },
  // log with the IEEE edge cases WGSL leaves undefined: log(0) = -inf, log(x < 0) = NaN.
  log: {
    code: (T, n) => `fn ${n('log')}(x: ${T}) -> ${T} {
  var inf_bits = 0x7f800000u;
  var nan_bits = 0x7fc00000u;
  let r = select(log(x), ${T}(-bitcast<f32>(inf_bits)), x == ${T}(0));
  return select(r, ${T}(bitcast<f32>(nan_bits)), x < ${T}(0));
}`,
  },
  // sin and cos to ~1e-7: WGSL promises only 2^-11 absolute error. Cody-Waite reduction by pi/2 (two-part constant),
  // then Taylor polynomials on [-pi/4, pi/4] (truncation error < 3e-8) and the quadrant's symmetry.
  sin: {
    deps: ['sincos_core'],
    code: (T, n) => `fn ${n('sin')}(x: ${T}) -> ${T} {
  let k = round(x * ${T}(0.6366197723675814));
  let q = ${intType(T)}(k) & ${intType(T)}(3);
  let r = ${n('sincos_core')}(x, k);
  let s = r[0];
  let c = r[1];
  return select(select(select(-c, -s, q == ${intType(T)}(2)), c, q == ${intType(T)}(1)), s, q == ${intType(T)}(0));
}`,
  },
  cos: {
    deps: ['sincos_core'],
    code: (T, n) => `fn ${n('cos')}(x: ${T}) -> ${T} {
  let k = round(x * ${T}(0.6366197723675814));
  let q = ${intType(T)}(k) & ${intType(T)}(3);
  let r = ${n('sincos_core')}(x, k);
  let s = r[0];
  let c = r[1];
  return select(select(select(s, -c, q == ${intType(T)}(2)), -s, q == ${intType(T)}(1)), c, q == ${intType(T)}(0));
}`,
  },
  sincos_core: {
    code: (T, n) => `fn ${n('sincos_core')}(x: ${T}, k: ${T}) -> array<${T}, 2> {
  let r = (x - k * ${T}(1.5707963705062866)) - k * ${T}(-4.371139000186243e-8);
  let r2 = r * r;
  let s = r + r * r2 * (${T}(-1.0 / 6.0) + r2 * (${T}(1.0 / 120.0) + r2 * (${T}(-1.0 / 5040.0) + r2 * ${T}(1.0 / 362880.0))));
  let c = ${T}(1) - r2 * (${T}(0.5) - r2 * (${T}(1.0 / 24.0) - r2 * (${T}(1.0 / 720.0) - r2 * ${T}(1.0 / 40320.0))));
  return array<${T}, 2>(s, c);
}`,
  },
  // atan to ~1e-7 (WGSL's inherits a loose bound): atan(x) = pi/2 - atan(1/x) for |x| > 1, then
  // atan(t) = pi/4 + atan((t - 1) / (t + 1)) for t > tan(pi/8), then the odd Taylor series to t^17 (error < 3e-8).
  atan: {
    code: (T, n) => `fn ${n('atan')}(x: ${T}) -> ${T} {
  let a = abs(x);
  let big = a > ${T}(1);
  let t0 = select(a, ${T}(1) / a, big);
  let mid = t0 > ${T}(0.41421356237309503);
  let t = select(t0, (t0 - ${T}(1)) / (t0 + ${T}(1)), mid);
  let t2 = t * t;
  var p = ${T}(1.0 / 17.0);
  p = ${T}(-1.0 / 15.0) + t2 * p;
  p = ${T}(1.0 / 13.0) + t2 * p;
  p = ${T}(-1.0 / 11.0) + t2 * p;
  p = ${T}(1.0 / 9.0) + t2 * p;
  p = ${T}(-1.0 / 7.0) + t2 * p;
  p = ${T}(1.0 / 5.0) + t2 * p;
  p = ${T}(-1.0 / 3.0) + t2 * p;
  var r = t + t * t2 * p;
  r = select(r, r + ${T}(0.7853981633974483), mid);
  r = select(r, ${T}(1.5707963267948966) - r, big);
  return select(r, -r, x < ${T}(0));
}`,
  },
  // asin x = atan(x / sqrt((1 - x)(1 + x))); acos x = 2 atan(sqrt((1 - x) / (1 + x))): no cancellation near +-1.
  asin: {
    deps: ['atan'],
    code: (T, n) => `fn ${n('asin')}(x: ${T}) -> ${T} {
  return ${n('atan')}(x / sqrt((${T}(1) - x) * (${T}(1) + x)));
}`,
  },
  acos: {
    deps: ['atan'],
    code: (T, n) => `fn ${n('acos')}(x: ${T}) -> ${T} {
  return ${T}(2) * ${n('atan')}(sqrt((${T}(1) - x) / (${T}(1) + x)));
}`,
  },
  // NaN-propagating max/min/clamp for activations (Relu, Clip, HardSigmoid, Max...). WGSL leaves max(NaN, y)
  // implementation-defined (SwiftShader returns y, so Relu(NaN) was 0); ONNX and IEEE maxNum differ too, and
  // onnxruntime and our CPU reference propagate NaN. A bit test, not x != x: compilers may assume NaN never occurs.
  // f16 widens to f32 first (exact, NaN stays NaN), so one test serves both.
  is_nan: {
    code: (T, n) => {
      const vec = T.startsWith('vec4');
      const wide = vec ? `vec4<f32>(x)` : `f32(x)`;
      const u = vec ? 'vec4<u32>' : 'u32';
      return `fn ${n('is_nan')}(x: ${T}) -> ${vec ? 'vec4<bool>' : 'bool'} {
  return (bitcast<${u}>(${wide}) & ${u}(0x7fffffffu)) > ${u}(0x7f800000u);
}`;
    },
  },
  max_nan: {
    deps: ['is_nan'],
    code: (T, n) => `fn ${n('max_nan')}(a: ${T}, b: ${T}) -> ${T} {
  return select(select(max(a, b), b, ${n('is_nan')}(b)), a, ${n('is_nan')}(a));
}`,
  },
  min_nan: {
    deps: ['is_nan'],
    code: (T, n) => `fn ${n('min_nan')}(a: ${T}, b: ${T}) -> ${T} {
  return select(select(min(a, b), b, ${n('is_nan')}(b)), a, ${n('is_nan')}(a));
}`,
  },
  // Clip: min(max(x, lo), hi) (hi wins when lo > hi, as the spec says); NaN x passes through unchanged.
  clip_nan: {
    deps: ['is_nan'],
    code: (T, n) => `fn ${n('clip_nan')}(x: ${T}, lo: ${T}, hi: ${T}) -> ${T} {
  return select(min(max(x, lo), hi), x, ${n('is_nan')}(x));
}`,
  },
  // Integer pow by squaring (wrapping like C); a negative exponent truncates 1 / a^|b| toward zero.
  pow_int: {
    code: (T, n) => `fn ${n('pow_int')}(a: ${T}, b: ${T}) -> ${T} {
  if (b < ${T}(0)) {
    if (a == ${T}(1)) { return ${T}(1); }
    if (a == ${T}(-1)) { return select(${T}(-1), ${T}(1), (b & ${T}(1)) == ${T}(0)); }
    return ${T}(0);
  }
  var result = ${T}(1);
  var base = a;
  var e = b;
  loop {
    if (e == ${T}(0)) { break; }
    if ((e & ${T}(1)) == ${T}(1)) { result = result * base; }
    base = base * base;
    e = e >> 1u;
  }
  return result;
}`,
  },
};

/** The i32 type of the same shape as T (quadrant arithmetic). */
function intType(T: string): string {
  return T.replace(/f32|f16/, 'i32');
}

/** Suffix distinguishing a helper's instances per type: f32, f16, vec4f32... */
function typeSuffix(T: string): string {
  return T.replace(/[<>]/g, '');
}

/** Registers helper `name` (and what it calls) for type T on the builder; returns the WGSL function name. */
export function mathHelper(b: ShaderBuilder, name: string, T: string): string {
  const def = HELPERS[name];
  if (!def) throw new InternalError(`no WGSL math helper '${name}'`);
  const fnName = (h: string) => `${h}_${typeSuffix(T)}`;
  for (const d of def.deps ?? []) mathHelper(b, d, T);
  b.helper(def.code(T, fnName));
  return fnName(name);
}
