import { ModelFormatError } from '../../runtime/errors.js';
import type { Dim, Graph, Node, ValueInfo } from '../../runtime/ir/graph.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { decodeAttribute } from './attributes.js';
import { toNum, type PGraph, type PTensor, type PValueInfo } from './proto.js';
import { dtypeFromOnnx } from './tensor.js';

/** Decodes initializer payloads; external data was fetched beforehand and is looked up by tensor. */
export type TensorDecoder = (t: PTensor) => HostTensor;

/**
 * GraphProto → IR Graph with ONNX ops as they appear in the file (the op adapters rewrite them afterwards).
 * Subgraphs (If/Loop/Scan bodies) decode recursively; `outerScope` lists what a body reads from enclosing graphs.
 */
export function decodeGraph(g: PGraph, tensor: TensorDecoder, path = 'main'): Graph {
  const initializers: Record<string, HostTensor> = {};
  for (const t of g.initializer ?? []) {
    if (!t.name) throw new ModelFormatError(`An initializer of graph '${g.name ?? path}' has no name.`);
    initializers[t.name] = tensor(t);
  }
  if (g.sparseInitializer?.length) {
    throw new ModelFormatError(`Graph '${g.name ?? path}' has sparse initializers, which EdgeKit does not support; densify them before export.`);
  }
  // IR v3 lists initializers among the inputs too; they are constants, not user inputs.
  const inputs = (g.input ?? []).filter((v) => !(v.name! in initializers)).map((v) => valueInfo(v, `input of graph '${g.name ?? path}'`));
  const outputs = (g.output ?? []).map((v) => valueInfo(v, `output of graph '${g.name ?? path}'`));
  const nodes: Node[] = (g.node ?? []).map((n, i) => {
    const op = n.opType ?? '';
    if (!op) throw new ModelFormatError(`Node ${i} of graph '${g.name ?? path}' has no op_type.`);
    const name = n.name || `${op}_${i}`;
    const attrs: Node['attrs'] = {};
    for (const a of n.attribute ?? []) {
      if (!a.name) throw new ModelFormatError(`Node '${name}' has an attribute without a name.`);
      attrs[a.name] = decodeAttribute(a, { tensor, graph: (sub) => decodeGraph(sub, tensor, `${path}/${name}`) }, `Node '${name}'`);
    }
    return { name, op, domain: n.domain === 'ai.onnx' ? '' : n.domain ?? '', inputs: [...(n.input ?? [])], outputs: [...(n.output ?? [])], attrs };
  });
  const graph: Graph = { name: g.name || path, inputs, outputs, initializers, nodes, values: {} };
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
  if (path !== 'main') graph.outerScope = [...outer];
  return graph;
}

let anon = 0;

function valueInfo(v: PValueInfo, where: string): ValueInfo {
  const name = v.name ?? '';
  if (!name) throw new ModelFormatError(`An ${where} has no name.`);
  const tt = v.type?.tensorType;
  if (!tt) {
    const kind = v.type?.sequenceType ? 'a sequence' : v.type?.mapType ? 'a map' : v.type?.optionalType ? 'an optional' : 'no tensor type';
    throw new ModelFormatError(`'${name}' (${where}) is ${kind}; EdgeKit supports tensor inputs and outputs only.`, { value: name });
  }
  const dtype = dtypeFromOnnx(tt.elemType, `'${name}' (${where})`);
  if (!tt.shape) return { name, dtype };
  const shape: Dim[] = (tt.shape.dim ?? []).map((d, i) => {
    if (d.dimParam) return d.dimParam;
    // dim_value and dim_param are a oneof; protobufjs reports which one is set in `value`.
    if ((d as { value?: string }).value === 'dimValue' || (d.dimValue !== undefined && d.dimValue !== null && toNum(d.dimValue) !== 0)) {
      const n = toNum(d.dimValue);
      if (n < 0 || !Number.isSafeInteger(n)) throw new ModelFormatError(`'${name}' (${where}) has invalid dimension ${n}.`);
      return n;
    }
    return `${name}_dim${i}_${anon++}`;
  });
  return { name, dtype, shape };
}
