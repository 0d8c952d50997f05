import type { Graph, ValueInfo } from '../../runtime/ir/graph.js';
import { encodeAttribute } from './attributes.js';
import { P, type PGraph, type PValueInfo } from './proto.js';
import { onnxDataType, tensorToProto } from './tensor.js';

export interface ExportOptions {
  /** Default-domain opset to declare. The IR is newest-opset form, valid at opset 21. */
  opset?: number;
  producer?: string;
}

function valueInfoProto(v: ValueInfo): PValueInfo {
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: onnxDataType(v.dtype),
        ...(v.shape ? { shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } : {}),
      },
    },
  };
}

function graphProto(g: Graph): PGraph {
  const out = g.outputs.map((o) => g.values[o.name] ? { ...g.values[o.name]!, name: o.name } : o);
  return {
    name: g.name,
    input: g.inputs.map(valueInfoProto),
    output: out.map(valueInfoProto),
    initializer: Object.entries(g.initializers).map(([k, t]) => tensorToProto(k, t)),
    node: g.nodes.map((n) => ({
      name: n.name,
      opType: n.op,
      domain: n.domain,
      input: n.inputs,
      output: n.outputs,
      attribute: Object.entries(n.attrs).map(([k, a]) => encodeAttribute(k, a, graphProto)),
    })),
  };
}

/**
 * IR → ONNX ModelProto bytes: weights as raw_data, inputs/outputs with symbolic dims as dim_param, every attribute
 * type, subgraphs. Used after fine-tuning and by the quantizer; loads in any ONNX runtime.
 */
export function exportOnnx(graph: Graph, opts: ExportOptions = {}): Uint8Array {
  const model = P.ModelProto.create({
    irVersion: 10,
    producerName: opts.producer ?? 'edgekit',
    producerVersion: '0.1.0',
    opsetImport: [{ domain: '', version: opts.opset ?? 21 }],
    graph: graphProto(graph),
  });
  return P.ModelProto.encode(model).finish();
}
