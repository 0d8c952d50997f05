import { DTypeError, InvalidArgumentError, ShapeError } from '../../errors.js';
import { toNumbers, type DType } from '../dtype.js';
import { attrInt, type Dim, type Node } from '../graph.js';
import { normalizeAxis } from '../shape.js';
import type { HostTensor } from '../tensor.js';
import { castTarget } from './data-onnx-types.js';
import { dataInput } from './data-dims.js';
import { inTypeClass } from './math-types.js';
import { defineOps, type InferContext, type InferInput, type OpSchema } from './schema.js';

/**
 * Signal processing ops: HannWindow, HammingWindow, BlackmanWindow, STFT and MelWeightMatrix (opset 17 forms)
 * and DFT-20 (axis as an optional input). Complex tensors are real tensors with a trailing dim of 2 (re, im). Scalar integer inputs that
 * decide a shape (window size, dft_length, frame_length...) must be constants for the shape to be known.
 */

/** The value of a scalar (or 1-element) numeric input when constant. */
export function scalarValue(t: HostTensor | undefined): number | undefined {
  return t ? toNumbers(t.dtype, t.data)[0] : undefined;
}

function scalarInput(ctx: InferContext, x: InferInput | undefined, what: string, cls: 'integer' | 'numeric' = 'integer'): number | undefined {
  if (!x) return undefined;
  if (!inTypeClass(x.dtype, cls)) throw new DTypeError(`${ctx.node.op} ${what} must be ${cls === 'integer' ? 'an integer' : 'a number'}, got ${x.dtype}.`);
  if (x.shape && !(x.shape.length === 0 || (x.shape.length === 1 && x.shape[0] === 1))) throw new ShapeError(`${ctx.node.op} ${what} must be a scalar, got [${x.shape.join(', ')}].`);
  return scalarValue(x.value);
}

function positive(node: Node, v: number | undefined, what: string): number | undefined {
  if (v !== undefined && !(Number.isInteger(v) && v > 0)) throw new InvalidArgumentError(`${node.op} ${what} must be a positive integer, got ${v}.`);
  return v;
}

/** output_datatype (an ONNX DataType code; default float). */
export function outputDType(node: Node): DType {
  const a = node.attrs['output_datatype'];
  return a ? castTarget({ ...node, attrs: { to: a } }) : 'float32';
}

// ---- windows ----

/** Generalized cosine window coefficients: w[n] = a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N). */
export const WINDOW_COEFFS: Readonly<Record<string, [number, number, number]>> = {
  HannWindow: [0.5, 0.5, 0],
  HammingWindow: [25 / 46, 21 / 46, 0],
  BlackmanWindow: [0.42, 0.5, 0.08],
};

/** N of the cosine: size for a periodic window, size - 1 for a symmetric one. */
export function windowPeriod(node: Node, size: number): number {
  return attrInt(node, 'periodic', 1) ? size : size - 1;
}

function windowSchema(op: string): OpSchema {
  return {
    op,
    inputs: [1, 1],
    outputs: [1, 1],
    infer(ctx) {
      const size = positive(ctx.node, scalarInput(ctx, dataInput(ctx, 0, 'size'), 'size'), 'size');
      return [{ dtype: outputDType(ctx.node), shape: [size ?? ctx.symbol(`${ctx.node.name}_size`)] }];
    },
  };
}

// ---- DFT ----

export interface DftGeometry {
  axis: number;
  /** Signal length along the axis, and the transform length (dft_length, default the signal length). */
  len: number;
  n: number;
  /** Output length along the axis (n, or n / 2 + 1 when onesided). */
  outLen: number;
  complex: boolean;
  inverse: boolean;
}

/** DFT-20's axis input (default -2, the last signal axis); the opset-17 attribute form is rewritten to it on import. */
export const DFT_DEFAULT_AXIS = -2;

/** DFT-20 geometry for a concrete input shape [batch, ..., signal..., 1 or 2]. */
export function dftGeometry(node: Node, shape: readonly number[], dftLength?: number, axisValue = DFT_DEFAULT_AXIS): DftGeometry {
  const r = shape.length;
  const axis = normalizeAxis(axisValue, r, 'DFT axis');
  if (axis === 0 || axis === r - 1) throw new ShapeError(`DFT axis ${axis} must be a signal axis (not the batch or the trailing re/im axis) of [${shape.join(', ')}].`);
  const complex = shape[r - 1] === 2;
  const inverse = attrInt(node, 'inverse', 0) !== 0;
  const onesided = attrInt(node, 'onesided', 0) !== 0;
  if (onesided && (complex || inverse)) throw new InvalidArgumentError('DFT onesided=1 needs a real input and a forward transform.');
  const len = shape[axis]!;
  const n = dftLength ?? len;
  return { axis, len, n, outLen: onesided ? Math.floor(n / 2) + 1 : n, complex, inverse };
}

const dft: OpSchema = {
  op: 'DFT',
  inputs: [1, 3],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'input');
    if (!inTypeClass(x.dtype, 'float')) throw new DTypeError(`DFT input must be a floating-point type, got ${x.dtype}.`);
    const lenIn = ctx.inputs[1];
    const dl = positive(ctx.node, scalarInput(ctx, lenIn, 'dft_length'), 'dft_length');
    if (!x.shape) return [{ dtype: x.dtype }];
    const r = x.shape.length;
    const last = x.shape[r - 1];
    if (r < 3 || (typeof last === 'number' && last !== 1 && last !== 2)) throw new ShapeError(`DFT input must be [batch, ..., 1 or 2], got [${x.shape.join(', ')}].`);
    const axisIn = ctx.inputs[2];
    const axisValue = scalarInput(ctx, axisIn, 'axis');
    const onesided = attrInt(ctx.node, 'onesided', 0) !== 0;
    if (axisIn && axisValue === undefined) {
      // Which axis changes is known only at run time.
      return [{ dtype: x.dtype, shape: x.shape.map((d, i) => (i === 0 ? d : i === r - 1 ? 2 : ctx.symbol(`${ctx.node.name}_d${i}`))) }];
    }
    const axis = normalizeAxis(axisValue ?? DFT_DEFAULT_AXIS, r, 'DFT axis');
    if (axis === 0 || axis === r - 1) throw new ShapeError(`DFT axis ${axis} must be a signal axis of [${x.shape.join(', ')}].`);
    const n: Dim | undefined = lenIn ? dl : x.shape[axis];
    const outLen: Dim = typeof n === 'number' ? (onesided ? Math.floor(n / 2) + 1 : n) : ctx.symbol(`${ctx.node.name}_n`);
    return [{ dtype: x.dtype, shape: x.shape.map((d, i) => (i === axis ? outLen : i === r - 1 ? 2 : d)) }];
  },
};

// ---- STFT ----

export interface StftGeometry {
  batch: number;
  len: number;
  complex: boolean;
  step: number;
  frameLength: number;
  frames: number;
  bins: number;
}

export function stftGeometry(node: Node, shape: readonly number[], step: number, frameLength: number | undefined, windowLength: number | undefined): StftGeometry {
  const fl = frameLength ?? windowLength;
  if (fl === undefined) throw new InvalidArgumentError('STFT needs a window or a frame_length.');
  if (windowLength !== undefined && windowLength !== fl) throw new ShapeError(`STFT window length ${windowLength} differs from frame_length ${fl}.`);
  const [batch, len] = [shape[0]!, shape[1]!];
  if (fl > len) throw new ShapeError(`STFT frame_length ${fl} exceeds the signal length ${len}.`);
  const complex = shape[2] === 2;
  const onesided = attrInt(node, 'onesided', 1) !== 0;
  if (onesided && complex) throw new InvalidArgumentError('STFT onesided=1 needs a real signal.');
  return { batch, len, complex, step, frameLength: fl, frames: Math.floor((len - fl) / step) + 1, bins: onesided ? Math.floor(fl / 2) + 1 : fl };
}

const stft: OpSchema = {
  op: 'STFT',
  inputs: [2, 4],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'signal');
    if (!inTypeClass(x.dtype, 'float')) throw new DTypeError(`STFT signal must be a floating-point type, got ${x.dtype}.`);
    const step = positive(ctx.node, scalarInput(ctx, dataInput(ctx, 1, 'frame_step'), 'frame_step'), 'frame_step');
    const w = ctx.inputs[2];
    if (w && w.dtype !== x.dtype) throw new DTypeError(`STFT window is ${w.dtype} but the signal is ${x.dtype}.`);
    if (w?.shape && w.shape.length !== 1) throw new ShapeError(`STFT window must be 1-D, got [${w.shape.join(', ')}].`);
    const fl = positive(ctx.node, scalarInput(ctx, ctx.inputs[3], 'frame_length'), 'frame_length');
    if (!ctx.inputs[3] && !w) throw new InvalidArgumentError('STFT needs a window or a frame_length.');
    if (x.shape && (x.shape.length !== 3 || (typeof x.shape[2] === 'number' && x.shape[2] !== 1 && x.shape[2] !== 2))) {
      throw new ShapeError(`STFT signal must be [batch, length, 1 or 2], got [${x.shape.join(', ')}].`);
    }
    const wl = w?.shape?.[0];
    const flKnown = ctx.inputs[3] ? fl : typeof wl === 'number' ? wl : undefined;
    if (!x.shape) return [{ dtype: x.dtype }];
    const sym = (s: string) => ctx.symbol(`${ctx.node.name}_${s}`);
    if (step === undefined || flKnown === undefined || typeof x.shape[1] !== 'number' || typeof x.shape[2] !== 'number') {
      return [{ dtype: x.dtype, shape: [x.shape[0]!, sym('frames'), sym('bins'), 2] }];
    }
    const g = stftGeometry(ctx.node, x.shape as number[], step, flKnown, typeof wl === 'number' ? wl : undefined);
    return [{ dtype: x.dtype, shape: [x.shape[0]!, g.frames, g.bins, 2] }];
  },
};

// ---- MelWeightMatrix ----

/**
 * MelWeightMatrix-17: triangular filters on the HTK mel scale (mel = 2595 log10(1 + hz / 700)): num_mel_bins + 2
 * points evenly spaced in mel between the edges, mapped to DFT bins floor((dft_length + 1) hz / sample_rate); filter
 * i rises from point i to point i + 1 and falls to point i + 2. Returns the [dft_length / 2 + 1, num_mel_bins]
 * matrix (row-major) and the filter points.
 */
export function melWeights(numMel: number, dftLength: number, sampleRate: number, lowHz: number, highHz: number): { rows: number; weights: Float64Array; points: Int32Array } {
  const rows = Math.floor(dftLength / 2) + 1;
  const mel = (hz: number) => 2595 * Math.log10(1 + hz / 700);
  const [lo, hi] = [mel(lowHz), mel(highHz)];
  const step = (hi - lo) / (numMel + 2);
  const points = Int32Array.from({ length: numMel + 2 }, (_, i) => {
    const hz = 700 * (10 ** ((i * step + lo) / 2595) - 1);
    return Math.floor(((dftLength + 1) * hz) / sampleRate);
  });
  const weights = new Float64Array(rows * numMel);
  const set = (j: number, i: number, v: number) => {
    if (j >= 0 && j < rows) weights[j * numMel + i] = v;
  };
  for (let i = 0; i < numMel; i++) {
    const [l, c, r] = [points[i]!, points[i + 1]!, points[i + 2]!];
    if (c === l) set(c, i, 1);
    else for (let j = l; j <= c; j++) set(j, i, (j - l) / (c - l));
    if (r > c) for (let j = c; j < r; j++) set(j, i, (r - j) / (r - c));
  }
  return { rows, weights, points };
}

const melWeightMatrix: OpSchema = {
  op: 'MelWeightMatrix',
  inputs: [5, 5],
  outputs: [1, 1],
  infer(ctx) {
    const names = ['num_mel_bins', 'dft_length', 'sample_rate', 'lower_edge_hertz', 'upper_edge_hertz'];
    const v = names.map((n, i) => scalarInput(ctx, dataInput(ctx, i, n), n, i < 3 ? 'integer' : 'numeric'));
    const mels = positive(ctx.node, v[0], 'num_mel_bins');
    const dl = positive(ctx.node, v[1], 'dft_length');
    const dtype = outputDType(ctx.node);
    return [{ dtype, shape: [dl === undefined ? ctx.symbol(`${ctx.node.name}_bins`) : Math.floor(dl / 2) + 1, mels ?? ctx.symbol(`${ctx.node.name}_mels`)] }];
  },
};

export const schemas = defineOps(windowSchema('HannWindow'), windowSchema('HammingWindow'), windowSchema('BlackmanWindow'), dft, stft, melWeightMatrix);
