import { InvalidGraphError, ModelFormatError } from '../../runtime/errors.js';
import type { Graph, Node, ValueInfo } from '../../runtime/ir/graph.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { decodeAttribute } from './attributes.js';
import type { PGraph, PSparseTensor, PTensor, PValueInfo } from './proto.js';
import { decodeValueType } from './value-types.js';

/** Decodes tensor payloads (external data was fetched beforehand) and densifies sparse tensors. */
export interface TensorDecoders {
  tensor(t: PTensor): HostTensor;
  sparse(s: PSparseTensor): HostTensor;
}

/**
 * GraphProto → IR Graph with ONNX ops as they appear in the file (the op adapters rewrite them afterwards).
 * Subgraphs (If/Loop/Scan bodies) decode recursively; `outerScope` lists what a body reads from enclosing graphs.
 */
export function decodeGraph(g: PGraph, dec: TensorDecoders, path = 'main'): Graph {
  const gname = g.name || path;
  const initializers: Record<string, HostTensor> = {};
  const addInitializer = (name: string | null | undefined, make: () => HostTensor) => {
    if (!name) throw new ModelFormatError(`An initializer of graph '${gname}' has no name.`);
    if (name in initializers) throw new InvalidGraphError(`Graph '${gname}' defines initializer '${name}' twice.`, { value: name });
    initializers[name] = make();
  };
  for (const t of g.initializer ?? []) addInitializer(t.name, () => dec.tensor(t));
  // Sparse initializers (IR v6+) are densified: the IR has dense tensors only.
  for (const s of g.sparseInitializer ?? []) addInitializer(s.values?.name, () => dec.sparse(s));
  // IR v3 lists initializers among the inputs too; they are constants, not user inputs.
  // A control-flow body may leave its inputs' element type out (ONNX function expansions do): the node's inputs give
  // it, so a placeholder stands in (ir/ops/control-flow.ts types body inputs from the node).
  const bodyInput = (v: PValueInfo) => (path !== 'main' && v.name && !v.type?.tensorType?.elemType && !v.type?.sequenceType && !v.type?.optionalType ? { name: v.name, dtype: 'float32' as const } : undefined);
  const inputs = (g.input ?? []).filter((v) => !((v.name ?? '') in initializers)).map((v) => bodyInput(v) ?? valueInfo(v, `input of graph '${gname}'`));
  const seen = new Set<string>();
  for (const i of inputs) {
    if (seen.has(i.name)) throw new InvalidGraphError(`Graph '${gname}' lists input '${i.name}' twice.`, { value: i.name });
    seen.add(i.name);
  }
  // Outputs may leave their type out (onnxruntime accepts that); a float32 placeholder stands in until import.ts
  // replaces it with the inferred type.
  const outputs = (g.output ?? []).map((v) => (v.name && !v.type ? { name: v.name, dtype: 'float32' as const } : valueInfo(v, `output of graph '${gname}'`)));
  const nodes: Node[] = (g.node ?? []).map((n, i) => {
    const op = n.opType ?? '';
    if (!op) throw new ModelFormatError(`Node ${i} of graph '${gname}' has no op_type.`);
    const name = n.name || `${op}_${i}`;
    const attrs: Node['attrs'] = {};
    for (const a of n.attribute ?? []) {
      if (!a.name) throw new ModelFormatError(`Node '${name}' has an attribute without a name.`);
      attrs[a.name] = decodeAttribute(a, { ...dec, graph: (sub) => decodeGraph(sub, dec, `${path}/${name}`) }, `Node '${name}'`);
    }
    return { name, op, domain: n.domain === 'ai.onnx' ? '' : n.domain ?? '', inputs: [...(n.input ?? [])], outputs: [...(n.output ?? [])], attrs };
  });
  const graph: Graph = { name: gname, inputs, outputs, initializers, nodes, values: {} };
  const defined = new Set([...inputs.map((i) => i.name), ...Object.keys(initializers), ...nodes.flatMap((n) => n.outputs)]);
  const outer = new Set<string>();
  const reads = (n: Node) => {
    for (const v of n.inputs) if (v && !defined.has(v)) outer.add(v);
    for (const a of Object.values(n.attrs)) {
      const gs = a.type === 'graph' ? [a.value] : a.type === 'graphs' ? a.value : [];
      for (const sg of gs) for (const v of sg.outerScope ?? []) if (!defined.has(v)) outer.add(v);
    }
  };
  nodes.forEach(reads);
  // A body output may be a value of an enclosing graph, passed through.
  for (const o of outputs) if (!defined.has(o.name)) outer.add(o.name);
  if (path !== 'main') graph.outerScope = [...outer];
  return graph;
}

function valueInfo(v: PValueInfo, where: string): ValueInfo {
  const name = v.name ?? '';
  if (!name) throw new ModelFormatError(`An ${where} has no name.`);
  // Tensors, sequences and optionals (value-types.ts); a sequence or optional keeps its kind.
  return { name, ...decodeValueType(v.type, name, where) };
}
