import { EdgeKitError, InternalError } from '../errors.js';
import type { Graph, ValueInfo } from './graph.js';
import { OP_SCHEMAS } from './ops/index.js';
import type { InferInput } from './ops/schema.js';

/**
 * Shape and dtype inference over a sorted graph. Fills `graph.values` for every value; symbolic dims flow through,
 * and dims that depend on runtime values get fresh symbols (`<node>_d<k>`). Errors name the node.
 */
export function inferShapes(g: Graph): Graph {
  const values: Record<string, ValueInfo> = {};
  for (const i of g.inputs) values[i.name] = { ...i, shape: i.shape ? [...i.shape] : undefined };
  for (const [k, t] of Object.entries(g.initializers)) values[k] = { name: k, dtype: t.dtype, shape: [...t.shape] };
  let counter = 0;
  for (const node of g.nodes) {
    const schema = OP_SCHEMAS[node.op];
    if (!schema || node.domain !== '') throw new InternalError(`No IR schema for ${node.domain}::${node.op} reached shape inference.`);
    const inputs: (InferInput | undefined)[] = node.inputs.map((v) => {
      if (v === '') return undefined;
      const info = values[v];
      if (!info) return undefined;
      const value = g.initializers[v];
      return { dtype: info.dtype, shape: info.shape, ...(value ? { value } : {}) };
    });
    let outs;
    try {
      outs = schema.infer({ node, inputs, symbol: (hint) => `${hint || node.name || node.op}_${counter++}` });
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
      values[name] = { name, dtype: o.dtype, shape: o.shape };
    });
  }
  return { ...g, values };
}
