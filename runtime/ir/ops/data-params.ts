import { InvalidArgumentError, ShapeError } from '../../errors.js';
import type { Dim } from '../graph.js';
import { normalizeAxes } from '../shape.js';
import { paren } from './data-dims.js';

/**
 * Parameter resolution for Slice, Pad and Split: the rules that turn starts/ends/steps, pads and split sizes into
 * per-axis ranges. Shape inference and the CPU kernels both call these, so they cannot disagree.
 */

// ---- Slice-13 ----

/** One sliced axis: read `length` elements starting at `start`, `step` apart. */
export interface SliceAxis {
  axis: number;
  start: number;
  step: number;
  length: number;
}

/** Big enough that an end/start beyond it means "to the edge" whatever the dim (exporters write INT64_MAX/MIN). */
const TO_EDGE = 2 ** 31 - 1;

/**
 * ONNX Slice-13 on one axis of size `dim`: negative starts/ends count from the back; then for step > 0 start and
 * end clamp to [0, dim], for step < 0 start clamps to [0, dim - 1] and end to [-1, dim - 1]. The length is
 * max(0, ceil((end - start) / step)).
 */
export function sliceAxis(dim: number, start: number, end: number, step: number): { start: number; length: number } {
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  if (step > 0) {
    s = Math.min(Math.max(s, 0), dim);
    e = Math.min(Math.max(e, 0), dim);
  } else {
    s = Math.min(Math.max(s, 0), dim - 1);
    e = Math.min(Math.max(e, -1), dim - 1);
  }
  const length = Math.max(0, Math.ceil((e - s) / step));
  return { start: length ? s : 0, length };
}

/** Axes and steps of a Slice node checked against the input rank; axes default to 0..n-1 and steps to 1. */
export function sliceSpec(rank: number, starts: readonly number[], ends: readonly number[], axes?: readonly number[], steps?: readonly number[]): { axes: number[]; steps: number[] } {
  const n = starts.length;
  if (ends.length !== n) throw new ShapeError(`Slice starts has ${n} entries but ends has ${ends.length}.`);
  if (axes && axes.length !== n) throw new ShapeError(`Slice axes has ${axes.length} entries but starts has ${n}.`);
  if (steps && steps.length !== n) throw new ShapeError(`Slice steps has ${steps.length} entries but starts has ${n}.`);
  if (!axes && n > rank) throw new ShapeError(`Slice has ${n} starts for a tensor of rank ${rank}.`);
  const ax = normalizeAxes(axes ?? Array.from({ length: n }, (_, i) => i), rank, 'Slice axes');
  const st = steps ? [...steps] : new Array<number>(n).fill(1);
  if (st.includes(0)) throw new InvalidArgumentError('Slice steps must not be 0.');
  return { axes: ax, steps: st };
}

/**
 * Output dims of a Slice with known parameters: exact on concrete dims; on a symbolic dim only the full-range
 * forms ([0, INT_MAX, 1] and the reversals [-1 or INT_MAX, INT_MIN, -1]) are known, any other gets a fresh symbol from `fresh`.
 */
export function sliceDims(shape: readonly Dim[], starts: readonly number[], ends: readonly number[], axes: number[], steps: number[], fresh: (axis: number) => Dim): Dim[] {
  const out = [...shape];
  axes.forEach((a, i) => {
    const d = shape[a]!;
    const [s, e, st] = [starts[i]!, ends[i]!, steps[i]!];
    if (typeof d === 'number') out[a] = sliceAxis(d, s, e, st).length;
    else if (st === 1 && s === 0 && e >= TO_EDGE) out[a] = d;
    else if (st === -1 && (s === -1 || s >= TO_EDGE) && e <= -TO_EDGE) out[a] = d;
    else out[a] = fresh(a);
  });
  return out;
}

// ---- Pad-21 ----

/**
 * Begin/end padding per axis from Pad's `pads` input ([x1_begin, x2_begin, ..., x1_end, x2_end, ...] over `axes`,
 * all axes when absent). Negative pads remove elements.
 */
export function resolvePads(rank: number, pads: readonly number[], axes?: readonly number[]): { begin: number[]; end: number[] } {
  const ax = axes ? normalizeAxes(axes, rank, 'Pad axes') : Array.from({ length: rank }, (_, i) => i);
  if (pads.length !== 2 * ax.length) {
    throw new ShapeError(`Pad needs ${2 * ax.length} pads (begin and end for ${ax.length} axes), got ${pads.length}.`);
  }
  const begin = new Array<number>(rank).fill(0);
  const end = new Array<number>(rank).fill(0);
  ax.forEach((a, i) => {
    begin[a] = pads[i]!;
    end[a] = pads[i + ax.length]!;
  });
  return { begin, end };
}

export function padDims(shape: readonly Dim[], begin: readonly number[], end: readonly number[]): Dim[] {
  return shape.map((d, i) => {
    const add = begin[i]! + end[i]!;
    if (typeof d !== 'number') return add === 0 ? d : add > 0 ? `${paren(d)}+${add}` : `${paren(d)}-${-add}`;
    if (d + add < 0) throw new ShapeError(`Pad removes more than axis ${i} holds (size ${d}, pads ${begin[i]} and ${end[i]}).`);
    return d + add;
  });
}

// ---- Split-18 ----

/**
 * The sizes of Split's outputs along the axis: the `split` input when given (must sum to the dim); else
 * `num_outputs` chunks of ceil(dim / n) with a smaller last one (Split-18); else equal parts, which must divide.
 */
export function splitSizes(dim: Dim, outputs: number, split?: readonly number[], numOutputs?: number): Dim[] {
  if (split) {
    if (split.length !== outputs) throw new ShapeError(`Split has ${outputs} outputs but split lists ${split.length} sizes.`);
    if (split.some((s) => s < 0)) throw new ShapeError(`Split sizes [${split.join(', ')}] must not be negative.`);
    const sum = split.reduce((a, b) => a + b, 0);
    if (typeof dim === 'number' && sum !== dim) throw new ShapeError(`Split sizes [${split.join(', ')}] add up to ${sum}, not the axis size ${dim}.`);
    return [...split];
  }
  if (numOutputs !== undefined) {
    if (numOutputs !== outputs) throw new ShapeError(`Split num_outputs=${numOutputs} but the node has ${outputs} outputs.`);
    if (typeof dim !== 'number') {
      if (numOutputs === 1) return [dim];
      const chunk = `ceil(${paren(dim)}/${numOutputs})`;
      return [...new Array<Dim>(numOutputs - 1).fill(chunk), `${paren(dim)}-${numOutputs - 1}*${chunk}`];
    }
    const chunk = Math.ceil(dim / numOutputs);
    const last = dim - chunk * (numOutputs - 1);
    if (last < 0) throw new ShapeError(`Split cannot cut an axis of size ${dim} into ${numOutputs} chunks of ${chunk}.`);
    return [...new Array<number>(numOutputs - 1).fill(chunk), last];
  }
  if (typeof dim !== 'number') return new Array<Dim>(outputs).fill(outputs === 1 ? dim : `${paren(dim)}/${outputs}`);
  if (dim % outputs !== 0) throw new ShapeError(`Split cannot cut an axis of size ${dim} into ${outputs} equal parts; give split sizes or num_outputs.`);
  return new Array<number>(outputs).fill(dim / outputs);
}
