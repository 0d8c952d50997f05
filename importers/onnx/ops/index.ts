import { OP_SCHEMAS } from '../../../runtime/ir/ops/index.js';
import type { OpAdapter } from './adapter.js';
import { DIRECT_ADAPTERS } from './direct.js';
import { LEGACY_ADAPTERS } from './legacy.js';

export type { AdapterContext, OpAdapter } from './adapter.js';
export { AdapterUnsupported } from './legacy.js';
export { MAX_OPSET, MIN_OPSET } from './direct.js';

const ALL: OpAdapter[] = [...DIRECT_ADAPTERS, ...LEGACY_ADAPTERS];

/** An adapter is usable only when every IR op it emits exists: the importer never claims an op the IR lacks. */
function usable(a: OpAdapter): boolean {
  return (a.targets ?? [a.op]).every((t) => t in OP_SCHEMAS);
}

/** The adapter for an ONNX op at a model opset (default domain), or undefined when EdgeKit cannot import it. */
export function findAdapter(op: string, opset: number): OpAdapter | undefined {
  return ALL.find((a) => a.op === op && a.since <= opset && opset <= a.until && usable(a));
}

/** One row per op and opset range the importer maps (merged across adjacent adapters), for docs/ops.md. */
export function listSupportedOps(): { op: string; domain: string; opsets: [number, number] }[] {
  const ranges = new Map<string, [number, number]>();
  for (const a of ALL) {
    if (!usable(a)) continue;
    const r = ranges.get(a.op);
    ranges.set(a.op, r ? [Math.min(r[0], a.since), Math.max(r[1], a.until)] : [a.since, a.until]);
  }
  return [...ranges.entries()].sort(([x], [y]) => x.localeCompare(y)).map(([op, opsets]) => ({ op, domain: 'ai.onnx', opsets }));
}
