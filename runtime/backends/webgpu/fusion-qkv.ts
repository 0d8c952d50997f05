import type { Graph, Node } from '../../ir/graph.js';
import type { HostTensor } from '../../ir/tensor.js';
import { applyMatches, fusionAttrs, GraphView, other, type Match } from './fusion-graph.js';

/**
 * Sibling projections as one GEMM: MatMuls that read the same input with constant 2-D weights of the same K
 * (a Transformer's Q, K and V projections; a gated MLP's gate and up), each optionally followed by Add(constant
 * row bias), and 2-D Gemms with a constant weight (transposed once when transB) and row bias, become one MatMul over the weights concatenated along N, with the biases concatenated likewise, and
 * one output per original projection. The matrix kernel (kernels/matmul.ts) writes column n of the product
 * straight into the output it belongs to, so there is no [.., 3N] intermediate and no split copy: the outputs
 * are the values the graph already had, in their own buffers.
 *
 * Gains: the input is read once instead of three times and one dispatch replaces three (six with the biases).
 * The concatenated weights are built once per set of weights (cached by tensor identity, so every plan of a
 * session shares one upload) and the originals are no longer read by the plan.
 *
 * Not fused: a projection whose only reader is an activation the epilogue folds (kept with it), weights bound externally (the GPU trainer's parameters change between runs: `bound`), weights of
 * different dtypes, a projection with an activation or residual already folded in, more than MAX_GROUP siblings.
 */

const MAX_GROUP = 4;

interface Projection {
  mm: Node;
  /** The weight as [K, N] (a Gemm's transB weight transposed once, cached). */
  w: HostTensor;
  wName: string;
  k: number;
  n: number;
  add?: Node;
  bias?: HostTensor;
  y: string;
}

const catCache = new WeakMap<HostTensor, { parts: HostTensor[]; cat: HostTensor }[]>();

/** Matrices [K, N_i] (or vectors [N_i]) side by side: [K, sum N_i] (or [sum N_i]), cached by the parts' identity. */
function concatColumns(parts: HostTensor[], k: number, vector = false): HostTensor {
  const hit = catCache.get(parts[0]!)?.find((e) => e.parts.length === parts.length && e.parts.every((p, i) => p === parts[i]));
  if (hit) return hit.cat;
  const widths = parts.map((p) => p.data.length / k);
  const total = widths.reduce((a, b) => a + b, 0);
  const Ctor = parts[0]!.data.constructor as new (n: number) => HostTensor['data'];
  const data = new Ctor(k * total) as unknown as { set(src: ArrayLike<number>, at: number): void };
  for (let r = 0; r < k; r++) {
    let at = r * total;
    parts.forEach((p, i) => {
      const src = p.data as unknown as { subarray(a: number, b: number): ArrayLike<number> };
      data.set(src.subarray(r * widths[i]!, (r + 1) * widths[i]!), at);
      at += widths[i]!;
    });
  }
  const cat: HostTensor = { dtype: parts[0]!.dtype, shape: vector ? [total] : [k, total], data: data as unknown as HostTensor['data'] };
  catCache.set(parts[0]!, [...(catCache.get(parts[0]!) ?? []), { parts, cat }]);
  return cat;
}

function projection(view: GraphView, mm: Node, bound: ReadonlySet<string>, foldable: (consumer: Node) => boolean): Projection | undefined {
  if (mm.op !== 'MatMul' || mm.domain !== '' || mm.inputs.length !== 2 || mm.outputs.length !== 1 || mm.attrs.activation || mm.attrs.residual) return undefined;
  const wName = mm.inputs[1]!;
  const w = view.g.initializers[wName];
  const ws = view.shape(wName);
  const xs = view.shape(mm.inputs[0]);
  if (!w || bound.has(wName) || !ws || ws.length !== 2 || !xs || xs.length < 2 || !view.isFloat(mm.inputs[0]) || w.dtype !== view.info(mm.inputs[0]!)?.dtype) return undefined;
  const [k, n] = ws as [number, number];
  const out = mm.outputs[0]!;
  const add = view.only(out);
  if (add?.op === 'Add' && add.domain === '') {
    const b = other(add, out);
    const bias = b ? view.g.initializers[b] : undefined;
    const bs = view.shape(b);
    const ys = view.shape(add.outputs[0]);
    if (bias && b && !bound.has(b) && bias.dtype === w.dtype && bs && bias.data.length === n && bs[bs.length - 1] === n && ys?.join() === view.shape(out)?.join()) {
      const p = { mm, w, wName, k, n, add, bias, y: add.outputs[0]! };
      const next = view.only(p.y);
      return next && foldable(next) ? undefined : p;
    }
  }
  const next = view.only(out);
  return next && foldable(next) ? undefined : { mm, w, wName, k, n, y: out };
}

const transposed = new WeakMap<HostTensor, HostTensor>();
/** [N, K] -> [K, N], once per tensor. */
function transpose(t: HostTensor): HostTensor {
  let r = transposed.get(t);
  if (r) return r;
  const [rows, cols] = t.shape as [number, number];
  const Ctor = t.data.constructor as new (n: number) => HostTensor['data'];
  const src = t.data as unknown as ArrayLike<number>;
  const data = new Ctor(rows * cols) as unknown as number[];
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) data[j * rows + i] = src[i * cols + j]!;
  transposed.set(t, (r = { dtype: t.dtype, shape: [cols, rows], data: data as unknown as HostTensor['data'] }));
  return r;
}

/**
 * A 2-D projection exported as Gemm (torch.onnx writes nn.Linear on a 2-D input as Gemm(x, W, b, transB=1)):
 * transA 0, alpha 1, beta 1, constant W and a constant row bias C; the weight is taken as [K, N].
 */
function gemmProjection(view: GraphView, gm: Node, bound: ReadonlySet<string>, foldable: (consumer: Node) => boolean): Projection | undefined {
  if (gm.op !== 'Gemm' || gm.domain !== '' || gm.outputs.length !== 1 || gm.attrs.activation || gm.attrs.residual || gm.inputs.length > 3) return undefined;
  const num = (k: string, d: number) => {
    const a = gm.attrs[k];
    return a && (a.type === 'int' || a.type === 'float') ? a.value : d;
  };
  if (num('transA', 0) !== 0 || num('alpha', 1) !== 1 || num('beta', 1) !== 1) return undefined;
  const wName = gm.inputs[1]!;
  const raw = view.g.initializers[wName];
  const ws = view.shape(wName);
  const xs = view.shape(gm.inputs[0]);
  if (!raw || bound.has(wName) || ws?.length !== 2 || xs?.length !== 2 || !view.isFloat(gm.inputs[0]) || raw.dtype !== view.info(gm.inputs[0]!)?.dtype) return undefined;
  const w = num('transB', 0) !== 0 ? transpose(raw) : raw;
  const [k, n] = w.shape as [number, number];
  const b = gm.inputs[2];
  const bias = b ? view.g.initializers[b] : undefined;
  if (b && (!bias || bound.has(b) || bias.dtype !== raw.dtype || bias.data.length !== n || view.shape(b)?.[view.shape(b)!.length - 1] !== n)) return undefined;
  const y = gm.outputs[0]!;
  const next = view.only(y);
  return next && foldable(next) ? undefined : { mm: gm, w, wName, k, n, bias, y };
}

const zeroCache = new Map<string, HostTensor>();
/** A zero bias for a projection without one (cached, so the concatenation's cache still hits). */
function zeros(like: HostTensor, n: number): HostTensor {
  const key = `${like.dtype}:${n}`;
  let t = zeroCache.get(key);
  if (!t) {
    const Ctor = like.data.constructor as new (n: number) => HostTensor['data'];
    zeroCache.set(key, (t = { dtype: like.dtype, shape: [n], data: new Ctor(n) }));
  }
  return t;
}

/**
 * Groups of projections of one input fused (see the file comment); `bound` names weights that must stay.
 * `foldable` says whether a projection's only reader is an activation the epilogue would fold into it: such a
 * projection stays alone (its activation then costs no dispatch; in a group it would cost one).
 */
export function fuseProjections(g: Graph, bound: ReadonlySet<string> = new Set(), foldable: (consumer: Node) => boolean = () => false): Graph {
  const view = new GraphView(g);
  const matches: Match[] = [];
  for (const [x, readers] of view.readers) {
    const projs = [...new Set(readers)]
      .map((n) => (n.inputs[0] !== x ? undefined : n.op === 'Gemm' ? gemmProjection(view, n, bound, foldable) : projection(view, n, bound, foldable)))
      .filter((p): p is Projection => !!p);
    // Same K and weight dtype; projections of one weight tensor twice are left alone (no gain in concatenating).
    const k = projs[0]?.k;
    const group = projs.filter((p) => p.k === k && p.w.dtype === projs[0]!.w.dtype).slice(0, MAX_GROUP);
    if (group.length < 2 || new Set(group.map((p) => p.w)).size !== group.length) continue;
    const wCat = concatColumns(group.map((p) => p.w), k!);
    const withBias = group.some((p) => p.bias);
    const bCat = withBias ? concatColumns(group.map((p) => p.bias ?? zeros(p.w, p.n)), 1, true) : undefined;
    const names = group.map((p) => p.wName).join('+');
    const wKey = `edgekit/qkv/${names}`;
    const bKey = `edgekit/qkv-bias/${names}`;
    const nodes = group.flatMap((p) => (p.add ? [p.mm, p.add] : [p.mm]));
    const fused: Node = {
      name: group[0]!.mm.name, op: 'MatMul', domain: '',
      inputs: [x, wKey, ...(bCat ? [bKey] : [])],
      outputs: group.map((p) => p.y),
      attrs: fusionAttrs(group.length === 3 ? 'QKV' : 'MatMulGroup', nodes),
    };
    matches.push({ nodes, fused, at: 'first', initializers: { [wKey]: wCat, ...(bCat ? { [bKey]: bCat } : {}) } });
  }
  return applyMatches(g, matches);
}
