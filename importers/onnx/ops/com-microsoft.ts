import { COM_MICROSOFT, msOp } from '../../../runtime/ir/ops/contrib.js';
import { MAX_OPSET, MIN_OPSET } from './direct.js';
import type { OpAdapter } from './adapter.js';

/**
 * onnxruntime's 'com.microsoft' domain (version 1): the transformer ops of runtime/ir/ops/contrib.ts keep their
 * inputs and attributes; the IR op name says the domain ('com.microsoft.Gelu') and the node moves into the IR's
 * default domain, as ops/preview-training.ts does. Attention, MultiHeadAttention and GroupQueryAttention are
 * mapped elsewhere.
 */
export { COM_MICROSOFT };

const OPS = [
  'Gelu', 'FastGelu', 'BiasGelu', 'QuickGelu', 'BiasAdd', 'BiasSplitGelu',
  'SkipLayerNormalization', 'SkipSimplifiedLayerNormalization', 'SimplifiedLayerNormalization', 'RotaryEmbedding',
];

const renamed = (op: string, since: number, until: number): OpAdapter => ({
  op,
  since,
  until,
  targets: [msOp(op)],
  map: (n) => [{ ...n, op: msOp(op), domain: '' }],
});

export const COM_MICROSOFT_ADAPTERS: OpAdapter[] = OPS.map((op) => renamed(op, 1, 1));

/**
 * onnxruntime registers SimplifiedLayerNormalization (version 1) in the default ONNX domain, and its transformer
 * fusions write it there; a default-domain node of that name maps onto the same IR op at any opset.
 */
export const COM_MICROSOFT_DEFAULT_DOMAIN_ADAPTERS: OpAdapter[] = [renamed('SimplifiedLayerNormalization', MIN_OPSET, MAX_OPSET)];

/**
 * The exporter's inverse: an IR op named by this domain ('com.microsoft.Gelu') as ONNX domain and op;
 * SimplifiedLayerNormalization goes back to the default domain, the only one onnxruntime registers it in.
 */
export function msDomainOp(irOp: string): { domain: string; op: string } | undefined {
  const prefix = `${COM_MICROSOFT}.`;
  if (!irOp.startsWith(prefix)) return undefined;
  const op = irOp.slice(prefix.length);
  return { domain: op === 'SimplifiedLayerNormalization' ? '' : COM_MICROSOFT, op };
}
