import type { Attr, Graph, Node, ValueInfo } from '../../ir/graph.js';
import { tensorFromNumbers, tensorToNumbers, type HostTensor } from '../../ir/tensor.js';

/**
 * Attention fusion for the WebGPU plan (docs/attention.md): the chain torch.onnx writes for scaled dot-product
 * attention,
 *   S = MatMul(Q, Kt) -> [Div(S, c) | Mul(S, c)] -> [Add(S, M) | Where(C, S, fill)] -> Softmax(axis -1) -> MatMul(P, V)
 * becomes one Attention node (runtime/ir/ops/attention.ts) that the fused kernel runs without the [.., S, T] score
 * matrix. It runs on the specialized graph, so every shape is concrete.
 *
 * - Kt [.., D, T] is either Transpose(K, swap of the last two axes), whose input is taken as K, or anything else,
 *   in which case a Transpose is inserted to make K [.., T, D] (O(T D), not O(S T)).
 * - Ranks 2 and 3 (bmm over [B*H, S, D], nn.MultiheadAttention's form) are reshaped to [N, 1, S, D] and back.
 * - Batch dims must agree exactly, except a key/value head dim of 1 against H query heads (MQA written with
 *   broadcasting), which the kernel's head grouping covers.
 * - The scale is 1 / c for Div, c for Mul, 1 without either (a Q pre-multiplied by a scale stays a separate Mul).
 * - Add(S, M): M is a float mask of Q's type broadcasting to the scores. Where(C, S, fill) with a constant scalar
 *   fill becomes the bool mask C (Where(C, fill, S): Not(C)) with the internal attribute mask_fill = fill, so a
 *   masked score becomes fill exactly as before, and a row masked throughout still spreads evenly as Softmax does
 *   (HF's finfo.min padding rows). A fill of -inf leaves mask_fill unset: the key takes no part, which differs only
 *   for a row masked throughout (Softmax gives NaN there, the kernel zeros).
 * - Softmax may sit between Casts, as float16 exports and autocast write it: Cast(to float32) before it and
 *   Cast(back to the scores' dtype) after it, either or both. The kernel computes in f32 anyway. Any other Cast
 *   (to float64, to float16 from a float32 chain, an up-cast with no way back) leaves the chain unfused.
 * Every intermediate must be read only by the chain and must not be a graph output.
 *
 * Each fused node carries attrs.fusion = 'attention' and attrs.fused_from = the names of the nodes it replaces.
 */

interface Ctx {
  g: Graph;
  readers: Map<string, Node[]>;
  producer: Map<string, Node>;
  outputs: Set<string>;
  names: Set<string>;
  added: { nodes: Node[]; values: Record<string, ValueInfo>; initializers: Record<string, HostTensor> };
}

const shapeOf = (c: Ctx, v: string | undefined): number[] | undefined => {
  const s = v ? c.g.values[v]?.shape : undefined;
  return s && s.every((d) => typeof d === 'number') ? (s as number[]) : undefined;
};
const isFloat = (c: Ctx, v: string) => ['float32', 'float16'].includes(c.g.values[v]?.dtype ?? '');

/** The single reader of `v`, when `v` is not a graph output. */
function onlyReader(c: Ctx, v: string | undefined): Node | undefined {
  if (!v || c.outputs.has(v)) return undefined;
  const r = c.readers.get(v);
  return r?.length === 1 ? r[0] : undefined;
}

const isOp = (n: Node | undefined, ...ops: string[]): n is Node => !!n && n.domain === '' && ops.includes(n.op);

function scalar(c: Ctx, v: string | undefined): number | undefined {
  const t = v ? c.g.initializers[v] : undefined;
  if (!t || t.dtype === 'string' || t.dtype === 'bool' || t.data.length !== 1) return undefined;
  return tensorToNumbers(t)[0];
}

function fresh(c: Ctx, hint: string): string {
  let name = hint;
  for (let i = 1; c.names.has(name) || c.g.values[name] || c.g.initializers[name]; i++) name = `${hint}_${i}`;
  c.names.add(name);
  return name;
}

function addNode(c: Ctx, name: string, op: string, inputs: string[], out: ValueInfo, attrs: Record<string, Attr> = {}): string {
  c.added.nodes.push({ name: fresh(c, name), op, domain: '', inputs, outputs: [out.name], attrs });
  c.added.values[out.name] = out;
  return out.name;
}

function reshape(c: Ctx, from: string, v: string, shape: number[]): string {
  const target = fresh(c, `${from}_shape`);
  c.added.initializers[target] = tensorFromNumbers('int64', [shape.length], shape);
  c.added.values[target] = { name: target, dtype: 'int64', shape: [shape.length] };
  const out = fresh(c, `${from}_4d`);
  const dtype = (c.g.values[v] ?? c.added.values[v])!.dtype;
  return addNode(c, `${from}_reshape`, 'Reshape', [v, target], { name: out, dtype, shape });
}

/** [.., S, D] of rank 2..4 as 4-D [N, H, S, D]. */
const as4d = (s: number[]): number[] => (s.length === 4 ? s : s.length === 3 ? [s[0]!, 1, s[1]!, s[2]!] : [1, 1, s[0]!, s[1]!]);

interface Chain {
  nodes: Node[];
  q: string;
  kt: string;
  v: string;
  scale: number;
  mask?: { kind: 'float' | 'bool' | 'bool-not'; value: string; fill?: number };
  out: string;
}

/** Walks forward from a MatMul to the chain's end, or undefined when the nodes do not form the pattern. */
function match(c: Ctx, mm: Node): Chain | undefined {
  if (!isOp(mm, 'MatMul') || !isFloat(c, mm.outputs[0]!)) return undefined;
  const nodes = [mm];
  let cur = mm.outputs[0]!;
  // Every step keeps the scores' shape: a mask that broadcast them up would not be a mask of these scores.
  const scores = JSON.stringify(shapeOf(c, cur) ?? null);
  const keeps = (n: Node) => JSON.stringify(shapeOf(c, n.outputs[0]) ?? null) === scores;
  let next = onlyReader(c, cur);
  let scale = 1;
  let scaleNode: Node | undefined;
  if (isOp(next, 'Div', 'Mul') && next.inputs[0] === cur) {
    const k = scalar(c, next.inputs[1]);
    if (k === undefined || k === 0) return undefined;
    scale = next.op === 'Div' ? 1 / k : k;
    scaleNode = next;
  } else if (isOp(next, 'Mul') && next.inputs[1] === cur) {
    const k = scalar(c, next.inputs[0]);
    if (k === undefined) return undefined;
    scale = k;
    scaleNode = next;
  } else if (isOp(next, 'Div', 'Mul')) {
    return undefined; // c / S, or a product with a non-constant
  }
  if (scaleNode) {
    if (!keeps(scaleNode)) return undefined;
    nodes.push(scaleNode);
    cur = scaleNode.outputs[0]!;
    next = onlyReader(c, cur);
  }
  let mask: Chain['mask'];
  const maskNode = next;
  if (isOp(next, 'Add')) {
    const m = next.inputs[0] === cur ? next.inputs[1] : next.inputs[0];
    if (!m || m === cur || c.g.values[m]?.dtype !== c.g.values[cur]?.dtype) return undefined;
    mask = { kind: 'float', value: m };
  } else if (isOp(maskNode, 'Where')) {
    const [cond, a, b] = maskNode.inputs;
    const fill = a === cur ? scalar(c, b) : b === cur ? scalar(c, a) : undefined;
    if (!cond || fill === undefined || Number.isNaN(fill) || fill === Infinity || c.g.values[cond]?.dtype !== 'bool') return undefined;
    mask = { kind: a === cur ? 'bool' : 'bool-not', value: cond, fill: fill === -Infinity ? undefined : fill };
  }
  if (mask && maskNode) {
    if (!keeps(maskNode)) return undefined;
    nodes.push(maskNode);
    cur = maskNode.outputs[0]!;
    next = onlyReader(c, cur);
  }
  const rank = shapeOf(c, cur)?.length ?? 0;
  // The chain's dtype: the scores', which the mask step kept. The Casts around Softmax must come back to it.
  const dtype = c.g.values[cur]?.dtype;
  const dtypeOf = (v: string | undefined) => (v ? c.g.values[v]?.dtype : undefined);
  // Cast(to float32) before Softmax (float16 exports, autocast, softmax(dtype=float32)): the kernel's online
  // softmax accumulates in f32 already, so the up-cast is what it does anyway. Only from the chain's dtype.
  if (isOp(next, 'Cast')) {
    if (next.inputs[0] !== cur || dtypeOf(next.outputs[0]) !== 'float32' || !keeps(next)) return undefined;
    nodes.push(next);
    cur = next.outputs[0]!;
    next = onlyReader(c, cur);
  }
  if (!isOp(next, 'Softmax')) return undefined;
  const axis = next.attrs.axis?.type === 'int' ? next.attrs.axis.value : -1;
  if (axis !== -1 && axis !== rank - 1) return undefined;
  nodes.push(next);
  let p = next.outputs[0]!;
  let pv = onlyReader(c, p);
  // Cast back to the chain's dtype after Softmax (the probabilities rounded to float16 before the MatMul with V,
  // which the kernel's store in V's dtype does once at the end instead).
  if (isOp(pv, 'Cast')) {
    if (pv.inputs[0] !== p || dtypeOf(pv.outputs[0]) !== dtype || !keeps(pv)) return undefined;
    nodes.push(pv);
    p = pv.outputs[0]!;
    pv = onlyReader(c, p);
  }
  // What the MatMul reads must be of the chain's dtype: a Cast to float32 with no Cast back (or a Cast to another
  // type) leaves a MatMul of mixed or other types, which is not this pattern.
  if (!isOp(pv, 'MatMul') || pv.inputs[0] !== p || dtypeOf(p) !== dtype) return undefined;
  nodes.push(pv);
  return { nodes, q: mm.inputs[0]!, kt: mm.inputs[1]!, v: pv.inputs[1]!, scale, mask, out: pv.outputs[0]! };
}

/** Builds the replacement (helper nodes into c.added) or undefined when shapes rule the chain out. */
function rewrite(c: Ctx, ch: Chain): Node | undefined {
  const [qs, kts, vs, ys] = [shapeOf(c, ch.q), shapeOf(c, ch.kt), shapeOf(c, ch.v), shapeOf(c, ch.out)];
  if (!qs || !kts || !vs || !ys) return undefined;
  const rank = qs.length;
  if (rank < 2 || rank > 4 || kts.length !== rank || vs.length !== rank || ys.length !== rank) return undefined;
  const dtype = c.g.values[ch.q]!.dtype;
  if (c.g.values[ch.kt]!.dtype !== dtype || c.g.values[ch.v]!.dtype !== dtype) return undefined;
  const [q4, kt4, v4] = [as4d(qs), as4d(kts), as4d(vs)];
  // q4 [B, H, S, D], kt4 [B, Hk, D, T], v4 [B, Hk, T, Dv]
  if (kt4[0] !== q4[0] || v4[0] !== q4[0] || kt4[1] !== v4[1] || (kt4[1] !== q4[1] && kt4[1] !== 1)) return undefined;
  if (kt4[2] !== q4[3] || v4[2] !== kt4[3]) return undefined;
  const base = ch.nodes[0]!.name || 'attention';
  // K as [.., T, D]: the input of a swapping Transpose, else a Transpose of Kt.
  const tp = c.producer.get(ch.kt);
  const swap = rank === 2 ? [1, 0] : rank === 3 ? [0, 2, 1] : [0, 1, 3, 2];
  const perm = tp?.attrs.perm?.type === 'ints' ? tp.attrs.perm.value : undefined;
  let k: string;
  if (isOp(tp, 'Transpose') && perm && perm.length === rank && perm.every((p, i) => p === swap[i])) {
    k = tp.inputs[0]!;
    // The Transpose goes too when the chain was its only reader.
    if (onlyReader(c, ch.kt) === ch.nodes[0]) ch.nodes.unshift(tp);
  } else {
    const ks = [...kts.slice(0, -2), kts[rank - 1]!, kts[rank - 2]!];
    k = addNode(c, `${base}_k`, 'Transpose', [ch.kt], { name: fresh(c, `${base}_k`), dtype, shape: ks }, { perm: { type: 'ints', value: swap } });
  }
  const to4 = (v: string, s: number[]) => (rank === 4 ? v : reshape(c, base, v, as4d(s)));
  const ks4 = [kt4[0]!, kt4[1]!, kt4[3]!, kt4[2]!];
  const inputs = [to4(ch.q, qs), rank === 4 ? k : reshape(c, base, k, ks4), to4(ch.v, vs)];
  if (ch.mask) {
    let m = ch.mask.value;
    const ms = shapeOf(c, m);
    if (!ms || ms.length > rank) return undefined;
    // The mask broadcasts to the scores [.., S, T]; give it rank 2..4 aligned with the 4-D scores.
    if (ms.length === 3 && rank === 3) m = reshape(c, `${base}_mask`, m, [ms[0]!, 1, ms[1]!, ms[2]!]);
    else if (ms.length < 2) m = reshape(c, `${base}_mask`, m, [1, ms[0] ?? 1]);
    if (ch.mask.kind === 'bool-not') m = addNode(c, `${base}_mask_not`, 'Not', [m], { name: fresh(c, `${base}_mask_not`), dtype: 'bool', shape: c.added.values[m]?.shape ?? ms });
    inputs.push(m);
  }
  const fusedFrom = ch.nodes.map((n) => n.name);
  const attrs: Record<string, Attr> = {
    scale: { type: 'float', value: ch.scale },
    ...(ch.mask?.fill !== undefined ? { mask_fill: { type: 'float', value: ch.mask.fill } as Attr } : {}),
    fusion: { type: 'string', value: 'attention' },
    fused_from: { type: 'strings', value: fusedFrom },
  };
  if (rank === 4) return { name: fresh(c, `${base}_attention`), op: 'Attention', domain: '', inputs, outputs: [ch.out], attrs };
  // Ranks 2 and 3: the 4-D result reshaped back to Y's shape by a Reshape that takes the fused node's place.
  const y4 = fresh(c, `${base}_y4`);
  c.added.values[y4] = { name: y4, dtype, shape: [q4[0]!, q4[1]!, q4[2]!, v4[3]!] };
  c.added.nodes.push({ name: fresh(c, `${base}_attention`), op: 'Attention', domain: '', inputs, outputs: [y4], attrs });
  const target = fresh(c, `${base}_y_shape`);
  c.added.initializers[target] = tensorFromNumbers('int64', [rank], ys);
  c.added.values[target] = { name: target, dtype: 'int64', shape: [rank] };
  return { name: fresh(c, `${base}_y`), op: 'Reshape', domain: '', inputs: [y4, target], outputs: [ch.out], attrs: {} };
}

/** The graph with every recognised attention chain replaced by a fused Attention node; `g` itself when none is. */
export function fuseAttention(g: Graph): Graph {
  const c: Ctx = {
    g,
    readers: new Map(),
    producer: new Map(),
    outputs: new Set(g.outputs.map((o) => o.name)),
    names: new Set(g.nodes.map((n) => n.name)),
    added: { nodes: [], values: {}, initializers: {} },
  };
  for (const n of g.nodes) {
    for (const v of n.inputs) if (v) c.readers.set(v, [...(c.readers.get(v) ?? []), n]);
    for (const v of n.outputs) if (v) c.producer.set(v, n);
  }
  const removed = new Set<Node>();
  // The last node of each chain -> the nodes that take its place (helpers, then the fused node).
  const replace = new Map<Node, Node[]>();
  for (const n of g.nodes) {
    if (removed.has(n)) continue;
    const ch = match(c, n);
    if (!ch || ch.nodes.some((x) => removed.has(x))) continue;
    const before = c.added.nodes.length;
    const fused = rewrite(c, ch);
    if (!fused) {
      c.added.nodes.length = before;
      continue;
    }
    for (const x of ch.nodes) removed.add(x);
    replace.set(ch.nodes[ch.nodes.length - 1]!, [...c.added.nodes.slice(before), fused]);
  }
  if (!replace.size) return g;
  const nodes: Node[] = [];
  for (const n of g.nodes) {
    if (replace.has(n)) nodes.push(...replace.get(n)!);
    else if (!removed.has(n)) nodes.push(n);
  }
  return { ...g, nodes, values: { ...g.values, ...c.added.values }, initializers: { ...g.initializers, ...c.added.initializers } };
}
