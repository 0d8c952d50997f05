import { ModelFormatError } from '../../runtime/errors.js';
import type { Dim, ValueType } from '../../runtime/ir/graph.js';
import { toNum } from './proto.js';
import { dtypeFromOnnx, onnxDataType } from './tensor.js';
import type onnxProto from 'onnx-proto';

type PType = onnxProto.onnx.ITypeProto;
type PShape = onnxProto.onnx.ITensorShapeProto;

/**
 * ONNX TypeProto <-> IR ValueType (ir/graph.ts): tensor, sequence(tensor), optional(tensor) and
 * optional(sequence(tensor)). Maps, sparse tensors and deeper nesting (a sequence of sequences) are refused with a
 * ModelFormatError naming the value. A sequence's shape is its elements' declared shape.
 */
export function decodeValueType(t: PType | null | undefined, name: string, where: string): ValueType {
  const unsupported = (what: string) =>
    new ModelFormatError(`'${name}' (${where}) is ${what}; EdgeKit supports tensors, sequences of tensors and optionals of those.`, { value: name });
  if (t?.tensorType) return { dtype: dtypeFromOnnx(t.tensorType.elemType, `'${name}' (${where})`), ...dims(t.tensorType.shape, name, where) };
  if (t?.sequenceType) {
    const e = t.sequenceType.elemType;
    if (!e?.tensorType) throw unsupported('a sequence of non-tensors');
    return { kind: 'sequence', ...decodeValueType(e, name, where) };
  }
  if (t?.optionalType) {
    const e = t.optionalType.elemType;
    if (e?.tensorType) return { ...decodeValueType(e, name, where), kind: 'optional-tensor' };
    if (e?.sequenceType) return { ...decodeValueType(e, name, where), kind: 'optional-sequence' };
    throw unsupported('an optional of neither a tensor nor a sequence');
  }
  throw unsupported(t?.mapType ? 'a map' : t?.sparseTensorType ? 'a sparse tensor' : 'of no tensor type');
}

function dims(shape: PShape | null | undefined, name: string, where: string): { shape?: Dim[] } {
  if (!shape) return {};
  return {
    shape: (shape.dim ?? []).map((d, i) => {
      if (d.dimParam) return d.dimParam;
      // dim_value and dim_param are a oneof; protobufjs reports which one is set in `value`.
      if ((d as { value?: string }).value === 'dimValue' || (d.dimValue !== undefined && d.dimValue !== null && toNum(d.dimValue) !== 0)) {
        const n = toNum(d.dimValue);
        if (n < 0 || !Number.isSafeInteger(n)) throw new ModelFormatError(`'${name}' (${where}) has invalid dimension ${n}.`);
        return n;
      }
      // Neither dim_value nor dim_param: an unknown size, given a stable symbol of its own.
      return `${name}_dim${i}`;
    }),
  };
}

/** IR ValueType → TypeProto (symbolic dims become dim_param, which ONNX treats as opaque names). */
export function encodeValueType(v: ValueType): PType {
  const tensorType: PType = {
    tensorType: {
      elemType: onnxDataType(v.dtype),
      ...(v.shape ? { shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } : {}),
    },
  };
  switch (v.kind ?? 'tensor') {
    case 'tensor': return tensorType;
    case 'sequence': return { sequenceType: { elemType: tensorType } };
    case 'optional-tensor': return { optionalType: { elemType: tensorType } };
    default: return { optionalType: { elemType: { sequenceType: { elemType: tensorType } } } };
  }
}
