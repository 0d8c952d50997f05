import onnx from 'onnx-proto';

/** Builds ModelProto bytes directly (for malformed and old-opset models the exporter would never write). */
export const P = onnx.onnx;
export type NodeSpec = { op: string; inputs: string[]; outputs: string[]; name?: string; domain?: string; attrs?: onnx.onnx.IAttributeProto[] };

export function vi(name: string, elemType = 1, dims?: (number | string)[]): onnx.onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType, ...(dims ? { shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } : {}) } },
  };
}

export function model(spec: {
  nodes: NodeSpec[];
  inputs?: onnx.onnx.IValueInfoProto[];
  outputs?: onnx.onnx.IValueInfoProto[];
  initializers?: onnx.onnx.ITensorProto[];
  opset?: number;
  irVersion?: number;
  extraOpsets?: { domain: string; version: number }[];
}): Uint8Array {
  return P.ModelProto.encode({
    irVersion: spec.irVersion ?? 8,
    producerName: 'edgekit-tests',
    opsetImport: [{ domain: '', version: spec.opset ?? 13 }, ...(spec.extraOpsets ?? [])],
    graph: {
      name: 'g',
      node: spec.nodes.map((n, i) => ({ opType: n.op, input: n.inputs, output: n.outputs, name: n.name ?? `n${i}`, domain: n.domain ?? '', attribute: n.attrs ?? [] })),
      input: spec.inputs ?? [],
      output: spec.outputs ?? [],
      initializer: spec.initializers ?? [],
    },
  }).finish();
}

const T = P.AttributeProto.AttributeType;
export const ints = (name: string, v: number[]) => ({ name, type: T.INTS, ints: v });
export const int = (name: string, v: number) => ({ name, type: T.INT, i: v });
export const float = (name: string, v: number) => ({ name, type: T.FLOAT, f: v });
export const graphAttr = (name: string, g: onnx.onnx.IGraphProto) => ({ name, type: T.GRAPH, g });
