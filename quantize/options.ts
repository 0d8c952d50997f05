import { InvalidArgumentError } from '../runtime/errors.js';
import type { HostTensor } from '../runtime/ir/tensor.js';

/** One calibration example: input name → tensor (host tensors; the SDK converts its own Tensors). */
export type CalibrationFeeds = Record<string, HostTensor>;
export type CalibrationSource = AsyncIterable<CalibrationFeeds> | Iterable<CalibrationFeeds>;

export type QuantizeMode = 'int8' | 'int8-dynamic' | 'int4-weights' | 'float16';
export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy';

export interface QuantizeOptions {
  mode: QuantizeMode;
  /** 'int8': the examples the float model runs on to measure activation ranges (required for 'int8'). */
  calibration?: CalibrationSource;
  /** Most calibration examples read (default: all). */
  samples?: number;
  /** Weights per output channel (default true); false: one scale per weight tensor. */
  perChannel?: boolean;
  /**
   * Activations symmetric around zero (int8: zero point 0; uint8: zero point 128). Default false (asymmetric, which
   * lets a Relu/Clip(0, x) be absorbed by saturation). Weights are always symmetric int8 (zero point 0), as
   * onnxruntime's quantizer does by default and EdgeKit's int8 kernels expect.
   */
  symmetric?: boolean;
  /** Activation type of the static int8 mode (default 'uint8', onnxruntime's default for QDQ). */
  activations?: 'uint8' | 'int8';
  /** How a range is chosen from what calibration saw (default 'minmax'). */
  method?: CalibrationMethod;
  /** 'percentile': the fraction of values kept inside the range (default 99.999). */
  percentile?: number;
  /** Node names or op types left in float. */
  exclude?: readonly string[];
  /** Keep the first and last quantizable layers (Conv/MatMul/Gemm) in float (default false). */
  keepFirstLast?: boolean;
  /** 'int4-weights': elements per block along K (a power of two from 16 to 256; default 32). */
  blockSize?: number;
  /** 'float16': keep the model's float32 inputs and outputs (Casts at the edges). Default true. */
  keepIoTypes?: boolean;
  /** Calibration examples also used for the report's per-layer table (default 8). */
  reportSamples?: number;
  /** Called as calibration and the report progress: phase, done, total (total undefined when unknown). */
  onProgress?: (phase: 'calibrate' | 'histogram' | 'report', done: number, total: number | undefined) => void;
}

export interface ResolvedOptions extends Required<Omit<QuantizeOptions, 'calibration' | 'samples' | 'onProgress'>> {
  calibration?: CalibrationSource;
  samples: number;
  onProgress?: QuantizeOptions['onProgress'];
}

const MODES: readonly QuantizeMode[] = ['int8', 'int8-dynamic', 'int4-weights', 'float16'];

export function resolveOptions(o: QuantizeOptions): ResolvedOptions {
  if (!o || !MODES.includes(o.mode)) {
    throw new InvalidArgumentError(`quantize: mode must be one of ${MODES.map((m) => `'${m}'`).join(', ')}, got ${JSON.stringify(o?.mode)}.`);
  }
  const method = o.method ?? 'minmax';
  if (!['minmax', 'percentile', 'entropy'].includes(method)) throw new InvalidArgumentError(`quantize: method must be 'minmax', 'percentile' or 'entropy', got '${method}'.`);
  const activations = o.activations ?? 'uint8';
  if (activations !== 'uint8' && activations !== 'int8') throw new InvalidArgumentError(`quantize: activations must be 'uint8' or 'int8', got '${String(activations)}'.`);
  const blockSize = o.blockSize ?? 32;
  if (!Number.isInteger(blockSize) || blockSize < 16 || blockSize > 256 || (blockSize & (blockSize - 1)) !== 0) {
    throw new InvalidArgumentError(`quantize: blockSize must be a power of two from 16 to 256, got ${blockSize}.`);
  }
  const percentile = o.percentile ?? 99.999;
  if (!(percentile > 50 && percentile <= 100)) throw new InvalidArgumentError(`quantize: percentile must be in (50, 100], got ${percentile}.`);
  if (o.mode === 'int8' && !o.calibration) {
    throw new InvalidArgumentError("quantize: mode 'int8' (static) needs calibration data (an iterable of feeds); without data use mode 'int8-dynamic'.");
  }
  const samples = o.samples ?? Infinity;
  if (!(samples >= 1)) throw new InvalidArgumentError(`quantize: samples must be at least 1, got ${samples}.`);
  return {
    mode: o.mode,
    calibration: o.calibration,
    samples,
    perChannel: o.perChannel ?? true,
    symmetric: o.symmetric ?? false,
    activations,
    method,
    percentile,
    exclude: o.exclude ?? [],
    keepFirstLast: o.keepFirstLast ?? false,
    blockSize,
    keepIoTypes: o.keepIoTypes ?? true,
    reportSamples: o.reportSamples ?? 8,
    onProgress: o.onProgress,
  };
}
