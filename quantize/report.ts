import { bytesPerElement } from '../runtime/ir/dtype.js';
import type { Graph } from '../runtime/ir/graph.js';
import { tensorToNumbers } from '../runtime/ir/tensor.js';
import type { CalibrationFeeds, QuantizeMode, ResolvedOptions } from './options.js';
import type { KeptNode } from './plan.js';
import { createRunner, type QuantizeEnv } from './runner.js';

/** What quantize() did, layer by layer. */
export interface QuantizeReport {
  mode: QuantizeMode;
  /** Per converted layer: its output as the next layer reads it, against the float model on the report examples. */
  layers: LayerReport[];
  /** Nodes left in float32, each with the reason (an op the mode does not handle, exclude, keepFirstLast). */
  keptFloat: KeptNode[];
  /** Bytes of all initializers before and after. */
  weightBytesBefore: number;
  weightBytesAfter: number;
  /** Examples the layer table was computed on, and whether they came from the calibration data or were random. */
  reportExamples: number;
  reportInputs: 'calibration' | 'random' | 'none';
  calibrationExamples: number;
  /** The backend calibration and the report ran on. */
  backend: 'cpu' | 'webgpu';
}

export interface LayerReport {
  node: string;
  op: string;
  output: string;
  /** Signal-to-quantization-noise ratio 10·log10(Σf² / Σ(f - q)²) in dB (Infinity when exact). */
  sqnrDb: number;
  maxAbsError: number;
  /** max |f|, for scale. */
  maxAbs: number;
}

export interface LayerPair {
  node: string;
  op: string;
  /** The value in the float graph, and the value carrying it in the converted graph. */
  float: string;
  quantized: string;
}

export function weightBytes(g: Graph): number {
  let n = 0;
  for (const t of Object.values(g.initializers)) n += t.data.length * bytesPerElement(t.dtype);
  return n;
}

/** Runs both graphs on the examples and compares each pair of values. */
export async function compareLayers(
  floatGraph: Graph,
  converted: Graph,
  pairs: readonly LayerPair[],
  feeds: readonly CalibrationFeeds[],
  opts: ResolvedOptions,
  env: QuantizeEnv,
): Promise<LayerReport[]> {
  if (!feeds.length || !pairs.length) return [];
  const acc = pairs.map(() => ({ sig: 0, noise: 0, maxErr: 0, maxAbs: 0 }));
  const withOutputs = (g: Graph, names: string[]): Graph => ({ ...g, outputs: [...new Set(names)].map((name) => ({ name, dtype: g.values[name]?.dtype ?? 'float32', shape: g.values[name]?.shape })) });
  const fr = await createRunner(withOutputs(floatGraph, pairs.map((p) => p.float)), env);
  const qr = await createRunner(withOutputs(converted, pairs.map((p) => p.quantized)), env);
  try {
    for (let i = 0; i < feeds.length; i++) {
      const f = await fr.run(feeds[i]!, [...new Set(pairs.map((p) => p.float))]);
      const q = await qr.run(feeds[i]!, [...new Set(pairs.map((p) => p.quantized))]);
      pairs.forEach((p, k) => {
        const a = tensorToNumbers(f[p.float]!);
        const b = tensorToNumbers(q[p.quantized]!);
        const s = acc[k]!;
        for (let j = 0; j < a.length; j++) {
          const e = a[j]! - b[j]!;
          s.sig += a[j]! * a[j]!;
          s.noise += e * e;
          s.maxErr = Math.max(s.maxErr, Math.abs(e));
          s.maxAbs = Math.max(s.maxAbs, Math.abs(a[j]!));
        }
      });
      opts.onProgress?.('report', i + 1, feeds.length);
    }
  } finally {
    fr.dispose();
    qr.dispose();
  }
  return pairs.map((p, k) => {
    const s = acc[k]!;
    return { node: p.node, op: p.op, output: p.float, sqnrDb: s.noise > 0 ? 10 * Math.log10(s.sig / s.noise) : Infinity, maxAbsError: s.maxErr, maxAbs: s.maxAbs };
  });
}

/** The report as a plain-text table (the CLI prints it). */
export function formatReport(r: QuantizeReport): string {
  const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
  const lines = [
    `mode ${r.mode}: weights ${kib(r.weightBytesBefore)} -> ${kib(r.weightBytesAfter)} (${((100 * r.weightBytesAfter) / Math.max(1, r.weightBytesBefore)).toFixed(1)}%), ` +
      `${r.calibrationExamples} calibration examples, layer table over ${r.reportExamples} ${r.reportInputs} example(s) on ${r.backend}`,
  ];
  if (r.layers.length) {
    lines.push(`  ${'SQNR dB'.padStart(8)} ${'max err'.padStart(10)} ${'max |f|'.padStart(10)}  layer`);
    for (const l of r.layers) lines.push(`  ${(Number.isFinite(l.sqnrDb) ? l.sqnrDb.toFixed(1) : 'exact').padStart(8)} ${l.maxAbsError.toExponential(2).padStart(10)} ${l.maxAbs.toExponential(2).padStart(10)}  ${l.op} ${l.node}`);
  }
  if (r.keptFloat.length) {
    lines.push(`  kept in float32 (${r.keptFloat.length}):`);
    for (const k of r.keptFloat) lines.push(`    ${k.op} ${k.node}: ${k.reason}`);
  }
  return lines.join('\n');
}
