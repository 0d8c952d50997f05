import { attrInt, type Graph, type Node } from '../../ir/graph.js';
import { applyMatches, fusionAttrs, GraphView, other, type Match } from './fusion-graph.js';
import { DYNAMIC_CONV, DYNAMIC_MATMUL } from './kernels/quant-matmul.js';

/**
 * Dynamic int8 chains onto one kernel each, for the WebGPU plan (issue #11). The quantizer's int8-dynamic files
 * (quantize/dynamic-int8.ts, the form onnxruntime's dynamic quantizer writes) compute each layer as
 *   DynamicQuantizeLinear(x) -> (x_q, x_scale, x_zp)
 *   ConvInteger(x_q, w, x_zp, w_zp) | MatMulInteger(x_q, w, x_zp) -> Cast(to float) -> Mul(·, Mul(x_scale, w_scale))
 *   [-> Add(bias)] [-> Relu]
 * which, run as written, is the packed integer product and then four or five elementwise dispatches, each moving one
 * 32-bit word per element (about a quarter of the Fashion CNN's GPU time). This pass replaces the chain from the
 * integer product on with one ConvIntegerToFloat / MatMulIntegerToFloat node (kernels/quant-matmul.ts): the packed
 * kernel with a float epilogue that reads x_scale from the DynamicQuantizeLinear's 1-element output and writes
 * act(f32(acc) * (x_scale * w_scale[c]) + bias[c]), rounding as the unfused ops do (quant-matmul-packed.ts
 * ScaledOutput), so the fused plan's outputs are the unfused plan's bit for bit. DynamicQuantizeLinear itself stays.
 *
 * A chain is fused only when
 * - the product's weight (and its zero point, if any) is a constant, 2-D for MatMulInteger (the packed kernels');
 * - x_q and x_scale are outputs 0 and 1 of one DynamicQuantizeLinear, the scale Mul's other operand a float32
 *   constant of one value or one per output channel (the quantizer's w_scale: [] / [M, 1, ..] / [N]);
 * - the Cast is to float32 and the bias a float32 constant of one value or one per output channel;
 * - neither Mul nor the Add broadcasts the product to a larger shape;
 * - every intermediate (the int32 product, the Cast's and the Muls' outputs) has no reader outside the chain and is
 *   not a graph output (applyMatches); the scale Mul stays when something else reads its output.
 * Relu is the one activation folded: it is what the quantized CNNs have after each layer; any other activation
 * stays its own dispatch. Fused nodes carry attrs.fusion ('ConvInteger+Scale+Bias+Relu'...) and attrs.fused_from.
 * The CPU backend runs the model as written and is the reference, with onnxruntime-node
 * (tests/webgpu/dynamic-int8-fusion.test.ts).
 */

const PRODUCTS: Readonly<Record<string, string>> = { ConvInteger: DYNAMIC_CONV, MatMulInteger: DYNAMIC_MATMUL };

/** ONNX TensorProto.DataType FLOAT: Cast's `to` for float32. */
const FLOAT = 1;

/** The graph with every fusable dynamic-int8 chain rewritten; `g` itself when none is found. */
export function fuseDynamicInt8(g: Graph): Graph {
  const view = new GraphView(g);
  const matches: Match[] = [];
  for (const n of g.nodes) {
    const m = matchAt(view, n);
    if (m) matches.push(m);
  }
  return applyMatches(g, matches);
}

/** The product's output channel count: axis 1 of ConvInteger's [N, M, ..], the last of MatMulInteger's [.., N]. */
function channelAxis(p: Node, rank: number): number {
  return p.op === 'ConvInteger' ? 1 : rank - 1;
}

/**
 * Whether float32 constant `v` holds one value or one per channel of an output of shape `out` (channel axis
 * `axis`), broadcasting without growing it: right-aligned, every dim 1 but the channel axis.
 */
function perChannel(view: GraphView, v: string | undefined, out: number[], axis: number): boolean {
  const t = v ? view.g.initializers[v] : undefined;
  if (!t || t.dtype !== 'float32' || t.shape.length > out.length) return false;
  if (t.data.length === 1) return true;
  const lead = out.length - t.shape.length;
  return t.shape.every((d, i) => d === 1 || (i + lead === axis && d === out[axis]));
}

const sameShape = (a: number[] | undefined, b: number[] | undefined) => !!a && !!b && a.length === b.length && a.every((d, i) => d === b[i]);

function matchAt(view: GraphView, p: Node): Match | undefined {
  const op = PRODUCTS[p.op];
  if (!op || p.domain !== '' || p.outputs.length !== 1) return undefined;
  const [xq, w, xzp, wzp] = p.inputs;
  const wt = w ? view.g.initializers[w] : undefined;
  if (!wt || (wzp && !view.g.initializers[wzp]) || (p.op === 'MatMulInteger' && wt.shape.length !== 2)) return undefined;
  const dql = view.made(xq, 'DynamicQuantizeLinear');
  const xs = dql?.outputs[1];
  if (!dql || dql.outputs[0] !== xq || !xs) return undefined;
  const acc = p.outputs[0]!;
  const shape = view.shape(acc);
  if (!shape) return undefined;
  const axis = channelAxis(p, shape.length);

  const cast = view.only(acc);
  if (!cast || cast.op !== 'Cast' || cast.domain !== '' || attrInt(cast, 'to', 0) !== FLOAT) return undefined;
  const accF = cast.outputs[0]!;
  const mul = view.only(accF);
  const scale = mul && mul.op === 'Mul' && mul.domain === '' ? other(mul, accF) : undefined;
  if (!mul || !scale || !sameShape(view.shape(mul.outputs[0]), shape)) return undefined;
  // The scale: Mul(x_scale, w_scale) in either order, x_scale this product's DynamicQuantizeLinear's.
  const sm = view.made(scale, 'Mul');
  const ws = sm && other(sm, xs);
  if (!ws || !perChannel(view, ws, shape, axis)) return undefined;
  const nodes = [p, cast, mul, ...(view.only(scale) === mul ? [sm] : [])];
  let out = mul.outputs[0]!;
  let bias: string | undefined;
  const add = view.only(out);
  const b = add && add.op === 'Add' && add.domain === '' ? other(add, out) : undefined;
  if (add && b && perChannel(view, b, shape, axis) && sameShape(view.shape(add.outputs[0]), shape)) {
    bias = b;
    nodes.push(add);
    out = add.outputs[0]!;
  }
  const relu = view.only(out);
  const act = relu?.op === 'Relu' && relu.domain === '' ? relu : undefined;
  if (act) {
    nodes.push(act);
    out = act.outputs[0]!;
  }
  if (view.info(out)?.dtype !== 'float32') return undefined;
  const kind = [p.op, 'Scale', ...(bias ? ['Bias'] : []), ...(act ? ['Relu'] : [])].join('+');
  const fused: Node = {
    name: p.name,
    op,
    domain: '',
    inputs: [xq!, w!, xzp ?? '', wzp ?? '', xs, ws, bias ?? ''],
    outputs: [out],
    attrs: { ...(p.op === 'ConvInteger' ? p.attrs : {}), ...(act ? { activation: { type: 'string', value: 'Relu' } } : {}), ...fusionAttrs(kind, nodes) },
  };
  return { nodes, fused };
}
