import { attrFloat, type Graph, type Node } from '../graph.js';
import { tensorFromNumbers, tensorToNumbers, type HostTensor } from '../tensor.js';
import { useCounts } from './rewire.js';

/**
 * Folds an inference BatchNormalization into the Conv that feeds it (the Conv output has no other reader, all
 * parameters are float32 constants):  y = s * (conv(x, W) + b - mean) / sqrt(var + eps) + beta
 *   => W'[o] = W[o] * k[o],  b'[o] = (b[o] - mean[o]) * k[o] + beta[o],  with k = s / sqrt(var + eps).
 * Computed in float64, stored float32.
 */
export function foldConvBatchNorm(g: Graph): number {
  const producer = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) if (o) producer.set(o, n);
  const uses = useCounts(g);
  const removed = new Set<Node>();
  let folded = 0;
  for (const bn of g.nodes) {
    if (bn.op !== 'BatchNormalization' || bn.domain !== '' || bn.outputs.length > 1 && bn.outputs.slice(1).some(Boolean)) continue;
    if (attrFloat(bn, 'training_mode', 0)) continue;
    const conv = producer.get(bn.inputs[0]!);
    if (!conv || conv.op !== 'Conv' || conv.domain !== '' || uses.get(conv.outputs[0]!) !== 1) continue;
    const params = bn.inputs.slice(1, 5).map((v) => g.initializers[v]);
    const w = g.initializers[conv.inputs[1]!];
    const b = conv.inputs[2] ? g.initializers[conv.inputs[2]] : undefined;
    if (!w || params.some((p) => !p || p.dtype !== 'float32') || w.dtype !== 'float32' || (conv.inputs[2] && !b)) continue;
    const [scale, beta, mean, variance] = params.map((p) => tensorToNumbers(p!)) as Float64Array[];
    const eps = attrFloat(bn, 'epsilon', 1e-5);
    const cout = w.shape[0]!;
    if (scale!.length !== cout) continue;
    const per = w.data.length / cout;
    const wv = tensorToNumbers(w);
    const bv = b ? tensorToNumbers(b) : new Float64Array(cout);
    const newW = new Float64Array(wv.length);
    const newB = new Float64Array(cout);
    for (let o = 0; o < cout; o++) {
      const k = scale![o]! / Math.sqrt(variance![o]! + eps);
      for (let i = 0; i < per; i++) newW[o * per + i] = wv[o * per + i]! * k;
      newB[o] = (bv[o]! - mean![o]!) * k + beta![o]!;
    }
    const wName = freshName(g, `${conv.name}_W_bnfolded`);
    const bName = freshName(g, `${conv.name}_B_bnfolded`);
    g.initializers[wName] = tensorFromNumbers('float32', [...w.shape], newW) as HostTensor;
    g.initializers[bName] = tensorFromNumbers('float32', [cout], newB);
    conv.inputs = [conv.inputs[0]!, wName, bName];
    conv.outputs = [bn.outputs[0]!];
    removed.add(bn);
    folded++;
  }
  g.nodes = g.nodes.filter((n) => !removed.has(n));
  return folded;
}

function freshName(g: Graph, base: string): string {
  let name = base;
  for (let i = 1; name in g.initializers || name in g.values; i++) name = `${base}_${i}`;
  return name;
}
