import { DTypeError, InvalidArgumentError, ShapeError } from '../../errors.js';
import { attrInt, attrString, type Node } from '../graph.js';
import { dataInput } from './data-dims.js';
import { inTypeClass } from './math-types.js';
import { defineOps, type OpSchema } from './schema.js';

/**
 * Sampling ops for vision models: GridSample (opset 16 form, 2-D: X [N, C, H, W], grid [N, Ho, Wo, 2] of (x, y)
 * in [-1, 1]; the opset-20 mode names 'linear' and 'cubic' are accepted too) and RoiAlign-16.
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
    if (x.shape && x.shape.length !== 4) throw new ShapeError(`GridSample supports 2-D sampling of X [N, C, H, W]; got [${x.shape.join(', ')}].`);
    if (g.shape && (g.shape.length !== 4 || (typeof g.shape[3] === 'number' && g.shape[3] !== 2))) {
      throw new ShapeError(`GridSample grid must be [N, Ho, Wo, 2], got [${g.shape.join(', ')}].`);
    }
    const n = x.shape?.[0] ?? g.shape?.[0] ?? ctx.symbol(`${ctx.node.name}_n`);
    const c = x.shape?.[1] ?? ctx.symbol(`${ctx.node.name}_c`);
    const ho = g.shape?.[1] ?? ctx.symbol(`${ctx.node.name}_h`);
    const wo = g.shape?.[2] ?? ctx.symbol(`${ctx.node.name}_w`);
    return [{ dtype: x.dtype, shape: [n, c, ho, wo] }];
  },
};

export const schemas = defineOps(gridSample);
