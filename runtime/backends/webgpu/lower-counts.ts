import type { Graph, Node } from '../../ir/graph.js';
import { inferShapes } from '../../ir/infer.js';
import { tensorFromNumbers } from '../../ir/tensor.js';

/**
 * Gives every NonZero, Compress and Unique node the `count` input its WebGPU kernel needs (ir/ops/data-dependent.ts),
 * computed on the GPU from the same data: count = ReduceSum(Cast(x != 0, int64)) over every element (NonZero),
 * or over the condition (Compress), or of UniqueFirst's first-occurrence flags (Unique). The count is then a value a node reads on the host, so the staged plan
 * (staged-plan.ts) runs everything up to it, reads the one int64 back, and plans the node with its exact size.
 * NonMaxSuppression cannot be counted without being run: it becomes NonMaxSuppressionPadded (rows in an
 * upper-bound buffer, and their count) followed by a Slice to the count, which is read back the same way.
 * Returns the graph unchanged when there is nothing to lower.
 */
export function lowerCounts(g: Graph): Graph {
  const targets = g.nodes.filter(
    (n) => n.domain === '' && ((n.op === 'NonZero' && n.inputs.length < 2) || (n.op === 'Compress' && n.inputs.length < 3) || (n.op === 'Unique' && n.inputs.length < 2) || n.op === 'NonMaxSuppression'),
  );
  if (!targets.length) return g;
  const initializers = { ...g.initializers };
  const nodes: Node[] = [];
  for (const n of g.nodes) {
    if (!targets.includes(n)) {
      nodes.push(n);
      continue;
    }
    if (n.op === 'NonMaxSuppression') {
      // Selected rows into an upper-bound buffer plus their count, then a Slice to the count (read back).
      const p = `${n.name || n.outputs[0]}/edgekit_nms`;
      initializers[`${p}/zero`] = tensorFromNumbers('int64', [1], [0]);
      nodes.push({ ...n, name: `${p}/padded`, op: 'NonMaxSuppressionPadded', outputs: [`${p}/padded`, `${p}_count`] });
      nodes.push({ name: `${p}/count1`, op: 'Unsqueeze', domain: '', inputs: [`${p}_count`, `${p}/zero`], outputs: [`${p}/count1`], attrs: {} });
      nodes.push({ name: n.name, op: 'Slice', domain: '', inputs: [`${p}/padded`, `${p}/zero`, `${p}/count1`, `${p}/zero`], outputs: [n.outputs[0]!], attrs: {} });
      continue;
    }
    if (n.op === 'Unique') {
      // U = the number of first occurrences (UniqueFirst flags, computed on the GPU), read back before Unique plans.
      const p = `${n.name || n.outputs[0]}/edgekit_count`;
      const flags = `${p}/first`;
      nodes.push({ name: flags, op: 'UniqueFirst', domain: '', inputs: [n.inputs[0]!], outputs: [flags], attrs: n.attrs.axis ? { axis: n.attrs.axis } : {} });
      nodes.push({ name: p, op: 'ReduceSum', domain: '', inputs: [flags], outputs: [p], attrs: { keepdims: { type: 'int', value: 0 } } });
      nodes.push({ ...n, inputs: [n.inputs[0]!, p] });
      continue;
    }
    const src = n.inputs[n.op === 'NonZero' ? 0 : 1]!;
    const dtype = g.values[src]!.dtype;
    const p = `${n.name || n.outputs[0]}/edgekit_count`;
    const emit = (op: string, inputs: string[], out: string, attrs: Node['attrs'] = {}) => {
      nodes.push({ name: out, op, domain: '', inputs, outputs: [out], attrs });
      return out;
    };
    let flags = src;
    if (dtype !== 'bool') {
      initializers[`${p}/zero`] = tensorFromNumbers(dtype, [], [0]);
      flags = emit('Not', [emit('Equal', [src, `${p}/zero`], `${p}/is_zero`)], `${p}/flags`);
    }
    const ones = emit('Cast', [flags], `${p}/ones`, { to: { type: 'int', value: 7 } }); // 7: TensorProto.INT64
    const count = emit('ReduceSum', [ones], p, { keepdims: { type: 'int', value: 0 } });
    nodes.push({ ...n, inputs: [...n.inputs, count] });
  }
  return inferShapes({ ...g, nodes, initializers });
}
