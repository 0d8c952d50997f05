import { EdgeKitError, ModelFormatError } from '../../runtime/errors.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Graph } from '../../runtime/ir/graph.js';
import { inferShapes } from '../../runtime/ir/infer.js';
import { DEFAULT_MAX_ELEMENTS } from '../../runtime/ir/tensor.js';
import { validateAndSort } from '../../runtime/ir/validate.js';
import { adaptNodes, checkSupport, type DeclaredTypes } from './adapt.js';
import { externalTensors, fetchExternal, type ExternalDataResolver } from './external-data.js';
import { decodeGraph } from './graph.js';
import { P, toNum, type PModel, type PTensor } from './proto.js';
import { densify } from './sparse.js';
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
  /**
   * Initializers that are not weights of the file: Constant nodes' values and the constants op adapters add (a Clip
   * bound, an epsilon, a Reshape target). Fine-tuning never trains them; a weight is what the file lists as an
   * initializer.
   */
  constants: string[];
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
  // protobufjs "decodes" many byte strings that are not models (a TensorProto, noise): a model has a graph and an
  // IR version, and from IR v3 on, opset imports.
  if (!m.graph || !ir) {
    throw new ModelFormatError('These bytes decode as protobuf but not as an ONNX ModelProto (no graph or IR version). Is this an .onnx model file?');
  }
  // IR 11 (ONNX 1.18, the IR of opset 23) only added fields EdgeKit does not read (multi-device configuration) and
  // the 4-bit float type, which tensor decoding refuses by name.
  if (ir < 3 || ir > 11) throw new ModelFormatError(`ONNX IR version ${ir} is not supported (EdgeKit reads IR versions 3 to 11).`, { irVersion: ir });
  if (!m.opsetImport?.length) throw new ModelFormatError('The model declares no opset_import, which IR version 3 and later require.');
  return m;
}

/**
 * Imports an ONNX model: decode and sanity-check the protobuf, check every node is supported (before any weight is
 * decoded or fetched), decode weights (external data through `opts.externalData`), rewrite ops into IR form,
 * validate and sort the graph, infer shapes. Every failure is an EdgeKitError subclass.
 */
export async function importOnnx(bytes: Uint8Array, opts: ImportOptions = {}): Promise<ImportedModel> {
  try {
    return await importModel(bytes, opts);
  } catch (e) {
    if (e instanceof EdgeKitError) throw e;
    // Anything else is a malformed file reaching a code path that assumed well-formed input (or a stack overflow
    // from absurd nesting): report it as a format problem, keeping the cause.
    throw new ModelFormatError(`The model is malformed: ${(e as Error)?.message ?? String(e)}`, {}, { cause: e });
  }
}

async function importModel(bytes: Uint8Array, opts: ImportOptions): Promise<ImportedModel> {
  const maxElements = opts.maxTensorElements ?? DEFAULT_MAX_ELEMENTS;
  const m = decodeModel(bytes);
  const opsets: Record<string, number> = {};
  for (const o of m.opsetImport ?? []) opsets[o.domain === 'ai.onnx' ? '' : o.domain ?? ''] = toNum(o.version);
  // A file that imports only other domains should have no default-domain nodes; any it has are read as opset 1.
  const opset = opsets[''] ?? 1;
  const g = m.graph!;

  // 1. Support check over the structure only, before any weight is decoded or fetched.
  checkSupport(g, opsets);

  // 2. Weights (external data fetched first, so decoding stays synchronous).
  const external = new Map<PTensor, Uint8Array>();
  for (const t of externalTensors(g)) external.set(t, await fetchExternal(t, opts.externalData, maxElements));
  const tensor = (t: PTensor) => tensorFromProto(t, external.get(t), maxElements);
  const graph = decodeGraph(g, { tensor, sparse: (s) => densify(s, tensor, maxElements) });

  // 3. Constant nodes become initializers; every other node is rewritten into IR form.
  const adapted = adaptNodes(graph, opset, declaredTypes(m), opsets);
  const constants = Object.keys(adapted.initializers).filter((k) => !(k in graph.initializers));
  const sorted = validateAndSort(adapted);
  const inferred = inferShapes(sorted);
  const untyped = new Set((g.output ?? []).filter((v) => !v.type).map((v) => v.name));
  inferred.outputs = inferred.outputs.map((o) => {
    const v = inferred.values[o.name];
    if (untyped.has(o.name) && v) return { ...v, name: o.name };
    return { ...o, shape: o.shape ?? v?.shape };
  });

  return {
    graph: inferred,
    irVersion: toNum(m.irVersion),
    opset,
    opsets,
    producer: [m.producerName, m.producerVersion].filter(Boolean).join(' '),
    metadata: Object.fromEntries((m.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? ''])),
    constants,
  };
}

/** Ranks and dtypes the file declares (inputs, outputs, value_info), for adapters that need them. */
function declaredTypes(m: PModel): DeclaredTypes {
  const out: DeclaredTypes = new Map();
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
