import { InternalError } from '../errors.js';
import { bytesPerElement } from './dtype.js';
import type { Graph, Node } from './graph.js';
import { isConcrete } from './shape.js';

/**
 * The static memory plan for one shape signature: every intermediate value gets an offset in one arena, assigned
 * by liveness so values that are never alive at the same time share bytes.
 *
 * Offsets come from greedy-by-size placement over lifetime intervals: values are placed largest first, each at the
 * lowest aligned offset that does not overlap a placed value whose lifetime intersects its own (the strategy of
 * "Efficient Memory Management for Deep Neural Net Inference", Pisarchyk & Lee, 2020). In-place reuse: when the
 * backend says a node may write over one of its inputs and that input dies at the node, the output shares the
 * input's slot (the two intervals merge into one).
 *
 * `lowerBound` is the largest total size of simultaneously live values, a bound no placement can beat; the planned
 * `arenaBytes` sits at or near it.
 */
export interface PlannedValue {
  name: string;
  bytes: number;
  offset: number;
  /** Index of the step that writes it. */
  first: number;
  /** Index of the last step that reads it (or the last step, for graph outputs). */
  last: number;
  /** Set when it shares its slot with this value (in-place). */
  aliasOf?: string;
}

export interface MemoryPlan {
  steps: Node[];
  values: Record<string, PlannedValue>;
  arenaBytes: number;
  lowerBound: number;
}

export interface PlanOptions {
  /** Offsets are multiples of this (WebGPU's minStorageBufferOffsetAlignment is 256 on most adapters). */
  alignment?: number;
  /** Index of an input the node may overwrite with its output 0, or -1. Asked only when sizes match. */
  inPlaceInput?: (node: Node) => number;
  /** Values kept out of the arena (graph outputs the caller reads back, say). */
  exclude?: ReadonlySet<string>;
}

const align = (n: number, a: number) => Math.ceil(n / a) * a;

export function planMemory(g: Graph, opts: PlanOptions = {}): MemoryPlan {
  const alignment = opts.alignment ?? 256;
  const external = new Set<string>([...g.inputs.map((i) => i.name), ...Object.keys(g.initializers)]);
  const outputs = new Set(g.outputs.map((o) => o.name));
  const values: Record<string, PlannedValue> = {};
  const end = g.nodes.length - 1;

  g.nodes.forEach((n, step) => {
    for (const o of n.outputs) {
      if (!o || opts.exclude?.has(o)) continue;
      const info = g.values[o];
      if (!info || !isConcrete(info.shape)) throw new InternalError(`planMemory needs concrete shapes; '${o}' has none (specialize the graph first).`);
      const bytes = Math.max(4, info.shape.reduce((a, b) => a * b, 1) * bytesPerElement(info.dtype));
      values[o] = { name: o, bytes: align(bytes, 4), offset: -1, first: step, last: outputs.has(o) ? end : step };
    }
    for (const v of n.inputs) if (v && values[v] && !outputs.has(v)) values[v]!.last = Math.max(values[v]!.last, step);
  });

  // In-place: the output takes over the input's slot when the input dies here.
  const root = (name: string): PlannedValue => {
    let v = values[name]!;
    while (v.aliasOf) v = values[v.aliasOf]!;
    return v;
  };
  if (opts.inPlaceInput) {
    g.nodes.forEach((n, step) => {
      const k = opts.inPlaceInput!(n);
      const x = k >= 0 ? n.inputs[k] : undefined;
      const y = n.outputs[0];
      if (!x || !y || external.has(x) || !values[x] || !values[y]) return;
      const src = root(x);
      if (src.last !== step || values[x]!.bytes !== values[y]!.bytes || outputs.has(x)) return;
      if (n.inputs.filter((v) => v === x).length > 1) return;
      values[y]!.aliasOf = src.name;
      src.last = values[y]!.last;
    });
  }

  const roots = Object.values(values).filter((v) => !v.aliasOf);
  roots.sort((a, b) => b.bytes - a.bytes || a.first - b.first);
  const placed: PlannedValue[] = [];
  let arenaBytes = 0;
  for (const v of roots) {
    const conflicts = placed
      .filter((p) => p.first <= v.last && v.first <= p.last)
      .sort((a, b) => a.offset - b.offset);
    let offset = 0;
    for (const p of conflicts) {
      if (offset + v.bytes <= p.offset) break;
      offset = Math.max(offset, align(p.offset + p.bytes, alignment));
    }
    v.offset = offset;
    placed.push(v);
    arenaBytes = Math.max(arenaBytes, offset + v.bytes);
  }
  for (const v of Object.values(values)) if (v.aliasOf) v.offset = root(v.name).offset;

  let lowerBound = 0;
  for (let step = 0; step <= end; step++) {
    let live = 0;
    for (const v of roots) if (v.first <= step && step <= v.last) live += v.bytes;
    lowerBound = Math.max(lowerBound, live);
  }
  return { steps: g.nodes, values, arenaBytes, lowerBound };
}
