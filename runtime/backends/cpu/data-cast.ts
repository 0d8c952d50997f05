import { InvalidArgumentError } from '../../errors.js';
import { allocStorage, bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, fromNumbers, toNumbers, type DType, type TensorStorage } from '../../ir/dtype.js';

/**
 * Cast-21 element conversion (ONNX Cast: "Casting from string tensor in plain (e.g. "3.14" and "1000") and
 * scientific numeric representations (e.g. "1e-5" and "1E8") to float types is supported ... casting from a
 * numeric type to string uses the plain or scientific representation").
 *
 * Where the spec leaves details open, this follows onnxruntime's CPU Cast so models behave the same, except:
 * - number → string: the shortest decimal that round-trips (formatShortest) where onnxruntime prints "%.8g"; the
 *   ONNX conformance data expects the shortest form. "NaN", "INF", "-INF"; integers in decimal; bool "0"/"1".
 * - string → float: strtod-like prefix parsing ("1,5" reads 1.5's prefix "1"; hex and inf/nan accepted); a string
 *   with no number at all is an error. string → integer: the leading decimal integer ("7.9" → 7), wrapped into
 *   the target width. string → bool: that integer != 0.
 * - float → integer truncates toward zero; NaN and out-of-range values are undefined behaviour in the spec (this
 *   wraps, see dtype.fromNumbers). float → bool is x != 0, so NaN → true (as C++ does).
 * - 64-bit integer sources convert through BigInt so int64 → int32/uint8... wraps exactly.
 * The `saturate` attribute only concerns float8 targets, which EdgeKit does not store.
 */
export function castStorage(from: DType, to: DType, data: TensorStorage): TensorStorage {
  const n = data.length;
  if (from === to) return Array.isArray(data) ? [...data] : data.slice();
  if (to === 'string') return toStrings(from, data);
  if (from === 'string') return fromStrings(to, data as string[]);
  if (from === 'int64' || from === 'uint64') return fromBigInts(to, data as BigInt64Array | BigUint64Array);
  const values = toNumbers(from, data);
  if (to === 'bool') {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = values[i] !== 0 ? 1 : 0;
    return out;
  }
  return fromNumbers(to, values);
}

function fromBigInts(to: DType, src: BigInt64Array | BigUint64Array): TensorStorage {
  const n = src.length;
  const out = allocStorage(to, n);
  const wrap = INT_WIDTH[to];
  if (to === 'int64') for (let i = 0; i < n; i++) (out as BigInt64Array)[i] = BigInt.asIntN(64, src[i]!);
  else if (to === 'uint64') for (let i = 0; i < n; i++) (out as BigUint64Array)[i] = BigInt.asUintN(64, src[i]!);
  else if (to === 'bool') for (let i = 0; i < n; i++) (out as Uint8Array)[i] = src[i] !== 0n ? 1 : 0;
  else if (wrap) for (let i = 0; i < n; i++) (out as Int32Array)[i] = Number(BigInt.asIntN(wrap, src[i]!));
  else return fromNumbers(to, Array.from(src, Number));
  return out;
}

const INT_WIDTH: Partial<Record<DType, number>> = { int8: 8, uint8: 8, int16: 16, uint16: 16, int32: 32, uint32: 32 };

// ---- numbers to strings ----

/**
 * The shortest decimal that reads back as the same value of the source type ("plain floating-point
 * representation", ONNX Cast; the ONNX test data expects e.g. float32 0.6048455, not 0.60484552), laid out like
 * C's %g: exponent form when the exponent is below -4 or at least `p`, trailing zeros removed. Specials are
 * "NaN", "INF" and "-INF", the literals the spec reads back.
 */
export function formatShortest(v: number, p: number, roundTrip: (x: number) => number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'INF';
  if (v === -Infinity) return '-INF';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  let digits = 1;
  while (digits < 17 && roundTrip(Number(v.toPrecision(digits))) !== v) digits++;
  const [mant, ex] = v.toExponential(digits - 1).split('e') as [string, string];
  const x = Number(ex);
  const strip = (s: string) => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
  if (x < -4 || x >= p) return `${strip(mant)}e${x < 0 ? '-' : '+'}${String(Math.abs(x)).padStart(2, '0')}`;
  return strip(v.toFixed(Math.max(0, digits - 1 - x)));
}

function toStrings(from: DType, data: TensorStorage): string[] {
  const n = data.length;
  const out = new Array<string>(n);
  if (from === 'int64' || from === 'uint64') {
    for (let i = 0; i < n; i++) out[i] = (data as BigInt64Array)[i]!.toString();
  } else if (from === 'float64') {
    for (let i = 0; i < n; i++) out[i] = formatShortest((data as Float64Array)[i]!, 17, (x) => x);
  } else if (from === 'float32') {
    for (let i = 0; i < n; i++) out[i] = formatShortest((data as Float32Array)[i]!, 8, Math.fround);
  } else if (from === 'float16' || from === 'bfloat16') {
    const [decode, encode] = from === 'float16' ? [f16BitsToF32, f32ToF16Bits] : [bf16BitsToF32, f32ToBf16Bits];
    for (let i = 0; i < n; i++) out[i] = formatShortest(decode((data as Uint16Array)[i]!), 8, (x) => decode(encode(x)));
  } else {
    for (let i = 0; i < n; i++) out[i] = String((data as Int32Array)[i]!);
  }
  return out;
}

// ---- strings to numbers ----

const FLOAT_PREFIX = /^[+-]?(?:inf(?:inity)?|nan|0x(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(?:p[+-]?\d+)?|(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)/i;
const INT_PREFIX = /^[+-]?\d+/;

/** strtod: the longest numeric prefix after leading whitespace. */
export function parseFloatPrefix(s: string): number {
  const m = FLOAT_PREFIX.exec(s.trimStart());
  if (!m) throw new InvalidArgumentError(`Cast cannot read a number from the string ${JSON.stringify(s)}.`);
  const t = m[0].toLowerCase();
  const neg = t.startsWith('-');
  const body = t.replace(/^[+-]/, '');
  let v: number;
  if (body.startsWith('inf')) v = Infinity;
  else if (body === 'nan') v = NaN;
  else if (body.startsWith('0x')) v = parseHexFloat(body.slice(2));
  else v = Number(body);
  return neg ? -v : v;
}

function parseHexFloat(s: string): number {
  const [digits, exp] = s.split('p') as [string, string | undefined];
  const [int, frac = ''] = digits.split('.') as [string, string | undefined];
  let v = int ? parseInt(int, 16) : 0;
  for (let i = 0; i < frac.length; i++) v += parseInt(frac[i]!, 16) / 16 ** (i + 1);
  return v * 2 ** Number(exp ?? 0);
}

/** strtoll/strtoull: the leading decimal integer after whitespace, as a BigInt. */
export function parseIntPrefix(s: string): bigint {
  const m = INT_PREFIX.exec(s.trimStart());
  if (!m) throw new InvalidArgumentError(`Cast cannot read an integer from the string ${JSON.stringify(s)}.`);
  return BigInt(m[0]);
}

function fromStrings(to: DType, src: string[]): TensorStorage {
  const n = src.length;
  if (to === 'float32' || to === 'float64' || to === 'float16' || to === 'bfloat16') {
    return fromNumbers(to, src.map(parseFloatPrefix));
  }
  const ints = src.map(parseIntPrefix);
  const out = allocStorage(to, n);
  const wrap = INT_WIDTH[to];
  for (let i = 0; i < n; i++) {
    const v = ints[i]!;
    if (to === 'int64') (out as BigInt64Array)[i] = BigInt.asIntN(64, v);
    else if (to === 'uint64') (out as BigUint64Array)[i] = BigInt.asUintN(64, v);
    else if (to === 'bool') (out as Uint8Array)[i] = BigInt.asUintN(64, v) !== 0n ? 1 : 0;
    else (out as Int32Array)[i] = Number(BigInt.asIntN(wrap!, v));
  }
  return out;
}
