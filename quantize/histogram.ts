import type { Graph, Node } from '../runtime/ir/graph.js';
import { inferShapes } from '../runtime/ir/infer.js';
import { HISTOGRAM_OP } from '../runtime/ir/ops/histogram.js';
import { cloneGraph, specialize } from '../runtime/ir/passes/index.js';
import { hostTensor, type HostTensor } from '../runtime/ir/tensor.js';
import { validateAndSort } from '../runtime/ir/validate.js';
import type { CalibrationFeeds } from './options.js';
import { createRunner, type KeptOutput, type QuantizeEnv } from './runner.js';

/**
 * Calibration histograms where the activations live. The float graph gets one edgekit.Histogram node per
 * calibrated tensor (runtime/ir/ops/histogram.ts: the binning rule; the WebGPU kernel bins in workgroup memory and
 * adds to the global bins with atomics) whose only outputs are the bins. Each example's run adds to the bins of
 * the run before: the counts stay on the device between examples (a kept GPU buffer fed back as the next run's
 * Acc) and are read back once at the end, bins x 4 bytes per tensor, never the activations. The same graph runs
 * on the CPU reference.
 *
 * Counts are u32 on the device: before an example could take a tensor's pending count past 2^32 - 1 (the
 * example's element counts come from shape inference on its input shapes), the bins are read back and added into
 * the host's float64 totals, and counting restarts from zero.
 */

export interface HistogramRange {
  /** The binned interval: values of x ('abs': of |x|) in [low, high]. */
  low: number;
  high: number;
  abs: boolean;
}

const U32_MAX = 2 ** 32 - 1;

export interface GatherOptions {
  onProgress?: (done: number, total: number) => void;
  /** Most values counted on the device between readbacks (default 2^32 - 1, the u32 counts' limit; tests lower it). */
  countLimit?: number;
}

/** The float graph with, per tensor, an edgekit.Histogram of it (Acc a graph input) as its only outputs. */
export function histogramGraph(g: Graph, tensors: readonly string[], ranges: readonly HistogramRange[], bins: number): { graph: Graph; accs: string[]; outputs: string[] } {
  const a = cloneGraph(g);
  const accs: string[] = [];
  const outputs: string[] = [];
  const nodes: Node[] = [];
  tensors.forEach((t, i) => {
    const acc = `__hist_${i}_acc`;
    const out = `__hist_${i}`;
    const r = ranges[i]!;
    nodes.push({
      name: `__hist_${i}`, op: HISTOGRAM_OP, domain: '', inputs: [t, acc], outputs: [out],
      attrs: { bins: { type: 'int', value: bins }, low: { type: 'float', value: r.low }, high: { type: 'float', value: r.high }, abs: { type: 'int', value: r.abs ? 1 : 0 } },
    });
    accs.push(acc);
    outputs.push(out);
  });
  a.inputs = [...a.inputs, ...accs.map((name) => ({ name, dtype: 'uint32' as const, shape: [bins] }))];
  a.nodes = [...a.nodes, ...nodes];
  a.outputs = outputs.map((name) => ({ name, dtype: 'uint32', shape: [bins] }));
  return { graph: inferShapes(validateAndSort(a)), accs, outputs };
}

/**
 * Bins every tensor over its range on the runner's backend, across all examples; returns float64 counts per
 * tensor, in order.
 */
export async function gatherHistograms(
  g: Graph,
  tensors: readonly string[],
  ranges: readonly HistogramRange[],
  bins: number,
  feeds: readonly CalibrationFeeds[],
  env: QuantizeEnv,
  opts: GatherOptions = {},
): Promise<Float64Array[]> {
  const { onProgress, countLimit = U32_MAX } = opts;
  const totals = tensors.map(() => new Float64Array(bins));
  if (!tensors.length || !feeds.length) return totals;
  const { graph, accs, outputs } = histogramGraph(g, tensors, ranges, bins);
  const runner = await createRunner(graph, env);
  const zeros = hostTensor('uint32', [bins]);
  const sizes = elementCounts(graph, tensors);
  const pending = tensors.map(() => 0);
  let kept: (KeptOutput | undefined)[] = tensors.map(() => undefined);
  /** Reads back the bins of tensors `ks` (one submit) into the totals; they count from zero again. */
  const flush = async (ks: number[]) => {
    if (!ks.length) return;
    const hs = await runner.read(ks.map((k) => kept[k]!));
    ks.forEach((k, i) => {
      const h = hs[i]!.data as Uint32Array;
      for (let b = 0; b < bins; b++) totals[k]![b]! += h[b]!;
      kept[k]!.dispose();
      kept[k] = undefined;
      pending[k] = 0;
    });
  };
  try {
    for (let i = 0; i < feeds.length; i++) {
      const n = sizes(feeds[i]!);
      const host: Record<string, HostTensor> = { ...feeds[i]! };
      const fed: Record<string, KeptOutput> = {};
      await flush(tensors.map((_, k) => k).filter((k) => kept[k] && pending[k]! + (n[k] ?? Infinity) > countLimit));
      for (let k = 0; k < tensors.length; k++) {
        if (kept[k]) fed[accs[k]!] = kept[k]!;
        else host[accs[k]!] = zeros;
        pending[k]! += n[k] ?? Infinity;
      }
      const next = await runner.runKeeping(host, fed, outputs);
      for (const k of kept) k?.dispose();
      kept = outputs.map((o) => next[o]);
      onProgress?.(i + 1, feeds.length);
    }
    await flush(tensors.map((_, k) => k).filter((k) => kept[k]));
  } finally {
    for (const k of kept) k?.dispose();
    runner.dispose();
  }
  return totals;
}

/**
 * Elements per example of each tensor, by shape inference on the example's input shapes (cached per shape
 * signature); undefined where a size depends on data (such a tensor's bins are read back after every example).
 */
function elementCounts(g: Graph, tensors: readonly string[]): (feeds: CalibrationFeeds) => (number | undefined)[] {
  const cache = new Map<string, (number | undefined)[]>();
  return (feeds) => {
    const shapes: Record<string, readonly number[]> = {};
    for (const i of g.inputs) {
      const f = feeds[i.name];
      if (f) shapes[i.name] = f.shape;
    }
    const key = JSON.stringify(shapes);
    let n = cache.get(key);
    if (!n) {
      let s: Graph | undefined;
      try {
        s = specialize(g, shapes);
      } catch {
        s = undefined;
      }
      n = tensors.map((t) => {
        const shape = s?.values[t]?.shape;
        return shape && shape.every((d) => typeof d === 'number') ? (shape as number[]).reduce((a, b) => a * b, 1) : undefined;
      });
      cache.set(key, n);
    }
    return n;
  };
}
