import { optimizerOp, PREVIEW_TRAINING, type OptimizerKind } from '../../../runtime/ir/ops/optimizers.js';
import type { OpAdapter } from './adapter.js';

/**
 * The 'ai.onnx.preview.training' domain (version 1): Adagrad, Momentum and Adam keep their inputs and attributes;
 * the IR op name says the domain (runtime/ir/ops/optimizers.ts), so the node moves into the IR's default domain.
 * Gradient (a graph-level autodiff request) has no IR form.
 */
export { PREVIEW_TRAINING };

const optimizer = (kind: OptimizerKind): OpAdapter => ({
  op: kind,
  since: 1,
  until: 1,
  targets: [optimizerOp(kind)],
  map: (n) => [{ ...n, op: optimizerOp(kind), domain: '' }],
});

export const PREVIEW_TRAINING_ADAPTERS: OpAdapter[] = [optimizer('Adagrad'), optimizer('Momentum'), optimizer('Adam')];

/** The exporter's inverse: an IR op named by its domain ('ai.onnx.preview.training.Adam') as ONNX domain and op. */
export function onnxDomainOp(irOp: string): { domain: string; op: string } | undefined {
  const prefix = `${PREVIEW_TRAINING}.`;
  return irOp.startsWith(prefix) ? { domain: PREVIEW_TRAINING, op: irOp.slice(prefix.length) } : undefined;
}
