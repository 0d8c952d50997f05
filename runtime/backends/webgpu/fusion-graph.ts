import type { Attr, Graph, Node, ValueInfo } from '../../ir/graph.js';
import { tensorToNumbers, type HostTensor } from '../../ir/tensor.js';

/**
 * The machinery the GPU plan's pattern fusions share (fusion-norm.ts, fusion-gelu.ts, fusion-qkv.ts, fusion.ts):
 * a read-only view of who produces and who reads each value, constant look-ups, and one way to apply a rewrite.
 *
 * A rewrite is a Match: the nodes it removes and the fused node that replaces them. applyMatches() checks the one
 * rule that makes every such rewrite safe, so the matchers do not each repeat it: a value a removed node produces
 * that the fused node does not produce (an intermediate) must have no reader outside the match and must not be a
 * graph output. The fused node takes the place of the match's last node (or its first, for fused nodes whose inputs
 * are all available there and whose outputs are read early, like the QKV projection).
 *
 * Every fused node says what it came from: attrs.fusion (string: the kind, kinds of nested fusions joined by '+')
 * and attrs.fused_from (strings: the names of the model's nodes it replaces, expanded through earlier fusions).
 * report() lists them (executor.ts GpuPlanReport.fusions).
 */

export class GraphView {
  readonly readers = new Map<string, Node[]>();
  readonly producer = new Map<string, Node>();
  readonly outputs: Set<string>;
  constructor(readonly g: Graph) {
    this.outputs = new Set(g.outputs.map((o) => o.name));
    for (const n of g.nodes) {
      for (const v of n.inputs) if (v) this.readers.set(v, [...(this.readers.get(v) ?? []), n]);
      for (const v of n.outputs) if (v) this.producer.set(v, n);
    }
  }

  /** The single node reading `v` (never a graph output), or undefined. */
  only(v: string | undefined): Node | undefined {
    if (!v || this.outputs.has(v)) return undefined;
    const r = this.readers.get(v);
    return r?.length === 1 ? r[0] : undefined;
  }

  /** The node producing `v` when it is `op` in the default domain. */
  made(v: string | undefined, op: string): Node | undefined {
    const n = v ? this.producer.get(v) : undefined;
    return n && n.op === op && n.domain === '' ? n : undefined;
  }

  /** Every reader of `v`. */
  all(v: string): Node[] {
    return this.readers.get(v) ?? [];
  }

  info(v: string): ValueInfo | undefined {
    return this.g.values[v];
  }

  /** A constant's values (an initializer, of any numeric type), or undefined. */
  constant(v: string | undefined): Float64Array | undefined {
    const t = v ? this.g.initializers[v] : undefined;
    if (!t || t.dtype === 'string' || t.dtype === 'bool') return undefined;
    return tensorToNumbers(t);
  }

  /** A one-element constant's value, or undefined. */
  scalar(v: string | undefined): number | undefined {
    const c = this.constant(v);
    return c && c.length === 1 ? c[0] : undefined;
  }

  /**
   * Whether constant `v` is one value equal to `want` to its own precision: relative 1e-5 for float32 (exporters
   * round sqrt(2) and friends to float32), 1e-3 for float16 and bfloat16 constants (half an ulp is 4.9e-4 and 3.9e-3
   * relative; bfloat16 gets 4e-3).
   */
  near(v: string | undefined, want: number): boolean {
    const d = v ? this.g.initializers[v]?.dtype : undefined;
    return near(this.scalar(v), want, d === 'float16' ? 1e-3 : d === 'bfloat16' ? 4e-3 : 1e-5);
  }

  isFloat(v: string | undefined): boolean {
    const d = v ? this.g.values[v]?.dtype : undefined;
    return d === 'float32' || d === 'float16';
  }

  shape(v: string | undefined): number[] | undefined {
    const s = v ? this.g.values[v]?.shape : undefined;
    return s && s.every((d) => typeof d === 'number') ? (s as number[]) : undefined;
  }
}

/** Whether `a` equals `want` to float32 precision (a relative 1e-5: exporters write float32 constants). */
export function near(a: number | undefined, want: number, rel = 1e-5): boolean {
  return a !== undefined && Math.abs(a - want) <= rel * Math.abs(want);
}

/** For a binary node reading `v`: its other operand ('' when both operands are `v`). */
export function other(n: Node, v: string): string | undefined {
  if (n.inputs.length !== 2) return undefined;
  if (n.inputs[0] === v) return n.inputs[1] === v ? '' : n.inputs[1];
  return n.inputs[1] === v ? n.inputs[0] : undefined;
}

/** The model node names a fused node stands for: earlier fusions expanded to their own sources. */
export function sourcesOf(nodes: readonly Node[]): string[] {
  const out: string[] = [];
  for (const n of nodes) {
    const f = n.attrs.fused_from;
    if (f?.type === 'strings') out.push(...f.value);
    else out.push(n.name);
  }
  return out;
}

/** attrs.fusion and attrs.fused_from for a node replacing `nodes` with this `kind`. */
export function fusionAttrs(kind: string, nodes: readonly Node[]): Record<string, Attr> {
  return { fusion: { type: 'string', value: kind }, fused_from: { type: 'strings', value: sourcesOf(nodes) } };
}

/** The kind of an existing fusion node, or undefined. */
export function fusionKind(n: Node): string | undefined {
  const a = n.attrs.fusion;
  return a?.type === 'string' ? a.value : undefined;
}

export interface Match {
  /** Nodes the match removes (in any order). */
  nodes: Node[];
  fused: Node;
  /** Where the fused node goes: in place of the last matched node (default) or the first. */
  at?: 'first' | 'last';
  /** Constants the fused node reads that the graph does not have yet (a concatenated weight, a ones scale). */
  initializers?: Record<string, HostTensor>;
}

/**
 * Applies the matches that are safe (see the file comment) and disjoint, in the order given. Returns `g` itself
 * when none applies.
 */
export function applyMatches(g: Graph, matches: readonly Match[]): Graph {
  if (!matches.length) return g;
  const view = new GraphView(g);
  const taken = new Set<Node>();
  const accepted: Match[] = [];
  for (const m of matches) {
    if (m.nodes.some((n) => taken.has(n))) continue;
    if (!intermediatesPrivate(view, m)) continue;
    for (const n of m.nodes) taken.add(n);
    accepted.push(m);
  }
  if (!accepted.length) return g;
  const index = new Map(g.nodes.map((n, i) => [n, i]));
  const place = new Map<Node, Node>();
  for (const m of accepted) {
    const sorted = [...m.nodes].sort((a, b) => index.get(a)! - index.get(b)!);
    place.set(m.at === 'first' ? sorted[0]! : sorted[sorted.length - 1]!, m.fused);
  }
  const nodes: Node[] = [];
  for (const n of g.nodes) {
    if (!taken.has(n)) nodes.push(n);
    else if (place.has(n)) nodes.push(place.get(n)!);
  }
  const initializers = { ...g.initializers };
  const values = { ...g.values };
  for (const m of accepted) {
    for (const [k, t] of Object.entries(m.initializers ?? {})) {
      initializers[k] = t;
      values[k] = { name: k, dtype: t.dtype, shape: [...t.shape] };
    }
  }
  return { ...g, nodes, initializers, values };
}

/** Every value produced inside the match and not by the fused node is read only inside the match. */
function intermediatesPrivate(view: GraphView, m: Match): boolean {
  const inside = new Set(m.nodes);
  const kept = new Set(m.fused.outputs.filter(Boolean));
  for (const n of m.nodes) {
    for (const v of n.outputs) {
      if (!v || kept.has(v)) continue;
      if (view.outputs.has(v)) return false;
      if (view.all(v).some((r) => !inside.has(r))) return false;
    }
  }
  // The fused node's outputs must come from the removed nodes (no renaming of values others read).
  const made = new Set(m.nodes.flatMap((n) => n.outputs));
  return m.fused.outputs.every((v) => !v || made.has(v));
}
