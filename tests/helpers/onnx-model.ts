import onnx from 'onnx-proto';
import type { Attr } from '../../runtime/ir/graph.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { tensorProto } from './ort-single-node.js';

/**
 * Encodes a small ONNX model whose nodes may live in any domain (ort-single-node.ts builds default-domain single
 * nodes only): graph inputs typed from example tensors, optional initializers, and the opset imports given.
 */

const P = onnx.onnx;
const ELEM: Record<string, number> = {
  float32: 1, uint8: 2, int8: 3, uint16: 4, int16: 5, int32: 6, int64: 7, string: 8, bool: 9, float16: 10, float64: 11, uint32: 12, uint64: 13,
};

export interface ModelNode {
  op: string;
  domain?: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, Attr>;
}

function attribute(name: string, a: Attr): onnx.onnx.IAttributeProto {
  const T = P.AttributeProto.AttributeType;
  const enc = (s: string) => new TextEncoder().encode(s);
  switch (a.type) {
    case 'float': return { name, type: T.FLOAT, f: a.value };
    case 'int': return { name, type: T.INT, i: a.value };
    case 'string': return { name, type: T.STRING, s: enc(a.value) };
    case 'floats': return { name, type: T.FLOATS, floats: a.value };
    case 'ints': return { name, type: T.INTS, ints: a.value };
    case 'strings': return { name, type: T.STRINGS, strings: a.value.map(enc) };
    case 'tensor': return { name, type: T.TENSOR, t: tensorProto(name, a.value) };
    default: throw new Error(`onnx-model: attribute type ${a.type} not supported`);
  }
}

export function encodeModel(spec: {
  nodes: ModelNode[];
  /** Graph inputs by name, typed (dtype and shape) from these example tensors. */
  inputs: Record<string, HostTensor>;
  outputs: string[];
  initializers?: Record<string, HostTensor>;
  /** Opset imports, default { '': 21 }. */
  opsets?: Record<string, number>;
}): Uint8Array {
  const model: onnx.onnx.IModelProto = {
    irVersion: 8,
    opsetImport: Object.entries(spec.opsets ?? { '': 21 }).map(([domain, version]) => ({ domain, version })),
    producerName: 'edgekit-tests',
    graph: {
      name: 'test',
      node: spec.nodes.map((n, i) => ({
        opType: n.op, domain: n.domain ?? '', name: `n${i}`, input: n.inputs, output: n.outputs,
        attribute: Object.entries(n.attrs ?? {}).map(([k, a]) => attribute(k, a)),
      })),
      input: Object.entries(spec.inputs).map(([name, t]) => ({
        name, type: { tensorType: { elemType: ELEM[t.dtype], shape: { dim: t.shape.map((d) => ({ dimValue: d })) } } },
      })),
      initializer: Object.entries(spec.initializers ?? {}).map(([name, t]) => tensorProto(name, t)),
      output: spec.outputs.map((name) => ({ name })),
    },
  };
  return P.ModelProto.encode(model).finish();
}
