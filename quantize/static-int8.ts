import type { Attr, Graph, Node } from '../runtime/ir/graph.js';
import { tensorToNumbers } from '../runtime/ir/tensor.js';
import { chosenRange, type TensorStats } from './calibrate.js';
import { paramsForRange, quantizeBiasInt32, quantizeWeightInt8, scalarTensor, type QParams } from './codecs.js';
import { fresh, GraphEditor } from './editor.js';
import type { ResolvedOptions } from './options.js';
import { ARITH, biasInput, channelAxis, isFloat32, SHARED_SCALE, selectNodes, weightInput, WEIGHTED, type KeptNode } from './plan.js';

/**
 * Static int8 in QDQ form (onnxruntime's quantization format, opset >= 13): every quantized activation tensor t
 * becomes t → QuantizeLinear → DequantizeLinear → its quantized readers; weights are stored int8 (symmetric, per
 * output channel by default) behind a DequantizeLinear, biases int32 at scale s_input × s_weight. Runtimes that know
 * the pattern DQ → Conv/MatMul/Gemm → Q run it in integers (EdgeKit's WebGPU fusion, onnxruntime's QDQ
 * transformers); the file stays correct for any runtime because it is plain ONNX.
 *
 * Graph work, as onnxruntime's quantizer does it:
 *  - BatchNormalization is folded into its Conv before (the load-time optimizer, runtime/ir/passes/conv-bn.ts);
 *  - a Relu, or a Clip(0, c), after a quantized producer is absorbed into the producer's output range: with
 *    asymmetric activations the range [0, max] gets zero point qmin, so QuantizeLinear's saturation is the Relu;
 *  - a MaxPool/Reshape/Flatten/Transpose/Squeeze/Unsqueeze output shares its input's scale (its values are a
 *    subset: requantizing it is exact), the inputs and output of a Concat share one scale (so Concat is a copy of
 *    the int8 bytes), and both activation inputs of an Add (a residual sum) share one scale.
 * Graph outputs stay float: the last layer's output is dequantized once, by its own DequantizeLinear-free float op.
 */

export interface StaticPlan {
  selected: Node[];
  kept: KeptNode[];
  /** Relu/Clip nodes to absorb, by name, with the producer they fold into. */
  absorb: Map<string, Node>;
  /** Float tensors to calibrate. */
  tensors: string[];
}

/** Float32 activation inputs of a selected node (not the weight/bias initializers it consumes as weights). */
function activationInputs(g: Graph, n: Node): string[] {
  const w = WEIGHTED.has(n.op) ? weightInput(g, n) : undefined;
  return n.inputs.filter((v, i) => isFloat32(g, v) && !(v in g.initializers) && !(w !== undefined && (i === w || i === 2)));
}

export function planStatic(g: Graph, opts: ResolvedOptions): StaticPlan {
  const { selected, kept } = selectNodes(
    g,
    (n) => (WEIGHTED.has(n.op) ? weightInput(g, n) !== undefined || (n.op === 'MatMul' && !(n.inputs[1]! in g.initializers)) : SHARED_SCALE.has(n.op) || ARITH.has(n.op)),
    opts,
    "mode 'int8'",
  );
  const sel = new Set(selected);
  const producer = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) if (o) producer.set(o, n);
  const readers = new Map<string, number>();
  for (const n of g.nodes) for (const v of n.inputs) if (v) readers.set(v, (readers.get(v) ?? 0) + 1);
  const outputs = new Set(g.outputs.map((o) => o.name));
  const absorb = new Map<string, Node>();
  if (!opts.symmetric) {
    for (const r of selected) {
      const isRelu = r.op === 'Relu' || (r.op === 'Clip' && clipFloorIsZero(g, r));
      const p = producer.get(r.inputs[0]!);
      if (!isRelu || !p || !sel.has(p) || !(WEIGHTED.has(p.op) || p.op === 'Add')) continue;
      if (readers.get(r.inputs[0]!) !== 1 || outputs.has(r.inputs[0]!) || outputs.has(r.outputs[0]!)) continue;
      absorb.set(r.name, p);
    }
  }
  const tensors = new Set<string>();
  for (const n of selected) {
    for (const v of activationInputs(g, n)) tensors.add(v);
    for (const o of n.outputs) if (isFloat32(g, o) && !outputs.has(o)) tensors.add(o);
  }
  return { selected, kept, absorb, tensors: [...tensors] };
}

function clipFloorIsZero(g: Graph, n: Node): boolean {
  const lo = g.initializers[n.inputs[1] ?? ''];
  return !!lo && lo.data.length === 1 && tensorToNumbers(lo)[0] === 0;
}

/** Union-find over tensor names. */
class Groups {
  readonly #parent = new Map<string, string>();
  find(x: string): string {
    let p = this.#parent.get(x) ?? x;
    if (p !== x) {
      p = this.find(p);
      this.#parent.set(x, p);
    }
    return p;
  }
  union(a: string, b: string): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.#parent.set(ra, rb);
  }
}

export interface StaticResult {
  graph: Graph;
  /** Per selected node: its output in the float graph, and the name the quantized graph's readers see. */
  layers: { node: string; op: string; float: string; quantized: string }[];
  kept: KeptNode[];
  /** Parameters of each quantized activation tensor. */
  params: Map<string, QParams>;
}

export function rewriteStatic(src: Graph, plan: StaticPlan, stats: Map<string, TensorStats>, opts: ResolvedOptions): StaticResult {
  const ed = new GraphEditor(src);
  const g = ed.graph;
  const qtype = opts.activations;
  const quantized = new Set(plan.tensors);
  const absorb = new Map(plan.absorb);
  const range = (t: string): [number, number] => chosenRange(stats.get(t) ?? { min: 0, max: 0 }, opts);

  // Scale sharing, then cancel an absorption whose shared range dips below 0 (the Relu must stay a node then).
  const groups = (): Map<string, [number, number]> => {
    const u = new Groups();
    for (const n of plan.selected) {
      if (absorb.has(n.name)) continue;
      const ins = activationInputs(src, n).filter((v) => quantized.has(v));
      const out = n.outputs[0]!;
      if (SHARED_SCALE.has(n.op) && ins[0] && quantized.has(out)) u.union(ins[0], out);
      if (n.op === 'Concat' && quantized.has(out)) for (const v of ins) u.union(v, out);
      if (n.op === 'Add' && ins.length === 2) u.union(ins[0]!, ins[1]!);
    }
    const r = new Map<string, [number, number]>();
    for (const t of quantized) {
      const root = u.find(t);
      const [lo, hi] = range(t);
      const cur = r.get(root) ?? [Infinity, -Infinity];
      r.set(root, [Math.min(cur[0], lo), Math.max(cur[1], hi)]);
    }
    return new Map([...quantized].map((t) => [t, r.get(u.find(t))!]));
  };
  let ranges = groups();
  for (const [relu] of [...absorb]) {
    const r = plan.selected.find((n) => n.name === relu)!;
    if (ranges.get(r.outputs[0]!)![0] < 0) absorb.delete(relu);
  }
  ranges = groups();
  // Absorbed: the producer writes the Relu's output name; that tensor's range starts at 0.
  for (const [relu, p] of absorb) {
    const r = plan.selected.find((n) => n.name === relu)!;
    quantized.delete(p.outputs[0]!);
    ed.node(p).outputs[0] = r.outputs[0]!;
    ed.remove(r);
  }
  const params = new Map<string, QParams>();
  for (const t of quantized) {
    const [lo, hi] = ranges.get(t)!;
    params.set(t, paramsForRange(lo, hi, qtype, opts.symmetric));
  }

  // Activations: t → Q → DQ, read by the selected nodes.
  const dq = new Map<string, string>();
  for (const t of quantized) {
    const p = params.get(t)!;
    const s = ed.addInitializer(`${t}_scale`, scalarTensor('float32', p.scale));
    const z = ed.addInitializer(`${t}_zero_point`, scalarTensor(qtype, p.zeroPoint));
    const q = fresh(g, `${t}_quantized`);
    const d = fresh(g, `${t}_dequantized`);
    ed.addNode({ name: fresh(g, `${t}_QuantizeLinear`), op: 'QuantizeLinear', domain: '', inputs: [t, s, z], outputs: [q], attrs: {} }, t);
    ed.addNode({ name: fresh(g, `${t}_DequantizeLinear`), op: 'DequantizeLinear', domain: '', inputs: [q, s, z], outputs: [d], attrs: {} }, q);
    dq.set(t, d);
  }
  const selected = plan.selected.filter((n) => !absorb.has(n.name));
  for (const n0 of selected) {
    const n = ed.node(n0);
    const w = WEIGHTED.has(n.op) ? weightInput(src, n0) : undefined;
    n.inputs = n.inputs.map((v, i) => (i !== w && dq.has(v) ? dq.get(v)! : v));
    if (w === undefined) continue;
    // Weights: int8 symmetric, per channel along the output axis (or per tensor).
    const wName = n.inputs[w]!;
    const wt = src.initializers[wName]!;
    const axis = opts.perChannel ? channelAxis(n) : undefined;
    const qw = quantizeWeightInt8(wt, axis);
    const channels = axis === undefined ? 1 : wt.shape[axis]!;
    const scaleShape = axis === undefined ? [] : [channels];
    const ws = ed.addInitializer(`${wName}_scale`, { dtype: 'float32', shape: scaleShape, data: qw.scales });
    const wz = ed.addInitializer(`${wName}_zero_point`, { dtype: 'int8', shape: scaleShape, data: new Int8Array(qw.scales.length) });
    const wq = ed.addInitializer(`${wName}_quantized`, qw.q);
    const wd = fresh(g, `${wName}_dequantized`);
    const attrs: Record<string, Attr> = axis === undefined ? {} : { axis: { type: 'int', value: axis } };
    ed.addNode({ name: fresh(g, `${wName}_DequantizeLinear`), op: 'DequantizeLinear', domain: '', inputs: [wq, ws, wz], outputs: [wd], attrs }, undefined, n);
    n.inputs[w] = wd;
    // Bias: int32 at s_x * s_w when the input is quantized.
    const xIn = n0.inputs[0]!;
    const bi = biasInput(src, n0, wt.shape[channelAxis(n)]!);
    if (bi !== undefined && params.has(xIn)) {
      const bName = n.inputs[bi]!;
      const qb = quantizeBiasInt32(src.initializers[bName]!, params.get(xIn)!.scale, qw.scales);
      const bs = ed.addInitializer(`${bName}_scale`, { dtype: 'float32', shape: [qb.scales.length], data: qb.scales });
      const bq = ed.addInitializer(`${bName}_quantized`, qb.q);
      const bd = fresh(g, `${bName}_dequantized`);
      ed.addNode({ name: fresh(g, `${bName}_DequantizeLinear`), op: 'DequantizeLinear', domain: '', inputs: [bq, bs], outputs: [bd], attrs: { axis: { type: 'int', value: 0 } } }, undefined, n);
      n.inputs[bi] = bd;
    }
  }
  const graph = ed.finish();
  const layers = selected.map((n) => {
    const out = ed.node(n).outputs[0]!;
    return { node: n.name, op: n.op, float: out, quantized: dq.get(out) ?? out };
  });
  return { graph, layers, kept: plan.kept, params };
}
