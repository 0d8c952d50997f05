import type { Node } from '../../../runtime/ir/graph.js';
import { COM_MICROSOFT, msOp } from '../../../runtime/ir/ops/contrib.js';
import type { PNode } from '../proto.js';
import { MAX_OPSET, MIN_OPSET } from './direct.js';
import type { AdapterContext, OpAdapter } from './adapter.js';
import { AdapterUnsupported, helperNode } from './helpers.js';

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

/**
 * GemmQuickGelu (onnxruntime's WebGPU contrib kernel; onnxruntime-node 1.30 has neither a schema nor a CPU kernel
 * for it, and its contrib-op documentation has no entry): Y = QuickGelu_alpha(X @ W [+ bias]), X [.., K], W [K, N],
 * the optional bias [N], alpha QuickGelu's (default 1.702), as GemmFastGelu is FastGelu(X @ W + bias). It imports as
 * those nodes (MatMul, Add, com.microsoft.QuickGelu), which the CPU backend runs as they are and the WebGPU plan folds
 * back into one matmul with bias and QuickGelu in its epilogue (webgpu/fusion.ts). Any other attribute (a Gemm-style
 * transA/transB/beta) is refused at load: without a published schema its meaning would be a guess.
 */
function gemmQuickGelu(n: Node, ctx: AdapterContext): Node[] {
  const [x, w, bias] = n.inputs;
  const refuse = (why: string): never => {
    throw new AdapterUnsupported(`com.microsoft GemmQuickGelu (node '${n.name}'): ${why}`);
  };
  const [wRank, bRank] = [ctx.rankOf(w!), bias ? ctx.rankOf(bias) : undefined];
  if (wRank !== undefined && wRank !== 2) refuse(`W must be a [K, N] matrix, got rank ${wRank}`);
  if (bRank !== undefined && bRank !== 1) refuse(`bias must be a [N] vector, got rank ${bRank}`);
  const product = ctx.fresh(`${n.name}_matmul`);
  const nodes = [helperNode(n, 'matmul', 'MatMul', [x!, w!], [product])];
  let pre = product;
  if (bias) {
    pre = ctx.fresh(`${n.name}_bias`);
    nodes.push(helperNode(n, 'bias', 'Add', [product, bias], [pre]));
  }
  nodes.push({ name: n.name, op: msOp('QuickGelu'), domain: '', inputs: [pre], outputs: [...n.outputs], attrs: n.attrs.alpha ? { alpha: n.attrs.alpha } : {} });
  return nodes;
}

function checkGemmQuickGelu(n: PNode): string | undefined {
  const other = (n.attribute ?? []).map((a) => a.name ?? '').filter((name) => name !== 'alpha');
  if (other.length) return `GemmQuickGelu attribute${other.length > 1 ? 's' : ''} ${other.map((a) => `'${a}'`).join(', ')} not supported (only QuickGelu's 'alpha': onnxruntime publishes no schema for this op)`;
  if ((n.input ?? []).length < 2) return 'GemmQuickGelu needs X and W';
  return undefined;
}

export const COM_MICROSOFT_ADAPTERS: OpAdapter[] = [
  ...OPS.map((op) => renamed(op, 1, 1)),
  { op: 'GemmQuickGelu', since: 1, until: 1, targets: ['MatMul', 'Add', msOp('QuickGelu')], map: gemmQuickGelu, check: checkGemmQuickGelu },
];

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
