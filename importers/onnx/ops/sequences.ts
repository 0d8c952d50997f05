import type { Node } from '../../../runtime/ir/graph.js';
import { sequenceMapBody } from '../../../runtime/ir/ops/sequences.js';
import type { AdapterContext, OpAdapter } from './adapter.js';
import { MAX_OPSET } from './direct.js';
import { trimInputs } from './helpers.js';

/**
 * Sequence ops (11+), SequenceMap (17+) and the optional ops (15+). Their IR form is the newest one
 * (ir/ops/sequences.ts): SequenceMap's body is rewritten like a Loop body, trailing omitted inputs are dropped.
 * OptionalHasElement/OptionalGetElement-15 are the -18 forms restricted to optional inputs, so they map as they are.
 */

const direct = (op: string, since: number): OpAdapter => ({ op, since, until: MAX_OPSET, map: (n) => [{ ...n, inputs: trimInputs(n.inputs) }], sameForm: true });

function sequenceMap(n: Node, ctx: AdapterContext): Node[] {
  const a = n.attrs.body;
  const out: Node = { ...n, attrs: { ...n.attrs, ...(a?.type === 'graph' ? { body: { type: 'graph', value: ctx.subgraph(a.value) } } : {}) } };
  sequenceMapBody(out); // the body's signature against the node's
  return [out];
}

export const SEQUENCE_ADAPTERS: OpAdapter[] = [
  ...['SequenceEmpty', 'SequenceConstruct', 'SequenceInsert', 'SequenceAt', 'SequenceErase', 'SequenceLength', 'SplitToSequence', 'ConcatFromSequence'].map((op) => direct(op, 11)),
  { op: 'SequenceMap', since: 17, until: MAX_OPSET, map: sequenceMap, sameForm: true },
  ...['Optional', 'OptionalHasElement', 'OptionalGetElement'].map((op) => direct(op, 15)),
];
