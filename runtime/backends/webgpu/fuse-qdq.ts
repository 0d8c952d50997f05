import { attrFloat, attrInt, type Attr, type Graph, type Node } from '../../ir/graph.js';
import type { HostTensor } from '../../ir/tensor.js';
import { QDQ_CONV, QDQ_MATMUL } from './kernels/qdq-gemm.js';

/**
 * QDQ rewrite for the WebGPU plan (issue #11 §1): a statically quantized model (QDQ format, as onnxruntime's and
 * EdgeKit's quantizers write it) computes each layer as
 *   DequantizeLinear(x_q), DequantizeLinear(w_q) -> Conv | MatMul | Gemm (+ bias) (-> Relu | Clip) -> QuantizeLinear,
 * which, run as written, dequantizes the weights and activations to float32 and multiplies in float. This pass
 * replaces each such group with one QdqConv / QdqMatMul node (kernels/qdq-gemm.ts) that reads x_q and the int8
 * weights and multiplies in integers, with bias, requantization and the activation (as a clamp on the quantized
 * range) in the epilogue. Like fusion.ts it rewrites only the graph the GPU executes; the CPU backend runs the model
 * as written and is the reference the fused kernels are tested against (within one quantization step: the fused
 * accumulator is exact where the float path rounds).
 *
 * A group is fused only when every scale and zero point is a constant, x and the output are per-tensor int8/uint8,
 * w is an int8/uint8 initializer (or int4/uint4, then held 4 bits on the GPU: w_bits = 4) quantized per tensor or
 * per output channel, the bias (if any) is a float constant or DequantizeLinear of an int32 constant, every
 * intermediate has exactly one reader and none is a graph output.
 * A DequantizeLinear whose output other nodes still read stays. A group with no QuantizeLinear after it (the last
 * layer's logits) is fused too and keeps its float32 output. Created nodes carry attrs.fusion = 'qdq' and
 * attrs.fused_from = the names of the nodes they replace. A model's own QLinearConv / QLinearMatMul with constant
 * weights moves onto the same kernels (qlinearAt), so its weights are packed as well.
 */

export const INT8 = new Set(['int8', 'uint8']);

/** The graph a QDQ pass matches in: producers, readers and graph outputs by value name. */
export interface Ctx {
  g: Graph;
  producer: Map<string, Node>;
  readers: Map<string, Node[]>;
  outputs: Set<string>;
}

const isConst = (c: Ctx, v: string | undefined): v is string => !!v && Object.hasOwn(c.g.initializers, v);
const constOf = (c: Ctx, v: string): HostTensor => c.g.initializers[v]!;
const count = (t: HostTensor) => t.data.length;

/** The only reader of v, when v is not a graph output. */
export function soleReader(c: Ctx, v: string): Node | undefined {
  const r = c.readers.get(v);
  return r?.length === 1 && !c.outputs.has(v) ? r[0] : undefined;
}

/** A DequantizeLinear producing v, with constant scale (and zero point) and no blocking. */
function dequantOf(c: Ctx, v: string | undefined): Node | undefined {
  const n = v ? c.producer.get(v) : undefined;
  if (!n || n.op !== 'DequantizeLinear' || n.domain !== '' || attrInt(n, 'block_size', 0) !== 0) return undefined;
  if (!isConst(c, n.inputs[1]) || (n.inputs[2] && !isConst(c, n.inputs[2]))) return undefined;
  if (c.g.values[n.outputs[0]!]?.dtype !== 'float32') return undefined;
  return n;
}

const perTensor = (c: Ctx, n: Node) => count(constOf(c, n.inputs[1]!)) === 1;

/** The per-output-channel axis of w ([M, ...] for Conv, [K, N] for MatMul, [N, K] or [K, N] for Gemm). */
function channelAxis(op: string, transB: boolean): number {
  return op === 'Conv' || (op === 'Gemm' && transB) ? 0 : 1;
}

/** The activation after the product as clip bounds, or undefined when it is not Relu or a constant Clip. */
function clipOf(c: Ctx, n: Node): { min: number; max: number } | undefined {
  if (n.domain !== '') return undefined;
  if (n.op === 'Relu') return { min: 0, max: Infinity };
  if (n.op !== 'Clip') return undefined;
  const bound = (i: number, d: number) => {
    const v = n.inputs[i];
    if (!v) return d;
    if (!isConst(c, v) || count(constOf(c, v)) !== 1) return undefined;
    return Number(constOf(c, v).data[0]);
  };
  const min = bound(1, -Infinity);
  const max = bound(2, Infinity);
  return min === undefined || max === undefined ? undefined : { min, max };
}

/** One fused node for the group around product `p`, with the nodes it replaces, or undefined. */
function fuseAt(c: Ctx, p: Node): Fused | undefined {
  if (p.domain !== '' || !['Conv', 'MatMul', 'Gemm'].includes(p.op)) return undefined;
  const transB = attrInt(p, 'transB', 0) !== 0;
  if (p.op === 'Gemm' && (attrInt(p, 'transA', 0) !== 0 || attrFloat(p, 'alpha', 1) !== 1 || attrFloat(p, 'beta', 1) !== 1)) return undefined;
  const dqx = dequantOf(c, p.inputs[0]);
  const dqw = dequantOf(c, p.inputs[1]);
  if (!dqx || !dqw || !perTensor(c, dqx) || !INT8.has(c.g.values[dqx.inputs[0]!]?.dtype ?? '')) return undefined;
  const wq = dqw.inputs[0];
  if (!isConst(c, wq) || !INT8.has(constOf(c, wq).dtype)) return undefined;
  const w = constOf(c, wq);
  if (p.op !== 'Conv' && w.shape.length !== 2) return undefined;
  const xs = c.g.values[p.inputs[0]!]?.shape;
  if (!xs || xs.length < (p.op === 'MatMul' ? 2 : p.op === 'Gemm' ? 2 : 3)) return undefined;
  const axis = channelAxis(p.op, transB);
  const channels = w.shape[axis]!;
  if (!perTensor(c, dqw)) {
    const a = attrInt(dqw, 'axis', 1);
    if ((a < 0 ? a + w.shape.length : a) !== axis || count(constOf(c, dqw.inputs[1]!)) !== channels) return undefined;
  }
  // Bias: Conv/Gemm's third input, or MatMul -> Add(constant [N]).
  const replaced: Node[] = [p];
  let out = p.outputs[0]!;
  let last = p; // the chain's last node: the fused node takes its place when no QuantizeLinear ends the group
  let biasValue: string | undefined = p.op === 'MatMul' ? undefined : p.inputs[2] || undefined;
  if (p.op === 'MatMul') {
    const add = soleReader(c, out);
    if (add?.op === 'Add' && add.domain === '') {
      const other = add.inputs[0] === out ? add.inputs[1] : add.inputs[0];
      if (other && other !== out && (isConst(c, other) || dequantOf(c, other))) {
        biasValue = other;
        replaced.push(add);
        out = add.outputs[0]!;
        last = add;
      }
    }
  }
  let bias = '';
  let biasScale = '';
  let dqb: Node | undefined;
  if (biasValue) {
    if (isConst(c, biasValue)) {
      const t = constOf(c, biasValue);
      if (t.dtype !== 'float32' || count(t) !== channels) return undefined;
      bias = biasValue;
    } else {
      dqb = dequantOf(c, biasValue);
      if (!dqb || !isConst(c, dqb.inputs[0]) || constOf(c, dqb.inputs[0]!).dtype !== 'int32' || count(constOf(c, dqb.inputs[0]!)) !== channels) return undefined;
      const zp = dqb.inputs[2];
      if (zp && Array.from(constOf(c, zp).data as Int32Array).some((v) => v !== 0)) return undefined;
      const sc = count(constOf(c, dqb.inputs[1]!));
      if (sc !== 1 && sc !== channels) return undefined;
      [bias, biasScale] = [dqb.inputs[0]!, dqb.inputs[1]!];
    }
  }
  // Activation, then the QuantizeLinear.
  const attrs: Record<string, Attr> = {};
  // A weight stored in 4 bits (int4 / uint4) stays 4 bits on the GPU (kernels/qdq-weights.ts).
  if (attrInt(dqw, 'storage_bits', 0) === 4) attrs.w_bits = { type: 'int', value: 4 };
  let next = soleReader(c, out);
  const clip = next && clipOf(c, next);
  if (next && clip) {
    replaced.push(next);
    out = next.outputs[0]!;
    last = next;
    if (Number.isFinite(clip.min)) attrs.clip_min = { type: 'float', value: clip.min };
    if (Number.isFinite(clip.max)) attrs.clip_max = { type: 'float', value: clip.max };
    next = soleReader(c, out);
  }
  // The QuantizeLinear after it, when it has one the kernel can apply; otherwise the product's float32 output stays.
  const q = next && isRequantize(c, next) ? next : undefined;
  if (!q && c.g.values[out]?.dtype !== 'float32') return undefined;
  if (q) replaced.push(q);
  // The DequantizeLinear nodes go when the fused node was their only reader.
  for (const d of [dqx, dqw, dqb]) if (d && soleReader(c, d.outputs[0]!)) replaced.push(d);
  const keep = p.op === 'Conv' ? p.attrs : p.op === 'Gemm' ? { transB: { type: 'int', value: transB ? 1 : 0 } as Attr } : {};
  const node: Node = {
    name: `${p.name}_qdq`,
    op: p.op === 'Conv' ? QDQ_CONV : QDQ_MATMUL,
    domain: '',
    inputs: [dqx.inputs[0]!, dqx.inputs[1]!, dqx.inputs[2] ?? '', wq, dqw.inputs[1]!, dqw.inputs[2] ?? '', q?.inputs[1] ?? '', q?.inputs[2] ?? '', bias, biasScale],
    outputs: [q ? q.outputs[0]! : out],
    attrs: {
      ...keep,
      ...attrs,
      fusion: { type: 'string', value: 'qdq' },
      fused_from: { type: 'strings', value: replaced.map((n) => n.name) },
    },
  };
  return { node, replaced, at: q ?? last };
}

/** A per-tensor QuantizeLinear to int8/uint8 with constant parameters. */
function isRequantize(c: Ctx, q: Node): boolean {
  if (q.op !== 'QuantizeLinear' || q.domain !== '' || attrInt(q, 'block_size', 0) !== 0) return false;
  if (!isConst(c, q.inputs[1]) || count(constOf(c, q.inputs[1]!)) !== 1) return false;
  if (q.inputs[2] && (!isConst(c, q.inputs[2]) || count(constOf(c, q.inputs[2]!)) !== 1)) return false;
  return INT8.has(c.g.values[q.outputs[0]!]?.dtype ?? '');
}

/**
 * A model's own QLinearConv / QLinearMatMul with constant weights and parameters: the same kernels, so its weights are
 * packed too (the generic quant-matmul.ts kernels hold them one per word). QLinearConv's int32 bias is in
 * accumulator units (bias_accumulator = 1: the kernel scales it by x_scale * w_scale).
 */
function qlinearAt(c: Ctx, n: Node): Fused | undefined {
  if (n.domain !== '' || (n.op !== 'QLinearConv' && n.op !== 'QLinearMatMul')) return undefined;
  const [x, xs, xz, w, ws, wz, ys, yz, b] = n.inputs;
  const scalar = (v: string | undefined) => isConst(c, v) && count(constOf(c, v)) === 1;
  if (!scalar(xs) || !scalar(xz) || !scalar(ys) || !scalar(yz) || !isConst(c, w) || !isConst(c, ws) || !isConst(c, wz) || (b && !isConst(c, b))) return undefined;
  if (n.op === 'QLinearMatMul' && constOf(c, w).shape.length !== 2) return undefined;
  const attrs: Record<string, Attr> = n.op === 'QLinearConv' ? { ...n.attrs } : {};
  if (b) attrs.bias_accumulator = { type: 'int', value: 1 };
  const node: Node = {
    name: `${n.name}_qdq`,
    op: n.op === 'QLinearConv' ? QDQ_CONV : QDQ_MATMUL,
    domain: '',
    inputs: [x!, xs!, xz!, w!, ws!, wz!, ys!, yz!, b ?? '', ''],
    outputs: [...n.outputs],
    attrs: { ...attrs, fusion: { type: 'string', value: 'qdq' }, fused_from: { type: 'strings', value: [n.name] } },
  };
  return { node, replaced: [n], at: n };
}

/** The graph with every QDQ group the int8 kernels run rewritten; `g` itself when none is found. */
export function fuseQdq(g: Graph): Graph {
  return rewriteGroups(g, (c, n) => fuseAt(c, n) ?? qlinearAt(c, n));
}

/** A matched group: the fused node, the nodes it replaces, and the node whose place in the order it takes. */
export interface Fused {
  node: Node;
  replaced: Node[];
  at: Node;
}

/**
 * Runs `match` at every node in order and rewrites each group it returns, unless the group overlaps one already taken;
 * `g` itself when nothing matches. The fused node takes the place of `at`, the group's last node, by which all of its
 * inputs are computed.
 */
export function rewriteGroups(g: Graph, match: (c: Ctx, n: Node) => Fused | undefined): Graph {
  const c: Ctx = { g, producer: new Map(), readers: new Map(), outputs: new Set(g.outputs.map((o) => o.name)) };
  for (const n of g.nodes) {
    for (const o of n.outputs) if (o) c.producer.set(o, n);
    for (const v of n.inputs) if (v) c.readers.set(v, [...(c.readers.get(v) ?? []), n]);
  }
  const dropped = new Set<Node>();
  const placed = new Map<Node, Node>();
  for (const n of g.nodes) {
    const f = match(c, n);
    if (!f || f.replaced.some((r) => dropped.has(r))) continue;
    for (const r of f.replaced) dropped.add(r);
    placed.set(f.at, f.node);
  }
  if (!placed.size) return g;
  const nodes = g.nodes.flatMap((n) => (placed.has(n) ? [placed.get(n)!] : dropped.has(n) ? [] : [n]));
  return { ...g, nodes };
}
