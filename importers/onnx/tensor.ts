import { AllocationLimitError, ModelFormatError } from '../../runtime/errors.js';
import { allocStorage, bytesPerElement, type DType, type TensorStorage } from '../../runtime/ir/dtype.js';
import { DEFAULT_MAX_ELEMENTS, type HostTensor } from '../../runtime/ir/tensor.js';
import { P, toBig, toBigU, toNum, utf8, utf8Encode, type PTensor } from './proto.js';

/** ONNX TensorProto.DataType ↔ IR dtype. Complex and float8 types have no IR dtype. */
const BY_CODE: Record<number, DType> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string', 9: 'bool',
  10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 16: 'bfloat16',
};
const CODE_OF = Object.fromEntries(Object.entries(BY_CODE).map(([k, v]) => [v, Number(k)])) as Record<DType, number>;

/**
 * 4-bit integers (ONNX UINT4 = 21, INT4 = 22) have no IR dtype of their own: they are held unpacked, one value per
 * byte, as uint8 (0..15) and int8 (-8..7), so every op reads them as it reads 8-bit values. The quantization ops keep
 * the 4-bit range through their `output_dtype` or an attribute the importer adds (runtime/ir/ops/quantize.ts). On the
 * GPU they are one per 32-bit word like int8, except where a kernel packs weights itself (MatMulNBits keeps nibbles).
 * Tensors decoded from 4-bit payloads are remembered in FOUR_BIT_TENSORS.
 */
const FOUR_BIT: Record<number, DType> = { 21: 'uint8', 22: 'int8' };
export const FOUR_BIT_TENSORS = new WeakSet<HostTensor>();

export function dtypeFromOnnx(code: number | null | undefined, where: string): DType {
  const d = BY_CODE[code ?? 0] ?? FOUR_BIT[code ?? 0];
  if (!d) throw new ModelFormatError(`${where} has ONNX data type ${code}, which EdgeKit does not support (complex/float8).`, { dataType: code });
  return d;
}

export function onnxDataType(d: DType): number {
  return CODE_OF[d];
}

/** Element count of a TensorProto's dims, guarded against negative dims and allocation bombs. */
export function protoDims(t: PTensor, maxElements: number, where: string): number[] {
  const dims = (t.dims ?? []).map((d) => toNum(d, 'dims'));
  let n = 1;
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new ModelFormatError(`${where} has an invalid dimension ${d}.`, { dims });
    n *= d;
    if (n > maxElements) {
      throw new AllocationLimitError(`${where} declares dims [${dims.join(', ')}], more than ${maxElements} elements; the model is malformed or needs maxTensorElements raised.`, { dims, maxElements });
    }
  }
  return dims;
}

/**
 * Decodes a TensorProto's payload in any storage form: raw_data (little-endian, as the spec prescribes), the typed
 * repeated fields (float_data; int32_data also carries float16/bfloat16/int8/uint8/int16/uint16/bool; int64_data;
 * uint64_data (uint32/uint64); double_data; string_data), or `external` bytes already fetched by the caller.
 */
export function tensorFromProto(t: PTensor, external?: Uint8Array, maxElements = DEFAULT_MAX_ELEMENTS): HostTensor {
  const where = `Tensor '${t.name ?? ''}'`;
  const dtype = dtypeFromOnnx(t.dataType, where);
  const shape = protoDims(t, maxElements, where);
  const n = shape.reduce((a, b) => a * b, 1);
  const raw = external ?? (t.rawData && t.rawData.length ? t.rawData : undefined);
  let data: TensorStorage;
  if (FOUR_BIT[t.dataType ?? 0]) {
    const t4 = { dtype, shape, data: unpackFourBit(t, raw, n, dtype === 'int8', where) };
    FOUR_BIT_TENSORS.add(t4);
    return t4;
  }
  if (dtype === 'string') {
    data = (t.stringData ?? []).map((b) => utf8.decode(b));
  } else if (raw) {
    const bpe = bytesPerElement(dtype);
    if (raw.length !== n * bpe) {
      throw new ModelFormatError(`${where} holds ${raw.length} bytes but dims [${shape.join(', ')}] of ${dtype} need ${n * bpe}.`, { name: t.name });
    }
    data = allocStorage(dtype, n);
    // Copy into an aligned buffer; raw_data is little-endian, as are all platforms EdgeKit runs on.
    new Uint8Array((data as Uint8Array).buffer).set(raw);
  } else {
    data = fromTypedFields(t, dtype, n);
  }
  if (data.length !== n) {
    throw new ModelFormatError(`${where} holds ${data.length} elements but dims [${shape.join(', ')}] need ${n}.`, { name: t.name });
  }
  return { dtype, shape, data };
}

/** 4-bit payload: two values per byte, element 2i in the low nibble (raw_data, or one packed byte per int32_data entry). */
function unpackFourBit(t: PTensor, raw: Uint8Array | undefined, n: number, signed: boolean, where: string): Int8Array | Uint8Array {
  const packed = raw ?? Uint8Array.from(t.int32Data ?? []);
  if (packed.length !== Math.ceil(n / 2)) {
    throw new ModelFormatError(`${where} holds ${packed.length} bytes but ${n} 4-bit values need ${Math.ceil(n / 2)}.`, { name: t.name });
  }
  const out = signed ? new Int8Array(n) : new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const v = (packed[i >> 1]! >> ((i & 1) * 4)) & 15;
    out[i] = signed && v > 7 ? v - 16 : v;
  }
  return out;
}

function fromTypedFields(t: PTensor, dtype: DType, n: number): TensorStorage {
  const out = allocStorage(dtype, n);
  const fill = (src: ArrayLike<unknown> | null | undefined, conv: (v: never) => number | bigint) => {
    const s = src ?? [];
    if (s.length !== n) return s.length; // reported by the caller as a size mismatch
    for (let i = 0; i < n; i++) (out as unknown as (number | bigint)[])[i] = conv(s[i] as never);
    return n;
  };
  let count: number;
  switch (dtype) {
    case 'float32': count = fill(t.floatData, (v: number) => v); break;
    case 'float64': count = fill(t.doubleData, (v: number) => v); break;
    case 'int64': count = fill(t.int64Data as never, (v) => toBig(v)); break;
    case 'uint64': count = fill(t.uint64Data as never, (v) => toBigU(v)); break;
    case 'uint32': count = fill(t.uint64Data as never, (v) => toNum(v)); break;
    default: count = fill(t.int32Data, (v: number) => v); break; // int32, int16/uint16, int8/uint8, bool, float16/bfloat16 bits
  }
  if (count !== n) throw new ModelFormatError(`Tensor '${t.name ?? ''}' holds ${count} elements but its dims need ${n}.`, { name: t.name });
  return out;
}

/** Decodes a serialized TensorProto (the conformance suite's input_N.pb / output_N.pb files). */
export function decodeTensorProtoBytes(bytes: Uint8Array): HostTensor {
  let t: PTensor;
  try {
    t = P.TensorProto.decode(bytes);
  } catch (e) {
    throw new ModelFormatError(`Not a serialized ONNX TensorProto: ${(e as Error).message}`, {}, { cause: e });
  }
  return tensorFromProto(t);
}

/** IR tensor → TensorProto (raw_data for numbers, string_data for strings), for the exporter. */
export function tensorToProto(name: string, t: HostTensor): PTensor {
  const base = { name, dims: [...t.shape], dataType: onnxDataType(t.dtype) };
  if (t.dtype === 'string') return { ...base, stringData: (t.data as string[]).map((s) => utf8Encode.encode(s)) };
  const d = t.data as Exclude<TensorStorage, string[]>;
  return { ...base, rawData: new Uint8Array(d.buffer, d.byteOffset, d.byteLength).slice() };
}
