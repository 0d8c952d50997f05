import { attrFloat, attrInt, type Graph, type Node } from '../runtime/ir/graph.js';
import type { ResolvedOptions } from './options.js';

/**
 * Which nodes a mode converts, and why the others stay float (named in the report).
 */

export interface KeptNode {
  node: string;
  op: string;
  reason: string;
}

/** Conv, Gemm and MatMul with a constant float32 weight: what carries the weights (and the int8 kernels). */
export const WEIGHTED = new Set(['Conv', 'Gemm', 'MatMul']);
/** Ops whose output is a selection or rearrangement of their input's values: the output shares the input's scale. */
export const SHARED_SCALE = new Set(['MaxPool', 'Flatten', 'Reshape', 'Transpose', 'Squeeze', 'Unsqueeze']);
/** Other ops the static int8 mode runs between DequantizeLinear and QuantizeLinear. */
export const ARITH = new Set(['Add', 'Mul', 'AveragePool', 'GlobalAveragePool', 'Concat', 'Relu', 'Clip', 'Sigmoid', 'LeakyRelu']);

export const isFloat32 = (g: Graph, v: string) => !!v && g.values[v]?.dtype === 'float32';

/** The index of the constant weight input of a WEIGHTED node, or undefined when it has none (e.g. attention's MatMul). */
export function weightInput(g: Graph, n: Node): number | undefined {
  const w = g.initializers[n.inputs[1] ?? ''];
  if (!w || w.dtype !== 'float32') return undefined;
  if (n.op === 'Conv') return w.shape.length >= 3 ? 1 : undefined;
  if (n.op === 'Gemm') return attrInt(n, 'transA', 0) === 0 && w.shape.length === 2 ? 1 : undefined;
  return w.shape.length === 2 ? 1 : undefined;
}

/** The per-channel axis of a weight: Conv's output channels, the N of Gemm/MatMul's [K, N] (or [N, K] with transB). */
export function channelAxis(n: Node): number {
  if (n.op === 'Conv') return 0;
  if (n.op === 'Gemm') return attrInt(n, 'transB', 0) ? 0 : 1;
  return 1;
}

/** A 1-D float32 bias of length N that can become int32 at the product's scale (Gemm only with alpha = beta = 1). */
export function biasInput(g: Graph, n: Node, channels: number): number | undefined {
  if (n.op !== 'Conv' && n.op !== 'Gemm') return undefined;
  const b = g.initializers[n.inputs[2] ?? ''];
  if (!b || b.dtype !== 'float32' || b.shape.length !== 1 || b.shape[0] !== channels) return undefined;
  if (n.op === 'Gemm' && (attrFloat(n, 'alpha', 1) !== 1 || attrFloat(n, 'beta', 1) !== 1)) return undefined;
  return 2;
}

/**
 * The nodes of `ops` the user did not exclude, and the kept ones with reasons. With keepFirstLast the first and
 * last node carrying weights (in topological order) stay float.
 */
export function selectNodes(g: Graph, ops: (n: Node) => boolean, opts: ResolvedOptions, what: string): { selected: Node[]; kept: KeptNode[] } {
  const excluded = new Set(opts.exclude);
  const kept: KeptNode[] = [];
  let selected: Node[] = [];
  for (const n of g.nodes) {
    const float = [...n.inputs, ...n.outputs].some((v) => isFloat32(g, v));
    if (excluded.has(n.name) || excluded.has(n.op)) {
      kept.push({ node: n.name, op: n.op, reason: 'excluded by the caller' });
    } else if (n.domain === '' && ops(n)) {
      selected.push(n);
    } else if (float) {
      kept.push({ node: n.name, op: n.op, reason: `${what} does not handle ${n.domain ? `${n.domain}.` : ''}${n.op}${WEIGHTED.has(n.op) ? ' here (its form or weight is not one it converts)' : ''}` });
    }
  }
  if (opts.keepFirstLast) {
    const weighted = selected.filter((n) => WEIGHTED.has(n.op) && weightInput(g, n) !== undefined);
    const edge = new Set([weighted[0], weighted[weighted.length - 1]].filter(Boolean) as Node[]);
    for (const n of edge) kept.push({ node: n.name, op: n.op, reason: 'first or last layer kept float (keepFirstLast)' });
    selected = selected.filter((n) => !edge.has(n));
  }
  return { selected, kept };
}
