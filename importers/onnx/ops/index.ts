import { OP_SCHEMAS } from '../../../runtime/ir/ops/index.js';
import type { OpAdapter } from './adapter.js';
import { DIRECT_ADAPTERS, MAX_OPSET, MIN_OPSET } from './direct.js';
import { INPUT_ADAPTERS } from './legacy-inputs.js';
import { NN_ADAPTERS } from './legacy-nn.js';
import { RESIZE_ADAPTERS } from './legacy-resize.js';
import { RNN_ADAPTERS } from './rnn.js';
import { V1_ADAPTERS } from './legacy-v1.js';
import { CONTROL_FLOW_ADAPTERS } from './control-flow.js';
import { DEFAULT_DOMAIN_ADAPTERS } from './default-domain.js';
import { SEQUENCE_ADAPTERS } from './sequences.js';
import { PREVIEW_TRAINING, PREVIEW_TRAINING_ADAPTERS } from './preview-training.js';
import { TEXT_ADAPTERS } from './text.js';
import { RANDOM_ADAPTERS } from './random.js';
import { COM_MICROSOFT, COM_MICROSOFT_ADAPTERS, COM_MICROSOFT_DEFAULT_DOMAIN_ADAPTERS } from './com-microsoft.js';
import { QUANTIZE_ADAPTERS } from './quantize.js';
import { ATTENTION_ADAPTERS, MS_ATTENTION_ADAPTERS } from './attention.js';
import { COM_MICROSOFT_QUANT_ADAPTERS } from './com-microsoft-quant.js';

export type { AdapterContext, OpAdapter } from './adapter.js';
export { AdapterUnsupported } from './helpers.js';
export { MAX_OPSET, MIN_OPSET } from './direct.js';

/** Every adapter: ops already in IR form over their range, and rewrites of older versions. */
const ALL: OpAdapter[] = [
  // Constant-1..21 nodes become initializers (import.ts), so they emit no IR op.
  { op: 'Constant', since: MIN_OPSET, until: MAX_OPSET, targets: [] },
  ...DIRECT_ADAPTERS, ...INPUT_ADAPTERS, ...NN_ADAPTERS, ...RESIZE_ADAPTERS, ...V1_ADAPTERS, ...RNN_ADAPTERS,
  ...CONTROL_FLOW_ADAPTERS,
  ...TEXT_ADAPTERS,
  ...RANDOM_ADAPTERS,
  ...DEFAULT_DOMAIN_ADAPTERS,
  ...SEQUENCE_ADAPTERS,
  ...COM_MICROSOFT_DEFAULT_DOMAIN_ADAPTERS,
  ...QUANTIZE_ADAPTERS,
  ...ATTENTION_ADAPTERS,
];

/** An adapter is usable only when every IR op it emits exists: the importer never claims an op the IR lacks. */
function usable(a: OpAdapter): boolean {
  return (a.targets ?? [a.op]).every((t) => t in OP_SCHEMAS);
}

/** Adapters of the other ONNX domains EdgeKit imports, by domain; `since`/`until` are versions of that domain. */
const DOMAINS: Readonly<Record<string, OpAdapter[]>> = { [PREVIEW_TRAINING]: PREVIEW_TRAINING_ADAPTERS, [COM_MICROSOFT]: [...COM_MICROSOFT_ADAPTERS, ...COM_MICROSOFT_QUANT_ADAPTERS, ...MS_ATTENTION_ADAPTERS] };

/** Whether EdgeKit maps any op of `domain` ('' is the default domain). */
export function importsDomain(domain: string): boolean {
  return domain === '' || Object.hasOwn(DOMAINS, domain);
}

/**
 * The adapter for an ONNX op at a model opset (the version the file imports of the op's domain; default domain
 * unless `domain` says otherwise), or undefined when EdgeKit cannot import it.
 */
export function findAdapter(op: string, opset: number, domain = ''): OpAdapter | undefined {
  const list = domain === '' ? ALL : importsDomain(domain) ? DOMAINS[domain]! : [];
  return list.find((a) => a.op === op && a.since <= opset && opset <= a.until && usable(a));
}

/**
 * One row per op and opset range the importer maps (an op rewritten differently for older versions has several
 * rows, e.g. Squeeze 7–12 and 13–21), sorted by op then range, for docs/ops.md.
 */
export function listSupportedOps(): { op: string; domain: string; opsets: [number, number] }[] {
  const rows = (domain: string, list: OpAdapter[]) => list.filter(usable).map((a) => ({ op: a.op, domain, opsets: [a.since, a.until] as [number, number] }));
  return [...rows('ai.onnx', ALL), ...Object.entries(DOMAINS).flatMap(([d, list]) => rows(d, list))]
    .sort((x, y) => x.op.localeCompare(y.op) || x.opsets[0] - y.opsets[0]);
}

/** Whether an IR (newest-form) node of `op` is also valid at `opset`, for exporting to an older opset. */
export function irFormValidAt(op: string, opset: number): boolean {
  const a = findAdapter(op, opset);
  return !!a && (!a.map || !!a.sameForm);
}
