import { DTypeError, InvalidArgumentError, ShapeError } from '../../errors.js';
import { toNumbers } from '../dtype.js';
import { attrFloats, attrInt, attrInts, attrString, type Dim, type Node } from '../graph.js';
import type { HostTensor } from '../tensor.js';
import { dataInput } from './data-dims.js';
import { broadcastOptional } from './elementwise.js';
import { defineOps, type InferContext, type InferInput, type OpSchema } from './schema.js';

/**
 * Text ops of the default domain: StringNormalizer-10 (stopword removal and case change over a [C] or [1, C]
 * string tensor; the output length depends on the data), TfIdfVectorizer-9 (n-gram counts of string or integer
 * tokens against a pool, [C] -> [K] or [N, C] -> [N, K]), and the opset-20 StringConcat, StringSplit and
 * RegexFullMatch. The attribute reading lives here, so the CPU and GPU
 * kernels cannot read them differently.
 */

// ---- StringNormalizer ----

export interface StringNormalizerParams {
  caseChange: 'NONE' | 'LOWER' | 'UPPER';
  caseSensitive: boolean;
  stopwords: string[];
  /** BCP 47 tag of the `locale` attribute (ONNX writes e.g. en_US; default en_US), or 'C' for the POSIX locale. */
  locale: string;
}

export function stringNormalizerParams(node: Node): StringNormalizerParams {
  const action = attrString(node, 'case_change_action', 'NONE');
  if (action !== 'NONE' && action !== 'LOWER' && action !== 'UPPER') {
    throw new InvalidArgumentError(`StringNormalizer case_change_action must be NONE, LOWER or UPPER, got '${action}'.`);
  }
  const sw = node.attrs.stopwords;
  const stopwords = sw?.type === 'strings' ? [...sw.value] : sw?.type === 'string' ? [sw.value] : [];
  // POSIX locale names (en_US, de_DE.UTF-8). The C/POSIX locale changes the case of ASCII letters only.
  const raw = attrString(node, 'locale', 'en_US').replace(/[.@].*$/, '');
  let locale = 'C';
  if (raw !== 'C' && raw !== 'POSIX') {
    try {
      locale = Intl.getCanonicalLocales(raw.replace(/_/g, '-'))[0]!;
    } catch {
      throw new InvalidArgumentError(`StringNormalizer locale '${raw}' is not a valid locale name.`);
    }
  }
  return { caseChange: action, caseSensitive: attrInt(node, 'is_case_sensitive', 0) !== 0, stopwords, locale };
}

/** The strings StringNormalizer keeps of `xs`, case-changed (stopwords compared case-blind unless is_case_sensitive). */
export function normalizeStrings(p: StringNormalizerParams, xs: readonly string[]): string[] {
  const ascii = p.locale === 'C';
  const lower = (s: string) => (ascii ? s.replace(/[A-Z]+/g, (m) => m.toLowerCase()) : s.toLocaleLowerCase(p.locale));
  const upper = (s: string) => (ascii ? s.replace(/[a-z]+/g, (m) => m.toUpperCase()) : s.toLocaleUpperCase(p.locale));
  const fold = (s: string) => (p.caseSensitive ? s : lower(s));
  const stop = new Set(p.stopwords.map(fold));
  const kept = xs.filter((s) => !stop.has(fold(s)));
  if (p.caseChange === 'LOWER') return kept.map(lower);
  if (p.caseChange === 'UPPER') return kept.map(upper);
  return kept;
}

const stringNormalizer: OpSchema = {
  op: 'StringNormalizer',
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'X');
    if (x.dtype !== 'string') throw new DTypeError(`StringNormalizer X must be a string tensor, got ${x.dtype}.`, { dtype: x.dtype });
    const p = stringNormalizerParams(ctx.node);
    const s = x.shape;
    if (s && !(s.length === 1 || (s.length === 2 && (s[0] === 1 || typeof s[0] !== 'number')))) {
      throw new ShapeError(`StringNormalizer X must be [C] or [1, C], got [${s.join(', ')}].`);
    }
    // Every string removed: one empty string remains ([1] or [1, 1]), as the spec says.
    const count: Dim = x.value ? Math.max(1, normalizeStrings(p, x.value.data as string[]).length) : ctx.symbol(`${ctx.node.name}_count`);
    if (!s) return [{ dtype: 'string' }];
    return [{ dtype: 'string', shape: s.length === 1 ? [count] : [1, count] }];
  },
};

// ---- TfIdfVectorizer ----

export type TfIdfMode = 'TF' | 'IDF' | 'TFIDF';

/** One n-gram of the pool that can be counted: its tokens, output column and weight. */
export interface PoolGram {
  tokens: (number | string)[];
  column: number;
  weight: number;
}

export interface TfIdfParams {
  mode: TfIdfMode;
  minGram: number;
  maxGram: number;
  maxSkip: number;
  /** Output length K: max(ngram_indexes) + 1. */
  columns: number;
  /** The pool's n-grams with a length in [min_gram_length, max_gram_length] (the others are never counted). */
  grams: PoolGram[];
  /** Whether the pool holds strings (pool_strings) or integers (pool_int64s). */
  strings: boolean;
}

function required(node: Node, name: string): number {
  const v = attrInt(node, name);
  if (v === undefined) throw new InvalidArgumentError(`TfIdfVectorizer needs the '${name}' attribute.`);
  return v;
}

/**
 * Reads the pool (TfIdfVectorizer-9 spec): pool_int64s / pool_strings holds the n-grams by length, 1-grams first;
 * ngram_counts[i] is where the (i+1)-grams start; ngram_indexes[j] is the output column of the j-th n-gram and
 * weights[j] its IDF weight (default 1).
 */
export function tfIdfParams(node: Node): TfIdfParams {
  const mode = attrString(node, 'mode', '');
  if (mode !== 'TF' && mode !== 'IDF' && mode !== 'TFIDF') throw new InvalidArgumentError(`TfIdfVectorizer mode must be TF, IDF or TFIDF, got '${mode}'.`);
  const minGram = required(node, 'min_gram_length');
  const maxGram = required(node, 'max_gram_length');
  const maxSkip = required(node, 'max_skip_count');
  if (minGram < 1 || maxGram < minGram) throw new InvalidArgumentError(`TfIdfVectorizer needs 1 <= min_gram_length <= max_gram_length, got ${minGram} and ${maxGram}.`);
  if (maxSkip < 0) throw new InvalidArgumentError(`TfIdfVectorizer max_skip_count must be >= 0, got ${maxSkip}.`);
  const ps = node.attrs.pool_strings;
  const strings = ps?.type === 'strings';
  const pool: (number | string)[] = strings ? [...(ps as { value: string[] }).value] : attrInts(node, 'pool_int64s', []);
  if (!strings && !node.attrs.pool_int64s) throw new InvalidArgumentError('TfIdfVectorizer needs pool_int64s or pool_strings.');
  const counts = attrInts(node, 'ngram_counts', []);
  const indexes = attrInts(node, 'ngram_indexes', []);
  const weights = attrFloats(node, 'weights');
  if (weights && weights.length !== indexes.length) throw new InvalidArgumentError(`TfIdfVectorizer has ${weights.length} weights for ${indexes.length} n-grams.`);
  if (indexes.some((c) => c < 0)) throw new InvalidArgumentError('TfIdfVectorizer ngram_indexes must be >= 0.');
  const grams: PoolGram[] = [];
  let j = 0;
  counts.forEach((start, i) => {
    const n = i + 1;
    const end = i + 1 < counts.length ? counts[i + 1]! : pool.length;
    if (start < 0 || end > pool.length || end < start || (end - start) % n !== 0) {
      throw new InvalidArgumentError(`TfIdfVectorizer ngram_counts [${counts.join(', ')}] do not split the pool of ${pool.length} into ${n}-grams.`);
    }
    for (let p = start; p < end; p += n, j++) {
      if (j >= indexes.length) throw new InvalidArgumentError(`TfIdfVectorizer has more pool n-grams than ngram_indexes (${indexes.length}).`);
      if (n >= minGram && n <= maxGram) grams.push({ tokens: pool.slice(p, p + n), column: indexes[j]!, weight: weights ? weights[j]! : 1 });
    }
  });
  return { mode, minGram, maxGram, maxSkip, columns: indexes.length ? Math.max(...indexes) + 1 : 0, grams, strings };
}

/**
 * The output row of one token row: per pool n-gram, its count c over every start position and, for n >= 2, every
 * skip 0..max_skip_count (tokens at start + k (skip + 1)); then TF: c, IDF: c > 0 ? weight : 0, TFIDF: c * weight.
 * n-grams sharing a column add up.
 */
export function tfIdfRow(p: TfIdfParams, tokens: readonly (number | string)[], out: Float64Array, at: number): void {
  const len = tokens.length;
  for (const g of p.grams) {
    const n = g.tokens.length;
    let count = 0;
    for (let s = 0; s <= (n === 1 ? 0 : p.maxSkip); s++) {
      for (let start = 0; start + (n - 1) * (s + 1) < len; start++) {
        let k = 0;
        while (k < n && tokens[start + k * (s + 1)] === g.tokens[k]) k++;
        if (k === n) count++;
      }
    }
    out[at + g.column] = out[at + g.column]! + (p.mode === 'TF' ? count : p.mode === 'IDF' ? (count > 0 ? g.weight : 0) : count * g.weight);
  }
}

/** Token values of X as numbers or strings, comparable with the pool's. */
export function tokensOf(x: HostTensor): (number | string)[] {
  return x.dtype === 'string' ? (x.data as string[]) : Array.from(toNumbers(x.dtype, x.data));
}

const tfIdf: OpSchema = {
  op: 'TfIdfVectorizer',
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'X');
    const p = tfIdfParams(ctx.node);
    if (x.dtype !== 'string' && x.dtype !== 'int32' && x.dtype !== 'int64') throw new DTypeError(`TfIdfVectorizer X must be string, int32 or int64, got ${x.dtype}.`, { dtype: x.dtype });
    if ((x.dtype === 'string') !== p.strings) {
      throw new DTypeError(`TfIdfVectorizer X is ${x.dtype} but the pool holds ${p.strings ? 'strings (pool_strings)' : 'integers (pool_int64s)'}.`, { dtype: x.dtype });
    }
    if (x.shape && x.shape.length !== 1 && x.shape.length !== 2) throw new ShapeError(`TfIdfVectorizer X must be [C] or [N, C], got [${x.shape.join(', ')}].`);
    if (!x.shape) return [{ dtype: 'float32' }];
    return [{ dtype: 'float32', shape: x.shape.length === 1 ? [p.columns] : [x.shape[0]!, p.columns] }];
  },
};

// ---- StringConcat, StringSplit, RegexFullMatch (opset 20) ----

function stringInput(ctx: InferContext, i: number, what: string): InferInput {
  const x = dataInput(ctx, i, what);
  if (x.dtype !== 'string') throw new DTypeError(`${ctx.node.op} ${what} must be a string tensor, got ${x.dtype}.`, { dtype: x.dtype });
  return x;
}

/** StringConcat-20: Z = X + Y elementwise, with numpy broadcasting. */
const stringConcat: OpSchema = {
  op: 'StringConcat',
  inputs: [2, 2],
  outputs: [1, 1],
  infer(ctx) {
    const x = stringInput(ctx, 0, 'X');
    const y = stringInput(ctx, 1, 'Y');
    return [{ dtype: 'string', shape: broadcastOptional([x.shape, y.shape], 'StringConcat X and Y') }];
  },
};

/**
 * StringSplit-20, as Python's str.split: with a delimiter every occurrence separates (empty pieces kept); without
 * one (absent or ''), runs of whitespace separate and leading/trailing whitespace yields nothing. At most
 * `maxsplit` splits (the rest stays in the last piece). An empty string has no pieces in either mode (as in
 * onnxruntime and TensorFlow's strings.split; Python would give [''] with a delimiter).
 */
export function splitString(s: string, delimiter: string, maxsplit: number): string[] {
  const out: string[] = [];
  if (s === '') return out;
  if (delimiter) {
    let at = 0;
    for (let i = s.indexOf(delimiter); i >= 0 && out.length < maxsplit; i = s.indexOf(delimiter, at)) {
      out.push(s.slice(at, i));
      at = i + delimiter.length;
    }
    out.push(s.slice(at));
    return out;
  }
  const ws = /\s+/y;
  let at = 0;
  const skip = () => {
    ws.lastIndex = at;
    if (ws.test(s)) at = ws.lastIndex;
  };
  skip();
  while (at < s.length) {
    if (out.length === maxsplit) {
      out.push(s.slice(at).replace(/\s+$/, ''));
      break;
    }
    const m = /\s/.exec(s.slice(at));
    const end = m ? at + m.index : s.length;
    out.push(s.slice(at, end));
    at = end;
    skip();
  }
  return out;
}

export function splitParams(node: Node): { delimiter: string; maxsplit: number } {
  const maxsplit = attrInt(node, 'maxsplit');
  if (maxsplit !== undefined && maxsplit < 0) throw new InvalidArgumentError(`StringSplit maxsplit must be >= 0, got ${maxsplit}.`);
  return { delimiter: attrString(node, 'delimiter', ''), maxsplit: maxsplit ?? Infinity };
}

const stringSplit: OpSchema = {
  op: 'StringSplit',
  inputs: [1, 1],
  outputs: [2, 2],
  infer(ctx) {
    const x = stringInput(ctx, 0, 'X');
    const { delimiter, maxsplit } = splitParams(ctx.node);
    // Y is X's shape plus the most pieces any element splits into: known only from the data.
    const most: Dim = x.value
      ? (x.value.data as string[]).reduce((m, t) => Math.max(m, splitString(t, delimiter, maxsplit).length), 0)
      : ctx.symbol(`${ctx.node.name}_pieces`);
    return [
      { dtype: 'string', shape: x.shape && [...x.shape, most] },
      { dtype: 'int64', shape: x.shape && [...x.shape] },
    ];
  },
};

/**
 * RegexFullMatch-20: the pattern is RE2 syntax. RE2 is (for what it accepts) a subset of JavaScript's regular
 * expressions but for a few spellings: (?P<name>...) is translated to (?<name>...), and the constructs RE2 lacks
 * (backreferences, lookaround) or spells differently (\C, \pN without braces, [[:alpha:]] classes, inline
 * flags) are refused rather than given JavaScript's meaning.
 */
export function fullMatchRegex(node: Node): RegExp {
  const pattern = attrString(node, 'pattern');
  if (pattern === undefined) throw new InvalidArgumentError('RegexFullMatch needs the \'pattern\' attribute.');
  const unsupported = /\\[1-9]|\\k<|\(\?<?[=!]|\\C|\\[pP][A-Za-z]|\[\[:|\(\?[a-zA-Z-]+[:)]/.exec(pattern);
  if (unsupported) throw new InvalidArgumentError(`RegexFullMatch pattern '${pattern}': '${unsupported[0]}' is not supported (RE2 syntax EdgeKit cannot map onto JavaScript's).`);
  try {
    return new RegExp(`^(?:${pattern.replace(/\(\?P</g, '(?<')})$`, 'u');
  } catch (e) {
    throw new InvalidArgumentError(`RegexFullMatch pattern '${pattern}' is not a valid regular expression: ${(e as Error).message}`);
  }
}

const regexFullMatch: OpSchema = {
  op: 'RegexFullMatch',
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    const x = stringInput(ctx, 0, 'X');
    fullMatchRegex(ctx.node);
    return [{ dtype: 'bool', shape: x.shape && [...x.shape] }];
  },
};

export const schemas = defineOps(stringNormalizer, tfIdf, stringConcat, stringSplit, regexFullMatch);
