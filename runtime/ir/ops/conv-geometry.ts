import { InvalidArgumentError, ShapeError } from '../../errors.js';
import { attrInt, attrInts, attrString, type Dim, type Node } from '../graph.js';
import { dimExpr } from '../shape.js';

/**
 * Sliding-window geometry shared by Conv, ConvTranspose and the pools (ONNX Conv-11, ConvTranspose-11,
 * MaxPool-12, AveragePool-19): reading kernel_shape/strides/dilations/pads/auto_pad, output sizes (symbolic
 * where the input size is a symbol) and the concrete pads a kernel uses. Kernels call the same functions with
 * concrete sizes, so inference and execution agree by construction.
 */
export type AutoPad = 'NOTSET' | 'SAME_UPPER' | 'SAME_LOWER' | 'VALID';

export interface WindowAttrs {
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** [x1_begin, x2_begin, ..., x1_end, x2_end, ...] as in the ONNX attribute; used only with auto_pad NOTSET. */
  pads: number[];
  autoPad: AutoPad;
  /** Pools only: round the output size up (with the rule that the last window must start inside the input or the left padding). */
  ceilMode: boolean;
}

function ints(node: Node, name: string, n: number, dflt: number, min: number): number[] {
  const v = attrInts(node, name) ?? new Array<number>(n).fill(dflt);
  if (v.length !== n) {
    throw new ShapeError(`${node.op} attribute ${name} has ${v.length} values but the input has ${n} spatial dimension(s).`, { [name]: v });
  }
  for (const x of v) {
    if (!Number.isInteger(x) || x < min) throw new InvalidArgumentError(`${node.op} attribute ${name} = [${v.join(', ')}] must hold integers >= ${min}.`);
  }
  return [...v];
}

/** Reads the window attributes for `spatialRank` axes; `kernel` is the kernel size when not given by kernel_shape. */
export function readWindowAttrs(node: Node, spatialRank: number, kernel?: number[]): WindowAttrs {
  const autoPad = attrString(node, 'auto_pad', 'NOTSET') as AutoPad;
  if (!['NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID'].includes(autoPad)) {
    throw new InvalidArgumentError(`${node.op} auto_pad '${autoPad}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID.`);
  }
  const given = attrInts(node, 'kernel_shape');
  if (!given && !kernel) throw new InvalidArgumentError(`${node.op} needs the kernel_shape attribute.`);
  const k = given ? ints(node, 'kernel_shape', spatialRank, 1, 1) : kernel!;
  if (k.length !== spatialRank) throw new ShapeError(`${node.op} kernel has ${k.length} spatial dimension(s) but the input has ${spatialRank}.`);
  return {
    kernel: k,
    strides: ints(node, 'strides', spatialRank, 1, 1),
    dilations: ints(node, 'dilations', spatialRank, 1, 1),
    pads: ints(node, 'pads', 2 * spatialRank, 0, 0),
    autoPad,
    ceilMode: attrInt(node, 'ceil_mode', 0) !== 0,
  };
}

/** Extent of a dilated kernel along one axis: (k - 1) * d + 1. */
export function effectiveKernel(w: WindowAttrs, axis: number): number {
  return (w.kernel[axis]! - 1) * w.dilations[axis]! + 1;
}

/** Output size along one axis for an input of size `n` (floor or ceil division, ONNX pooling/conv formulas). */
function outSize(n: number, w: WindowAttrs, axis: number, padTotal: number, padBegin: number): number {
  const s = w.strides[axis]!;
  const span = n + padTotal - effectiveKernel(w, axis);
  if (span < 0) return 0;
  if (!w.ceilMode) return Math.floor(span / s) + 1;
  let out = Math.ceil(span / s) + 1;
  // ceil_mode: the last window must start inside the input or the left padding, not in the right padding.
  if ((out - 1) * s >= n + padBegin) out--;
  return out;
}

/** Concrete pads [begin, end] along one axis for input size n (auto_pad resolved). */
export function axisPads(n: number, w: WindowAttrs, axis: number): [number, number] {
  const rank = w.kernel.length;
  switch (w.autoPad) {
    case 'VALID':
      return [0, 0];
    case 'NOTSET':
      return [w.pads[axis]!, w.pads[axis + rank]!];
    default: {
      // SAME_*: output = ceil(n / stride); the padding that makes it so is split evenly, the odd one at the end
      // (SAME_UPPER) or at the beginning (SAME_LOWER).
      const s = w.strides[axis]!;
      const out = Math.ceil(n / s);
      const total = Math.max(0, (out - 1) * s + effectiveKernel(w, axis) - n);
      const small = Math.floor(total / 2);
      return w.autoPad === 'SAME_UPPER' ? [small, total - small] : [total - small, small];
    }
  }
}

/** Output size of a Conv/pool along one axis; a readable expression when the input size is a symbol. */
export function windowOutDim(inDim: Dim, w: WindowAttrs, axis: number): Dim {
  const s = w.strides[axis]!;
  if (w.autoPad === 'SAME_UPPER' || w.autoPad === 'SAME_LOWER') {
    return dimExpr((n) => Math.ceil(n / s), (n) => (s === 1 ? n : `ceil(${n}/${s})`), inDim);
  }
  const [pb, pe] = w.autoPad === 'VALID' ? [0, 0] : [w.pads[axis]!, w.pads[axis + w.kernel.length]!];
  const c = pb + pe - effectiveKernel(w, axis);
  return dimExpr(
    (n) => outSize(n, w, axis, pb + pe, pb),
    (n) => {
      if (s === 1) return c + 1 === 0 ? n : `${n}${c + 1 > 0 ? '+' : ''}${c + 1}`;
      const inner = c === 0 ? n : `${n}${c > 0 ? '+' : ''}${c}`;
      return `${w.ceilMode ? 'ceil' : 'floor'}((${inner})/${s})+1`;
    },
    inDim,
  );
}

/** Concrete geometry of one Conv/pool application: pads per axis and the output spatial sizes. */
export interface ConcreteWindow {
  padsBegin: number[];
  padsEnd: number[];
  out: number[];
}

export function concreteWindow(inSpatial: readonly number[], w: WindowAttrs): ConcreteWindow {
  const padsBegin: number[] = [];
  const padsEnd: number[] = [];
  const out: number[] = [];
  inSpatial.forEach((n, i) => {
    const [pb, pe] = axisPads(n, w, i);
    padsBegin.push(pb);
    padsEnd.push(pe);
    out.push(w.autoPad === 'SAME_UPPER' || w.autoPad === 'SAME_LOWER' ? Math.ceil(n / w.strides[i]!) : outSize(n, w, i, pb + pe, pb));
  });
  return { padsBegin, padsEnd, out };
}

// ---- ConvTranspose-11 ----

export interface TransposeAttrs extends WindowAttrs {
  outputPadding: number[];
  /** Spatial output sizes from the output_shape attribute, when given. */
  outputShape?: number[];
}

export function readTransposeAttrs(node: Node, spatialRank: number, kernel: number[]): TransposeAttrs {
  const w = readWindowAttrs(node, spatialRank, kernel);
  const outputPadding = ints(node, 'output_padding', spatialRank, 0, 0);
  let outputShape = attrInts(node, 'output_shape');
  // Some exporters write the full [N, C, ...] shape; only the spatial part is meaningful.
  if (outputShape && outputShape.length === spatialRank + 2) outputShape = outputShape.slice(2);
  if (outputShape && outputShape.length !== spatialRank) {
    throw new ShapeError(`ConvTranspose output_shape [${outputShape.join(', ')}] must list ${spatialRank} spatial size(s).`);
  }
  return { ...w, outputPadding, ...(outputShape ? { outputShape: [...outputShape] } : {}) };
}

/**
 * Output size and pads of ConvTranspose along one axis (ONNX ConvTranspose-11):
 * out = stride (n - 1) + output_padding + ((k - 1) d + 1) - pad_begin - pad_end, unless output_shape is given or
 * auto_pad is SAME_* (then out = n * stride); in those cases the total padding follows from out and is split with
 * the odd unit at the end for SAME_UPPER and at the beginning otherwise. Negative pads mean extra output
 * elements that no input reaches (they hold only the bias).
 */
export function transposeAxis(n: number, w: TransposeAttrs, axis: number): { out: number; padBegin: number; padEnd: number } {
  const s = w.strides[axis]!;
  const full = s * (n - 1) + w.outputPadding[axis]! + effectiveKernel(w, axis);
  const target = w.outputShape?.[axis] ?? (w.autoPad === 'SAME_UPPER' || w.autoPad === 'SAME_LOWER' ? n * s : undefined);
  if (target === undefined) {
    const [pb, pe] = w.autoPad === 'VALID' ? [0, 0] : [w.pads[axis]!, w.pads[axis + w.kernel.length]!];
    return { out: full - pb - pe, padBegin: pb, padEnd: pe };
  }
  const total = full - target;
  // A target larger than the natural size leaves the extra elements at the end (like output_padding), as
  // onnxruntime does, rather than splitting a negative padding.
  if (total < 0) return { out: target, padBegin: 0, padEnd: total };
  const half = Math.floor(total / 2);
  return w.autoPad === 'SAME_UPPER'
    ? { out: target, padBegin: half, padEnd: total - half }
    : { out: target, padBegin: total - half, padEnd: half };
}

export function transposeOutDim(inDim: Dim, w: TransposeAttrs, axis: number): Dim {
  const s = w.strides[axis]!;
  if (w.outputShape) return w.outputShape[axis]!;
  if (w.autoPad === 'SAME_UPPER' || w.autoPad === 'SAME_LOWER') return dimExpr((n) => n * s, (n) => (s === 1 ? n : `${s}*${n}`), inDim);
  const [pb, pe] = w.autoPad === 'VALID' ? [0, 0] : [w.pads[axis]!, w.pads[axis + w.kernel.length]!];
  const c = w.outputPadding[axis]! + effectiveKernel(w, axis) - pb - pe - s;
  return dimExpr(
    (n) => transposeAxis(n, w, axis).out,
    (n) => `${s === 1 ? n : `${s}*${n}`}${c === 0 ? '' : c > 0 ? `+${c}` : c}`,
    inDim,
  );
}
