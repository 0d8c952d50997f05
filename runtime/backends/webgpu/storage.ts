import { DTypeError, InvalidArgumentError } from '../../errors.js';
import { f16BitsToF32, f32ToF16Bits, fromNumbers, type DType, type TensorStorage } from '../../ir/dtype.js';
import { hostTensor, type HostTensor } from '../../ir/tensor.js';

/**
 * How each IR dtype lives in GPU memory. Decided once at plan time per value (never branched inside kernels):
 *
 * - float32 -> f32.
 * - float16 -> f16 (native `array<f16>`) where the device has shader-f16. Without it, tensors the GPU only reads
 *   (weights, fed inputs) stay packed two per u32 ('f16x2', unpacked on load with unpack2x16float: half the memory),
 *   and tensors kernels write are f32 (packed writes would race between neighbouring invocations). Readback
 *   rounds to f16 bits (round-to-nearest-even).
 * - int32 -> i32; int64 -> i32 with a range check at upload (values outside int32 are rejected, not wrapped);
 *   int8/int16 -> i32, uint8/uint16/uint32 -> u32, uint64 -> u32 (range-checked). Narrow integer arithmetic is done
 *   in 32 bits and wrapped to the dtype on readback (Cast semantics).
 * - bool -> u32 holding 0 or 1.
 * - float64, bfloat16 and string have no GPU storage: such values make the node unsupported on the GPU.
 */
export type StorageType = 'f32' | 'f16' | 'f16x2' | 'i32' | 'u32';

/** The WGSL type kernels compute in for a storage type (f16x2 is unpacked to f32). */
export type ComputeType = 'f32' | 'f16' | 'i32' | 'u32';

export function computeTypeOf(s: StorageType): ComputeType {
  return s === 'f16x2' ? 'f32' : s;
}

export function gpuSupportsDType(d: DType): boolean {
  return d !== 'float64' && d !== 'bfloat16' && d !== 'string';
}

/** Storage for a value: `readOnly` values (weights, inputs) may use the packed f16 form. */
export function storageFor(d: DType, hasF16: boolean, readOnly: boolean): StorageType {
  switch (d) {
    case 'float32': return 'f32';
    case 'float16': return hasF16 ? 'f16' : readOnly ? 'f16x2' : 'f32';
    case 'int32': case 'int64': case 'int8': case 'int16': return 'i32';
    case 'uint32': case 'uint64': case 'uint8': case 'uint16': case 'bool': return 'u32';
    default:
      throw new DTypeError(`${d} tensors cannot live on the GPU (WGSL has no such type); Cast them to float32 or int32 first.`, { dtype: d });
  }
}

/** Bytes a tensor of `count` elements takes in storage `s` (before the 4-byte round-up). */
export function storageBytes(s: StorageType, count: number): number {
  if (s === 'f16') return count * 2;
  if (s === 'f16x2') return Math.ceil(count / 2) * 4;
  return count * 4;
}

/** Encodes host data into the GPU representation of `s`. */
export function encodeForGpu(t: HostTensor, s: StorageType): ArrayBufferView {
  const d = t.dtype;
  if (s === 'f16' || s === 'f16x2') {
    // float32 weights kept in half precision on request (GpuPlanOptions.weightPrecision): rounded to nearest even.
    if (d === 'float32') return Uint16Array.from(t.data as Float32Array, f32ToF16Bits);
    if (d !== 'float16') throw new DTypeError(`cannot store ${d} as ${s}`);
    return t.data as Uint16Array; // f16x2 is the same bytes, little-endian pairs
  }
  if (s === 'f32') {
    if (d === 'float32') return t.data as Float32Array;
    if (d === 'float16') return Float32Array.from(t.data as Uint16Array, f16BitsToF32);
    throw new DTypeError(`cannot store ${d} as f32`);
  }
  if (d === 'int32' && s === 'i32') return t.data as Int32Array;
  if (d === 'uint32' && s === 'u32') return t.data as Uint32Array;
  if (d === 'int64' || d === 'uint64') {
    const src = t.data as BigInt64Array | BigUint64Array;
    const lo = s === 'i32' ? -(2n ** 31n) : 0n;
    const hi = s === 'i32' ? 2n ** 31n - 1n : 2n ** 32n - 1n;
    const out = s === 'i32' ? new Int32Array(src.length) : new Uint32Array(src.length);
    for (let i = 0; i < src.length; i++) {
      const v = src[i]!;
      if (v < lo || v > hi) {
        throw new InvalidArgumentError(
          `A ${d} tensor of shape [${t.shape.join(', ')}] holds ${v} at index ${i}, outside the 32-bit range the WebGPU backend computes ${d} in. ` +
            'Use the CPU backend for such values, or rescale them.',
          { index: i },
        );
      }
      out[i] = Number(v);
    }
    return out;
  }
  // bool, int8, int16, uint8, uint16: widened.
  return s === 'i32' ? Int32Array.from(t.data as ArrayLike<number>) : Uint32Array.from(t.data as ArrayLike<number>);
}

/** Decodes bytes read back from storage `s` into a host tensor of dtype `d` (Cast semantics for narrowing). */
export function decodeFromGpu(bytes: Uint8Array, s: StorageType, d: DType, shape: number[]): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  let data: TensorStorage;
  if (s === 'f16' || s === 'f16x2') data = new Uint16Array(buf, 0, n).slice();
  else if (s === 'f32') {
    const f = new Float32Array(buf, 0, n);
    data = d === 'float16' ? Uint16Array.from(f, f32ToF16Bits) : f.slice();
  } else {
    const v = s === 'i32' ? new Int32Array(buf, 0, n) : new Uint32Array(buf, 0, n);
    if ((d === 'int32' && s === 'i32') || (d === 'uint32' && s === 'u32')) data = v.slice();
    else if (d === 'bool') data = Uint8Array.from(v, (x) => (x ? 1 : 0));
    else data = fromNumbers(d, v);
  }
  return hostTensor(d, shape, data);
}
