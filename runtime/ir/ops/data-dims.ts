import { DTypeError, InvalidArgumentError, ShapeError } from '../../errors.js';
import { toNumbers, type DType } from '../dtype.js';
import type { Dim } from '../graph.js';
import { dimProduct } from '../shape.js';
import type { InferContext, InferInput } from './schema.js';

/**
 * Helpers shared by the data-movement schemas (shape-ops, movement, resize): input accessors that read constant
 * integer inputs (shapes, axes, starts...), and the little symbolic arithmetic those ops need (sums for Concat,
 * products with cancellation for Reshape's -1).
 */

export function dataInput(ctx: InferContext, i: number, what: string): InferInput {
  const x = ctx.inputs[i];
  if (!x) throw new InvalidArgumentError(`${ctx.node.op} input ${i} (${what}) is required but missing.`);
  return x;
}

/**
 * Checks an integer parameter input (shape, axes, pads, repeats...) and returns its values when constant.
 * `types` are the element types the spec allows; `rank1` requires a 1-D tensor (scalars are accepted where
 * `allowScalar` is set, as for Range's operands and Pad's constant).
 */
export function intParam(
  ctx: InferContext,
  x: InferInput | undefined,
  what: string,
  types: readonly DType[] = ['int64'],
  allowScalar = false,
): number[] | undefined {
  if (!x) return undefined;
  if (!types.includes(x.dtype)) {
    throw new DTypeError(`${ctx.node.op} ${what} must be ${types.join(' or ')}, got ${x.dtype}.`, { dtype: x.dtype });
  }
  if (x.shape && !(x.shape.length === 1 || (allowScalar && x.shape.length === 0))) {
    throw new ShapeError(`${ctx.node.op} ${what} must be a 1-D tensor, got shape [${x.shape.join(', ')}].`);
  }
  return x.value ? Array.from(toNumbers(x.value.dtype, x.value.data)) : undefined;
}

/**
 * The largest tensor rank shape inference builds from a parameter's length. Decision: ONNX sets no limit, real models
 * stay under 10, and a model that declares a shape input of length 2^31-1 (found by the importer fuzzer) would
 * otherwise make inference build one symbolic dim per element in a loop that never yields. 64 leaves room for any
 * real graph and bounds that loop.
 */
export const MAX_RANK = 64;

/**
 * The length of a 1-D parameter input (shape, axes, repeats, starts...) when its shape is known, even if its values
 * are not. Every such length is a rank or a number of axes, so one above MAX_RANK is a ShapeError naming the node.
 */
export function paramLength(ctx: InferContext, x: InferInput | undefined, what: string): number | undefined {
  const n = x?.shape?.[0];
  if (typeof n !== 'number') return undefined;
  if (n > MAX_RANK) {
    throw new ShapeError(`${ctx.node.op} node '${ctx.node.name}': its ${what} input has ${n} entries, which would make a tensor of rank ${n} or index that many axes; EdgeKit supports ranks up to ${MAX_RANK}.`);
  }
  return n;
}

/** A product of dims as a numeric coefficient and its symbolic factors ('N*3*H' → 3, ['N', 'H']). */
export interface Factors {
  coef: number;
  syms: string[];
}

/** Splits a symbolic dim at top-level '*' (outside parentheses), folding numeric factors into the coefficient. */
export function factorsOf(dims: readonly Dim[]): Factors {
  let coef = 1;
  const syms: string[] = [];
  for (const d of dims) {
    if (typeof d === 'number') {
      coef *= d;
      continue;
    }
    let depth = 0;
    let start = 0;
    const parts: string[] = [];
    for (let i = 0; i < d.length; i++) {
      const c = d[i];
      if (c === '(') depth++;
      else if (c === ')') depth--;
      else if (c === '*' && depth === 0) {
        parts.push(d.slice(start, i));
        start = i + 1;
      }
    }
    parts.push(d.slice(start));
    for (const p of parts) {
      const t = p.trim();
      if (/^\d+$/.test(t)) coef *= Number(t);
      else syms.push(t);
    }
  }
  return { coef, syms };
}

/**
 * total / known as a dim when it can be decided symbolically: every symbolic factor of `known` must cancel
 * against one of `total` and the coefficients must divide. undefined when that cannot be shown.
 * Reshape uses it for its -1 entry ([N, 3, 4] reshaped to [0, -1] gives [N, 12]).
 */
export function divideDims(total: readonly Dim[], known: readonly Dim[]): Dim | undefined {
  const t = factorsOf(total);
  const k = factorsOf(known);
  const rest = [...t.syms];
  for (const s of k.syms) {
    const at = rest.indexOf(s);
    if (at < 0) return undefined;
    rest.splice(at, 1);
  }
  if (k.coef === 0 || t.coef % k.coef !== 0) return undefined;
  return dimProduct([t.coef / k.coef, ...rest]);
}

/** Sum of dims: numbers fold, symbols join with '+' (Concat's axis). */
export function sumDims(dims: readonly Dim[]): Dim {
  let n = 0;
  const syms: string[] = [];
  for (const d of dims) {
    if (typeof d === 'number') n += d;
    else syms.push(d);
  }
  if (!syms.length) return n;
  return n === 0 ? syms.join('+') : `${syms.join('+')}+${n}`;
}

/** Wraps a symbolic dim in parentheses when it is a compound expression, for use inside another expression. */
export function paren(d: Dim): string {
  const s = String(d);
  return /^[\w.]+$/.test(s) ? s : `(${s})`;
}

/**
 * Merges two dims that must be equal (Concat's non-axis dims, Where-like checks): a number wins over a symbol;
 * two different numbers are an error.
 */
export function unifyDim(a: Dim, b: Dim, what: () => string): Dim {
  if (typeof a === 'number' && typeof b === 'number') {
    if (a !== b) throw new ShapeError(what());
    return a;
  }
  return typeof a === 'number' ? a : b;
}
