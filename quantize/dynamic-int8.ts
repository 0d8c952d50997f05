import { attrFloat, attrInt, type Graph, type Node } from '../runtime/ir/graph.js';
import { hostTensor, type HostTensor } from '../runtime/ir/tensor.js';
import { quantizeWeightInt8 } from './codecs.js';
import { fresh, GraphEditor } from './editor.js';
import type { ResolvedOptions } from './options.js';
import { isFloat32, selectNodes, weightInput, type KeptNode } from './plan.js';
import type { LayerPair } from './report.js';

/**
 * Dynamic int8 (no calibration): weights are int8 in the file, activations are quantized at run time. Written as
 * the default-domain ops onnxruntime's dynamic quantizer emits and every runtime loads (onnxruntime-node included):
 *   x → DynamicQuantizeLinear → (x_q uint8, x_scale, x_zp)
 *   MatMulInteger(x_q, W_q int8 [K, N], x_zp) → int32 → Cast float → × (x_scale · w_scale[N]) (+ bias)
 * for MatMul and Gemm (transA = 0, alpha = beta = 1) with a constant 2-D float32 weight. Conv stays float in this
 * mode (ConvInteger has no per-channel weight scale; use the static 'int8' mode for CNNs). The weight has no zero
 * point (symmetric, 0), so MatMulInteger's b_zero_point is left out.
 */
export function rewriteDynamic(src: Graph, opts: ResolvedOptions): { graph: Graph; layers: LayerPair[]; kept: KeptNode[] } {
  const eligible = (n: Node) =>
    (n.op === 'MatMul' || (n.op === 'Gemm' && attrFloat(n, 'alpha', 1) === 1 && attrFloat(n, 'beta', 1) === 1 && attrInt(n, 'transA', 0) === 0)) &&
    weightInput(src, n) !== undefined &&
    isFloat32(src, n.inputs[0]!);
  const { selected, kept } = selectNodes(src, eligible, opts, "mode 'int8-dynamic'");
  const ed = new GraphEditor(src);
  const g = ed.graph;
  const dql = new Map<string, [string, string, string]>();
  const layers: LayerPair[] = [];
  for (const n0 of selected) {
    const n = ed.node(n0);
    const x = n.inputs[0]!;
    let q = dql.get(x);
    if (!q) {
      q = [fresh(g, `${x}_quantized`), fresh(g, `${x}_scale`), fresh(g, `${x}_zero_point`)];
      ed.addNode({ name: fresh(g, `${x}_DynamicQuantizeLinear`), op: 'DynamicQuantizeLinear', domain: '', inputs: [x], outputs: [...q], attrs: {} }, x);
      dql.set(x, q);
    }
    // W as [K, N] (Gemm's transB = 1 stores [N, K]).
    let w = src.initializers[n.inputs[1]!]!;
    if (n.op === 'Gemm' && attrInt(n, 'transB', 0)) w = transpose2d(w);
    const qw = quantizeWeightInt8(w, opts.perChannel ? 1 : undefined);
    const wq = ed.addInitializer(`${n.inputs[1]}_quantized`, qw.q);
    const ws = ed.addInitializer(`${n.inputs[1]}_scale`, { dtype: 'float32', shape: opts.perChannel ? [qw.scales.length] : [], data: qw.scales });
    const base = n.name || n.outputs[0]!;
    const acc = fresh(g, `${base}_MatMulInteger_output`);
    const accF = fresh(g, `${base}_cast_output`);
    const scale = fresh(g, `${base}_scale_output`);
    const out = n.outputs[0]!;
    const bias = n.op === 'Gemm' && n.inputs[2] ? n.inputs[2] : undefined;
    const scaled = bias ? fresh(g, `${base}_scaled_output`) : out;
    const added: Node[] = [
      { name: fresh(g, `${base}_MatMulInteger`), op: 'MatMulInteger', domain: '', inputs: [q[0], wq, q[2]], outputs: [acc], attrs: {} },
      { name: fresh(g, `${base}_Cast`), op: 'Cast', domain: '', inputs: [acc], outputs: [accF], attrs: { to: { type: 'int', value: 1 } } },
      { name: fresh(g, `${base}_scale_Mul`), op: 'Mul', domain: '', inputs: [q[1], ws], outputs: [scale], attrs: {} },
      { name: fresh(g, `${base}_output_Mul`), op: 'Mul', domain: '', inputs: [accF, scale], outputs: [scaled], attrs: {} },
    ];
    if (bias) added.push({ name: fresh(g, `${base}_bias_Add`), op: 'Add', domain: '', inputs: [scaled, bias], outputs: [out], attrs: {} });
    for (const a of added) ed.addNode(a, undefined, n0);
    ed.remove(n0);
    layers.push({ node: n0.name, op: n0.op, float: out, quantized: out });
  }
  return { graph: ed.finish(), layers, kept };
}

export function transpose2d(t: HostTensor): HostTensor {
  const [r, c] = t.shape as [number, number];
  const v = t.data as Float32Array;
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = v[i * c + j]!;
  return hostTensor('float32', [c, r], out);
}
