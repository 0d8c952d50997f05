import { DTypeError, EdgeKitError, InternalError } from '../errors.js';
import type { Graph, ValueInfo } from './graph.js';
import { OP_SCHEMAS } from './ops/index.js';
import type { InferInput, InferredOutput } from './ops/schema.js';
import type { HostTensor } from './tensor.js';
import { describeKind, kindField } from './value.js';
import { NON_TENSOR_OPS } from './ops/sequences.js';

/**
 * Shape and dtype inference over a sorted graph. Fills `graph.values` for every value; symbolic dims flow through,
 * and dims that depend on runtime values get fresh symbols (`<node>_d<k>`). Errors name the node.
 * `outer` gives the types (and constant values) of the enclosing graphs' values a subgraph body reads
 * (`g.outerScope`); control-flow schemas infer their bodies through it, at any depth.
 */
export function inferShapes(g: Graph, outer?: (name: string) => InferInput | undefined): Graph {
  const values: Record<string, ValueInfo> = {};
  const outerConst: Record<string, HostTensor> = {};
  for (const name of g.outerScope ?? []) {
    const t = outer?.(name);
    if (!t) continue;
    values[name] = { name, dtype: t.dtype, shape: t.shape ? [...t.shape] : undefined, ...kindField(t.kind) };
    if (t.value) outerConst[name] = t.value;
  }
  for (const i of g.inputs) values[i.name] = { ...i, shape: i.shape ? [...i.shape] : undefined };
  for (const [k, t] of Object.entries(g.initializers)) values[k] = { name: k, dtype: t.dtype, shape: [...t.shape] };
  let counter = 0;
  const lookup = (v: string): InferInput | undefined => {
    const info = values[v];
    if (!info) return undefined;
    const value = g.initializers[v] ?? (v in g.initializers ? undefined : outerConst[v]);
    return { dtype: info.dtype, shape: info.shape, ...(value ? { value } : {}), ...kindField(info.kind) };
  };
  let current: Graph['nodes'][number] | undefined;
  let bodyKeys = new Map<Graph, string>();
  // A body sees this graph's values (and, through `outer`, the enclosing ones); its own names shadow them. The
  // node gets the body back with its inputs, outputs and values typed (a file may leave them out, and the exporter
  // writes them); its nodes are copies, so bodies shared with the graph this one was cloned from stay as they were.
  const inferBody = (body: Graph, inputs: InferInput[]): InferredOutput[] => {
    const typed: Graph = {
      ...body,
      // A body input's kind (sequence, optional: ir/value.ts) comes from the node's input, else from the body.
      inputs: body.inputs.map((i, k) => ({ name: i.name, dtype: inputs[k]?.dtype ?? i.dtype, shape: inputs[k] ? inputs[k]!.shape : i.shape, ...kindField(inputs[k]?.kind ?? i.kind) })),
      nodes: body.nodes.map((n) => ({ ...n, attrs: { ...n.attrs } })),
    };
    const scope = (name: string) => lookup(name) ?? outer?.(name);
    const inferred = inferShapes(typed, scope);
    const outs = body.outputs.map((o) => {
      const v = inferred.values[o.name] ?? scope(o.name);
      if (!v) throw new InternalError(`Body '${body.name}' output '${o.name}' has no inferred type.`);
      return { dtype: v.dtype, shape: v.shape, ...kindField(v.kind) };
    });
    const key = bodyKeys.get(body);
    if (current && key) current.attrs[key] = { type: 'graph', value: { ...inferred, outputs: body.outputs.map((o, i) => ({ name: o.name, ...outs[i]! })) } };
    return outs;
  };
  for (const node of g.nodes) {
    current = node;
    bodyKeys = new Map(Object.entries(node.attrs).flatMap(([k, a]) => (a.type === 'graph' ? [[a.value, k] as const] : [])));
    const schema = OP_SCHEMAS[node.op];
    if (!schema || node.domain !== '') throw new InternalError(`No IR schema for ${node.domain}::${node.op} reached shape inference.`);
    const inputs: (InferInput | undefined)[] = node.inputs.map((v) => (v === '' ? undefined : lookup(v)));
    // Sequences and optionals (ir/value.ts) reach only the ops made for them.
    const odd = NON_TENSOR_OPS.has(node.op) ? -1 : inputs.findIndex((x) => x?.kind && x.kind !== 'tensor');
    if (odd >= 0) {
      const x = inputs[odd]!;
      throw new DTypeError(`${node.op} node '${node.name}': input ${odd} ('${node.inputs[odd]}') is ${describeKind(x.kind, x.dtype)}; ${node.op} takes tensors.`, { node: node.name, op: node.op });
    }
    let outs;
    try {
      outs = schema.infer({ node, inputs, symbol: (hint) => `${hint || node.name || node.op}_${counter++}`, inferBody });
    } catch (e) {
      if (e instanceof EdgeKitError) {
        // Same error class and code, with the node named so the user can find it in the model.
        e.message = `${node.op} node '${node.name}': ${e.message}`;
        Object.assign(e.details, { node: node.name, op: node.op });
      }
      throw e;
    }
    node.outputs.forEach((name, i) => {
      if (!name) return;
      const o = outs[i];
      if (!o) throw new InternalError(`${node.op} inference returned no type for output ${i} of '${node.name}'.`);
      values[name] = { name, dtype: o.dtype, shape: o.shape, ...kindField(o.kind) };
    });
  }
  return { ...g, values };
}
