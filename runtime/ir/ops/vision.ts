import { DTypeError, InvalidArgumentError, ShapeError } from '../../errors.js';
import { attrFloat, attrInt, attrString, type Node } from '../graph.js';
import { dataInput } from './data-dims.js';
import { inTypeClass } from './math-types.js';
import { defineOps, type OpSchema } from './schema.js';

/**
 * Sampling ops for vision models: GridSample-20 (2-D: X [N, C, H, W], grid [N, Ho, Wo, 2] of (x, y) in [-1, 1]; 3-D:
 * X [N, C, D, H, W], grid [N, Do, Ho, Wo, 3] of (x, y, z), linear and nearest only; the opset-16 mode names
 * 'bilinear' and 'bicubic' are accepted too) and RoiAlign-16.
 */

export type GridMode = 'bilinear' | 'nearest' | 'bicubic';
export type GridPadding = 'zeros' | 'border' | 'reflection';

export interface GridSampleAttrs {
  mode: GridMode;
  padding: GridPadding;
  alignCorners: boolean;
}

export function gridSampleAttrs(node: Node): GridSampleAttrs {
  const m = attrString(node, 'mode', 'bilinear');
  const mode = ({ bilinear: 'bilinear', linear: 'bilinear', nearest: 'nearest', bicubic: 'bicubic', cubic: 'bicubic' } as Record<string, GridMode>)[m];
  if (!mode) throw new InvalidArgumentError(`GridSample mode '${m}' is not one of bilinear (linear), nearest, bicubic (cubic).`);
  const padding = attrString(node, 'padding_mode', 'zeros');
  if (!['zeros', 'border', 'reflection'].includes(padding)) throw new InvalidArgumentError(`GridSample padding_mode '${padding}' is not one of zeros, border, reflection.`);
  return { mode, padding: padding as GridPadding, alignCorners: attrInt(node, 'align_corners', 0) !== 0 };
}

const gridSample: OpSchema = {
  op: 'GridSample',
  inputs: [2, 2],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'X');
    const g = dataInput(ctx, 1, 'grid');
    gridSampleAttrs(ctx.node);
    if (!inTypeClass(g.dtype, 'float')) throw new DTypeError(`GridSample grid must be a floating-point type, got ${g.dtype}.`);
    if (!inTypeClass(x.dtype, 'float')) throw new DTypeError(`GridSample X must be a floating-point type here, got ${x.dtype}.`);
    const rank = x.shape?.length ?? g.shape?.length;
    if (rank === undefined) return [{ dtype: x.dtype }];
    if (rank !== 4 && rank !== 5) throw new ShapeError(`GridSample samples 2-D [N, C, H, W] or 3-D [N, C, D, H, W] inputs; got rank ${rank}.`);
    if (rank === 5 && gridSampleAttrs(ctx.node).mode === 'bicubic') throw new InvalidArgumentError('GridSample cubic mode samples 2-D inputs only.');
    const last = g.shape?.[rank - 1];
    if ((x.shape && x.shape.length !== rank) || (g.shape && (g.shape.length !== rank || (typeof last === 'number' && last !== rank - 2)))) {
      throw new ShapeError(`GridSample grid must be [N, out..., ${rank - 2}] for X of rank ${rank}, got [${g.shape?.join(', ')}].`);
    }
    const n = x.shape?.[0] ?? g.shape?.[0] ?? ctx.symbol(`${ctx.node.name}_n`);
    const c = x.shape?.[1] ?? ctx.symbol(`${ctx.node.name}_c`);
    const out = Array.from({ length: rank - 2 }, (_, i) => g.shape?.[i + 1] ?? ctx.symbol(`${ctx.node.name}_o${i}`));
    return [{ dtype: x.dtype, shape: [n, c, ...out] }];
  },
};

export interface RoiAlignAttrs {
  max: boolean;
  outH: number;
  outW: number;
  samplingRatio: number;
  scale: number;
  /** half_pixel (RoiAlign-16 default): pixel centers at +0.5; output_half_pixel: the opset-10 behavior. */
  halfPixel: boolean;
}

export function roiAlignAttrs(node: Node): RoiAlignAttrs {
  const mode = attrString(node, 'mode', 'avg');
  if (mode !== 'avg' && mode !== 'max') throw new InvalidArgumentError(`RoiAlign mode '${mode}' is not avg or max.`);
  const ctm = attrString(node, 'coordinate_transformation_mode', 'half_pixel');
  if (ctm !== 'half_pixel' && ctm !== 'output_half_pixel') throw new InvalidArgumentError(`RoiAlign coordinate_transformation_mode '${ctm}' is not half_pixel or output_half_pixel.`);
  const a = {
    max: mode === 'max',
    outH: attrInt(node, 'output_height', 1),
    outW: attrInt(node, 'output_width', 1),
    samplingRatio: attrInt(node, 'sampling_ratio', 0),
    scale: attrFloat(node, 'spatial_scale', 1),
    halfPixel: ctm === 'half_pixel',
  };
  if (a.outH < 1 || a.outW < 1 || a.samplingRatio < 0) throw new InvalidArgumentError(`RoiAlign output sizes must be positive and sampling_ratio not negative.`);
  return a;
}

/** RoiAlign-16: X [N, C, H, W], rois [R, 4] as (x1, y1, x2, y2), batch_indices [R] -> [R, C, output_height, output_width]. */
const roiAlign: OpSchema = {
  op: 'RoiAlign',
  inputs: [3, 3],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'X');
    const rois = dataInput(ctx, 1, 'rois');
    const bi = dataInput(ctx, 2, 'batch_indices');
    const a = roiAlignAttrs(ctx.node);
    if (!inTypeClass(x.dtype, 'float')) throw new DTypeError(`RoiAlign X must be a floating-point type, got ${x.dtype}.`);
    if (rois.dtype !== x.dtype) throw new DTypeError(`RoiAlign rois are ${rois.dtype} but X is ${x.dtype}.`);
    if (bi.dtype !== 'int64') throw new DTypeError(`RoiAlign batch_indices must be int64, got ${bi.dtype}.`);
    if (x.shape && x.shape.length !== 4) throw new ShapeError(`RoiAlign X must be [N, C, H, W], got [${x.shape.join(', ')}].`);
    if (rois.shape && (rois.shape.length !== 2 || (typeof rois.shape[1] === 'number' && rois.shape[1] !== 4))) throw new ShapeError(`RoiAlign rois must be [R, 4], got [${rois.shape.join(', ')}].`);
    const r = rois.shape?.[0] ?? bi.shape?.[0] ?? ctx.symbol(`${ctx.node.name}_rois`);
    return [{ dtype: x.dtype, shape: [r, x.shape?.[1] ?? ctx.symbol(`${ctx.node.name}_c`), a.outH, a.outW] }];
  },
};

export const schemas = defineOps(gridSample, roiAlign);
