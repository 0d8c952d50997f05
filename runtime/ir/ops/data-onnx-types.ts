import { InvalidArgumentError, UnsupportedOpError } from '../../errors.js';
import { isDType, type DType } from '../dtype.js';
import type { Node } from '../graph.js';

/**
 * The ONNX TensorProto.DataType codes Cast's `to` attribute carries (onnx.proto, enum DataType), mapped onto
 * EdgeKit dtypes. Complex, float8 and 4-bit types have no EdgeKit storage: a Cast to them is unsupported.
 */
const FROM_CODE: Record<number, DType> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string', 9: 'bool',
  10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 16: 'bfloat16',
};

const UNSUPPORTED_NAMES: Record<number, string> = {
  0: 'UNDEFINED', 14: 'complex64', 15: 'complex128', 17: 'float8e4m3fn', 18: 'float8e4m3fnuz', 19: 'float8e5m2',
  20: 'float8e5m2fnuz', 21: 'uint4', 22: 'int4', 23: 'float4e2m1',
};

/**
 * The dtype a Cast node converts to. `to` is the ONNX enum as an int attribute (what the importer writes); a dtype
 * name is accepted too, for graphs built by hand.
 */
export function castTarget(node: Node, opset = 21): DType {
  const a = node.attrs['to'];
  if (a && a.type === 'string' && isDType(a.value)) return a.value;
  if (a && a.type === 'int') {
    const d = FROM_CODE[a.value];
    if (d) return d;
    const name = UNSUPPORTED_NAMES[a.value] ?? `data type ${a.value}`;
    throw new UnsupportedOpError([{ op: node.op, domain: '', opset, node: node.name, reason: `to=${name}: EdgeKit has no storage for this element type` }]);
  }
  throw new InvalidArgumentError(`${node.op} needs an int attribute 'to' naming the target element type (ONNX DataType code).`);
}
