import { attrInt, type Graph, type Node } from '../../ir/graph.js';
import { msOp } from '../../ir/ops/contrib.js';
import { tensorFromNumbers, type HostTensor } from '../../ir/tensor.js';
import { applyMatches, fusionAttrs, GraphView, other, type Match } from './fusion-graph.js';

/**
 * LayerNorm and RMSNorm as exporters write them out, found in the GPU plan's graph and replaced by one row kernel
 * (kernels/normalization.ts, kernels/contrib-norm.ts), the residual Add before them included.
 *
 * torch.onnx (opsets 14-16; and any exporter at opset 18, where ReduceMean's axes became an input) expands
 * nn.LayerNorm into
 *   mean = ReduceMean(x, trailing axes, keepdims=1); d = Sub(x, mean); v = ReduceMean(Pow(d, 2) | Mul(d, d))
 *   y = Div(d, Sqrt(Add(v, eps))) [* gamma] [+ beta]
 * and an RMSNorm module (LLaMA, T5) writes
 *   y = x * Reciprocal(Sqrt(Add(ReduceMean(Pow(x, 2) | Mul(x, x)), eps)))   (or Div(1, ...), or Div(x, Sqrt(...)))
 *     [* gamma]
 * They become LayerNormalization(x, gamma, beta; axis, epsilon) and com.microsoft.SimplifiedLayerNormalization
 * (x, gamma; axis, epsilon). Both axes sets must be the same trailing axes; the exponent exactly 2; eps one
 * non-negative constant; gamma and beta constants varying only along the normalized axes. Anything else (and any
 * intermediate read outside the pattern, or a graph output in its middle: fusion-graph.ts) leaves the graph alone.
 *
 * When the normalized value is itself Add(a, b) of two tensors of its exact shape (the residual stream of a
 * Transformer) and the normalization is over the last axis, the Add joins the kernel: com.microsoft
 * SkipLayerNormalization / SkipSimplifiedLayerNormalization(a, b, gamma[, beta]), which also writes the sum (output 3)
 * when something else reads it. The model's own LayerNormalization and SimplifiedLayerNormalization nodes get their
 * residual Add fused the same way.
 *
 * LayerNorm first: its Pow(d, 2) -> ReduceMean would otherwise also read as an RMSNorm of d.
 */

interface NormFound {
  nodes: Node[];
  x: string;
  y: string;
  gamma?: string;
  beta?: string;
  epsilon: number;
  /** First normalized axis (the rest up to the rank are normalized too). */
  axis: number;
  simplified: boolean;
}

/** The trailing axes a keepdims ReduceMean reduces as the first of them, or undefined. */
function reducedFrom(view: GraphView, r: Node, rank: number): number | undefined {
  if (attrInt(r, 'keepdims', 1) !== 1) return undefined;
  const attr = r.attrs.axes;
  let axes: number[] | undefined;
  if (attr?.type === 'ints') axes = attr.value;
  else if (r.inputs[1]) {
    const c = view.constant(r.inputs[1]);
    axes = c ? [...c] : undefined;
  }
  if (!axes?.length) return undefined;
  const norm = [...new Set(axes.map((a) => (a < 0 ? a + rank : a)))].sort((a, b) => a - b);
  if (norm.length !== axes.length || norm[norm.length - 1] !== rank - 1) return undefined;
  return norm.every((a, i) => a === norm[0]! + i) ? norm[0] : undefined;
}

/** The node squaring `v` (Pow(v, 2) or Mul(v, v)) among its readers. */
function squareOf(view: GraphView, v: string): Node | undefined {
  return view.all(v).find(
    (n) => n.domain === '' && ((n.op === 'Pow' && n.inputs[0] === v && view.scalar(n.inputs[1]) === 2) || (n.op === 'Mul' && n.inputs[0] === v && n.inputs[1] === v)),
  );
}

/** ReduceMean(sq) -> Add(eps) -> Sqrt, each the only reader of the last: [nodes, eps, sqrt output]. */
function meanSquareRoot(view: GraphView, sq: Node, axis: number, rank: number): { nodes: Node[]; eps: number; root: string } | undefined {
  const r = view.only(sq.outputs[0]);
  if (r?.op !== 'ReduceMean' || r.domain !== '' || reducedFrom(view, r, rank) !== axis) return undefined;
  const add = view.only(r.outputs[0]);
  if (add?.op !== 'Add' || add.domain !== '') return undefined;
  const eps = view.scalar(other(add, r.outputs[0]!));
  if (eps === undefined || !(eps >= 0)) return undefined;
  const sqrt = view.only(add.outputs[0]);
  if (sqrt?.op !== 'Sqrt' || sqrt.domain !== '') return undefined;
  return { nodes: [r, add, sqrt], eps, root: sqrt.outputs[0]! };
}

/** A constant that varies only along axes [axis, rank) of a rank-`rank` value of shape `xs`. */
function rowParam(view: GraphView, v: string | undefined, xs: number[], axis: number): boolean {
  const s = view.shape(v);
  if (!s || !view.constant(v) || s.length > xs.length) return false;
  const aligned = [...new Array<number>(xs.length - s.length).fill(1), ...s];
  // The whole normalized shape, or one value.
  return aligned.every((d, i) => (i < axis ? d === 1 : d === xs[i])) || aligned.every((d) => d === 1);
}

/** Optional Mul(gamma) then Add(beta) after `v` (constants, either operand order). */
function affine(view: GraphView, v: string, xs: number[], axis: number, withBeta: boolean): { nodes: Node[]; y: string; gamma?: string; beta?: string } {
  const nodes: Node[] = [];
  let y = v;
  let gamma: string | undefined;
  let beta: string | undefined;
  const mul = view.only(y);
  if (mul?.op === 'Mul' && mul.domain === '' && rowParam(view, other(mul, y), xs, axis)) {
    gamma = other(mul, y)!;
    nodes.push(mul);
    y = mul.outputs[0]!;
  }
  const add = withBeta ? view.only(y) : undefined;
  if (add?.op === 'Add' && add.domain === '' && rowParam(view, other(add, y), xs, axis)) {
    beta = other(add, y)!;
    nodes.push(add);
    y = add.outputs[0]!;
  }
  return { nodes, y, gamma, beta };
}

function layerNorms(view: GraphView): NormFound[] {
  const found: NormFound[] = [];
  for (const mean of view.g.nodes) {
    if (mean.op !== 'ReduceMean' || mean.domain !== '') continue;
    const x = mean.inputs[0]!;
    const xs = view.shape(x);
    if (!xs || !view.isFloat(x)) continue;
    const axis = reducedFrom(view, mean, xs.length);
    if (axis === undefined) continue;
    const sub = view.only(mean.outputs[0]);
    if (sub?.op !== 'Sub' || sub.domain !== '' || sub.inputs[0] !== x || sub.inputs[1] !== mean.outputs[0]) continue;
    const d = sub.outputs[0]!;
    const sq = squareOf(view, d);
    if (!sq) continue;
    const msr = meanSquareRoot(view, sq, axis, xs.length);
    if (!msr) continue;
    const div = view.only(msr.root);
    if (div?.op !== 'Div' || div.domain !== '' || div.inputs[0] !== d || div.inputs[1] !== msr.root) continue;
    // d's readers: the square and the division only.
    if (view.all(d).some((n) => n !== sq && n !== div)) continue;
    const aff = affine(view, div.outputs[0]!, xs, axis, true);
    found.push({ nodes: [mean, sub, sq, ...msr.nodes, div, ...aff.nodes], x, y: aff.y, gamma: aff.gamma, beta: aff.beta, epsilon: msr.eps, axis, simplified: false });
  }
  return found;
}

function rmsNorms(view: GraphView): NormFound[] {
  const found: NormFound[] = [];
  for (const sq of view.g.nodes) {
    if (sq.domain !== '' || (sq.op !== 'Pow' && sq.op !== 'Mul')) continue;
    const x = sq.inputs[0]!;
    if (squareOf(view, x) !== sq) continue;
    const xs = view.shape(x);
    const r = view.only(sq.outputs[0]);
    if (!xs || !view.isFloat(x) || r?.op !== 'ReduceMean') continue;
    const axis = reducedFrom(view, r, xs.length);
    if (axis === undefined) continue;
    const msr = meanSquareRoot(view, sq, axis, xs.length);
    if (!msr) continue;
    // x / root, or x * (1 / root) with the reciprocal as Reciprocal or Div(1, root); Mul in either order.
    const next = view.only(msr.root);
    let scaled: Node | undefined;
    const nodes = [sq, ...msr.nodes];
    if (next?.domain === '' && next.op === 'Div' && next.inputs[0] === x && next.inputs[1] === msr.root) scaled = next;
    else if (next?.domain === '' && (next.op === 'Reciprocal' || (next.op === 'Div' && next.inputs[1] === msr.root && view.scalar(next.inputs[0]) === 1))) {
      // torch.onnx writes 1.0 / t as Reciprocal(t) * 1.0: a Mul by exactly 1 is skipped.
      let r = next.outputs[0]!;
      let mul = view.only(r);
      const unit = mul?.op === 'Mul' && mul.domain === '' && view.scalar(other(mul, r)) === 1 ? mul : undefined;
      if (unit) {
        r = unit.outputs[0]!;
        mul = view.only(r);
      }
      if (mul?.op === 'Mul' && mul.domain === '' && other(mul, r) === x) {
        nodes.push(next, ...(unit ? [unit] : []));
        scaled = mul;
      }
    }
    if (!scaled) continue;
    const aff = affine(view, scaled.outputs[0]!, xs, axis, false);
    found.push({ nodes: [...nodes, scaled, ...aff.nodes], x, y: aff.y, gamma: aff.gamma, epsilon: msr.eps, axis, simplified: true });
  }
  return found;
}

/** The model's own LayerNormalization / SimplifiedLayerNormalization nodes, as candidates for the residual fusion. */
function nativeNorms(view: GraphView): NormFound[] {
  const found: NormFound[] = [];
  for (const n of view.g.nodes) {
    const simplified = n.op === msOp('SimplifiedLayerNormalization');
    if ((n.op !== 'LayerNormalization' && !simplified) || n.domain !== '' || n.outputs.slice(1).some(Boolean)) continue;
    const xs = view.shape(n.inputs[0]);
    if (!xs) continue;
    const axis = attrInt(n, 'axis', -1);
    const eps = n.attrs.epsilon;
    found.push({
      nodes: [n], x: n.inputs[0]!, y: n.outputs[0]!, gamma: n.inputs[1], beta: simplified ? undefined : n.inputs[2] || undefined,
      epsilon: eps?.type === 'float' ? eps.value : 1e-5, axis: axis < 0 ? axis + xs.length : axis, simplified,
    });
  }
  return found;
}

const ones = new Map<string, HostTensor>();
/** A constant of ones (shared across plans, so the weight store uploads it once per session). */
function onesOf(dtype: HostTensor['dtype'], shape: number[]): HostTensor {
  const key = `${dtype}:${shape.join('x')}`;
  let t = ones.get(key);
  if (!t) ones.set(key, (t = tensorFromNumbers(dtype, shape, new Array<number>(shape.reduce((a, b) => a * b, 1)).fill(1))));
  return t;
}

const flat = new WeakMap<HostTensor, HostTensor>();
/** A row constant as the 1-D [H] the Skip* kernels want: the same data, cached by identity. */
function vectorOf(t: HostTensor, h: number): HostTensor {
  let v = flat.get(t);
  if (!v) flat.set(t, (v = { ...t, shape: [h] }));
  return v;
}

/** The fused node for one normalization, with the residual Add before it when there is one. */
function rewrite(view: GraphView, f: NormFound, bound: ReadonlySet<string>): Match | undefined {
  const xs = view.shape(f.x)!;
  const dtype = view.info(f.x)!.dtype;
  const last = f.nodes[f.nodes.length - 1]!;
  const rank = xs.length;
  const initializers: Record<string, HostTensor> = {};
  const param = (v: string | undefined, what: string, vector: boolean): string | undefined => {
    if (!v) return undefined;
    if (!vector || view.shape(v)?.join() === String(xs[rank - 1])) return v;
    const t = view.g.initializers[v];
    // A bound (trained) parameter's host copy is stale: it is never copied into a new constant.
    if (!t || bound.has(v) || t.data.length !== xs[rank - 1]) return undefined;
    const name = `${v}/${what}[${xs[rank - 1]}]`;
    initializers[name] = vectorOf(t, xs[rank - 1]!);
    return name;
  };
  const add = view.producer.get(f.x);
  const residual =
    add?.op === 'Add' && add.domain === '' && add.inputs.length === 2 && f.axis === rank - 1 &&
    add.inputs.every((v) => v && view.info(v)?.dtype === dtype && view.shape(v)?.join() === xs.join());
  let gamma = param(f.gamma, 'gamma', !!residual);
  if (f.gamma && !gamma) return undefined;
  if (!gamma) {
    const normalized = xs.slice(f.axis);
    gamma = `edgekit/ones/${dtype}[${normalized.join(',')}]`;
    initializers[gamma] = onesOf(dtype, residual ? [xs[rank - 1]!] : normalized);
  }
  const beta = param(f.beta, 'beta', !!residual);
  if (f.beta && !beta) return undefined;
  const epsilon = { type: 'float' as const, value: f.epsilon };
  if (residual) {
    // The sum stays a value when anything but this normalization reads it (the residual stream), or it is an output.
    const keepSum = view.outputs.has(f.x) || view.all(f.x).some((n) => !f.nodes.includes(n));
    const nodes = [add!, ...f.nodes];
    const op = f.simplified ? 'SkipSimplifiedLayerNormalization' : 'SkipLayerNormalization';
    const inputs = f.simplified ? [add!.inputs[0]!, add!.inputs[1]!, gamma] : [add!.inputs[0]!, add!.inputs[1]!, gamma, beta ?? ''];
    const fused: Node = {
      name: last.name, op: msOp(op), domain: '', inputs, outputs: [f.y, '', '', ...(keepSum ? [f.x] : [])],
      attrs: { epsilon, ...fusionAttrs(f.simplified ? 'SkipRMSNorm' : 'SkipLayerNorm', nodes) },
    };
    while (fused.inputs[fused.inputs.length - 1] === '') fused.inputs.pop();
    return { nodes, fused, initializers };
  }
  if (f.nodes.length === 1) return undefined; // a native norm without a residual: nothing to fuse
  const axis = { type: 'int' as const, value: f.axis };
  const fused: Node = f.simplified
    ? { name: last.name, op: msOp('SimplifiedLayerNormalization'), domain: '', inputs: [f.x, gamma], outputs: [f.y], attrs: { axis, epsilon, ...fusionAttrs('RMSNorm', f.nodes) } }
    : { name: last.name, op: 'LayerNormalization', domain: '', inputs: [f.x, gamma, ...(beta ? [beta] : [])], outputs: [f.y], attrs: { axis, epsilon, ...fusionAttrs('LayerNorm', f.nodes) } };
  return { nodes: f.nodes, fused, initializers };
}

/**
 * Expanded LayerNorm and RMSNorm fused, then residual Adds folded into the norms (see the file comment). `bound`
 * names values bound outside the plan (trained parameters), which are read as they are but never copied.
 */
export function fuseNorms(g: Graph, bound: ReadonlySet<string> = new Set()): Graph {
  for (const find of [layerNorms, rmsNorms, nativeNorms]) {
    const view = new GraphView(g);
    g = applyMatches(g, find(view).map((f) => rewrite(view, f, bound)).filter((m): m is Match => !!m));
  }
  return g;
}
