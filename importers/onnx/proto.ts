import onnxProto from 'onnx-proto';
import { ModelFormatError } from '../../runtime/errors.js';

/** The generated protobufjs classes of the ONNX schema (onnx-proto). */
export const P = onnxProto.onnx;
export type PModel = onnxProto.onnx.IModelProto;
export type PGraph = onnxProto.onnx.IGraphProto;
export type PNode = onnxProto.onnx.INodeProto;
export type PTensor = onnxProto.onnx.ITensorProto;
export type PSparseTensor = onnxProto.onnx.ISparseTensorProto;
export type PAttr = onnxProto.onnx.IAttributeProto;
export type PValueInfo = onnxProto.onnx.IValueInfoProto;

interface LongLike { low: number; high: number; toNumber(): number }

function isLong(v: unknown): v is LongLike {
  return typeof v === 'object' && v !== null && 'low' in v && 'high' in v;
}

/** An int64 field as a JS number; values beyond 2^53 (INT64_MAX sentinels) come out as ±Infinity-free approximations. */
export function toNum(v: number | LongLike | null | undefined, what = 'integer'): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return v;
  if (isLong(v)) return v.toNumber();
  throw new ModelFormatError(`Malformed ${what} field in the model.`);
}

/** An int64 field as an exact BigInt. */
export function toBig(v: number | LongLike | null | undefined): bigint {
  if (v === null || v === undefined) return 0n;
  if (typeof v === 'number') return BigInt(Math.trunc(v));
  return BigInt.asIntN(64, (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0));
}

/** An unsigned int64 field as an exact BigInt. */
export function toBigU(v: number | LongLike | null | undefined): bigint {
  return BigInt.asUintN(64, toBig(v));
}

export const utf8 = new TextDecoder('utf-8');
export const utf8Encode = new TextEncoder();
