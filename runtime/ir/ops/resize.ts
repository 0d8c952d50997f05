import { DTypeError, InvalidArgumentError, ShapeError } from '../../errors.js';
import { isFloat, toNumbers, type DType } from '../dtype.js';
import { attrFloat, attrInt, attrInts, attrString, type Dim, type Node } from '../graph.js';
import { normalizeAxes } from '../shape.js';
import { dataInput, paren } from './data-dims.js';
import { defineOps, type InferContext, type InferInput, type OpSchema } from './schema.js';

/**
 * Resize-19: X, roi?, scales?, sizes? (exactly one of scales/sizes), attributes for the interpolation mode,
 * coordinate transformation, nearest rounding, cubic coefficient, exclude_outside, extrapolation, axes,
 * keep_aspect_ratio_policy and antialias. The importer maps Upsample and Resize-10..18 onto this form.
 */

export const RESIZE_MODES = ['nearest', 'linear', 'cubic'] as const;
export const COORD_MODES = [
  'half_pixel', 'half_pixel_symmetric', 'pytorch_half_pixel', 'align_corners', 'asymmetric', 'tf_crop_and_resize',
  // Resize-11..13 only; kept so older models the importer passes through still run.
  'tf_half_pixel_for_nn',
] as const;
export const NEAREST_MODES = ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'] as const;
export const ASPECT_POLICIES = ['stretch', 'not_larger', 'not_smaller'] as const;

export interface ResizeAttrs {
  mode: (typeof RESIZE_MODES)[number];
  coord: (typeof COORD_MODES)[number];
  nearest: (typeof NEAREST_MODES)[number];
  policy: (typeof ASPECT_POLICIES)[number];
  cubicA: number;
  excludeOutside: boolean;
  extrapolation: number;
  antialias: boolean;
}

function oneOf<T extends string>(node: Node, name: string, dflt: T, allowed: readonly T[]): T {
  const v = attrString(node, name, dflt);
  if (!(allowed as readonly string[]).includes(v)) throw new InvalidArgumentError(`Resize ${name} '${v}' is not one of ${allowed.join(', ')}.`);
  return v as T;
}

export function resizeAttrs(node: Node): ResizeAttrs {
  return {
    mode: oneOf(node, 'mode', 'nearest', RESIZE_MODES),
    coord: oneOf(node, 'coordinate_transformation_mode', 'half_pixel', COORD_MODES),
    nearest: oneOf(node, 'nearest_mode', 'round_prefer_floor', NEAREST_MODES),
    policy: oneOf(node, 'keep_aspect_ratio_policy', 'stretch', ASPECT_POLICIES),
    cubicA: attrFloat(node, 'cubic_coeff_a', -0.75),
    excludeOutside: attrInt(node, 'exclude_outside', 0) !== 0,
    extrapolation: attrFloat(node, 'extrapolation_value', 0),
    antialias: attrInt(node, 'antialias', 0) !== 0,
  };
}

/** The axes roi/scales/sizes refer to (default all), normalized. */
export function resizeAxes(node: Node, rank: number): number[] {
  const axes = attrInts(node, 'axes');
  return axes ? normalizeAxes(axes, rank, 'Resize axes') : Array.from({ length: rank }, (_, i) => i);
}

/** A resize of concrete shapes: the output shape, and per axis the scale and roi the coordinate maps use. */
export interface ResizePlan {
  outShape: number[];
  /** Per input axis (1 for axes not resized). */
  scales: number[];
  /** Per input axis, [start, end] in normalized coordinates (0 and 1 for axes without roi). */
  roi: [number, number][];
}

/** An optional input that is present and non-empty (opset 11 wrote empty tensors as placeholders). */
function given(x: InferInput | undefined): InferInput | undefined {
  if (!x) return undefined;
  if (x.shape && x.shape.length === 1 && x.shape[0] === 0) return undefined;
  return x;
}

const valuesOf = (x: InferInput | undefined) => (x?.value ? Array.from(toNumbers(x.value.dtype, x.value.data)) : undefined);

/**
 * Output size rules (ONNX Resize-19): with scales, out = floor(in * scale); with sizes and policy 'stretch', the
 * sizes themselves and scale = out / in; with 'not_larger'/'not_smaller' one scale for all listed axes (the
 * min/max of sizes / in) and out = round(in * scale) (half up). Scales are float32 values, as onnxruntime uses.
 */
export function resizePlan(node: Node, inShape: readonly number[], roi?: readonly number[], scales?: readonly number[], sizes?: readonly number[]): ResizePlan {
  const r = inShape.length;
  const axes = resizeAxes(node, r);
  const a = resizeAttrs(node);
  const outShape = [...inShape];
  const sc = new Array<number>(r).fill(1);
  if (scales) {
    if (scales.length !== axes.length) throw new ShapeError(`Resize scales has ${scales.length} entries for ${axes.length} axes.`);
    axes.forEach((ax, i) => {
      const s = scales[i]!;
      if (!(s > 0)) throw new InvalidArgumentError(`Resize scales must be positive, got ${s}.`);
      sc[ax] = s;
      outShape[ax] = Math.floor(inShape[ax]! * s);
    });
  } else if (sizes) {
    if (sizes.length !== axes.length) throw new ShapeError(`Resize sizes has ${sizes.length} entries for ${axes.length} axes.`);
    if (sizes.some((s) => !(s >= 0))) throw new ShapeError(`Resize sizes [${sizes.join(', ')}] must not be negative.`);
    const ratios = axes.map((ax, i) => Math.fround(sizes[i]! / inShape[ax]!));
    if (a.policy === 'stretch') {
      axes.forEach((ax, i) => {
        outShape[ax] = sizes[i]!;
        sc[ax] = ratios[i]!;
      });
    } else {
      const s = a.policy === 'not_larger' ? Math.min(...ratios) : Math.max(...ratios);
      for (const ax of axes) {
        sc[ax] = s;
        outShape[ax] = Math.floor(inShape[ax]! * s + 0.5);
      }
    }
  } else {
    throw new InvalidArgumentError('Resize needs either scales or sizes.');
  }
  const rois: [number, number][] = inShape.map(() => [0, 1]);
  if (roi && a.coord === 'tf_crop_and_resize') {
    if (roi.length !== 2 * axes.length) throw new ShapeError(`Resize roi has ${roi.length} entries; it needs ${2 * axes.length} (starts then ends of the axes).`);
    axes.forEach((ax, i) => {
      rois[ax] = [roi[i]!, roi[i + axes.length]!];
    });
  }
  return { outShape, scales: sc, roi: rois };
}

function checkParam(x: InferInput | undefined, what: string, ok: (d: DType) => boolean, want: string): void {
  if (!x) return;
  if (!ok(x.dtype)) throw new DTypeError(`Resize ${what} must be ${want}, got ${x.dtype}.`, { dtype: x.dtype });
  if (x.shape && x.shape.length !== 1) throw new ShapeError(`Resize ${what} must be 1-D, got shape [${x.shape.join(', ')}].`);
}

const resize: OpSchema = {
  op: 'Resize',
  inputs: [1, 4],
  outputs: [1, 1],
  infer(ctx: InferContext) {
    const x = dataInput(ctx, 0, 'X');
    if (!isFloat(x.dtype) && !['int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64'].includes(x.dtype)) {
      throw new DTypeError(`Resize X must be numeric, got ${x.dtype}.`, { dtype: x.dtype });
    }
    const attrs = resizeAttrs(ctx.node);
    if (attrs.antialias && attrs.mode === 'nearest') {
      // The spec defines antialias for linear and cubic; onnxruntime and the reference both refuse it for nearest.
      throw new InvalidArgumentError('Resize antialias=1 applies to linear and cubic modes only, not nearest.');
    }
    const [roi, scales, sizes] = [1, 2, 3].map((i) => given(ctx.inputs[i]));
    checkParam(roi, 'roi', isFloat, 'a floating-point tensor');
    checkParam(scales, 'scales', (d) => d === 'float32', 'float32');
    checkParam(sizes, 'sizes', (d) => d === 'int64', 'int64');
    if (scales && sizes) throw new InvalidArgumentError('Resize takes scales or sizes, not both.');
    if (!scales && !sizes) throw new InvalidArgumentError('Resize needs either scales or sizes.');
    if (!x.shape) return [{ dtype: x.dtype }];
    const axes = resizeAxes(ctx.node, x.shape.length);
    const sym = (i: number) => ctx.symbol(`${ctx.node.name}_d${i}`);
    const scaleValues = valuesOf(scales);
    const sizeValues = valuesOf(sizes);
    const inShape = x.shape;
    if (inShape.every((d) => typeof d === 'number') && (scaleValues || sizeValues)) {
      return [{ dtype: x.dtype, shape: resizePlan(ctx.node, inShape as number[], valuesOf(roi), scaleValues, sizeValues).outShape }];
    }
    const out: Dim[] = [...inShape];
    if (scaleValues) {
      if (scaleValues.length !== axes.length) throw new ShapeError(`Resize scales has ${scaleValues.length} entries for ${axes.length} axes.`);
      axes.forEach((ax, i) => {
        const d = inShape[ax]!;
        const s = scaleValues[i]!;
        if (typeof d === 'number') out[ax] = Math.floor(d * s);
        else out[ax] = s === 1 ? d : Number.isInteger(s) ? `${paren(d)}*${s}` : `floor(${paren(d)}*${s})`;
      });
    } else if (sizeValues && attrs.policy === 'stretch') {
      if (sizeValues.length !== axes.length) throw new ShapeError(`Resize sizes has ${sizeValues.length} entries for ${axes.length} axes.`);
      axes.forEach((ax, i) => {
        out[ax] = sizeValues[i]!;
      });
    } else {
      // Runtime scales/sizes, or an aspect-ratio policy on symbolic dims: resized axes are known only at run time.
      for (const ax of axes) out[ax] = sym(ax);
    }
    return [{ dtype: x.dtype, shape: out }];
  },
};

export const schemas = defineOps(resize);
