import { attrInt, type Node } from '../../../runtime/ir/graph.js';
import { sequenceMapBody } from '../../../runtime/ir/ops/sequences.js';
import { dtypeFromOnnx } from '../tensor.js';
import type { AdapterContext, OpAdapter } from './adapter.js';
import { MAX_OPSET } from './direct.js';
import { trimInputs } from './helpers.js';

/**
 * Sequence ops (11+), SequenceMap (17+) and the optional ops (15+). Their IR form is the newest one
 * (ir/ops/sequences.ts): SequenceEmpty's `dtype` becomes an IR dtype name, SequenceMap's body is rewritten like a
 * Loop body, trailing omitted inputs are dropped. OptionalHasElement/OptionalGetElement-15 are the -18 forms
 * restricted to optional inputs, so they map as they are.
 */

const direct = (op: string, since: number): OpAdapter => ({ op, since, until: MAX_OPSET, map: (n) => [{ ...n, inputs: trimInputs(n.inputs) }], sameForm: true });

function sequenceEmpty(n: Node): Node[] {
  const code = attrInt(n, 'dtype');
  const dtype = code === undefined ? 'float32' : dtypeFromOnnx(code, `SequenceEmpty node '${n.name}' dtype`);
  return [{ ...n, attrs: { dtype: { type: 'string', value: dtype } } }];
}

function sequenceMap(n: Node, ctx: AdapterContext): Node[] {
  const a = n.attrs.body;
  const out: Node = { ...n, attrs: { ...n.attrs, ...(a?.type === 'graph' ? { body: { type: 'graph', value: ctx.subgraph(a.value) } } : {}) } };
  sequenceMapBody(out); // the body's signature against the node's
  return [out];
}

export const SEQUENCE_ADAPTERS: OpAdapter[] = [
  { op: 'SequenceEmpty', since: 11, until: MAX_OPSET, map: sequenceEmpty },
  ...['SequenceConstruct', 'SequenceInsert', 'SequenceAt', 'SequenceErase', 'SequenceLength', 'SplitToSequence', 'ConcatFromSequence'].map((op) => direct(op, 11)),
  { op: 'SequenceMap', since: 17, until: MAX_OPSET, map: sequenceMap },
  ...['Optional', 'OptionalHasElement', 'OptionalGetElement'].map((op) => direct(op, 15)),
];
