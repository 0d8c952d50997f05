/**
 * The quantizer: ONNX float32 model in, standard ONNX model out, converted on the IR.
 *  - 'int8': static QDQ (QuantizeLinear/DequantizeLinear pairs, int8 weights, int32 biases), calibrated on the
 *    user's examples run through EdgeKit's own runtime (static-int8.ts, calibrate.ts);
 *  - 'int8-dynamic': DynamicQuantizeLinear + MatMulInteger for MatMul/Gemm, ConvInteger for Conv (dynamic-int8.ts);
 *  - 'int4-weights': com.microsoft MatMulNBits, 4-bit blocks (int4-weights.ts);
 *  - 'float16': float16 weights and activations, float32 inputs/outputs through Casts (float16.ts).
 * Every mode starts from the load-time optimized graph (BatchNormalization folded into Conv, constants folded,
 * Identity/Dropout gone) and ends with the exporter (importers/onnx/export.ts), at the model's own opset or 13,
 * whichever is newer (21 when an op's form changed since). Nodes a mode does not convert stay float32 and are
 * named in the report, with a per-layer SQNR / max-error table and the weight bytes before and after.
 *
 * Layering: quantize/ imports runtime/ and importers/ only. Where the runtime runs (CPU or a GPU device) comes in
 * through QuantizeEnv, which the SDK's quantize() fills (sdk/quantize.ts); the rest of this folder is pure.
 */
import { exportOnnx, importOnnx, MAX_OPSET } from '../importers/onnx/index.js';
import { InvalidArgumentError } from '../runtime/errors.js';
import type { Graph } from '../runtime/ir/graph.js';
import { optimize } from '../runtime/ir/passes/index.js';
import { hostTensor, type HostTensor } from '../runtime/ir/tensor.js';
import { calibrate, collectFeeds } from './calibrate.js';
import { rewriteDynamic } from './dynamic-int8.js';
import { rewriteFloat16 } from './float16.js';
import { rewriteInt4 } from './int4-weights.js';
import { resolveOptions, type CalibrationFeeds, type QuantizeOptions } from './options.js';
import { compareLayers, weightBytes, type LayerPair, type QuantizeReport } from './report.js';
import type { QuantizeEnv } from './runner.js';
import { planStatic, rewriteStatic } from './static-int8.js';

export type { QuantizeOptions, QuantizeMode, CalibrationMethod, CalibrationFeeds, CalibrationSource } from './options.js';
export type { QuantizeReport, LayerReport } from './report.js';
export type { KeptNode } from './plan.js';
export type { QuantizeEnv } from './runner.js';
export { formatReport } from './report.js';

export interface QuantizeResult {
  /** The converted model: standard ONNX bytes. */
  model: Uint8Array;
  report: QuantizeReport;
}

export async function quantizeModel(bytes: Uint8Array, options: QuantizeOptions, env: QuantizeEnv): Promise<QuantizeResult> {
  const opts = resolveOptions(options);
  const imported = await importOnnx(bytes);
  const { graph: base } = optimize(imported.graph);
  const runEnv: QuantizeEnv = { ...env, opset: imported.opset };
  const feeds = await collectFeeds(opts.calibration, opts.samples);
  checkFeeds(base, feeds);
  let reportFeeds = feeds.slice(0, opts.reportSamples);
  let reportInputs: QuantizeReport['reportInputs'] = reportFeeds.length ? 'calibration' : 'none';
  if (!reportFeeds.length && opts.reportSamples > 0) {
    const r = randomFeeds(base);
    reportFeeds = r ? [r] : [];
    reportInputs = r ? 'random' : 'none';
  }

  let out: Graph;
  let compareWith = base;
  let pairs: LayerPair[];
  let kept;
  if (opts.mode === 'int8') {
    const plan = planStatic(base, opts);
    const stats = await calibrate(base, plan.tensors, feeds, opts, runEnv);
    const r = rewriteStatic(base, plan, stats, opts);
    [out, pairs, kept] = [r.graph, r.layers, r.kept];
  } else if (opts.mode === 'int8-dynamic') {
    const r = rewriteDynamic(base, opts);
    [out, pairs, kept] = [r.graph, r.layers, r.kept];
  } else if (opts.mode === 'int4-weights') {
    const r = rewriteInt4(base, opts);
    [out, pairs, kept] = [r.graph, r.layers, r.kept];
    // The layer table runs the dequantized weights in float (the same numbers MatMulNBits computes with).
    compareWith = r.fake;
  } else {
    const r = rewriteFloat16(base, opts);
    [out, pairs, kept] = [r.graph, r.layers, r.kept];
  }
  const layers =
    opts.mode === 'int4-weights'
      ? await compareLayers(base, compareWith, pairs, reportFeeds, opts, runEnv)
      : await compareLayers(base, out, pairs, reportFeeds, opts, runEnv);
  const model = exportAt(out, Math.max(imported.opset, 13));
  return {
    model,
    report: {
      mode: opts.mode,
      layers,
      keptFloat: kept,
      weightBytesBefore: weightBytes(imported.graph),
      weightBytesAfter: weightBytes(out),
      reportExamples: reportFeeds.length,
      reportInputs,
      calibrationExamples: feeds.length,
      backend: env.backend,
    },
  };
}

/** At the model's opset when every op of the graph had its current form then, else at the newest. */
function exportAt(g: Graph, opset: number): Uint8Array {
  try {
    return exportOnnx(g, { opset: Math.min(opset, MAX_OPSET), producer: 'edgekit-quantize' });
  } catch (e) {
    if (!(e instanceof InvalidArgumentError)) throw e;
    return exportOnnx(g, { opset: 21, producer: 'edgekit-quantize' });
  }
}

function checkFeeds(g: Graph, feeds: readonly CalibrationFeeds[]): void {
  feeds.forEach((f, k) => {
    for (const i of g.inputs) {
      if (!f[i.name]) throw new InvalidArgumentError(`quantize: calibration example ${k} has no '${i.name}' (the model's inputs are ${g.inputs.map((x) => `'${x.name}'`).join(', ')}).`);
    }
  });
}

/** One seeded random example (uniform in [-1, 1)) when every input is float32 (symbolic dims as 1); else none. */
function randomFeeds(g: Graph): CalibrationFeeds | undefined {
  const out: Record<string, HostTensor> = {};
  let seed = 1234;
  const rnd = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 2 ** 32;
  };
  for (const i of g.inputs) {
    if (i.dtype !== 'float32' || !i.shape) return undefined;
    const shape = i.shape.map((d) => (typeof d === 'number' ? d : 1));
    const n = shape.reduce((a, b) => a * b, 1);
    out[i.name] = hostTensor('float32', shape, Float32Array.from({ length: n }, () => rnd() * 2 - 1));
  }
  return out;
}
