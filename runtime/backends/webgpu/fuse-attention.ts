import type { Attr, Graph, Node, ValueInfo } from '../../ir/graph.js';
import { tensorFromNumbers, tensorToNumbers, type HostTensor } from '../../ir/tensor.js';

/**
 * Attention fusion for the WebGPU plan (docs/attention.md): the chain torch.onnx writes for scaled dot-product
 * attention,
 *   S = MatMul(Q, Kt) -> [Div(S, c) | Mul(S, c)] -> [Add(S, M) | Where(C, S, fill)] -> Softmax(axis -1) -> MatMul(P, V)
 * becomes one Attention node (runtime/ir/ops/attention.ts) that the fused kernel runs without the [.., S, T] score
 * matrix. It runs on the specialized graph, so every shape is concrete.
 *
 * - Kt [.., D, T] made by a Transpose that only the chain reads becomes one Transpose of that Transpose's input (none
 *   when its perm is the swap of the last two axes); any other Kt gets a Transpose that swaps them back (O(T D), not
 *   O(S T)).
 * - Q and Kt pre-multiplied by constant scalars (torch >= 2.1's SDPA export: Mul(q, sqrt(scale)) and
 *   Mul(Transpose(k), sqrt(scale)), no scale after) go into the fused node, their factors into the scale.
 * - Packed layout: Q, Kt and V split into heads from [B, S, H*D] projections (Transpose(Reshape(x))) and Y merged
 *   back (Reshape(Transpose(Y))) become the 3-D form of Attention on the projections, writing the merged output;
 *   K and V as Concat(past, new) become its past inputs and present outputs (a decoder's KV cache).
 * - Ranks 2 and 3 (bmm over [B*H, S, D], nn.MultiheadAttention's form) are reshaped to [N, 1, S, D] and back.
 * - Batch dims must agree exactly, except a key/value head dim of 1 against H query heads (MQA written with
 *   broadcasting), which the kernel's head grouping covers.
 * - The scale is 1 / c for Div, c for Mul, 1 without either, times the pre-scales.
 * - Add(S, M): M is a float mask of Q's type broadcasting to the scores. Where(C, S, fill) with a constant scalar
 *   fill becomes the bool mask C (Where(C, fill, S): Not(C)) with the internal attribute mask_fill = fill, so a
 *   masked score becomes fill exactly as before, and a row masked throughout still spreads evenly as Softmax does
 *   (HF's finfo.min padding rows). A fill of -inf leaves mask_fill unset: the key takes no part, which differs only
 *   for a row masked throughout (Softmax gives NaN there, the kernel zeros). Add(S, Where(C, 0, -inf)) is the same
 *   (torch's SDPA export of a bool mask): C becomes the bool mask and the Where goes in.
 * - Casts and CastLikes: float32 -> float32 anywhere before Softmax and the chain's float16 -> float32 (float16
 *   exports, autocast: the kernel computes in f32 anyway); after Softmax back to the chain's dtype. A float mask
 *   must be added to scores of Q's dtype (the kernel's mask is Q's type). Any other Cast leaves the chain unfused.
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
  /** The chain's nodes that read `q` and `kt`: the first MatMul, or the Muls that pre-scale Q and Kᵀ. */
  qReader: Node;
  ktReader: Node;
  v: string;
  scale: number;
  mask?: { kind: 'float' | 'bool' | 'bool-not'; value: string; fill?: number };
  out: string;
}

/** A finite non-zero constant scalar `c` when `n` is Mul(x, c), Mul(c, x) or Div(x, c) (as the factor 1 / c). */
function scaleOf(c: Ctx, n: Node, x: string): number | undefined {
  if (!isOp(n, 'Mul', 'Div') || n.inputs.length !== 2) return undefined;
  const other = n.inputs[0] === x ? n.inputs[1] : n.op === 'Mul' && n.inputs[1] === x ? n.inputs[0] : undefined;
  const k = scalar(c, other);
  if (k === undefined || k === 0 || !Number.isFinite(k)) return undefined;
  return n.op === 'Div' ? 1 / k : k;
}

/**
 * The input of a pre-scaling Mul/Div on a MatMul operand (torch >= 2.1's SDPA export multiplies Q and Kᵀ each by
 * sqrt(scale); T5 and nn.MultiheadAttention scale Q alone): `v = Mul(x, c)` whose only reader is the MatMul, with
 * the same shape and dtype as `x` (a scalar that broadcast x up, or a per-channel factor, is not a scale).
 */
function preScaled(c: Ctx, v: string, reader: Node): { x: string; k: number; node: Node } | undefined {
  const n = c.producer.get(v);
  if (!n || onlyReader(c, v) !== reader) return undefined;
  const x = n.inputs.find((i) => i && !c.g.initializers[i]);
  if (!x) return undefined;
  const k = scaleOf(c, n, x);
  if (k === undefined) return undefined;
  const [sx, sv] = [shapeOf(c, x), shapeOf(c, v)];
  if (!sx || JSON.stringify(sx) !== JSON.stringify(sv) || c.g.values[x]?.dtype !== c.g.values[v]?.dtype) return undefined;
  return { x, k, node: n };
}

/** The dtype a Cast or CastLike produces (from the inferred value: the specialized graph has every dtype). */
const castTo = (c: Ctx, n: Node): string | undefined => c.g.values[n.outputs[0]!]?.dtype;

/** Walks forward from a MatMul to the chain's end, or undefined when the nodes do not form the pattern. */
function match(c: Ctx, mm: Node): Chain | undefined {
  if (!isOp(mm, 'MatMul') || !isFloat(c, mm.outputs[0]!)) return undefined;
  const nodes = [mm];
  let cur = mm.outputs[0]!;
  // The chain's dtype: the scores'. The Casts around Softmax must come back to it.
  const dtype = c.g.values[cur]?.dtype;
  const dtypeOf = (v: string | undefined) => (v ? c.g.values[v]?.dtype : undefined);
  // Every step keeps the scores' shape: a mask that broadcast them up would not be a mask of these scores.
  const scores = JSON.stringify(shapeOf(c, cur) ?? null);
  const keeps = (n: Node) => JSON.stringify(shapeOf(c, n.outputs[0]) ?? null) === scores;
  let next = onlyReader(c, cur);
  /**
   * Cast / CastLike nodes on the scores before Softmax: float32 -> float32 (the importer keeps them; exporters write
   * .float() and .type_as() that way), and the chain's float16 -> float32 (float16 exports and autocast): the
   * kernel's online softmax computes in f32 anyway. After an up-cast the scores are no longer of Q's type, so a
   * float mask added to them there would be float32 where the kernel takes Q's type: the mask step checks that.
   */
  const casts = () => {
    while (isOp(next, 'Cast', 'CastLike') && next.inputs[0] === cur && castTo(c, next) === 'float32' && keeps(next)) {
      const from = dtypeOf(cur);
      if (from !== 'float32' && from !== dtype) break;
      nodes.push(next);
      cur = next.outputs[0]!;
      next = onlyReader(c, cur);
    }
  };
  let scale = 1;
  casts();
  if (isOp(next, 'Div', 'Mul') && (next.inputs[0] === cur || (next.op === 'Mul' && next.inputs[1] === cur))) {
    const k = scaleOf(c, next, cur);
    if (k === undefined || !keeps(next)) return undefined; // c / S, a product with a non-constant, a zero scale
    scale = k;
    nodes.push(next);
    cur = next.outputs[0]!;
    next = onlyReader(c, cur);
    casts();
  } else if (isOp(next, 'Div', 'Mul')) {
    return undefined;
  }
  let mask: Chain['mask'];
  const maskNode = next;
  if (isOp(next, 'Add')) {
    const m = next.inputs[0] === cur ? next.inputs[1] : next.inputs[0];
    // A float mask of Q's type, added to scores of Q's type (not to up-cast ones: the kernel's mask is Q's type).
    if (!m || m === cur || dtypeOf(m) !== dtypeOf(cur) || dtypeOf(cur) !== dtype) return undefined;
    mask = { kind: 'float', value: m };
    // A bool mask made additive, Where(C, 0, -inf) (torch's SDPA export of a bool attn_mask) or Where(C, -inf, 0),
    // read only here: S + that is Where(C, S, -inf), so C becomes the kernel's bool mask (the key takes no part) and
    // the Where goes in. Like the Where(-inf) form, only a row masked throughout differs (NaN there, zeros here).
    const w = c.producer.get(m);
    if (isOp(w, 'Where') && onlyReader(c, m) === next && dtypeOf(w.inputs[0]) === 'bool' && JSON.stringify(shapeOf(c, w.inputs[0])) === JSON.stringify(shapeOf(c, m))) {
      const [a, b] = [scalar(c, w.inputs[1]), scalar(c, w.inputs[2])];
      const kind = a === 0 && b === -Infinity ? 'bool' : a === -Infinity && b === 0 ? 'bool-not' : undefined;
      if (kind) {
        mask = { kind, value: w.inputs[0]! };
        nodes.push(w);
      }
    }
  } else if (isOp(maskNode, 'Where')) {
    const [cond, a, b] = maskNode.inputs;
    const fill = a === cur ? scalar(c, b) : b === cur ? scalar(c, a) : undefined;
    if (!cond || fill === undefined || Number.isNaN(fill) || fill === Infinity || dtypeOf(cond) !== 'bool') return undefined;
    mask = { kind: a === cur ? 'bool' : 'bool-not', value: cond, fill: fill === -Infinity ? undefined : fill };
  }
  if (mask && maskNode) {
    if (!keeps(maskNode)) return undefined;
    nodes.push(maskNode);
    cur = maskNode.outputs[0]!;
    next = onlyReader(c, cur);
    casts();
  }
  const rank = shapeOf(c, cur)?.length ?? 0;
  if (!isOp(next, 'Softmax')) return undefined;
  const axis = next.attrs.axis?.type === 'int' ? next.attrs.axis.value : -1;
  if (axis !== -1 && axis !== rank - 1) return undefined;
  nodes.push(next);
  let p = next.outputs[0]!;
  let pv = onlyReader(c, p);
  // Casts back to the chain's dtype after Softmax (the probabilities rounded to float16 before the MatMul with V,
  // which the kernel's store in V's dtype does once at the end instead), and float32 -> float32 ones.
  while (isOp(pv, 'Cast', 'CastLike') && pv.inputs[0] === p && keeps(pv)) {
    const [from, to] = [dtypeOf(p), castTo(c, pv)];
    if (!(to === dtype && (from === 'float32' || from === dtype)) && !(from === 'float32' && to === 'float32')) return undefined;
    nodes.push(pv);
    p = pv.outputs[0]!;
    pv = onlyReader(c, p);
  }
  // What the MatMul reads must be of the chain's dtype: a Cast to float32 with no Cast back (or a Cast to another
  // type) leaves a MatMul of mixed or other types, which is not this pattern.
  if (!isOp(pv, 'MatMul') || pv.inputs[0] !== p || dtypeOf(p) !== dtype) return undefined;
  nodes.push(pv);
  // Q and Kᵀ pre-multiplied by constant scalars: the factors join the scale (q c1 . k c2 = c1 c2 q . k).
  const unscaled = (x: string): [string, Node] => {
    const p = preScaled(c, x, mm);
    if (!p) return [x, mm];
    scale *= p.k;
    nodes.unshift(p.node);
    return [p.x, p.node];
  };
  const [q, qReader] = unscaled(mm.inputs[0]!);
  const [kt, ktReader] = unscaled(mm.inputs[1]!);
  return { nodes, q, kt, qReader, ktReader, v: pv.inputs[1]!, scale, mask, out: pv.outputs[0]! };
}

const same = (a: readonly number[] | undefined, b: readonly number[]) => !!a && a.length === b.length && a.every((d, i) => d === b[i]);
const permOf = (n: Node | undefined) => (n?.attrs.perm?.type === 'ints' ? n.attrs.perm.value : undefined);
const HEADS = [0, 2, 1, 3];

/**
 * `x4` [B, H, S, D] as exporters make it from a projection x3 [B, S, H*D]: Transpose(Reshape(x3, [B, S, H, D]),
 * perm) with perm [0, 2, 1, 3] (Q, V), or [0, 2, 3, 1] for Kᵀ (`perm` composed with the last-axes swap is then
 * [0, 2, 1, 3]), each node read only by the next. Returns x3 and the two nodes, or undefined.
 */
function headSplit(c: Ctx, x4: string, reader: Node, swapped: boolean): { x3: string; nodes: Node[] } | undefined {
  const t = c.producer.get(x4);
  const perm = permOf(t);
  if (!isOp(t, 'Transpose') || !perm || perm.length !== 4 || onlyReader(c, x4) !== reader) return undefined;
  const eff = swapped ? [0, 1, 3, 2].map((i) => perm[i]!) : perm;
  if (!eff.every((p, i) => p === HEADS[i])) return undefined;
  const r = c.producer.get(t.inputs[0]!);
  if (!isOp(r, 'Reshape') || onlyReader(c, r.outputs[0]) !== t) return undefined;
  const [rs, xs] = [shapeOf(c, r.outputs[0]), shapeOf(c, r.inputs[0])];
  if (!rs || rs.length !== 4 || !same(xs, [rs[0]!, rs[1]!, rs[2]! * rs[3]!])) return undefined;
  return { x3: r.inputs[0]!, nodes: [r, t] };
}

/** Y4 [B, H, S, Dv] merged back as exporters write it: Reshape(Transpose(Y4, [0, 2, 1, 3]), [B, S, H*Dv]). */
function headMerge(c: Ctx, y4: string): { y3: string; nodes: Node[] } | undefined {
  const t = onlyReader(c, y4);
  const perm = permOf(t);
  if (!isOp(t, 'Transpose') || !perm || !same(perm, HEADS)) return undefined;
  const r = onlyReader(c, t.outputs[0]);
  if (!isOp(r, 'Reshape') || r.inputs[0] !== t.outputs[0]) return undefined;
  const [ts, ys] = [shapeOf(c, t.outputs[0]), shapeOf(c, r.outputs[0])];
  if (!ts || !same(ys, [ts[0]!, ts[1]!, ts[2]! * ts[3]!])) return undefined;
  return { y3: r.outputs[0]!, nodes: [t, r] };
}

/**
 * K or V [B, H, P + S, D] made as Concat(past, new) along the sequence (the decoder form: `present`), `new` split into
 * heads from a projection. `swapped`: `x` is Kᵀ, a [0, 1, 3, 2] Transpose of that Concat read only by the chain.
 * The Concat's output may be a graph output (the fused node writes it as its present output) but nothing else may
 * read it. A past of length 0 is left to the 4-D form.
 */
function pastSplit(c: Ctx, x: string, reader: Node, swapped: boolean): { x3: string; past: string; present: string; nodes: Node[] } | undefined {
  let x4 = x;
  const nodes: Node[] = [];
  let catReader = reader;
  if (swapped) {
    const t = c.producer.get(x);
    if (!isOp(t, 'Transpose') || !same(permOf(t) ?? [], [0, 1, 3, 2]) || onlyReader(c, x) !== reader) return undefined;
    x4 = t.inputs[0]!;
    nodes.push(t);
    catReader = t;
  }
  const cat = c.producer.get(x4);
  const axis = cat?.attrs.axis?.type === 'int' ? cat.attrs.axis.value : undefined;
  if (!isOp(cat, 'Concat') || cat.inputs.length !== 2 || (axis !== 2 && axis !== -2)) return undefined;
  if ((c.readers.get(x4) ?? []).some((r) => r !== catReader)) return undefined;
  const [past, fresh4] = cat.inputs as [string, string];
  const ps = shapeOf(c, past);
  if (!ps || ps.length !== 4 || ps[2] === 0) return undefined;
  const split = headSplit(c, fresh4, cat, false);
  if (!split) return undefined;
  return { x3: split.x3, past, present: x4, nodes: [...split.nodes, cat, ...nodes] };
}

interface Packed {
  q: string;
  k: string;
  v: string;
  y: string;
  /** past_key, past_value and the present outputs, for the decoder form. */
  past?: { key: string; value: string; presentKey: string; presentValue: string };
  before: Node[];
  after: Node[];
}

/**
 * The 4-D chain on the packed layout: when Q, Kᵀ and V are split into heads from [B, S, H*D] projections and Y is
 * merged back (the Reshape/Transpose pairs every hand-written attention and torch's SDPA export write), the fused
 * node reads the projections and writes the merged output itself, as the 3-D form of Attention with q_num_heads /
 * kv_num_heads. The eight Reshapes and Transposes (each a copy dispatch on the GPU) go into the fused node. K and V
 * may also be Concat(past, new) (a decoder with a KV cache): the past goes in as past_key / past_value and the
 * Concat's output becomes the fused node's present output.
 */
function packed(c: Ctx, ch: Chain, pv: Node): Packed | undefined {
  const q = headSplit(c, ch.q, ch.qReader, false);
  const y = q && headMerge(c, ch.out);
  if (!q || !y) return undefined;
  const k = headSplit(c, ch.kt, ch.ktReader, true);
  const v = k && headSplit(c, ch.v, pv, false);
  if (k && v) return { q: q.x3, k: k.x3, v: v.x3, y: y.y3, before: [...q.nodes, ...k.nodes, ...v.nodes], after: y.nodes };
  const kp = pastSplit(c, ch.kt, ch.ktReader, true);
  const vp = kp && pastSplit(c, ch.v, pv, false);
  if (!kp || !vp) return undefined;
  return {
    q: q.x3,
    k: kp.x3,
    v: vp.x3,
    y: y.y3,
    past: { key: kp.past, value: vp.past, presentKey: kp.present, presentValue: vp.present },
    before: [...q.nodes, ...kp.nodes, ...vp.nodes],
    after: y.nodes,
  };
}

/** The chain's mask as the fused node's attn_mask (rank 2..4, aligned with the 4-D scores), or undefined. */
function maskInput(c: Ctx, ch: Chain, base: string, rank: number): string | undefined {
  let m = ch.mask!.value;
  const ms = shapeOf(c, m);
  if (!ms || ms.length > rank) return undefined;
  // The mask broadcasts to the scores [.., S, T]; give it rank 2..4 aligned with the 4-D scores.
  if (ms.length === 3 && rank === 3) m = reshape(c, `${base}_mask`, m, [ms[0]!, 1, ms[1]!, ms[2]!]);
  else if (ms.length < 2) m = reshape(c, `${base}_mask`, m, [1, ms[0] ?? 1]);
  if (ch.mask!.kind === 'bool-not') m = addNode(c, `${base}_mask_not`, 'Not', [m], { name: fresh(c, `${base}_mask_not`), dtype: 'bool', shape: c.added.values[m]?.shape ?? ms });
  return m;
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
  const base = ch.nodes.find((n) => n.op === 'MatMul')!.name || 'attention';
  const pk = rank === 4 ? packed(c, ch, ch.nodes[ch.nodes.length - 1]!) : undefined;
  if (pk) {
    ch.nodes.unshift(...pk.before);
    ch.nodes.push(...pk.after);
    const inputs = [pk.q, pk.k, pk.v];
    if (ch.mask) {
      const m = maskInput(c, ch, base, 4);
      if (!m) return undefined;
      inputs.push(m);
    }
    if (pk.past) inputs.push(ch.mask ? inputs.pop()! : '', pk.past.key, pk.past.value);
    const attrs: Record<string, Attr> = {
      scale: { type: 'float', value: ch.scale },
      q_num_heads: { type: 'int', value: q4[1]! },
      kv_num_heads: { type: 'int', value: kt4[1]! },
      ...(ch.mask?.fill !== undefined ? { mask_fill: { type: 'float', value: ch.mask.fill } as Attr } : {}),
      fusion: { type: 'string', value: 'attention' },
      fused_from: { type: 'strings', value: ch.nodes.map((n) => n.name) },
    };
    const outputs = pk.past ? [pk.y, pk.past.presentKey, pk.past.presentValue] : [pk.y];
    return { name: fresh(c, `${base}_attention`), op: 'Attention', domain: '', inputs, outputs, attrs };
  }
  // K as [.., T, D]. Kt made by a Transpose(X, perm) that only the chain reads: K is X transposed by perm followed
  // by the swap of the last two axes, which is X itself when perm was that swap (torch's k.transpose(-2, -1)), and
  // otherwise one Transpose of X in place of the two (the importer folds view/transpose pairs into one perm such as
  // [0, 2, 3, 1]). Any other Kt gets a Transpose that swaps its last two axes back (O(T D), not O(S T)).
  const tp = c.producer.get(ch.kt);
  const swap = rank === 2 ? [1, 0] : rank === 3 ? [0, 2, 1] : [0, 1, 3, 2];
  const perm = tp?.attrs.perm?.type === 'ints' ? tp.attrs.perm.value : undefined;
  const ks = [...kts.slice(0, -2), kts[rank - 1]!, kts[rank - 2]!];
  let k: string;
  const composed = isOp(tp, 'Transpose') && perm?.length === rank ? swap.map((i) => perm[i]!) : undefined;
  const own = onlyReader(c, ch.kt) === ch.ktReader;
  if (tp && composed?.every((p, i) => p === i)) {
    k = tp.inputs[0]!;
    if (own) ch.nodes.unshift(tp); // the Transpose goes too when the chain was its only reader
  } else if (tp && composed && own) {
    ch.nodes.unshift(tp);
    k = addNode(c, `${base}_k`, 'Transpose', [tp.inputs[0]!], { name: fresh(c, `${base}_k`), dtype, shape: ks }, { perm: { type: 'ints', value: composed } });
  } else {
    k = addNode(c, `${base}_k`, 'Transpose', [ch.kt], { name: fresh(c, `${base}_k`), dtype, shape: ks }, { perm: { type: 'ints', value: swap } });
  }
  const to4 = (v: string, s: number[]) => (rank === 4 ? v : reshape(c, base, v, as4d(s)));
  const ks4 = [kt4[0]!, kt4[1]!, kt4[3]!, kt4[2]!];
  const inputs = [to4(ch.q, qs), rank === 4 ? k : reshape(c, base, k, ks4), to4(ch.v, vs)];
  if (ch.mask) {
    const m = maskInput(c, ch, base, rank);
    if (!m) return undefined;
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
