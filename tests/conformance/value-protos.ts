import protobuf from 'protobufjs';
import { tensorFromProto } from '../../importers/onnx/index.js';
import onnx from 'onnx-proto';
import type { ValueKind } from '../../runtime/ir/graph.js';
import type { HostValue } from '../../runtime/ir/value.js';

/**
 * Decodes the test data of cases whose inputs/outputs are sequences or optionals: their .pb files hold an ONNX
 * SequenceProto or OptionalProto (onnx.proto), which the onnx-proto package predates. Both are read here by field
 * number with protobufjs's Reader:
 *   SequenceProto { 1 name, 2 elem_type, 3 repeated TensorProto tensor_values, 5 repeated SequenceProto sequence_values }
 *   OptionalProto { 1 name, 2 elem_type, 3 TensorProto tensor_value, 5 SequenceProto sequence_value }
 * (elem_type: 1 tensor, 3 sequence, 5 optional; maps and sparse tensors are not decoded). An OptionalProto with
 * no value is an empty optional (null).
 */

function decodeSequence(bytes: Uint8Array): HostValue {
  const r = protobuf.Reader.create(bytes);
  const out: ReturnType<typeof tensorFromProto>[] = [];
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    if (field === 3) out.push(tensorFromProto(onnx.onnx.TensorProto.decode(r.bytes())));
    else if (field === 4 || field === 5 || field === 6 || field === 7) throw new Error(`SequenceProto field ${field}: only sequences of tensors are decoded`);
    else r.skipType(tag & 7);
  }
  return out;
}

function decodeOptional(bytes: Uint8Array): HostValue {
  const r = protobuf.Reader.create(bytes);
  let value: HostValue = null;
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    if (field === 3) value = tensorFromProto(onnx.onnx.TensorProto.decode(r.bytes()));
    else if (field === 5) value = decodeSequence(r.bytes());
    else if (field === 4 || field === 6 || field === 7) throw new Error(`OptionalProto field ${field}: only optionals of tensors and sequences are decoded`);
    else r.skipType(tag & 7);
  }
  return value;
}

/** A .pb test value of a non-tensor kind. */
export function decodeValueProto(bytes: Uint8Array, kind: Exclude<ValueKind, 'tensor'>): HostValue {
  return kind === 'sequence' ? decodeSequence(bytes) : decodeOptional(bytes);
}
