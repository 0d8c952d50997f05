import type { Attr, Graph, Node } from '../../ir/graph.js';
import { EW_OPS } from './kernels/elementwise-ops.js';
import { fuseQdq } from './fuse-qdq.js';
import { fuseAttention } from './fuse-attention.js';

/**
 * Epilogue fusion for the WebGPU plan: rewrites the graph the GPU executes (never the model's IR, which the CPU
 * backend and the exporter keep using) so that
 *   MatMul(A [M, K], B [K, N]) -> Add(bias)            becomes  Gemm(A, B, bias)
 *   Conv | Gemm | MatMul -> Add(R), R of the same shape becomes  the producer with attribute residual=1, input 3 = R
 *   Conv | ConvTranspose | Gemm | MatMul -> <act>      becomes  the producer with attribute activation=<op>
 * The activation attributes travel prefixed (activation_alpha...; Clip's constant bounds as activation_min/max),
 * which the matrix kernels read through kernels/epilogue.ts. The intermediate value then never exists: one
 * dispatch and no arena slot instead of two of each.
 *
 * A producer's output is fused only when the next node is its only reader and it is not a graph output.
 */

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

/** The attributes that make `producer` apply `act`, or undefined when `act` cannot be fused. */
function activationAttrs(g: Graph, act: Node): Record<string, Attr> | undefined {
  if (act.domain !== '' || act.outputs.length !== 1) return undefined;
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
  for (const [k, v] of Object.entries(act.attrs)) attrs[`activation_${k}`] = v;
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
  return { ...mm, op: 'Gemm', inputs: [a!, b!, bias!], outputs: [...add.outputs], attrs: {} };
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
  return { ...n, inputs: [...inputs.slice(0, 3), r], outputs: [...add.outputs], attrs: { ...n.attrs, residual: { type: 'int', value: 1 } } };
}

/** The graph the GPU plan runs: fusable chains collapsed. Returns `g` itself when nothing fuses. */
export function fuseForGpu(g: Graph): Graph {
  g = fuseQdq(g); // DequantizeLinear -> Conv/MatMul/Gemm -> QuantizeLinear groups onto the int8 kernels (fuse-qdq.ts)
  g = fuseAttention(g);
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
      if (!consumer || n.domain !== '' || !PRODUCERS.has(n.op) || !isFloat(g, out!) || n.attrs.activation) continue;
      // Add(P1(...), P2(...)): only one producer may absorb the consumer; the other's output stays an input.
      if (replace.has(consumer)) continue;
      // Pass 0 turns MatMul + Add(bias) into Gemm; pass 1 folds residual adds, pass 2 activations.
      let fused: Node | undefined;
      if (pass === 0) {
        if (n.op === 'MatMul' && consumer.op === 'Add' && consumer.domain === '') fused = asGemm(g, n, consumer, out!);
      } else if (pass === 1) {
        fused = withResidual(g, n, consumer, out!);
      } else {
        const attrs = activationAttrs(g, consumer);
        if (attrs) fused = { ...n, outputs: [...consumer.outputs], attrs: { ...n.attrs, ...attrs } };
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
