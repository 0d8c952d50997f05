import { ShapeError } from '../errors.js';
import type { Dim } from './graph.js';

/** Shape helpers shared by shape inference (symbolic dims) and kernels (concrete dims). */

export function isConcrete(shape: readonly Dim[] | undefined): shape is number[] {
  return !!shape && shape.every((d) => typeof d === 'number');
}

/** Numpy-style multidirectional broadcasting (ONNX "Broadcasting in ONNX"). Symbols equal only to themselves. */
export function broadcastShapes(a: readonly Dim[], b: readonly Dim[], what = 'operands'): Dim[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<Dim>(rank);
  for (let i = 0; i < rank; i++) {
    const x = i < rank - a.length ? 1 : a[i - (rank - a.length)]!;
    const y = i < rank - b.length ? 1 : b[i - (rank - b.length)]!;
    if (x === 1) out[i] = y;
    else if (y === 1) out[i] = x;
    else if (x === y) out[i] = x;
    else if (typeof x === 'string' || typeof y === 'string') out[i] = typeof x === 'number' ? x : y; // assume they agree; checked at run
    else throw new ShapeError(`Cannot broadcast ${what}: shapes [${a.join(', ')}] and [${b.join(', ')}] differ in dimension ${i} (${x} vs ${y}).`);
  }
  return out;
}

export function broadcastMany(shapes: readonly (readonly Dim[])[], what = 'operands'): Dim[] {
  return shapes.reduce<Dim[]>((acc, s) => broadcastShapes(acc, s, what), []);
}

/** Resolves a possibly negative axis against a rank, with a typed error when out of range. */
export function normalizeAxis(axis: number, rank: number, what = 'axis'): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) throw new ShapeError(`${what} ${axis} is out of range for a tensor of rank ${rank}.`);
  return a;
}

export function normalizeAxes(axes: readonly number[], rank: number, what = 'axes'): number[] {
  const out = axes.map((a) => normalizeAxis(a, rank, what));
  if (new Set(out).size !== out.length) throw new ShapeError(`${what} [${axes.join(', ')}] repeat an axis.`);
  return out;
}

/** Product of dims, or a symbol when any is symbolic. */
export function dimProduct(dims: readonly Dim[]): Dim {
  let n = 1;
  const syms: string[] = [];
  for (const d of dims) {
    if (typeof d === 'number') n *= d;
    else syms.push(d);
  }
  if (!syms.length) return n;
  return n === 1 ? syms.join('*') : `${n}*${syms.join('*')}`;
}

/** Simple symbolic arithmetic for derived dims: numbers fold, symbols become readable expressions. */
export function dimExpr(fn: (...xs: number[]) => number, text: (...xs: string[]) => string, ...dims: Dim[]): Dim {
  if (dims.every((d) => typeof d === 'number')) return fn(...(dims as number[]));
  return text(...dims.map(String));
}
