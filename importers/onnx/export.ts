import { InvalidArgumentError } from '../../runtime/errors.js';
import type { Graph, ValueInfo } from '../../runtime/ir/graph.js';
import { encodeAttribute } from './attributes.js';
import { fourBitForm, fourBitTensorToProto } from './export-four-bit.js';
import { irFormValidAt, MAX_OPSET, MIN_OPSET } from './ops/index.js';
import { onnxDomainOp } from './ops/preview-training.js';
import { msDomainOp } from './ops/com-microsoft.js';
import { P, type PGraph, type PValueInfo } from './proto.js';
import { tensorToProto } from './tensor.js';
import { encodeValueType } from './value-types.js';

export interface ExportOptions {
  /**
   * Default-domain opset to declare. The IR is newest-opset form (MAX_OPSET, 23); the default is 21, which more
   * runtimes read, whenever every op of the graph had its current form at 21, else 23 (a graph with opset-23 ops
   * such as Attention). A lower opset is accepted only when every default-domain op of the graph has had its
   * current form since that opset (attributes added later, e.g. Reshape's allowzero in 14, are the caller's
   * responsibility).
   */
  opset?: number;
  producer?: string;
}

/**
 * The IR version that introduced each opset's release (onnx/helper.py VERSION_TABLE), at least 4 so that
 * initializers need not be listed among the graph inputs (IR v4 semantics).
 */
function irVersionFor(opset: number): number {
  if (opset >= 23) return 11;
  if (opset >= 21) return 10;
  if (opset >= 19) return 9;
  if (opset >= 15) return 8;
  if (opset >= 12) return 7;
  if (opset === 11) return 6;
  if (opset === 10) return 5;
  return 4;
}

/** `fourBit`: the ONNX data type of each 4-bit value (export-four-bit.ts), which the IR holds as int8 / uint8. */
function valueInfoProto(v: ValueInfo, fourBit: Map<string, number>): PValueInfo {
  // Sequences and optionals keep their kind (value-types.ts).
  const type = encodeValueType(v);
  const code = fourBit.get(v.name);
  if (code !== undefined && type.tensorType) type.tensorType.elemType = code;
  return { name: v.name, type };
}

function graphProto(g: Graph, domains: Set<string>, fourBit: Map<string, number>): PGraph {
  const outputs = g.outputs.map((o) => (g.values[o.name] ? { ...g.values[o.name]!, name: o.name } : o));
  const sub = (s: Graph) => graphProto(s, domains, fourBit);
  return {
    name: g.name,
    input: g.inputs.map((v) => valueInfoProto(v, fourBit)),
    output: outputs.map((v) => valueInfoProto(v, fourBit)),
    initializer: Object.entries(g.initializers).map(([k, t]) => (fourBit.has(k) ? fourBitTensorToProto(k, t, fourBit.get(k)!) : tensorToProto(k, t))),
    node: g.nodes.map((n) => {
      // IR ops named by their domain go back to that domain (ops/preview-training.ts).
      const named = n.domain ? undefined : onnxDomainOp(n.op) ?? msDomainOp(n.op);
      const domain = named?.domain ?? n.domain;
      if (domain) domains.add(domain);
      return {
        name: n.name,
        opType: named?.op ?? n.op,
        domain,
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.attrs).map(([k, a]) => encodeAttribute(k, a, sub)),
      };
    }),
  };
}

/**
 * IR → ONNX ModelProto bytes: weights as raw_data (little-endian), graph inputs/outputs as value_info with
 * symbolic dims as dim_param, every attribute type, subgraphs, 4-bit quantization as INT4 / UINT4 (from opset 21,
 * export-four-bit.ts). Used after fine-tuning and by the quantizer; the file loads in any ONNX runtime. Ops of other
 * domains (e.g. from the quantizer) get an opset import of version 1.
 */
/** The opset exportOnnx declares when the graph allows it: the newest one most runtimes read today. */
const DEFAULT_EXPORT_OPSET = 21;

export function exportOnnx(graph: Graph, opts: ExportOptions = {}): Uint8Array {
  const ops = new Set<string>();
  const collect = (gr: Graph) => {
    for (const n of gr.nodes) {
      if (!n.domain && !onnxDomainOp(n.op) && !msDomainOp(n.op)) ops.add(n.op);
      for (const a of Object.values(n.attrs)) for (const sub of a.type === 'graph' ? [a.value] : a.type === 'graphs' ? a.value : []) collect(sub);
    }
  };
  collect(graph);
  const opset = opts.opset ?? ([...ops].every((op) => irFormValidAt(op, DEFAULT_EXPORT_OPSET)) ? DEFAULT_EXPORT_OPSET : MAX_OPSET);
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new InvalidArgumentError(`exportOnnx: opset ${opset} is outside ${MIN_OPSET}-${MAX_OPSET}.`, { opset });
  }
  const domains = new Set<string>();
  // 4-bit quantization as standard INT4 / UINT4 (export-four-bit.ts); the IR's storage_bits is never written.
  const standard = fourBitForm(graph, opset);
  const g = graphProto(standard.graph, domains, standard.codes);
  if (opset < MAX_OPSET) {
    const bad = [...ops].filter((op) => !irFormValidAt(op, opset)).sort();
    if (bad.length) {
      throw new InvalidArgumentError(`exportOnnx: at opset ${opset} these ops had a different form (or did not exist): ${bad.join(', ')}. Export at a newer opset (${MAX_OPSET} fits any graph).`, { opset, ops: bad });
    }
  }
  const model = P.ModelProto.create({
    irVersion: irVersionFor(opset),
    producerName: opts.producer ?? 'edgekit',
    producerVersion: '0.1.0',
    opsetImport: [{ domain: '', version: opset }, ...[...domains].sort().map((domain) => ({ domain, version: 1 }))],
    graph: g,
  });
  return P.ModelProto.encode(model).finish();
}
