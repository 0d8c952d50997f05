import { DTypeError, InvalidArgumentError, ShapeError } from '../../errors.js';
import { attrString, type Dim, type Node } from '../graph.js';
import { inTypeClass } from './math-types.js';
import { defineOps, type OpSchema } from './schema.js';

/**
 * Einsum-12 (numpy semantics): the equation's terms name each operand's axes with letters; a letter repeated
 * within a term takes that term's diagonal; '...' stands for the leading axes not named, broadcast across operands
 * (numpy rules); without '->' the output is the ellipsis followed by the letters used exactly once, in alphabetical
 * order. Letters missing from the output are summed over.
 *
 * The equation is parsed once into a contraction over labels (ellipsis axes get labels of their own): the output
 * labels in order, then the summed ones. Kernels iterate over that label space; every operand is read through one
 * stride per label (the sum of its axes' strides for a repeated letter, 0 for a label it lacks or broadcasts).
 */

export interface EinsumTerm {
  /** Labels of the operand's axes, ellipsis axes expanded to labels '0', '1'... right-aligned to the ellipsis rank. */
  labels: string[];
}

export interface EinsumSpec {
  inputs: EinsumTerm[];
  /** Output labels in order. */
  output: string[];
  /** Every label: output labels first, then the summed ones. */
  labels: string[];
  /** Number of axes '...' stands for (0 without ellipsis). */
  ellipsisRank: number;
}

const LETTER = /^[a-zA-Z]$/;

function parseTerm(t: string, rank: number | undefined, eq: string): { letters: string[]; ellipsisAt: number; named: number } {
  const dots = t.indexOf('...');
  if (dots >= 0 && t.indexOf('...', dots + 1) >= 0) throw new InvalidArgumentError(`Einsum equation '${eq}': a term has '...' twice.`);
  const body = t.replace('...', '');
  for (const c of body) if (!LETTER.test(c)) throw new InvalidArgumentError(`Einsum equation '${eq}': '${c}' is not a letter.`);
  const letters = [...body];
  if (rank !== undefined) {
    if (dots < 0 && rank !== letters.length) throw new ShapeError(`Einsum equation '${eq}': term '${t}' names ${letters.length} axes but its operand has rank ${rank}.`);
    if (dots >= 0 && rank < letters.length) throw new ShapeError(`Einsum equation '${eq}': term '${t}' names more axes than its operand's rank ${rank}.`);
  }
  return { letters, ellipsisAt: dots < 0 ? -1 : [...t.slice(0, dots)].length, named: letters.length };
}

/** Parses `equation` for operands of the given ranks. */
export function parseEinsum(equation: string, ranks: number[]): EinsumSpec {
  const eq = equation.replace(/\s+/g, '');
  const [lhs, rhs] = eq.split('->') as [string, string | undefined];
  if (eq.split('->').length > 2) throw new InvalidArgumentError(`Einsum equation '${equation}' has more than one '->'.`);
  const terms = lhs.split(',');
  if (terms.length !== ranks.length) throw new InvalidArgumentError(`Einsum equation '${equation}' has ${terms.length} terms for ${ranks.length} inputs.`);
  const parsed = terms.map((t, i) => parseTerm(t, ranks[i], equation));
  const ellipsisRank = Math.max(0, ...parsed.map((p, i) => (p.ellipsisAt >= 0 ? ranks[i]! - p.named : 0)));
  const ell = (n: number) => Array.from({ length: n }, (_, k) => String(ellipsisRank - n + k));
  const inputs = parsed.map((p, i) => {
    if (p.ellipsisAt < 0) return { labels: p.letters };
    const n = ranks[i]! - p.named;
    return { labels: [...p.letters.slice(0, p.ellipsisAt), ...ell(n), ...p.letters.slice(p.ellipsisAt)] };
  });
  let output: string[];
  const counts = new Map<string, number>();
  for (const p of parsed) for (const c of p.letters) counts.set(c, (counts.get(c) ?? 0) + 1);
  if (rhs === undefined) {
    output = [...ell(ellipsisRank), ...[...counts].filter(([, n]) => n === 1).map(([c]) => c).sort()];
  } else {
    const o = parseTerm(rhs, undefined, equation);
    if (new Set(o.letters).size !== o.letters.length) throw new InvalidArgumentError(`Einsum equation '${equation}': the output repeats a letter.`);
    for (const c of o.letters) if (!counts.has(c)) throw new InvalidArgumentError(`Einsum equation '${equation}': output letter '${c}' names no input axis.`);
    if (o.ellipsisAt < 0 && ellipsisRank > 0 && parsed.some((p, i) => p.ellipsisAt >= 0 && ranks[i]! > p.named)) {
      throw new InvalidArgumentError(`Einsum equation '${equation}': inputs have '...' axes but the output does not name them.`);
    }
    output = o.ellipsisAt < 0 ? o.letters : [...o.letters.slice(0, o.ellipsisAt), ...ell(ellipsisRank), ...o.letters.slice(o.ellipsisAt)];
  }
  const summed = [...new Set(inputs.flatMap((t) => t.labels))].filter((l) => !output.includes(l));
  return { inputs, output, labels: [...output, ...summed], ellipsisRank };
}

/** The size of every label from the operands' dims: equal where named, numpy broadcasting for ellipsis labels. */
export function labelSizes<D extends Dim>(spec: EinsumSpec, shapes: readonly (readonly D[])[]): Map<string, D> {
  const sizes = new Map<string, D>();
  spec.inputs.forEach((t, i) => {
    t.labels.forEach((l, a) => {
      const d = shapes[i]![a]!;
      const prev = sizes.get(l);
      if (prev === undefined || prev === 1) sizes.set(l, d);
      else if (d !== 1 && d !== prev && typeof d === 'number' && typeof prev === 'number') {
        throw new ShapeError(`Einsum: axis '${/\d/.test(l) ? '...' : l}' has sizes ${prev} and ${d} across the operands.`);
      }
    });
  });
  return sizes;
}

export function einsumSpec(node: Node, ranks: number[]): EinsumSpec {
  const eq = attrString(node, 'equation');
  if (eq === undefined) throw new InvalidArgumentError('Einsum needs an equation attribute.');
  return parseEinsum(eq, ranks);
}

const einsum: OpSchema = {
  op: 'Einsum',
  inputs: [1, Infinity],
  outputs: [1, 1],
  infer(ctx) {
    const xs = ctx.inputs.map((x, i) => {
      if (!x) throw new InvalidArgumentError(`Einsum input ${i} is missing.`);
      return x;
    });
    const dtype = xs[0]!.dtype;
    if (!inTypeClass(dtype, 'numeric')) throw new DTypeError(`Einsum needs numeric inputs, got ${dtype}.`);
    for (const x of xs) if (x.dtype !== dtype) throw new DTypeError(`Einsum inputs must share one type, got ${dtype} and ${x.dtype}.`);
    if (xs.some((x) => !x.shape)) return [{ dtype }];
    const spec = einsumSpec(ctx.node, xs.map((x) => x.shape!.length));
    const sizes = labelSizes(spec, xs.map((x) => x.shape!));
    return [{ dtype, shape: spec.output.map((l) => sizes.get(l)!) }];
  },
};

export const schemas = defineOps(einsum);

/**
 * Element strides of operand `i` per label of `spec.labels`: the sum of its axes' strides for that label (a repeated
 * letter walks the diagonal), 0 where it lacks the label or broadcasts it (a size-1 axis).
 */
export function einsumStrides(spec: EinsumSpec, i: number, shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length);
  let acc = 1;
  for (let a = shape.length - 1; a >= 0; a--) {
    st[a] = acc;
    acc *= shape[a]!;
  }
  return spec.labels.map((l) => spec.inputs[i]!.labels.reduce((s, m, a) => (m === l && shape[a] !== 1 ? s + st[a]! : s), 0));
}
