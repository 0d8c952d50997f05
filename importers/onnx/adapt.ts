import { InvalidGraphError, ModelFormatError, UnsupportedOpError, type UnsupportedNode } from '../../runtime/errors.js';
import type { DType } from '../../runtime/ir/dtype.js';
import { attrTensor, type Graph, type Node } from '../../runtime/ir/graph.js';
import { OP_SCHEMAS, type InferInput } from '../../runtime/ir/ops/index.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { AdapterUnsupported, findAdapter, importsDomain, listSupportedOps, MAX_OPSET, MIN_OPSET, type AdapterContext } from './ops/index.js';
import type { PGraph, PNode } from './proto.js';
import { validateAndSort } from '../../runtime/ir/validate.js';

/** What the file declares about a value (graph inputs/outputs and value_info), for adapters that need a rank. */
export type DeclaredTypes = Map<string, { rank?: number; dtype?: DType }>;

const domainOf = (n: PNode) => (n.domain === 'ai.onnx' ? '' : n.domain ?? '');

/**
 * The support check, on the file's top-level nodes before any weight is decoded: other domains, opsets outside
 * MIN_OPSET..MAX_OPSET, ops without an adapter (or whose IR targets are missing), and node forms an adapter's
 * structural check refuses. Every such node goes into one UnsupportedOpError.
 */
export function checkSupport(g: PGraph, opsets: Record<string, number>): void {
  const unsupported: UnsupportedNode[] = [];
  collectUnsupported(g, opsets, '', unsupported);
  if (unsupported.length) throw new UnsupportedOpError(unsupported);
}

/**
 * The support check of one graph's nodes, and (control flow) of every subgraph body, named `<node>/<body node>`;
 * a body node's reason names the If/Loop/Scan it sits in, so the error can say that node itself is fine.
 */
function collectUnsupported(g: PGraph, opsets: Record<string, number>, prefix: string, unsupported: UnsupportedNode[], parent?: { op: string; node: string }): void {
  const opset = opsets[''] ?? 1;
  (g.node ?? []).forEach((n, i) => {
    const op = n.opType ?? '';
    const domain = domainOf(n);
    const node = prefix + (n.name || `${op}_${i}`);
    for (const a of n.attribute ?? []) for (const sub of a.g ? [a.g] : a.graphs ?? []) collectUnsupported(sub, opsets, `${node}/`, unsupported, { op, node });
    const version = domain === '' ? opset : opsets[domain] ?? 0;
    const where = parent ? `inside the ${parent.op} body of node '${parent.node}'` : '';
    const add = (why?: string) => {
      const reason = [why, where].filter(Boolean).join('; ');
      unsupported.push({ op, domain, opset: version, node, ...(reason ? { reason } : {}) });
    };
    if (!importsDomain(domain)) return add(`domain '${domain}' is not supported`);
    if (domain === '' && (opset < MIN_OPSET || opset > MAX_OPSET)) return add(`opset ${opset} is outside ${MIN_OPSET}-${MAX_OPSET}`);
    const adapter = findAdapter(op, version, domain);
    if (!adapter) {
      const elsewhere = listSupportedOps().filter((r) => r.op === op && r.domain === (domain || 'ai.onnx')).map((r) => (r.opsets[0] === r.opsets[1] ? `${r.opsets[0]}` : `${r.opsets[0]}-${r.opsets[1]}`));
      return add(elsewhere.length ? `EdgeKit maps ${op} at opset(s) ${elsewhere.join(', ')} only` : undefined);
    }
    const why = adapter.check?.(n, version);
    if (why) add(why);
  });
}

/**
 * Rewrites every node into IR (newest-opset) form: Constant nodes become initializers, every other node goes through
 * its op adapter, which may add constants and helper nodes with fresh names. `opsets` gives the versions the file
 * imports of the other domains (their nodes passed checkSupport).
 */
export function adaptNodes(graph: Graph, opset: number, declared: DeclaredTypes, opsets: Record<string, number> = {}): Graph {
  const used = new Set<string>([...graph.inputs.map((i) => i.name), ...Object.keys(graph.initializers), ...graph.nodes.flatMap((n) => [...n.inputs, ...n.outputs])]);
  const initializers = { ...graph.initializers };
  const fresh = (hint: string) => {
    let name = hint;
    for (let i = 1; used.has(name); i++) name = `${hint}_${i}`;
    used.add(name);
    return name;
  };
  // Types of values seen so far: graph inputs, then each rewritten node's outputs as its schema infers them (ONNX
  // files list nodes in topological order), so adapters know the rank of intermediates the file does not declare.
  const known = new Map<string, InferInput>(graph.inputs.map((i) => [i.name, { dtype: i.dtype, shape: i.shape }]));
  const typeOf = (v: string): InferInput | undefined => {
    const t = initializers[v];
    return t ? { dtype: t.dtype, shape: t.shape, value: t } : known.get(v);
  };
  const ctx: AdapterContext = {
    opset,
    constant: (hint, t) => {
      const name = fresh(hint);
      initializers[name] = t;
      return name;
    },
    fresh,
    rankOf: (v) => typeOf(v)?.shape?.length ?? declared.get(v)?.rank,
    dtypeOf: (v) => typeOf(v)?.dtype ?? declared.get(v)?.dtype,
    constantValue: (v) => initializers[v],
    // Control-flow bodies: the same rewrite, then validated and sorted like the main graph (validate.ts).
    subgraph: (body) => validateAndSort(adaptNodes(body, opset, declared, opsets)),
  };
  const nodes: Node[] = [];
  const unsupported: UnsupportedNode[] = [];
  for (const n of graph.nodes) {
    if (n.op === 'Constant' && n.domain === '') {
      if (n.outputs[0]) initializers[n.outputs[0]] = constantValue(n);
      continue;
    }
    const version = n.domain === '' ? opset : opsets[n.domain] ?? 0;
    const adapter = findAdapter(n.op, version, n.domain)!;
    try {
      const mapped = adapter.map ? adapter.map(n, ctx) : [n];
      for (const m of mapped) {
        checkArity(m, n);
        inferInto(known, m, typeOf);
      }
      nodes.push(...mapped);
    } catch (e) {
      if (!(e instanceof AdapterUnsupported)) throw e;
      unsupported.push({ op: n.op, domain: n.domain, opset: version, node: n.name, reason: e.message });
    }
  }
  if (unsupported.length) throw new UnsupportedOpError(unsupported);
  return { ...graph, nodes, initializers };
}

/**
 * Best effort: records the output types of `n` when its schema can infer them from what is known. Failures are
 * left to the real shape inference after validation, which reports them with the graph validated and sorted.
 */
function inferInto(known: Map<string, InferInput>, n: Node, typeOf: (v: string) => InferInput | undefined): void {
  const schema = OP_SCHEMAS[n.op];
  if (!schema) return;
  const inputs = n.inputs.map((v) => (v ? typeOf(v) : undefined));
  if (inputs.some((t, i) => n.inputs[i] && !t)) return;
  let k = 0;
  try {
    schema.infer({ node: n, inputs, symbol: (hint) => `${hint || n.name}_import${k++}` }).forEach((o, i) => {
      if (n.outputs[i]) known.set(n.outputs[i]!, { dtype: o.dtype, shape: o.shape });
    });
  } catch {
    // not knowable yet (or invalid): adapters fall back to what the file declares
  }
}

/**
 * Input/output counts against the IR schema, so a malformed node (a Conv with two outputs, a Gemm without B) is
 * reported here rather than deep inside shape inference or a kernel. `from` is the file's node, for the message.
 */
/**
 * IR ops whose last input is EdgeKit's own (the WebGPU lowering's `count` of NonZero/Compress/Unique): a file
 * may not supply it, so a file's node gets ONNX's input count. Found by the importer fuzzer (tests/fuzz/corpus).
 */
const ONNX_MAX_INPUTS: Readonly<Record<string, number>> = { NonZero: 1, Compress: 2, Unique: 1 };

function checkArity(n: Node, from: Node): void {
  const schema = OP_SCHEMAS[n.op];
  if (!schema) return;
  const [minIn, irMaxIn] = schema.inputs;
  const maxIn = n.op === from.op && n.domain === '' && ONNX_MAX_INPUTS[n.op] !== undefined ? ONNX_MAX_INPUTS[n.op]! : irMaxIn;
  const [minOut, maxOut] = schema.outputs;
  const where = `Node '${from.name}' (${from.op})`;
  const range = (lo: number, hi: number) => (lo === hi ? `${lo}` : hi === Infinity ? `at least ${lo}` : `${lo} to ${hi}`);
  if (n.inputs.length > maxIn || n.inputs.slice(0, minIn).filter(Boolean).length < minIn) {
    throw new InvalidGraphError(`${where} has inputs [${n.inputs.map((v) => `'${v}'`).join(', ')}]; ${n.op} takes ${range(minIn, maxIn)} (the first ${minIn} required).`, { node: from.name });
  }
  if (n.outputs.length > maxOut || n.outputs.slice(0, minOut).filter(Boolean).length < minOut) {
    throw new InvalidGraphError(`${where} has ${n.outputs.length} output(s); ${n.op} produces ${range(minOut, maxOut)}.`, { node: from.name });
  }
}

/** Constant-1..21: exactly one of value, sparse_value (densified on decode), value_float(s), value_int(s), value_string(s). */
function constantValue(n: Node): HostTensor {
  const t = attrTensor(n, 'value') ?? attrTensor(n, 'sparse_value');
  if (t) return t;
  const a = n.attrs;
  if (a.value_float?.type === 'float') return tensorFromNumbers('float32', [], [a.value_float.value]);
  if (a.value_floats?.type === 'floats') return tensorFromNumbers('float32', [a.value_floats.value.length], a.value_floats.value);
  if (a.value_int?.type === 'int') return tensorFromNumbers('int64', [], [a.value_int.value]);
  if (a.value_ints?.type === 'ints') return tensorFromNumbers('int64', [a.value_ints.value.length], a.value_ints.value);
  if (a.value_string?.type === 'string') return { dtype: 'string', shape: [], data: [a.value_string.value] };
  if (a.value_strings?.type === 'strings') return { dtype: 'string', shape: [a.value_strings.value.length], data: [...a.value_strings.value] };
  throw new ModelFormatError(`Constant node '${n.name}' has no supported value attribute (value, sparse_value, value_float(s), value_int(s), value_string(s)).`, { node: n.name });
}
