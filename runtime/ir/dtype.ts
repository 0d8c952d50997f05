/**
 * Element types and their host (CPU) storage.
 *
 * Decisions:
 * - float16 and bfloat16 are stored as their raw bits in a Uint16Array (as onnxruntime-web does); the CPU
 *   reference computes them in float32 and rounds the result back (round-to-nearest-even).
 * - bool is a Uint8Array of 0/1.
 * - int64/uint64 are BigInt64Array/BigUint64Array at the API and in HostTensor. The CPU reference does integer
 *   arithmetic on them through JS numbers, exact up to 2^53; shapes, indices and counts never come close.
 */
export type DType =
  | 'float32' | 'float16' | 'bfloat16' | 'float64'
  | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64'
  | 'bool' | 'string';

export type NumericArray =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array;
export type TypedArray = NumericArray | BigInt64Array | BigUint64Array;
export type TensorStorage = TypedArray | string[];

export const DTYPES: readonly DType[] = [
  'float32', 'float16', 'bfloat16', 'float64', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool', 'string',
];

export function isDType(s: string): s is DType {
  return (DTYPES as readonly string[]).includes(s);
}

export function isFloat(d: DType): boolean {
  return d === 'float32' || d === 'float16' || d === 'bfloat16' || d === 'float64';
}

export function isInteger(d: DType): boolean {
  return !isFloat(d) && d !== 'bool' && d !== 'string';
}

export function isBigInt(d: DType): boolean {
  return d === 'int64' || d === 'uint64';
}

export function bytesPerElement(d: DType): number {
  switch (d) {
    case 'float64': case 'int64': case 'uint64': return 8;
    case 'float32': case 'int32': case 'uint32': return 4;
    case 'float16': case 'bfloat16': case 'int16': case 'uint16': return 2;
    case 'string': return 8; // an estimate, strings are never planned on the GPU
    default: return 1;
  }
}

export function allocStorage(d: DType, n: number): TensorStorage {
  switch (d) {
    case 'float32': return new Float32Array(n);
    case 'float64': return new Float64Array(n);
    case 'float16': case 'bfloat16': case 'uint16': return new Uint16Array(n);
    case 'int8': return new Int8Array(n);
    case 'uint8': case 'bool': return new Uint8Array(n);
    case 'int16': return new Int16Array(n);
    case 'int32': return new Int32Array(n);
    case 'uint32': return new Uint32Array(n);
    case 'int64': return new BigInt64Array(n);
    case 'uint64': return new BigUint64Array(n);
    case 'string': return new Array<string>(n).fill('');
  }
}

/** The storage class a dtype must use, to check user-supplied data. */
export function storageMatches(d: DType, data: unknown): boolean {
  switch (d) {
    case 'float32': return data instanceof Float32Array;
    case 'float64': return data instanceof Float64Array;
    case 'float16': case 'bfloat16': case 'uint16': return data instanceof Uint16Array;
    case 'int8': return data instanceof Int8Array;
    case 'uint8': case 'bool': return data instanceof Uint8Array;
    case 'int16': return data instanceof Int16Array;
    case 'int32': return data instanceof Int32Array;
    case 'uint32': return data instanceof Uint32Array;
    case 'int64': return data instanceof BigInt64Array;
    case 'uint64': return data instanceof BigUint64Array;
    case 'string': return Array.isArray(data);
  }
}

// ---- float16 / bfloat16 bit conversion (IEEE 754-2008 binary16; bfloat16 is the top half of binary32) ----

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function f16BitsToF32(h: number): number {
  const s = (h & 0x8000) ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

export function f32ToF16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++; // may carry into the exponent: still correct
  return sign | half;
}

export function bf16BitsToF32(h: number): number {
  u32[0] = h << 16;
  return f32[0]!;
}

export function f32ToBf16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff)) return (x >>> 16) | 0x40;
  const rounded = x + 0x7fff + ((x >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

/** Reads any non-string storage as JS numbers (float16/bfloat16 decoded; 64-bit integers through Number). */
export function toNumbers(d: DType, data: TensorStorage): Float64Array {
  const n = data.length;
  const out = new Float64Array(n);
  if (d === 'float16') for (let i = 0; i < n; i++) out[i] = f16BitsToF32((data as Uint16Array)[i]!);
  else if (d === 'bfloat16') for (let i = 0; i < n; i++) out[i] = bf16BitsToF32((data as Uint16Array)[i]!);
  else if (d === 'string') throw new TypeError('string tensors have no numeric value');
  else for (let i = 0; i < n; i++) out[i] = Number((data as TypedArray)[i]!);
  return out;
}

/**
 * Writes JS numbers into storage of dtype `d`, with ONNX Cast semantics: floats round to the target precision,
 * integers truncate toward zero and wrap (as C casts do on the platforms ONNX Runtime targets), bool is x != 0.
 */
export function fromNumbers(d: DType, values: ArrayLike<number>): TensorStorage {
  const n = values.length;
  const out = allocStorage(d, n);
  switch (d) {
    case 'float16': for (let i = 0; i < n; i++) (out as Uint16Array)[i] = f32ToF16Bits(values[i]!); break;
    case 'bfloat16': for (let i = 0; i < n; i++) (out as Uint16Array)[i] = f32ToBf16Bits(values[i]!); break;
    case 'bool': for (let i = 0; i < n; i++) (out as Uint8Array)[i] = values[i] ? 1 : 0; break;
    case 'float32': case 'float64': for (let i = 0; i < n; i++) (out as Float32Array)[i] = values[i]!; break;
    case 'int64': for (let i = 0; i < n; i++) (out as BigInt64Array)[i] = BigInt.asIntN(64, toBigIntTrunc(values[i]!)); break;
    case 'uint64': for (let i = 0; i < n; i++) (out as BigUint64Array)[i] = BigInt.asUintN(64, toBigIntTrunc(values[i]!)); break;
    case 'string': for (let i = 0; i < n; i++) (out as string[])[i] = String(values[i]); break;
    default: for (let i = 0; i < n; i++) (out as Int32Array)[i] = Number.isFinite(values[i]!) ? Math.trunc(values[i]!) : 0; break;
  }
  return out;
}

const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);

/** Saturates at the int64 range, so INT64_MAX sentinels that passed through a float (2^63) stay INT64_MAX. */
function toBigIntTrunc(v: number): bigint {
  if (!Number.isFinite(v)) return 0n;
  const b = BigInt(Math.trunc(v));
  return b > INT64_MAX ? INT64_MAX : b < INT64_MIN ? INT64_MIN : b;
}
