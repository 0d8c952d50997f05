import { attrInts, type Graph, type Node } from '../../../runtime/ir/graph.js';
import { checkBodySignature } from '../../../runtime/ir/ops/control-flow.js';
import type { AdapterContext, OpAdapter } from './adapter.js';
import { without } from './helpers.js';
import { MAX_OPSET } from './direct.js';

/**
 * If-1..21, Loop-1..21, Scan-8..21. The node keeps its form (the versions differ only in the types they allow: the
 * IR has tensors only); its bodies are rewritten into IR form like the main graph (AdapterContext.subgraph) and
 * checked against the node's signature. Scan-8 (a leading batch axis, optional sequence_lens) becomes a Scan over
 * the batch whose body is the Scan-9 form over the sequence.
 */

const BODIES = ['then_branch', 'else_branch', 'body'];

function adaptBodies(n: Node, ctx: AdapterContext): Node {
  const attrs = { ...n.attrs };
  for (const k of BODIES) {
    const a = attrs[k];
    if (a?.type === 'graph') attrs[k] = { type: 'graph', value: ctx.subgraph(a.value) };
  }
  const out = { ...n, attrs };
  checkBodySignature(out);
  return out;
}

/**
 * Scan-8: inputs (sequence_lens, N states [B, ...], M scan inputs [B, T, ...]); the body sees one batch entry.
 *   outer = Scan-9 over axis 0 of all N+M inputs (no state), body: inner = Scan-9 (N states, M scans, directions)
 * so the outer scan outputs stack the per-batch final states [B, ...] and scan outputs [B, T, ...], as Scan-8 does.
 */
function scan8(n: Node, ctx: AdapterContext): Node[] {
  const inner = adaptBodies({ ...n, inputs: n.inputs.slice(1), attrs: without(n, 'directions') }, ctx);
  const body = (inner.attrs.body as { value: Graph }).value;
  const ins = inner.inputs.map((_, i) => ctx.fresh(`${n.name}_batch_in${i}`));
  const outs = n.outputs.map((_, i) => ctx.fresh(`${n.name}_batch_out${i}`));
  const directions = attrInts(n, 'directions');
  const innerNode: Node = {
    name: `${n.name}_per_batch`,
    op: 'Scan',
    domain: '',
    inputs: ins,
    outputs: outs,
    attrs: { ...inner.attrs, ...(directions ? { scan_input_directions: { type: 'ints', value: directions } } : {}) },
  };
  checkBodySignature(innerNode);
  const outerBody: Graph = {
    name: `${n.name}_batch`,
    inputs: ins.map((name, i) => ({ name, dtype: ctx.dtypeOf(inner.inputs[i]!) ?? 'float32' })),
    outputs: outs.map((name) => ({ name, dtype: 'float32' })),
    initializers: {},
    nodes: [innerNode],
    values: {},
    outerScope: [...(body.outerScope ?? [])],
  };
  const outer: Node = {
    name: n.name,
    op: 'Scan',
    domain: '',
    inputs: inner.inputs,
    outputs: n.outputs,
    attrs: { body: { type: 'graph', value: outerBody }, num_scan_inputs: { type: 'int', value: inner.inputs.length } },
  };
  checkBodySignature(outer);
  return [outer];
}

export const CONTROL_FLOW_ADAPTERS: OpAdapter[] = [
  { op: 'If', since: 1, until: MAX_OPSET, map: (n, ctx) => [adaptBodies(n, ctx)], sameForm: true },
  { op: 'Loop', since: 1, until: MAX_OPSET, map: (n, ctx) => [adaptBodies(n, ctx)], sameForm: true },
  { op: 'Scan', since: 9, until: MAX_OPSET, map: (n, ctx) => [adaptBodies(n, ctx)], sameForm: true },
  {
    op: 'Scan',
    since: 8,
    until: 8,
    map: scan8,
    check: (n) => (n.input?.[0] ? 'Scan-8 with sequence_lens (per-batch sequence lengths) is not supported; re-export with opset 9 or later' : undefined),
  },
];
