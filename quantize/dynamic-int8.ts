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
 *   MatMul/Gemm: MatMulInteger(x_q, W_q int8 [K, N], x_zp) → int32 → Cast float → × (x_scale · w_scale[N]) (+ bias)
 *   Conv:        ConvInteger(x_q, W_q uint8, x_zp, 128) → int32 → Cast float → × (x_scale · w_scale[M, 1, ..]) (+ bias[M, 1, ..])
 * MatMul and Gemm (transA = 0, alpha = beta = 1) with a constant 2-D float32 weight; Conv with a constant float32
 * weight, any pads/strides/dilations/group (ConvInteger has Conv's attributes).
 * Weights are symmetric (zero point 0, values in [-127, 127]), per output channel unless perChannel is false.
 * MatMulInteger's weight is int8 and its b_zero_point is left out. ConvInteger's weight is the same int8 values
 * stored as uint8 with one zero point 128 (w + 128, in [1, 255]): onnxruntime's ConvInteger ran only uint8 × uint8
 * until late 2025 (onnxruntime PR #26585), so a uint8 weight is what every onnxruntime release loads; one scalar
 * zero point also serves per-channel weights, the per-channel scales being applied in float after the Cast.
 * ConvInteger has no bias input: the float bias is added after the scale Mul, stored as [M, 1, ..] so that it
 * broadcasts over the channel axis of [N, M, spatial..] (a bias computed in the graph goes through a Reshape).
 */
export function rewriteDynamic(src: Graph, opts: ResolvedOptions): { graph: Graph; layers: LayerPair[]; kept: KeptNode[] } {
  const eligible = (n: Node) =>
    (n.op === 'MatMul' ||
      (n.op === 'Gemm' && attrFloat(n, 'alpha', 1) === 1 && attrFloat(n, 'beta', 1) === 1 && attrInt(n, 'transA', 0) === 0) ||
      (n.op === 'Conv' && convBiasOk(src, n))) &&
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
    if (n.op === 'Conv') {
      rewriteConv(ed, src, n0, q, opts);
      layers.push({ node: n0.name, op: n0.op, float: n0.outputs[0]!, quantized: n0.outputs[0]! });
      continue;
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

/** A Conv's bias is absent, a constant float32 [M] (it becomes a [M, 1, ..] initializer) or a float32 value (Reshaped). */
function convBiasOk(g: Graph, n: Node): boolean {
  if (!n.inputs[2]) return true;
  const b = g.initializers[n.inputs[2]];
  const w = g.initializers[n.inputs[1] ?? ''];
  if (!b) return isFloat32(g, n.inputs[2]);
  return !!w && b.dtype === 'float32' && b.shape.length === 1 && b.shape[0] === w.shape[0];
}

/** Conv → ConvInteger(x_q, W_q uint8, x_zp, 128) → Cast → Mul(x_scale · w_scale) [→ Add(bias)] (see the file comment). */
function rewriteConv(ed: GraphEditor, src: Graph, n0: Node, q: [string, string, string], opts: ResolvedOptions): void {
  const g = ed.graph;
  const n = ed.node(n0);
  const w = src.initializers[n.inputs[1]!]!;
  const m = w.shape[0]!;
  // [M, 1, ..., 1]: one value per output channel, broadcasting over ConvInteger's [N, M, spatial..] output.
  const perChannelShape = [m, ...w.shape.slice(2).map(() => 1)];
  const qw = quantizeWeightInt8(w, opts.perChannel ? 0 : undefined);
  const wu8 = Uint8Array.from(qw.q.data as Int8Array, (v) => v + 128);
  const wq = ed.addInitializer(`${n.inputs[1]}_quantized`, hostTensor('uint8', [...w.shape], wu8));
  const wzp = ed.addInitializer(`${n.inputs[1]}_zero_point`, hostTensor('uint8', [], Uint8Array.of(128)));
  const ws = ed.addInitializer(`${n.inputs[1]}_scale`, hostTensor('float32', opts.perChannel ? perChannelShape : [], qw.scales));
  const base = n.name || n.outputs[0]!;
  const acc = fresh(g, `${base}_ConvInteger_output`);
  const accF = fresh(g, `${base}_cast_output`);
  const scale = fresh(g, `${base}_scale_output`);
  const out = n.outputs[0]!;
  const bias = n.inputs[2] || undefined;
  const scaled = bias ? fresh(g, `${base}_scaled_output`) : out;
  const added: Node[] = [
    { name: fresh(g, `${base}_ConvInteger`), op: 'ConvInteger', domain: '', inputs: [q[0], wq, q[2], wzp], outputs: [acc], attrs: { ...n.attrs } },
    { name: fresh(g, `${base}_Cast`), op: 'Cast', domain: '', inputs: [acc], outputs: [accF], attrs: { to: { type: 'int', value: 1 } } },
    { name: fresh(g, `${base}_scale_Mul`), op: 'Mul', domain: '', inputs: [q[1], ws], outputs: [scale], attrs: {} },
    { name: fresh(g, `${base}_output_Mul`), op: 'Mul', domain: '', inputs: [accF, scale], outputs: [scaled], attrs: {} },
  ];
  if (bias) {
    const constant = src.initializers[bias];
    let b: string;
    if (constant) {
      b = ed.addInitializer(`${bias}_reshaped`, hostTensor('float32', perChannelShape, Float32Array.from(constant.data as Float32Array)));
    } else {
      // A computed bias (the spec's [M]) is reshaped at run time.
      const shape = ed.addInitializer(`${base}_bias_shape`, hostTensor('int64', [perChannelShape.length], BigInt64Array.from(perChannelShape, BigInt)));
      b = fresh(g, `${bias}_reshaped`);
      added.push({ name: fresh(g, `${base}_bias_Reshape`), op: 'Reshape', domain: '', inputs: [bias, shape], outputs: [b], attrs: {} });
    }
    added.push({ name: fresh(g, `${base}_bias_Add`), op: 'Add', domain: '', inputs: [scaled, b], outputs: [out], attrs: {} });
  }
  for (const a of added) ed.addNode(a, undefined, n0);
  ed.remove(n0);
}

export function transpose2d(t: HostTensor): HostTensor {
  const [r, c] = t.shape as [number, number];
  const v = t.data as Float32Array;
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = v[i * c + j]!;
  return hostTensor('float32', [c, r], out);
}
