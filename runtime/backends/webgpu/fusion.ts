import type { Attr, Graph, Node } from '../../ir/graph.js';
import { msOp } from '../../ir/ops/contrib.js';
import { removeDeadCode } from '../../ir/passes/dead-code.js';
import { EW_OPS } from './kernels/elementwise-ops.js';
import { fuseAttention } from './fuse-attention.js';
import { fuseDynamicInt8 } from './fuse-dynamic-int8.js';
import { fuseInt4Weights } from './fuse-int4.js';
import { fuseQdq } from './fuse-qdq.js';
import { fuseQdqAdd } from './fuse-qdq-add.js';
import { fusionAttrs, fusionKind } from './fusion-graph.js';
import { fuseGelus } from './fusion-gelu.js';
import { fuseNorms } from './fusion-norm.js';
import { fuseProjections } from './fusion-qkv.js';
import { packQdqLayouts } from './qdq-layout.js';

/**
 * The graph the WebGPU plan runs: rewrites of the graph the GPU executes (never the model's IR, which the CPU
 * backend and the exporter keep using), in this order (docs/fusion.md lists them all):
 *   0. QDQ groups onto the int8 kernels (fuse-qdq.ts) and the attention chain into Attention (fuse-attention.ts);
 *   1. pattern fusions of Transformer expansions: LayerNorm / RMSNorm written out, with the residual Add before
 *      them (fusion-norm.ts); GELU (erf and tanh forms) and SiLU written out (fusion-gelu.ts); sibling projections
 *      of one input as one GEMM (fusion-qkv.ts);
 *   2. epilogue fusion into the matrix kernels (this file):
 *   MatMul(A [M, K], B [K, N]) -> Add(bias)            becomes  Gemm(A, B, bias)
 *   MatMul(A [.., M, K], B) -> Add(bias [N])           becomes  MatMul(A, B, bias) (a row bias, any batch)
 *   Conv | Gemm | MatMul -> Add(R), R of the same shape becomes  the producer with attribute residual=1, input 3 = R
 *   Conv | ConvTranspose | Gemm | MatMul -> <act>      becomes  the producer with attribute activation=<op>
 *   MatMul | Gemm -> com.microsoft FastGelu / BiasGelu (bias) becomes the producer with the bias and a Gelu
 * The activation attributes travel prefixed (activation_alpha...; Clip's constant bounds as activation_min/max),
 * which the matrix kernels read through kernels/epilogue.ts. The intermediate value then never exists: one
 * dispatch and no arena slot instead of two of each. com.microsoft Gelu, FastGelu, BiasGelu and QuickGelu fold as
 * the default-domain Gelu (FastGelu as approximate='tanh') and QuickGelu.
 *
 * A producer's output is fused only when the next node is its only reader and it is not a graph output. Every
 * node a rewrite creates carries attrs.fusion (its kind: 'LayerNorm', 'MatMul+Bias+Gelu'...) and attrs.fused_from
 * (the model's node names), which report() lists.
 */

export interface FuseOptions {
  /** Values bound outside the plan (GpuPlanOptions.bindings: trained weights): never folded into new constants. */
  bound?: Readonly<Record<string, unknown>>;
}

const PRODUCERS = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul']);

function readers(g: Graph): Map<string, Node[]> {
  const m = new Map<string, Node[]>();
  for (const n of g.nodes) for (const v of n.inputs) if (v) m.set(v, [...(m.get(v) ?? []), n]);
  return m;
}

function isFloat(g: Graph, v: string): boolean {
  const d = g.values[v]?.dtype;
  return d === 'float32' || d === 'float16';
}

/** The scalar value of a constant float input, or undefined. */
function constScalar(g: Graph, v: string): number | undefined {
  const t = g.initializers[v];
  return t && t.data.length === 1 && t.data instanceof Float32Array ? t.data[0] : undefined;
}

/** com.microsoft activations as the epilogue's: [epilogue op, its attributes]; FastGelu/BiasGelu's bias is input 1. */
const MS_ACTIVATIONS: Readonly<Record<string, (n: Node) => Record<string, Attr>>> = {
  [msOp('Gelu')]: () => ({ activation: { type: 'string', value: 'Gelu' } }),
  [msOp('BiasGelu')]: () => ({ activation: { type: 'string', value: 'Gelu' } }),
  [msOp('FastGelu')]: () => ({ activation: { type: 'string', value: 'Gelu' }, activation_approximate: { type: 'string', value: 'tanh' } }),
  [msOp('QuickGelu')]: (n) => ({ activation: { type: 'string', value: 'QuickGelu' }, ...(n.attrs.alpha ? { activation_alpha: n.attrs.alpha } : {}) }),
};

/** The name an activation adds to the fusion kind: its own fusion kind when it is fused, else its op. */
function activationKind(act: Node): string {
  const k = fusionKind(act);
  if (k) return k;
  const op = act.op.startsWith(`${msOp('')}`) ? act.op.slice(msOp('').length) : act.op;
  const approx = act.attrs.approximate;
  return op === 'Gelu' && approx?.type === 'string' && approx.value === 'tanh' ? 'GeluTanh' : op;
}

/** attrs for `n` after absorbing `consumers` as `what`: the kind grows ('MatMul+Bias+Gelu'), the sources too. */
function grown(n: Node, consumer: Node, what: string): Record<string, Attr> {
  return fusionAttrs(`${fusionKind(n) ?? n.op}+${what}`, [n, consumer]);
}

/** The attributes that make `producer` apply `act`, or undefined when `act` cannot be fused. */
function activationAttrs(g: Graph, act: Node): Record<string, Attr> | undefined {
  if (act.domain !== '' || act.outputs.length !== 1) return undefined;
  const ms = MS_ACTIVATIONS[act.op];
  if (ms) return ms(act);
  if (act.op === 'Clip') {
    const attrs: Record<string, Attr> = { activation: { type: 'string', value: 'Clip' } };
    for (const [i, name] of [[1, 'min'], [2, 'max']] as const) {
      const v = act.inputs[i];
      if (!v) continue;
      const c = constScalar(g, v);
      if (c === undefined) return undefined;
      attrs[`activation_${name}`] = { type: 'float', value: c };
    }
    return attrs;
  }
  const def = EW_OPS[act.op];
  if (!def || def.arity[1] !== 1 || def.boolOut || !def.kinds.includes('f')) return undefined;
  const attrs: Record<string, Attr> = { activation: { type: 'string', value: act.op } };
  for (const [k, v] of Object.entries(act.attrs)) if (k !== 'fusion' && k !== 'fused_from') attrs[`activation_${k}`] = v;
  return attrs;
}

/** A MatMul + Add that Gemm computes: 2-D operands and a bias broadcasting along rows ([N] or [1, N]). */
function asGemm(g: Graph, mm: Node, add: Node, out: string): Node | undefined {
  const [a, b] = mm.inputs;
  const bias = add.inputs[0] === out ? add.inputs[1] : add.inputs[0];
  const sa = g.values[a!]?.shape;
  const sb = g.values[b!]?.shape;
  const sc = bias ? g.values[bias]?.shape : undefined;
  const so = g.values[add.outputs[0]!]?.shape;
  const sm = g.values[out]?.shape;
  if (!sa || !sb || !sc || !so || !sm || sa.length !== 2 || sb.length !== 2) return undefined;
  if (so.length !== 2 || so[0] !== sm[0] || so[1] !== sm[1]) return undefined; // the Add must not broadcast the product
  const n = sb[1];
  const rowBias = (sc.length === 1 && sc[0] === n) || (sc.length === 2 && sc[0] === 1 && sc[1] === n);
  if (!rowBias || g.values[bias!]?.dtype !== g.values[out]?.dtype) return undefined;
  return { ...mm, op: 'Gemm', inputs: [a!, b!, bias!], outputs: [...add.outputs], attrs: grown(mm, add, 'Bias') };
}

/** The size of a row bias [N] / [1, .., 1, N] of `n` columns, of the product's dtype; false otherwise. */
function isRowBias(g: Graph, bias: string | undefined, n: number | string | undefined, out: string): boolean {
  const sc = bias ? g.values[bias]?.shape : undefined;
  if (!sc || !sc.length || typeof n !== 'number' || sc[sc.length - 1] !== n || sc.slice(0, -1).some((d) => d !== 1)) return false;
  return g.values[bias!]?.dtype === g.values[out]?.dtype;
}

/** A batched MatMul + Add(row bias) as MatMul(A, B, bias): the kernel adds the bias in its epilogue. */
function withBias(g: Graph, mm: Node, add: Node, out: string): Node | undefined {
  if (mm.op !== 'MatMul' || mm.inputs.length !== 2 || add.inputs.length !== 2) return undefined;
  const bias = add.inputs[0] === out ? add.inputs[1] : add.inputs[0];
  const sa = g.values[mm.inputs[0]!]?.shape;
  const sb = g.values[mm.inputs[1]!]?.shape;
  const sm = g.values[out]?.shape;
  const so = g.values[add.outputs[0]!]?.shape;
  if (!sa || !sb || !sm || !so || sa.length < 2 || sb.length < 2 || bias === out) return undefined;
  // The Add must not broadcast the product: a bias with more dims than the product would.
  if (so.length !== sm.length || so.some((d, i) => d !== sm[i])) return undefined;
  if (!isRowBias(g, bias, sb[sb.length - 1], out) || g.values[bias!]!.shape!.length > sm.length) return undefined;
  return { ...mm, inputs: [mm.inputs[0]!, mm.inputs[1]!, bias!], outputs: [...add.outputs], attrs: { ...mm.attrs, ...grown(mm, add, 'Bias') } };
}

/**
 * MatMul | Gemm (no C yet) -> com.microsoft FastGelu(x, bias) / BiasGelu(x, bias): the bias goes in as the
 * product's row bias (Gemm's C with beta 1), the GELU as its activation.
 */
function withBiasedGelu(g: Graph, n: Node, act: Node, out: string): Node | undefined {
  if ((act.op !== msOp('FastGelu') && act.op !== msOp('BiasGelu')) || act.inputs[0] !== out || !act.inputs[1]) return undefined;
  if (n.inputs.length > 2 && n.inputs[2]) return undefined;
  const bias = act.inputs[1];
  const sb = g.values[n.inputs[1]!]?.shape;
  const sm = g.values[out]?.shape;
  if (!sb || !sm || sm.length < 2) return undefined;
  if (!isRowBias(g, bias, sm[sm.length - 1], out)) return undefined;
  if (n.op === 'Gemm') {
    const attrs = { ...n.attrs, beta: { type: 'float' as const, value: 1 }, ...activationAttrs(g, act)!, ...grown(n, act, activationKind(act)) };
    return { ...n, inputs: [n.inputs[0]!, n.inputs[1]!, bias], outputs: [...act.outputs], attrs };
  }
  if (n.op !== 'MatMul' || sb.length < 2) return undefined;
  return { ...n, inputs: [n.inputs[0]!, n.inputs[1]!, bias], outputs: [...act.outputs], attrs: { ...n.attrs, ...activationAttrs(g, act)!, ...grown(n, act, activationKind(act)) } };
}

const RESIDUAL_PRODUCERS = new Set(['Conv', 'Gemm', 'MatMul']);

/**
 * `Add(out, R)` (either order) folded into the producer of `out` as a residual: R must have exactly out's shape and
 * dtype (no broadcasting) and not be `out` itself. Optional inputs before the residual slot are padded with ''.
 */
function withResidual(g: Graph, n: Node, add: Node, out: string): Node | undefined {
  if (!RESIDUAL_PRODUCERS.has(n.op) || n.attrs.residual || add.op !== 'Add' || add.domain !== '' || add.inputs.length !== 2) return undefined;
  const r = add.inputs[0] === out ? add.inputs[1] : add.inputs[0];
  if (!r || r === out) return undefined;
  const vo = g.values[out];
  const vr = g.values[r];
  const so = vo?.shape;
  const sr = vr?.shape;
  if (!so || !sr || vo.dtype !== vr.dtype || so.length !== sr.length || so.some((d, i) => typeof d !== 'number' || d !== sr[i])) return undefined;
  if (g.values[add.outputs[0]!]?.dtype !== vo.dtype) return undefined;
  const inputs = [...n.inputs];
  while (inputs.length < 3) inputs.push('');
  return { ...n, inputs: [...inputs.slice(0, 3), r], outputs: [...add.outputs], attrs: { ...n.attrs, residual: { type: 'int', value: 1 }, ...grown(n, add, 'Residual') } };
}

/** The graph the GPU plan runs: fusable chains collapsed. Returns `g` itself when nothing fuses. */
export function fuseForGpu(g: Graph, opts: FuseOptions = {}): Graph {
  const model = g;
  g = fuseInt4Weights(g); // DequantizeLinear(4-bit constant w) -> MatMul/Gemm as MatMulNBits: nibbles stay packed (fuse-int4.ts)
  g = fuseQdq(g); // DequantizeLinear -> Conv/MatMul/Gemm -> QuantizeLinear groups onto the int8 kernels (fuse-qdq.ts)
  g = fuseDynamicInt8(g); // ConvInteger/MatMulInteger -> Cast -> Mul(scale) (-> Add(bias)) (-> Relu) as one kernel (fuse-dynamic-int8.ts)
  g = fuseQdqAdd(g); // DequantizeLinear x2 -> Add (-> Relu) -> QuantizeLinear onto one int8 kernel (fuse-qdq-add.ts)
  g = packQdqLayouts(g); // activations between int8 kernels packed four codes per u32, layout c4 (qdq-layout.ts)
  g = fuseAttention(g);
  const bound = new Set(Object.keys(opts.bound ?? {}));
  g = fuseNorms(g, bound);
  g = fuseGelus(g);
  g = fuseProjections(g, bound, (c) => !!activationAttrs(g, c));
  g = fuseEpilogues(g);
  // A fusion can leave a node nobody reads any more: a DequantizeLinear that two fused groups shared, whose readers
  // now read its input directly. It would still be dispatched (a full activation written for nothing), so the
  // rewritten graph drops what reaches no output. The model's own graph is never touched: this is a copy.
  return g === model ? g : removeDeadCode({ ...g, nodes: [...g.nodes], initializers: { ...g.initializers }, values: { ...g.values } });
}

/** The producer -> consumer folds into the matrix kernels' epilogues (the file comment's second part). */
function fuseEpilogues(g: Graph): Graph {
  const outputs = new Set(g.outputs.map((o) => o.name));
  let nodes = [...g.nodes];
  let changed = false;
  for (let pass = 0; pass < 3; pass++) {
    const uses = readers({ ...g, nodes });
    // The fused node takes the consumer's place: every input of both is computed by then.
    const replace = new Map<Node, Node>();
    const dropped = new Set<Node>();
    for (const n of nodes) {
      const out = n.outputs[0];
      const only = out && !outputs.has(out) ? uses.get(out) : undefined;
      const consumer = only?.length === 1 ? only[0]! : undefined;
      if (!consumer || n.domain !== '' || !PRODUCERS.has(n.op) || n.outputs.length !== 1 || !isFloat(g, out!) || n.attrs.activation) continue;
      // Add(P1(...), P2(...)): only one producer may absorb the consumer; the other's output stays an input.
      if (replace.has(consumer)) continue;
      // Pass 0 turns MatMul + Add(bias) into Gemm; pass 1 folds residual adds, pass 2 activations.
      let fused: Node | undefined;
      if (pass === 0) {
        if (n.op === 'MatMul' && n.inputs.length === 2 && consumer.op === 'Add' && consumer.domain === '') fused = asGemm(g, n, consumer, out!) ?? withBias(g, n, consumer, out!);
      } else if (pass === 1) {
        fused = withResidual(g, n, consumer, out!);
      } else if (consumer.inputs[1] && (consumer.op === msOp('FastGelu') || consumer.op === msOp('BiasGelu'))) {
        if (!n.attrs.residual) fused = withBiasedGelu(g, n, consumer, out!);
      } else {
        const attrs = activationAttrs(g, consumer);
        if (attrs) fused = { ...n, outputs: [...consumer.outputs], attrs: { ...n.attrs, ...attrs, ...grown(n, consumer, activationKind(consumer)) } };
      }
      if (!fused) continue;
      dropped.add(n);
      replace.set(consumer, fused);
      changed = true;
    }
    nodes = nodes.filter((n) => !dropped.has(n)).map((n) => replace.get(n) ?? n);
  }
  return changed ? { ...g, nodes } : g;
}
