import type { Graph, Node } from '../runtime/ir/graph.js';
import { inferShapes } from '../runtime/ir/infer.js';
import { cloneGraph } from '../runtime/ir/passes/index.js';
import { validateAndSort } from '../runtime/ir/validate.js';
import type { CalibrationFeeds, ResolvedOptions } from './options.js';
import { gatherHistograms, type HistogramRange } from './histogram.js';
import { createRunner, type QuantizeEnv } from './runner.js';

/**
 * Calibration: the float model runs on the user's examples through EdgeKit's runtime and we keep, per activation,
 * its range, and for 'percentile'/'entropy' a histogram.
 *
 * Ranges are reduced where the activations live: the graph is augmented with a ReduceMin and a ReduceMax per
 * tensor (as onnxruntime's calibrator does), so on WebGPU only two scalars per tensor come back per example, never
 * the activations. Histograms are gathered there too, in a second pass over the same examples
 * (quantize/histogram.ts: an edgekit.Histogram node per tensor, bins accumulated on the device across examples,
 * read back once: 2048 x 4 bytes per tensor). The range policy: the first pass sees every example before any
 * binning, so each tensor's bins span its range over all the examples and are never re-binned; 'percentile' bins
 * x over [min, max], 'entropy' bins |x| over [0, max |x|]. Tensors whose range is not finite get no histogram
 * (chosenRange gives them [0, 0]).
 */

export const HIST_BINS = 2048;

export interface TensorStats {
  min: number;
  max: number;
  /** Counts of values over [min, max] in HIST_BINS bins ('percentile'); of |x| over [0, max|x|] ('entropy'). */
  hist?: Float64Array;
}

/** Reads at most `limit` examples, in order (kept: histogram methods need a second pass, the report a third). */
export async function collectFeeds(src: ResolvedOptions['calibration'], limit: number): Promise<CalibrationFeeds[]> {
  const out: CalibrationFeeds[] = [];
  if (!src) return out;
  for await (const f of src as AsyncIterable<CalibrationFeeds>) {
    out.push(f);
    if (out.length >= limit) break;
  }
  return out;
}

/** The float graph with ReduceMin/ReduceMax of each tensor as its only outputs. */
function rangeGraph(g: Graph, tensors: readonly string[]): { graph: Graph; outputs: string[] } {
  const a = cloneGraph(g);
  const outputs: string[] = [];
  const nodes: Node[] = [];
  tensors.forEach((t, i) => {
    for (const op of ['ReduceMin', 'ReduceMax'] as const) {
      const out = `__calib_${i}_${op}`;
      nodes.push({ name: `__calib_${i}_${op}`, op, domain: '', inputs: [t], outputs: [out], attrs: { keepdims: { type: 'int', value: 0 } } });
      outputs.push(out);
    }
  });
  a.nodes = [...a.nodes, ...nodes];
  a.outputs = outputs.map((name) => ({ name, dtype: 'float32', shape: [] }));
  return { graph: inferShapes(validateAndSort(a)), outputs };
}

export async function calibrate(
  g: Graph,
  tensors: readonly string[],
  feeds: readonly CalibrationFeeds[],
  opts: ResolvedOptions,
  env: QuantizeEnv,
): Promise<Map<string, TensorStats>> {
  const stats = new Map<string, TensorStats>();
  for (const t of tensors) stats.set(t, { min: Infinity, max: -Infinity });
  if (!tensors.length) return stats;
  const { graph, outputs } = rangeGraph(g, tensors);
  const runner = await createRunner(graph, env);
  try {
    for (let i = 0; i < feeds.length; i++) {
      const r = await runner.run(feeds[i]!, outputs);
      tensors.forEach((t, k) => {
        const s = stats.get(t)!;
        s.min = Math.min(s.min, Number(r[outputs[2 * k]!]!.data[0]));
        s.max = Math.max(s.max, Number(r[outputs[2 * k + 1]!]!.data[0]));
      });
      opts.onProgress?.('calibrate', i + 1, feeds.length);
    }
  } finally {
    runner.dispose();
  }
  if (opts.method === 'minmax') return stats;

  const abs = opts.method === 'entropy';
  const binned = tensors.filter((t) => Number.isFinite(stats.get(t)!.min) && Number.isFinite(stats.get(t)!.max));
  const ranges = binned.map((t): HistogramRange => {
    const s = stats.get(t)!;
    return abs ? { low: 0, high: Math.max(-s.min, s.max), abs } : { low: s.min, high: s.max, abs };
  });
  const hists = await gatherHistograms(g, binned, ranges, HIST_BINS, feeds, env, { onProgress: (i, n) => opts.onProgress?.('histogram', i, n) });
  for (const s of stats.values()) s.hist = new Float64Array(HIST_BINS);
  binned.forEach((t, k) => (stats.get(t)!.hist = hists[k]!));
  return stats;
}

/** The range to quantize a tensor to, by the chosen method. */
export function chosenRange(s: TensorStats, opts: ResolvedOptions): [number, number] {
  if (!Number.isFinite(s.min) || !Number.isFinite(s.max)) return [0, 0];
  if (opts.method === 'minmax' || !s.hist) return [s.min, s.max];
  const h = s.hist;
  const total = h.reduce((a, b) => a + b, 0);
  if (opts.method === 'percentile') {
    // Cut (100 - p)% of the values off each populated tail (one tail when the tensor never goes below 0).
    const w = (s.max - s.min) / HIST_BINS;
    const tail = ((100 - opts.percentile) / 100) * total;
    let hiBin = HIST_BINS - 1;
    for (let acc = 0; hiBin > 0 && acc + h[hiBin]! <= tail; hiBin--) acc += h[hiBin]!;
    let loBin = 0;
    if (s.min < 0) for (let acc = 0; loBin < hiBin && acc + h[loBin]! <= tail; loBin++) acc += h[loBin]!;
    return [s.min < 0 ? s.min + loBin * w : s.min, s.min + (hiBin + 1) * w];
  }
  const t = entropyThreshold(h, Math.max(-s.min, s.max));
  return [Math.max(s.min, -t), Math.min(s.max, t)];
}

/**
 * The |x| threshold minimizing the KL divergence between the histogram clipped at it and that clipped histogram
 * merged into 128 levels (the method of TensorRT's int8 calibration, Migacz 2017): candidate thresholds at every
 * 16th bin from 128 on.
 */
export function entropyThreshold(h: Float64Array, absmax: number, levels = 128): number {
  const n = h.length;
  const width = absmax / n;
  if (!(width > 0)) return absmax;
  let best = n;
  let bestKl = Infinity;
  for (let i = levels; i <= n; i += 16) {
    // p: the reference, clipped at bin i with the outliers folded into its last bin; q: the clipped histogram
    // (without the outliers) merged into `levels` levels and spread back over the bins that were non-empty.
    const p = Array.from(h.subarray(0, i));
    for (let j = i; j < n; j++) p[i - 1]! += h[j]!;
    const q = new Array<number>(i).fill(0);
    const per = i / levels;
    for (let l = 0; l < levels; l++) {
      const a = Math.floor(l * per);
      const b = l === levels - 1 ? i : Math.floor((l + 1) * per);
      let sum = 0;
      let nz = 0;
      for (let j = a; j < b; j++) {
        sum += h[j]!;
        if (h[j]! > 0) nz++;
      }
      for (let j = a; j < b; j++) if (h[j]! > 0) q[j] = sum / nz;
    }
    const kl = klDivergence(smooth(p), smooth(q));
    if (kl < bestKl) {
      bestKl = kl;
      best = i;
    }
  }
  return (best + 0.5) * width;
}

/** Normalized, with empty bins given a small mass taken from the others (so the divergence stays finite). */
function smooth(d: number[], eps = 1e-4): number[] {
  const total = d.reduce((a, b) => a + b, 0);
  const zeros = d.filter((v) => v === 0).length;
  if (!total) return d.map(() => 1 / d.length);
  const take = zeros ? (eps * zeros) / (d.length - zeros) : 0;
  return d.map((v) => (v === 0 ? eps : v / total - take));
}

function klDivergence(p: number[], q: number[]): number {
  let kl = 0;
  for (let j = 0; j < p.length; j++) if (p[j]! > 0 && q[j]! > 0) kl += p[j]! * Math.log(p[j]! / q[j]!);
  return kl;
}
