import type { Graph, Node } from '../../ir/graph.js';
import { msOp } from '../../ir/ops/contrib.js';
import { applyMatches, fusionAttrs, GraphView, other, type Match } from './fusion-graph.js';

/**
 * GELU and SiLU as exporters write them out, replaced in the GPU plan's graph by one elementwise node (which the
 * epilogue pass of fusion.ts may then fold into the MatMul before it):
 *
 *   erf form (torch.onnx nn.GELU(), HF's gelu):   x * 0.5 * (1 + Erf(x / sqrt 2))      -> Gelu(x)
 *   tanh form (nn.GELU('tanh'), HF's gelu_new):   0.5 * x * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
 *                                                                                      -> Gelu(x, approximate='tanh')
 *   SiLU / Swish (torch.onnx nn.SiLU()):          x * Sigmoid(x)                       -> com.microsoft.QuickGelu(x, alpha=1)
 *   QuickGelu written out:                        x * Sigmoid(alpha * x)               -> com.microsoft.QuickGelu(x, alpha)
 *
 * The x / sqrt 2 may be Mul(x, 1/sqrt 2); x^3 may be Pow(x, 3) or Mul(x, Mul(x, x)) in either order; the three
 * factors x, 0.5 and (1 + ...) may be multiplied in any association and operand order. Every constant is checked
 * (to its own precision, fusion-graph.ts GraphView.near()): a GELU written with other constants computes something
 * else and is left alone, as is any pattern whose intermediates are read elsewhere.
 */

const SQRT2 = Math.SQRT2;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const KAPPA = 0.044715;

const is = (n: Node | undefined, op: string): n is Node => n?.op === op && n.domain === '';

/**
 * The nodes multiplying x, p and 0.5 starting from p (p's only reader is the first Mul): (x * p) * 0.5,
 * (p * 0.5) * x, (0.5 * x) * p, in any operand order. Returns the Muls and the product's value.
 */
function timesHalfX(view: GraphView, p: string, x: string): { nodes: Node[]; y: string } | undefined {
  const m1 = view.only(p);
  if (!is(m1, 'Mul')) return undefined;
  const q = other(m1, p);
  if (q === undefined || q === '') return undefined;
  const mid = m1.outputs[0]!;
  const m2 = view.only(mid);
  if (q === x) {
    if (is(m2, 'Mul') && view.near(other(m2, mid), 0.5)) return { nodes: [m1, m2], y: m2.outputs[0]! };
    return undefined;
  }
  if (view.near(q, 0.5)) {
    if (is(m2, 'Mul') && other(m2, mid) === x) return { nodes: [m1, m2], y: m2.outputs[0]! };
    return undefined;
  }
  const h = view.producer.get(q);
  if (is(h, 'Mul') && view.only(q) === m1) {
    const hx = h.inputs[0] === x ? h.inputs[1] : h.inputs[1] === x ? h.inputs[0] : undefined;
    if (hx !== undefined && view.near(hx, 0.5)) return { nodes: [h, m1], y: mid };
  }
  return undefined;
}

/** Add(v, 1) (either order) as v's only reader: [the Add, its output]. */
function plusOne(view: GraphView, v: string): Node | undefined {
  const add = view.only(v);
  return is(add, 'Add') && view.scalar(other(add, v)) === 1 ? add : undefined;
}

function geluNode(last: Node, x: string, y: string, tanh: boolean, nodes: Node[]): Match {
  const fused: Node = {
    name: last.name, op: 'Gelu', domain: '', inputs: [x], outputs: [y],
    attrs: { approximate: { type: 'string', value: tanh ? 'tanh' : 'none' }, ...fusionAttrs(tanh ? 'GeluTanh' : 'Gelu', nodes) },
  };
  return { nodes, fused };
}

/** Erf(x / sqrt 2) or Erf(x * (1 / sqrt 2)): x, or undefined. */
function erfArgument(view: GraphView, erf: Node): { x: string; node: Node } | undefined {
  const u = erf.inputs[0];
  const d = u ? view.producer.get(u) : undefined;
  if (is(d, 'Div') && view.near(d.inputs[1], SQRT2)) return { x: d.inputs[0]!, node: d };
  if (is(d, 'Mul')) {
    for (const [a, b] of [[0, 1], [1, 0]] as const) if (view.near(d.inputs[b], Math.SQRT1_2)) return { x: d.inputs[a]!, node: d };
  }
  return undefined;
}

function erfGelus(view: GraphView): Match[] {
  const out: Match[] = [];
  for (const erf of view.g.nodes) {
    if (!is(erf, 'Erf')) continue;
    const arg = erfArgument(view, erf);
    if (!arg || !view.isFloat(arg.x)) continue;
    const add = plusOne(view, erf.outputs[0]!);
    const prod = add && timesHalfX(view, add.outputs[0]!, arg.x);
    if (!prod) continue;
    out.push(geluNode(prod.nodes[prod.nodes.length - 1]!, arg.x, prod.y, false, [arg.node, erf, add, ...prod.nodes]));
  }
  return out;
}

/** x^3 as Pow(x, 3), Mul(x, Mul(x, x)) or Mul(Mul(x, x), x): the nodes, or undefined. */
function cubeOf(view: GraphView, v: string, x: string): Node[] | undefined {
  const n = view.producer.get(v);
  if (!n || n.domain !== '') return undefined;
  if (n.op === 'Pow') return n.inputs[0] === x && view.scalar(n.inputs[1]) === 3 ? [n] : undefined;
  if (n.op !== 'Mul') return undefined;
  const sq = n.inputs[0] === x ? n.inputs[1] : n.inputs[1] === x ? n.inputs[0] : undefined;
  const s = sq ? view.producer.get(sq) : undefined;
  return is(s, 'Mul') && s.inputs[0] === x && s.inputs[1] === x ? [s, n] : undefined;
}

function tanhGelus(view: GraphView): Match[] {
  const out: Match[] = [];
  for (const t of view.g.nodes) {
    if (!is(t, 'Tanh')) continue;
    // inner = sqrt(2/pi) * s
    const inner = view.producer.get(t.inputs[0]!);
    if (!is(inner, 'Mul')) continue;
    const sIdx = view.near(inner.inputs[0], SQRT_2_OVER_PI) ? 1 : view.near(inner.inputs[1], SQRT_2_OVER_PI) ? 0 : -1;
    if (sIdx < 0) continue;
    // s = x + kappa * x^3
    const s = view.producer.get(inner.inputs[sIdx]!);
    if (!is(s, 'Add')) continue;
    let found: { x: string; nodes: Node[] } | undefined;
    for (const [xi, ki] of [[0, 1], [1, 0]] as const) {
      const x = s.inputs[xi]!;
      const k = view.producer.get(s.inputs[ki]!);
      if (!is(k, 'Mul')) continue;
      const ci = view.near(k.inputs[0], KAPPA) ? 1 : view.near(k.inputs[1], KAPPA) ? 0 : -1;
      const cube = ci < 0 ? undefined : cubeOf(view, k.inputs[ci]!, x);
      if (cube) found = { x, nodes: [...cube, k] };
    }
    if (!found || !view.isFloat(found.x)) continue;
    const add = plusOne(view, t.outputs[0]!);
    const prod = add && timesHalfX(view, add.outputs[0]!, found.x);
    if (!prod) continue;
    out.push(geluNode(prod.nodes[prod.nodes.length - 1]!, found.x, prod.y, true, [...found.nodes, s, inner, t, add, ...prod.nodes]));
  }
  return out;
}

/** x * Sigmoid(x) and x * Sigmoid(alpha * x). */
function sigmoidGates(view: GraphView): Match[] {
  const out: Match[] = [];
  for (const sg of view.g.nodes) {
    if (!is(sg, 'Sigmoid')) continue;
    let x = sg.inputs[0]!;
    let alpha = 1;
    const nodes: Node[] = [sg];
    const scaled = view.producer.get(x);
    if (is(scaled, 'Mul')) {
      for (const [a, b] of [[0, 1], [1, 0]] as const) {
        const c = view.scalar(scaled.inputs[b]);
        if (c !== undefined && view.isFloat(scaled.inputs[a])) {
          const xa = scaled.inputs[a]!;
          const m = view.only(sg.outputs[0]);
          // Only when the gate multiplies the unscaled x: x * Sigmoid(alpha * x).
          if (is(m, 'Mul') && other(m, sg.outputs[0]!) === xa) {
            x = xa;
            alpha = c;
            nodes.unshift(scaled);
          }
          break;
        }
      }
    }
    const m = view.only(sg.outputs[0]);
    if (!is(m, 'Mul') || other(m, sg.outputs[0]!) !== x || !view.isFloat(x)) continue;
    nodes.push(m);
    const fused: Node = {
      name: m.name, op: msOp('QuickGelu'), domain: '', inputs: [x], outputs: [...m.outputs],
      attrs: { alpha: { type: 'float', value: alpha }, ...fusionAttrs(alpha === 1 ? 'SiLU' : 'QuickGelu', nodes) },
    };
    out.push({ nodes, fused });
  }
  return out;
}

/** GELU (both forms) and SiLU / QuickGelu collapsed (see the file comment). */
export function fuseGelus(g: Graph): Graph {
  const view = new GraphView(g);
  return applyMatches(g, [...erfGelus(view), ...tanhGelus(view), ...sigmoidGates(view)]);
}
