import { EdgeKitError, InternalError } from '../errors.js';
import type { Graph, ValueInfo } from '../ir/graph.js';
import { OP_SCHEMAS } from '../ir/ops/index.js';
import type { InferInput, OpSchema } from '../ir/ops/schema.js';
import { TRAIN_DOMAIN, TRAIN_SCHEMAS } from './ops/index.js';

/**
 * Shape and dtype inference for graphs that contain training ops: runtime/ir/infer.ts's walk, with the schema
 * chosen by domain (OP_SCHEMAS for '', TRAIN_SCHEMAS for 'edgekit.train'). It runs on every forward and backward
 * graph autodiff builds, so a gradient rule that wires shapes wrongly fails when the graph is built, naming the node,
 * instead of at the first step.
 */
export function schemaFor(domain: string, op: string): OpSchema | undefined {
  if (domain === '') return OP_SCHEMAS[op];
  if (domain === TRAIN_DOMAIN) return TRAIN_SCHEMAS[op];
  return undefined;
}

export function inferTrainShapes(g: Graph): Graph {
  const values: Record<string, ValueInfo> = {};
  for (const i of g.inputs) values[i.name] = { ...i, shape: i.shape ? [...i.shape] : undefined };
  for (const [k, t] of Object.entries(g.initializers)) values[k] = { name: k, dtype: t.dtype, shape: [...t.shape] };
  let counter = 0;
  for (const node of g.nodes) {
    const schema = schemaFor(node.domain, node.op);
    if (!schema) throw new InternalError(`No IR schema for ${node.domain || 'ai.onnx'}::${node.op} reached shape inference.`);
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
