import { EdgeKitError, ModelFormatError, UnsupportedOpError, type UnsupportedNode } from '../../runtime/errors.js';
import type { DType } from '../../runtime/ir/dtype.js';
import { attrTensor, type Graph, type Node } from '../../runtime/ir/graph.js';
import { inferShapes } from '../../runtime/ir/infer.js';
import { DEFAULT_MAX_ELEMENTS, tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { validateAndSort } from '../../runtime/ir/validate.js';
import { externalTensors, fetchExternal, type ExternalDataResolver } from './external-data.js';
import { decodeGraph } from './graph.js';
import { AdapterUnsupported, findAdapter, MAX_OPSET, MIN_OPSET, type AdapterContext } from './ops/index.js';
import { P, toNum, type PModel, type PTensor } from './proto.js';
import { dtypeFromOnnx, tensorFromProto } from './tensor.js';

export interface ImportOptions {
  externalData?: ExternalDataResolver;
  /** Largest element count of any tensor the model declares (allocation-bomb guard). */
  maxTensorElements?: number;
}

export interface ImportedModel {
  graph: Graph;
  irVersion: number;
  /** The default-domain opset. */
  opset: number;
  opsets: Record<string, number>;
  producer: string;
  metadata: Record<string, string>;
}

function decodeModel(bytes: Uint8Array): PModel {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw new ModelFormatError('The model is empty: expected the bytes of an .onnx file.');
  let m: PModel;
  try {
    m = P.ModelProto.decode(bytes);
  } catch (e) {
    throw new ModelFormatError(`These bytes are not an ONNX model (protobuf decoding failed: ${(e as Error).message}). The file may be truncated or not an .onnx file.`, {}, { cause: e });
  }
  const ir = toNum(m.irVersion);
  // Anything that "decodes" without a graph, an IR version or an opset is not a model (e.g. a TensorProto or noise).
  if (!m.graph || !ir || !(m.opsetImport?.length || ir < 3)) {
    throw new ModelFormatError('These bytes decode as protobuf but not as an ONNX ModelProto (no graph, IR version or opset import). Is this an .onnx model file?');
  }
  if (ir < 3 || ir > 10) throw new ModelFormatError(`ONNX IR version ${ir} is not supported (EdgeKit reads IR versions 3 to 10).`, { irVersion: ir });
  return m;
}

/** Imports an ONNX model: decode, check support, decode weights, rewrite ops to IR form, validate, infer shapes. */
export async function importOnnx(bytes: Uint8Array, opts: ImportOptions = {}): Promise<ImportedModel> {
  const maxElements = opts.maxTensorElements ?? DEFAULT_MAX_ELEMENTS;
  const m = decodeModel(bytes);
  const opsets: Record<string, number> = {};
  for (const o of m.opsetImport ?? []) opsets[o.domain === 'ai.onnx' ? '' : o.domain ?? ''] = toNum(o.version);
  const opset = opsets[''] ?? 1;
  const g = m.graph!;

  // 1. Support check over the structure only, before any weight is decoded or fetched.
  const unsupported: UnsupportedNode[] = [];
  (g.node ?? []).forEach((n, i) => {
    const op = n.opType ?? '';
    const domain = n.domain === 'ai.onnx' ? '' : n.domain ?? '';
    const name = n.name || `${op}_${i}`;
    if (domain !== '') unsupported.push({ op, domain, opset: opsets[domain] ?? 0, node: name, reason: `domain '${domain}' is not supported` });
    else if (op === 'Constant') return;
    else if (opset < MIN_OPSET || opset > MAX_OPSET) unsupported.push({ op, domain, opset, node: name, reason: `opset ${opset} is outside ${MIN_OPSET}-${MAX_OPSET}` });
    else if (!findAdapter(op, opset)) unsupported.push({ op, domain, opset, node: name });
  });
  if (unsupported.length) throw new UnsupportedOpError(unsupported);

  // 2. Weights (external data fetched first, so decoding stays synchronous).
  const external = new Map<PTensor, Uint8Array>();
  for (const t of externalTensors(g)) external.set(t, await fetchExternal(t, opts.externalData));
  const decodeTensor = (t: PTensor) => tensorFromProto(t, external.get(t), maxElements);
  let graph: Graph;
  try {
    graph = decodeGraph(g, decodeTensor);
  } catch (e) {
    if (e instanceof EdgeKitError) throw e;
    throw new ModelFormatError(`The model's graph is malformed: ${(e as Error).message}`, {}, { cause: e });
  }

  // 3. Constant nodes become initializers; every other node is rewritten into IR form.
  graph = adaptNodes(graph, opset, declaredTypes(m));
  const sorted = validateAndSort(graph);
  const inferred = inferShapes(sorted);
  inferred.outputs = inferred.outputs.map((o) => ({ ...o, shape: o.shape ?? inferred.values[o.name]?.shape }));

  return {
    graph: inferred,
    irVersion: toNum(m.irVersion),
    opset,
    opsets,
    producer: [m.producerName, m.producerVersion].filter(Boolean).join(' '),
    metadata: Object.fromEntries((m.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? ''])),
  };
}

/** Ranks and dtypes the file declares (inputs, outputs, value_info), for adapters that need them. */
function declaredTypes(m: PModel): Map<string, { rank?: number; dtype?: DType }> {
  const out = new Map<string, { rank?: number; dtype?: DType }>();
  const g = m.graph!;
  for (const v of [...(g.input ?? []), ...(g.output ?? []), ...(g.valueInfo ?? [])]) {
    const tt = v.type?.tensorType;
    if (!v.name || !tt) continue;
    let dtype: DType | undefined;
    try {
      dtype = dtypeFromOnnx(tt.elemType, v.name);
    } catch {
      dtype = undefined;
    }
    out.set(v.name, { rank: tt.shape ? (tt.shape.dim ?? []).length : undefined, dtype });
  }
  return out;
}

function adaptNodes(graph: Graph, opset: number, declared: Map<string, { rank?: number; dtype?: DType }>): Graph {
  const used = new Set<string>([...graph.inputs.map((i) => i.name), ...Object.keys(graph.initializers), ...graph.nodes.flatMap((n) => [...n.inputs, ...n.outputs])]);
  const initializers = { ...graph.initializers };
  const fresh = (hint: string) => {
    let name = hint;
    for (let i = 1; used.has(name); i++) name = `${hint}_${i}`;
    used.add(name);
    return name;
  };
  const ctx: AdapterContext = {
    opset,
    constant: (hint, t) => {
      const name = fresh(hint);
      initializers[name] = t;
      return name;
    },
    fresh,
    rankOf: (v) => initializers[v]?.shape.length ?? graph.inputs.find((i) => i.name === v)?.shape?.length ?? declared.get(v)?.rank,
    dtypeOf: (v) => initializers[v]?.dtype ?? graph.inputs.find((i) => i.name === v)?.dtype ?? declared.get(v)?.dtype,
    constantValue: (v) => initializers[v],
  };
  const nodes: Node[] = [];
  const unsupported: UnsupportedNode[] = [];
  for (const n of graph.nodes) {
    if (n.op === 'Constant' && n.domain === '') {
      initializers[n.outputs[0]!] = constantValue(n);
      continue;
    }
    const adapter = findAdapter(n.op, opset)!;
    try {
      nodes.push(...(adapter.map ? adapter.map(n, ctx) : [n]));
    } catch (e) {
      if (e instanceof AdapterUnsupported) unsupported.push({ op: n.op, domain: n.domain, opset, node: n.name, reason: e.message });
      else throw e;
    }
  }
  if (unsupported.length) throw new UnsupportedOpError(unsupported);
  return { ...graph, nodes, initializers };
}

/** Constant-1..21: exactly one of value, value_float(s), value_int(s), value_string(s) (sparse_value unsupported). */
function constantValue(n: Node): HostTensor {
  const t = attrTensor(n, 'value');
  if (t) return t;
  const a = n.attrs;
  if (a.value_float?.type === 'float') return tensorFromNumbers('float32', [], [a.value_float.value]);
  if (a.value_floats?.type === 'floats') return tensorFromNumbers('float32', [a.value_floats.value.length], a.value_floats.value);
  if (a.value_int?.type === 'int') return tensorFromNumbers('int64', [], [a.value_int.value]);
  if (a.value_ints?.type === 'ints') return tensorFromNumbers('int64', [a.value_ints.value.length], a.value_ints.value);
  if (a.value_string?.type === 'string') return { dtype: 'string', shape: [], data: [a.value_string.value] };
  if (a.value_strings?.type === 'strings') return { dtype: 'string', shape: [a.value_strings.value.length], data: [...a.value_strings.value] };
  throw new ModelFormatError(`Constant node '${n.name}' has no supported value attribute (sparse_value is not supported).`, { node: n.name });
}

