import onnx from 'onnx-proto';
import type { DType } from '../../runtime/ir/dtype.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { tensorProto } from '../helpers/ort-single-node.js';

/** Builds ModelProto bytes directly (for malformed and old-opset models the exporter would never write). */
export const P = onnx.onnx;
export type PAttr = onnx.onnx.IAttributeProto;
export type NodeSpec = { op: string; inputs: string[]; outputs: string[]; name?: string; domain?: string; attrs?: PAttr[] };

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
  valueInfo?: onnx.onnx.IValueInfoProto[];
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
      valueInfo: spec.valueInfo ?? [],
    },
  }).finish();
}

const T = P.AttributeProto.AttributeType;
export const ints = (name: string, v: number[]): PAttr => ({ name, type: T.INTS, ints: v });
export const int = (name: string, v: number): PAttr => ({ name, type: T.INT, i: v });
export const float = (name: string, v: number): PAttr => ({ name, type: T.FLOAT, f: v });
export const floats = (name: string, v: number[]): PAttr => ({ name, type: T.FLOATS, floats: v });
export const str = (name: string, v: string): PAttr => ({ name, type: T.STRING, s: new TextEncoder().encode(v) });
export const graphAttr = (name: string, g: onnx.onnx.IGraphProto): PAttr => ({ name, type: T.GRAPH, g });

const CODES: Partial<Record<DType, number>> = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11 };

/** One value of a one-node model: fed at run time (declared with its full shape, or with no shape), or a weight. */
export interface ValueSpec {
  name: string;
  value: HostTensor;
  /** 'feed' (default): a graph input with its shape; 'feed-no-shape': declared without a shape; 'init': an initializer. */
  as?: 'feed' | 'feed-no-shape' | 'init';
}

/**
 * A model around one node: `inputs` in order ('' entries are omitted optional inputs), outputs declared with
 * only an element type (shapes unspecified, as exporters often leave them).
 */
export function nodeModel(spec: {
  op: string; opset: number; attrs?: PAttr[]; inputs: (ValueSpec | '')[]; outputs: { name: string; elemType?: number }[];
}): { bytes: Uint8Array; feeds: Record<string, HostTensor> } {
  const feeds: Record<string, HostTensor> = {};
  const graphInputs: onnx.onnx.IValueInfoProto[] = [];
  const initializers: onnx.onnx.ITensorProto[] = [];
  for (const v of spec.inputs) {
    if (!v) continue;
    const code = CODES[v.value.dtype]!;
    if (v.as === 'init') initializers.push(tensorProto(v.name, v.value));
    else {
      graphInputs.push(vi(v.name, code, v.as === 'feed-no-shape' ? undefined : v.value.shape));
      feeds[v.name] = v.value;
    }
  }
  const bytes = model({
    opset: spec.opset,
    irVersion: spec.opset >= 9 ? 4 : 3,
    nodes: [{ op: spec.op, inputs: spec.inputs.map((v) => (v ? v.name : '')), outputs: spec.outputs.map((o) => o.name), name: 'node', attrs: spec.attrs }],
    // IR v3 lists initializers among the graph inputs too.
    inputs: spec.opset >= 9 ? graphInputs : [...graphInputs, ...initializers.map((t) => vi(t.name!, t.dataType!, t.dims as number[]))],
    outputs: spec.outputs.map((o) => vi(o.name, o.elemType ?? 1)),
    initializers,
  });
  return { bytes, feeds };
}
