import { DTypeError, InvalidArgumentError, ShapeError } from '../../errors.js';
import { attrFloat, attrInt, type Node } from '../graph.js';
import { dataInput } from './data-dims.js';
import { defineOps, type OpSchema } from './schema.js';

/**
 * edgekit.Histogram: EdgeKit's internal op for the quantizer's calibration (quantize/histogram.ts), never imported
 * or exported. Inputs X (float32, any shape) and optional Acc (uint32 [bins]); output Y (uint32 [bins]) = Acc plus
 * the counts of X's values (of |x| with abs=1) over `bins` equal bins spanning [low, high].
 *
 * The binning rule is one definition for every backend (binOf below, written in f32 steps that WGSL computes
 * exactly: a subtraction and a multiplication, both correctly rounded; no division in the shader), so the CPU
 * reference and the WebGPU kernel give equal counts:
 *   scale = f32(bins / (high - low)) on the host (0 when high <= low or the quotient is not a finite f32)
 *   t = f32(f32(v - f32(low)) * scale);  bin = t >= bins ? bins - 1 : t > 0 ? floor(t) : 0
 * so values on or above `high` land in the last bin, those on or below `low` in the first, and a degenerate range
 * puts every value in bin 0. NaN is not counted; +Inf goes to the last bin and -Inf to the first (|-Inf| to the
 * last). Caveat: a GPU may flush subnormal results of v - low to zero, which changes a bin only for ranges narrower
 * than about 1e-34.
 */

export const HISTOGRAM_OP = 'edgekit.Histogram';

export interface HistogramParams {
  bins: number;
  /** f32(low) */
  low: number;
  /** f32(bins / (high - low)), or 0 for a degenerate range. */
  scale: number;
  abs: boolean;
}

export function histogramParams(node: Node): HistogramParams {
  const bins = attrInt(node, 'bins');
  if (bins === undefined || !Number.isInteger(bins) || bins < 1) {
    throw new InvalidArgumentError(`${HISTOGRAM_OP} node '${node.name}' needs an integer attribute bins >= 1, got ${bins}.`);
  }
  const low = attrFloat(node, 'low', 0);
  const high = attrFloat(node, 'high', 0);
  const abs = attrInt(node, 'abs', 0);
  if (abs !== 0 && abs !== 1) throw new InvalidArgumentError(`${HISTOGRAM_OP} abs must be 0 or 1, got ${abs}.`);
  return { bins, ...binning(low, high, bins), abs: abs === 1 };
}

/** The f32 low edge and bin scale of a range (the host's half of the rule). */
export function binning(low: number, high: number, bins: number): { low: number; scale: number } {
  const lo = Math.fround(low);
  const s = high > low ? Math.fround(bins / (high - low)) : 0;
  return { low: Number.isFinite(lo) ? lo : 0, scale: Number.isFinite(s) && Number.isFinite(lo) ? s : 0 };
}

/** The bin of one value (already |x| when abs), or -1 for NaN: the rule every backend computes. */
export function binOf(v: number, p: HistogramParams): number {
  if (Number.isNaN(v)) return -1;
  if (v === Infinity) return p.bins - 1;
  if (v === -Infinity) return 0;
  const t = Math.fround(Math.fround(v - p.low) * p.scale);
  return t >= p.bins ? p.bins - 1 : t > 0 ? Math.floor(t) : 0;
}

const histogram: OpSchema = {
  op: HISTOGRAM_OP,
  inputs: [1, 2],
  outputs: [1, 1],
  infer(ctx) {
    const { bins } = histogramParams(ctx.node);
    const x = dataInput(ctx, 0, 'X');
    if (x.dtype !== 'float32') throw new DTypeError(`${HISTOGRAM_OP} X must be float32, got ${x.dtype}.`, { dtype: x.dtype });
    const acc = ctx.inputs[1];
    if (acc) {
      if (acc.dtype !== 'uint32') throw new DTypeError(`${HISTOGRAM_OP} Acc must be uint32, got ${acc.dtype}.`, { dtype: acc.dtype });
      if (acc.shape && (acc.shape.length !== 1 || (typeof acc.shape[0] === 'number' && acc.shape[0] !== bins))) {
        throw new ShapeError(`${HISTOGRAM_OP} Acc must be [${bins}], got [${acc.shape.join(', ')}].`);
      }
    }
    return [{ dtype: 'uint32', shape: [bins] }];
  },
};

export const schemas = defineOps(histogram);
