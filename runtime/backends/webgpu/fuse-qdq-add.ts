import { attrInt, type Attr, type Graph, type Node } from '../../ir/graph.js';
import { INT8, rewriteGroups, soleReader, type Ctx, type Fused } from './fuse-qdq.js';
import { QDQ_ADD } from './kernels/qdq-add.js';

/**
 * The residual Add of a QDQ model onto one int8 kernel (issue #11; kernels/qdq-add.ts): a statically quantized
 * network (mobilenet_v2's inverted residuals, resnet's basic blocks) adds two quantized branches as
 *   DequantizeLinear(a_q), DequantizeLinear(b_q) -> Add (-> Relu) -> QuantizeLinear,
 * three or four dispatches that each move one 32-bit word per element. This pass, run after fuse-qdq.ts (whose
 * QdqConv nodes then read the quantized branches directly), replaces each such group with one QdqAdd node with inputs
 *   [a_q, a_scale, a_zero_point, b_q, b_scale, b_zero_point, y_scale, y_zero_point]
 * and output y_q; a Relu between the Add and the QuantizeLinear becomes attribute clip_min = 0, applied as a clamp on
 * the quantized range (as QdqConv's). The kernel computes what the chain computes on WebGPU, bit for bit.
 *
 * A group is fused only when, as in fuse-qdq.ts, every scale and zero point is a per-tensor constant (the scales
 * positive and finite), a_q, b_q and y_q are int8/uint8, no DequantizeLinear or QuantizeLinear is blocked, the Add's
 * output (and the Relu's) has exactly one reader and is not a graph output, and the DequantizeLinear outputs are
 * float32. a and b must have one static shape: no broadcasting (a residual Add never broadcasts; an Add that does
 * stays as written). A DequantizeLinear whose output other nodes still read stays. Created nodes carry
 * attrs.fusion = 'qdq' and attrs.fused_from = the names of the nodes they replace.
 */


/** A per-tensor constant (a scale when `scale`: positive and finite). */
function perTensor(c: Ctx, v: string | undefined, scale: boolean): boolean {
  const t = v && Object.hasOwn(c.g.initializers, v) ? c.g.initializers[v]! : undefined;
  if (!t || t.data.length !== 1) return false;
  const x = Number(t.data[0]);
  return !scale || (x > 0 && Number.isFinite(x));
}

/** A per-tensor DequantizeLinear of an int8/uint8 value producing float32 v, with constant parameters. */
function dequantOf(c: Ctx, v: string | undefined): Node | undefined {
  const n = v ? c.producer.get(v) : undefined;
  if (!n || n.op !== 'DequantizeLinear' || n.domain !== '' || attrInt(n, 'block_size', 0) !== 0) return undefined;
  if (!perTensor(c, n.inputs[1], true) || (n.inputs[2] && !perTensor(c, n.inputs[2], false))) return undefined;
  if (c.g.values[n.outputs[0]!]?.dtype !== 'float32' || !INT8.has(c.g.values[n.inputs[0]!]?.dtype ?? '')) return undefined;
  return n;
}

/** A per-tensor QuantizeLinear to int8/uint8 with constant parameters. */
function isRequantize(c: Ctx, q: Node): boolean {
  if (q.op !== 'QuantizeLinear' || q.domain !== '' || attrInt(q, 'block_size', 0) !== 0) return false;
  if (!perTensor(c, q.inputs[1], true) || (q.inputs[2] && !perTensor(c, q.inputs[2], false))) return false;
  return INT8.has(c.g.values[q.outputs[0]!]?.dtype ?? '');
}

/** Both operands of one static shape (every dimension a number). */
function sameStaticShape(c: Ctx, a: string, b: string): boolean {
  const sa = c.g.values[a]?.shape;
  const sb = c.g.values[b]?.shape;
  return !!sa && !!sb && sa.length === sb.length && sa.every((d, i) => typeof d === 'number' && d === sb[i]);
}

/** One QdqAdd for the group around Add `add`, with the nodes it replaces and the node whose place it takes. */
function fuseAt(c: Ctx, add: Node): Fused | undefined {
  if (add.op !== 'Add' || add.domain !== '' || add.inputs.length !== 2) return undefined;
  const dqa = dequantOf(c, add.inputs[0]);
  const dqb = dequantOf(c, add.inputs[1]);
  if (!dqa || !dqb || !sameStaticShape(c, dqa.inputs[0]!, dqb.inputs[0]!)) return undefined;
  const replaced: Node[] = [add];
  const attrs: Record<string, Attr> = {};
  let next = soleReader(c, add.outputs[0]!);
  if (next?.op === 'Relu' && next.domain === '') {
    replaced.push(next);
    attrs.clip_min = { type: 'float', value: 0 };
    next = soleReader(c, next.outputs[0]!);
  }
  if (!next || !isRequantize(c, next)) return undefined;
  const q = next;
  replaced.push(q);
  // A DequantizeLinear goes when the Add is its only reader (both operands may be one DequantizeLinear's output).
  for (const d of new Set([dqa, dqb])) {
    const r = c.readers.get(d.outputs[0]!) ?? [];
    if (!c.outputs.has(d.outputs[0]!) && r.every((n) => n === add)) replaced.push(d);
  }
  const node: Node = {
    name: `${add.name}_qdq`,
    op: QDQ_ADD,
    domain: '',
    inputs: [dqa.inputs[0]!, dqa.inputs[1]!, dqa.inputs[2] ?? '', dqb.inputs[0]!, dqb.inputs[1]!, dqb.inputs[2] ?? '', q.inputs[1]!, q.inputs[2] ?? ''],
    outputs: [q.outputs[0]!],
    attrs: { ...attrs, fusion: { type: 'string', value: 'qdq' }, fused_from: { type: 'strings', value: replaced.map((n) => n.name) } },
  };
  return { node, replaced, at: q };
}

/** The graph with every QDQ residual Add the int8 kernel runs rewritten; `g` itself when none is found. */
export function fuseQdqAdd(g: Graph): Graph {
  // The fused node takes the QuantizeLinear's place: a_q and b_q are computed before the Add, so before it.
  return rewriteGroups(g, fuseAt);
}
