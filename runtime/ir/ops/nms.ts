import { DTypeError, InvalidArgumentError, ShapeError } from '../../errors.js';
import { toNumbers } from '../dtype.js';
import { attrInt, type Dim } from '../graph.js';
import { dataInput } from './data-dims.js';
import { defineOps, type InferContext, type OpSchema } from './schema.js';

/**
 * NonMaxSuppression-11: boxes [batch, boxes, 4], scores [batch, classes, boxes], and optional scalars
 * max_output_boxes_per_class (int64, default 0: select nothing), iou_threshold and score_threshold (float32).
 * selected_indices [selected, 3] int64 rows (batch, class, box): per batch, per class, in selection order. How many
 * are selected depends on the data, so the count is a symbol.
 *
 * NonMaxSuppressionPadded is EdgeKit's WebGPU lowering of it (backends/webgpu/lower-counts.ts), never imported or
 * exported: the same inputs, selected rows written into an upper-bound [batch * classes * min(max, boxes), 3]
 * buffer, and their number as a second output, which the staged plan reads back to slice the rows.
 */

export interface NmsInputs {
  batches: Dim;
  classes: Dim;
  boxes: Dim;
}

function checkNms(ctx: InferContext): NmsInputs {
  const boxes = dataInput(ctx, 0, 'boxes');
  const scores = dataInput(ctx, 1, 'scores');
  for (const [t, what] of [[boxes, 'boxes'], [scores, 'scores']] as const) {
    if (t.dtype !== 'float32') throw new DTypeError(`NonMaxSuppression ${what} must be float32, got ${t.dtype}.`, { dtype: t.dtype });
    if (t.shape && t.shape.length !== 3) throw new ShapeError(`NonMaxSuppression ${what} must be 3-D, got [${t.shape.join(', ')}].`);
  }
  if (boxes.shape && boxes.shape[2] !== 4 && typeof boxes.shape[2] === 'number') {
    throw new ShapeError(`NonMaxSuppression boxes must be [batch, boxes, 4], got [${boxes.shape.join(', ')}].`);
  }
  const check = (i: number, dtype: string, what: string) => {
    const t = ctx.inputs[i];
    if (!t) return;
    if (t.dtype !== dtype) throw new DTypeError(`NonMaxSuppression ${what} must be ${dtype}, got ${t.dtype}.`, { dtype: t.dtype });
    if (t.shape && t.shape.reduce<number>((a, d) => a * (typeof d === 'number' ? d : 1), 1) !== 1) {
      throw new ShapeError(`NonMaxSuppression ${what} must hold one value, got shape [${t.shape.join(', ')}].`);
    }
  };
  check(2, 'int64', 'max_output_boxes_per_class');
  check(3, 'float32', 'iou_threshold');
  check(4, 'float32', 'score_threshold');
  const cpb = attrInt(ctx.node, 'center_point_box', 0);
  if (cpb !== 0 && cpb !== 1) throw new InvalidArgumentError(`NonMaxSuppression center_point_box must be 0 or 1, got ${cpb}.`);
  const [b, n] = boxes.shape ?? [ctx.symbol('batch'), ctx.symbol('boxes')];
  const [sb, c, sn] = scores.shape ?? [b!, ctx.symbol('classes'), n!];
  if (typeof b === 'number' && typeof sb === 'number' && b !== sb) throw new ShapeError(`NonMaxSuppression boxes have batch ${b} but scores ${sb}.`);
  if (typeof n === 'number' && typeof sn === 'number' && n !== sn) throw new ShapeError(`NonMaxSuppression has ${n} boxes but scores for ${sn}.`);
  return { batches: b!, classes: c!, boxes: n! };
}

/** max_output_boxes_per_class when known (0 when omitted, as the spec says). */
export function nmsMaxPerClass(ctx: InferContext): number | undefined {
  const m = ctx.inputs[2];
  if (!m) return 0;
  return m.value ? Number(toNumbers(m.value.dtype, m.value.data)[0]) : undefined;
}

const nms: OpSchema = {
  op: 'NonMaxSuppression',
  inputs: [2, 5],
  outputs: [1, 1],
  infer(ctx) {
    checkNms(ctx);
    return [{ dtype: 'int64', shape: [nmsMaxPerClass(ctx) === 0 ? 0 : ctx.symbol(`${ctx.node.name}_selected`), 3] }];
  },
};

const nmsPadded: OpSchema = {
  op: 'NonMaxSuppressionPadded',
  inputs: [2, 5],
  outputs: [2, 2],
  infer(ctx) {
    const { batches, classes, boxes } = checkNms(ctx);
    const max = nmsMaxPerClass(ctx);
    const known = typeof batches === 'number' && typeof classes === 'number' && typeof boxes === 'number' && max !== undefined;
    const rows: Dim = known ? batches * classes * Math.max(0, Math.min(max, boxes)) : ctx.symbol(`${ctx.node.name}_bound`);
    return [{ dtype: 'int64', shape: [rows, 3] }, { dtype: 'int64', shape: [] }];
  },
};

export const schemas = defineOps(nms, nmsPadded);
