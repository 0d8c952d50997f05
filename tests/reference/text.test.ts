import { describe, expect, it } from 'vitest';
import { DTypeError, InvalidArgumentError, ShapeError } from '../../runtime/errors.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { attr } from '../helpers/ir-builder.js';
import { compareWithOrt, inferNode, runCpuNode } from '../helpers/ort-single-node.js';
import { Rng } from '../helpers/random.js';

/**
 * StringNormalizer and TfIdfVectorizer: inference, and the CPU reference against onnxruntime-node (stopwords with
 * and without case sensitivity, case changes, everything removed; TF / IDF / TFIDF with weights over int32, int64
 * and string tokens, 1-D and batched, n-gram lengths and skips, shared output columns).
 */

const rng = new Rng(4242);
const strs = (shape: number[], v: string[]): HostTensor => ({ dtype: 'string', shape, data: v });
const strings = (v: string[]): Attr => ({ type: 'strings', value: v });

async function expectOrt(op: string, attrs: Record<string, Attr>, inputs: HostTensor[]) {
  const what = `${op} ${JSON.stringify(attrs)} ${JSON.stringify(inputs.map((t) => [t.dtype, t.shape]))}`;
  expect(await compareWithOrt(op, attrs, inputs, { rtol: 1e-6, atol: 1e-6 }), what).toEqual([]);
}

describe('StringNormalizer', () => {
  // onnxruntime builds a C++ locale from the attribute (default en_US, not installed on this machine), so the
  // comparison uses the C locale (case changes of ASCII letters only, like onnxruntime's there).
  const words = ['Monday', 'tuesday', 'MONDAY', 'Éclair', 'wednesday', 'monday', 'Ünïcode'];
  it('matches onnxruntime: stopwords, case sensitivity, case changes, [C] and [1, C]', async () => {
    for (const action of ['NONE', 'LOWER', 'UPPER']) {
      for (const sensitive of [0, 1]) {
        const attrs = { case_change_action: attr(action), is_case_sensitive: attr(sensitive), stopwords: strings(['monday', 'Wednesday', 'éclair']), locale: attr('C') };
        await expectOrt('StringNormalizer', attrs, [strs([7], words)]);
        await expectOrt('StringNormalizer', attrs, [strs([1, 7], words)]);
      }
    }
    await expectOrt('StringNormalizer', { case_change_action: attr('UPPER'), locale: attr('C') }, [strs([3], ['a', 'b', ''])]);
  });

  it('en_US (the default locale) changes the case of every letter; C only of ASCII ones', () => {
    const x = strs([3], ['Éclair', 'straße', 'ok']);
    expect(runCpuNode('StringNormalizer', { case_change_action: attr('UPPER') }, [x])[0]!.data).toEqual(['ÉCLAIR', 'STRASSE', 'OK']);
    expect(runCpuNode('StringNormalizer', { case_change_action: attr('UPPER'), locale: attr('C') }, [x])[0]!.data).toEqual(['ÉCLAIR', 'STRAßE', 'OK']);
    expect(runCpuNode('StringNormalizer', { case_change_action: attr('LOWER'), locale: attr('C.UTF-8') }, [x])[0]!.data).toEqual(['Éclair', 'straße', 'ok']);
    expect(runCpuNode('StringNormalizer', { case_change_action: attr('LOWER'), locale: attr('fr_FR') }, [x])[0]!.data).toEqual(['éclair', 'straße', 'ok']);
    expect(runCpuNode('StringNormalizer', { stopwords: strings(['ÉCLAIR']) }, [x])[0]!.data).toEqual(['straße', 'ok']);
    expect(() => runCpuNode('StringNormalizer', { locale: attr('not a locale!') }, [x])).toThrow(InvalidArgumentError);
  });

  it('keeps one empty string when every string is a stopword', () => {
    const [y] = runCpuNode('StringNormalizer', { stopwords: strings(['x']) }, [strs([1, 3], ['x', 'X', 'x'])]);
    expect(y).toEqual({ dtype: 'string', shape: [1, 1], data: [''] });
    const [z] = runCpuNode('StringNormalizer', { stopwords: strings(['x']), is_case_sensitive: attr(1) }, [strs([3], ['x', 'X', 'x'])]);
    expect(z).toEqual({ dtype: 'string', shape: [1], data: ['X'] });
  });

  it('inference: data-dependent length, exact when the input is constant; bad inputs refused', () => {
    expect(inferNode('StringNormalizer', {}, [{ dtype: 'string', shape: [5] }])).toEqual([{ dtype: 'string', shape: ['s0'] }]);
    expect(inferNode('StringNormalizer', {}, [{ dtype: 'string', shape: [1, 'n'] }])).toEqual([{ dtype: 'string', shape: [1, 's0'] }]);
    const v = strs([3], ['a', 'b', 'a']);
    expect(inferNode('StringNormalizer', { stopwords: strings(['a']) }, [{ dtype: 'string', shape: [3], value: v }])).toEqual([{ dtype: 'string', shape: [1] }]);
    expect(() => inferNode('StringNormalizer', {}, [{ dtype: 'string', shape: [2, 3] }])).toThrow(ShapeError);
    expect(() => inferNode('StringNormalizer', {}, [{ dtype: 'int64', shape: [3] }])).toThrow(DTypeError);
    expect(() => inferNode('StringNormalizer', { case_change_action: attr('TITLE') }, [{ dtype: 'string', shape: [3] }])).toThrow(InvalidArgumentError);
  });
});

describe('TfIdfVectorizer', () => {
  // unigrams 2 3 5 4, bigrams (5 6) (7 8) (6 7), one trigram (1 3 3); the last two share column 6.
  const pool = [2, 3, 5, 4, 5, 6, 7, 8, 6, 7, 1, 3, 3];
  const base = (mode: string, min: number, max: number, skip: number, weights?: number[]): Record<string, Attr> => ({
    mode: attr(mode), min_gram_length: attr(min), max_gram_length: attr(max), max_skip_count: attr(skip),
    ngram_counts: attr([0, 4, 10]), ngram_indexes: attr([0, 1, 2, 3, 4, 5, 6, 6]), pool_int64s: attr(pool),
    ...(weights ? { weights: attr(weights, true) } : {}),
  });
  const tokens = (dtype: DType, shape: number[]) => tensorFromNumbers(dtype, shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.int(1, 8)));

  it('matches onnxruntime: modes, weights, gram lengths, skips, int32/int64, 1-D and batched', async () => {
    const w = [0.5, 1.5, 2, 0.25, 3, 1, 0.75, 2.5];
    for (const mode of ['TF', 'IDF', 'TFIDF']) {
      for (const [min, max, skip] of [[1, 1, 0], [1, 2, 0], [2, 2, 3], [1, 3, 2], [3, 3, 1]] as const) {
        for (const dtype of ['int32', 'int64'] as DType[]) {
          await expectOrt('TfIdfVectorizer', base(mode, min, max, skip, mode === 'TF' ? undefined : w), [tokens(dtype, [40])]);
          await expectOrt('TfIdfVectorizer', base(mode, min, max, skip, w), [tokens(dtype, [3, 17])]);
        }
      }
    }
  });

  it('string tokens match onnxruntime', async () => {
    const attrs: Record<string, Attr> = {
      mode: attr('TFIDF'), min_gram_length: attr(1), max_gram_length: attr(2), max_skip_count: attr(1),
      ngram_counts: attr([0, 3]), ngram_indexes: attr([2, 0, 1, 3, 4]), pool_strings: strings(['a', 'b', 'c', 'a', 'b', 'c', 'a']),
      weights: attr([1, 2, 3, 4, 5], true),
    };
    const xs = Array.from({ length: 24 }, () => rng.pick(['a', 'b', 'c', 'd']));
    await expectOrt('TfIdfVectorizer', attrs, [strs([24], xs)]);
    await expectOrt('TfIdfVectorizer', attrs, [strs([4, 6], xs)]);
  });

  it('inference and attribute checks', () => {
    expect(inferNode('TfIdfVectorizer', base('TF', 1, 2, 0), [{ dtype: 'int32', shape: ['n', 9] }])).toEqual([{ dtype: 'float32', shape: ['n', 7] }]);
    expect(inferNode('TfIdfVectorizer', base('TF', 1, 2, 0), [{ dtype: 'int64', shape: [9] }])).toEqual([{ dtype: 'float32', shape: [7] }]);
    expect(() => inferNode('TfIdfVectorizer', base('TF', 1, 2, 0), [{ dtype: 'string', shape: [9] }])).toThrow(DTypeError);
    expect(() => inferNode('TfIdfVectorizer', base('TF', 1, 2, 0), [{ dtype: 'int32', shape: [2, 3, 4] }])).toThrow(ShapeError);
    expect(() => inferNode('TfIdfVectorizer', { ...base('TF', 1, 2, 0), ngram_counts: attr([0, 4, 9]) }, [{ dtype: 'int32', shape: [9] }])).toThrow(/do not split the pool/);
    expect(() => inferNode('TfIdfVectorizer', { ...base('TF', 1, 2, 0), mode: attr('BM25') }, [{ dtype: 'int32', shape: [9] }])).toThrow(InvalidArgumentError);
  });
});

describe('StringConcat, StringSplit, RegexFullMatch (opset 20)', () => {
  const ort20 = async (op: string, attrs: Record<string, Attr>, inputs: HostTensor[], outputs = 1) => {
    const what = `${op} ${JSON.stringify(attrs)} ${JSON.stringify(inputs.map((t) => t.data))}`;
    expect(await compareWithOrt(op, attrs, inputs, { opset: 20, outputs }), what).toEqual([]);
  };

  it('StringConcat broadcasts like numpy', async () => {
    await ort20('StringConcat', {}, [strs([2, 3], ['a', 'b', 'c', 'd', 'e', '']), strs([3], ['x', '', 'zz'])]);
    await ort20('StringConcat', {}, [strs([2, 1], ['p', 'q']), strs([1, 3], ['1', '2', '3'])]);
    await ort20('StringConcat', {}, [strs([], ['é']), strs([2], ['🙂', 'ok'])]);
    expect(() => inferNode('StringConcat', {}, [{ dtype: 'string', shape: [2] }, { dtype: 'string', shape: [3] }])).toThrow(ShapeError);
  });

  it('StringSplit with and without a delimiter, maxsplit, empty pieces and strings', async () => {
    const xs = strs([2, 3], ['a,b,,c', '', ',lead', 'trail,', 'none', 'a,b']);
    await ort20('StringSplit', { delimiter: attr(',') }, [xs], 2);
    await ort20('StringSplit', { delimiter: attr(',') , maxsplit: attr(1) }, [xs], 2);
    await ort20('StringSplit', { delimiter: attr('::') }, [strs([3], ['a::b::c', '::', 'x'])], 2);
    const ws = strs([4], ['  hello   world ', 'one', '', ' a  b  c ']);
    await ort20('StringSplit', {}, [ws], 2);
    await ort20('StringSplit', { maxsplit: attr(1) }, [ws], 2);
    // Every whitespace character separates, as the spec and Python's str.split say (onnxruntime splits on ' ' only).
    const [y, z] = runCpuNode('StringSplit', {}, [strs([1], [' \t a\nb '])], 2);
    expect([y!.data, y!.shape, Array.from(z!.data as BigInt64Array, Number)]).toEqual([['a', 'b'], [1, 2], [2]]);
    expect(inferNode('StringSplit', {}, [{ dtype: 'string', shape: [2, 'n'] }], 2)).toEqual([
      { dtype: 'string', shape: [2, 'n', 's0'] }, { dtype: 'int64', shape: [2, 'n'] },
    ]);
  });

  it('RegexFullMatch matches whole strings; RE2 spellings EdgeKit cannot honour are refused', async () => {
    const xs = strs([6], ['www.google.com', 'www.facebook.com', 'www.bbc.co.uk', 'abc123', 'ABC', '']);
    for (const pattern of ['www\\.[\\w.-]+\\.\\bcom\\b', '[a-z]+\\d*', '(?P<word>[A-Z]+)', '.*', 'a|abc123', '[^.]*']) {
      await ort20('RegexFullMatch', { pattern: attr(pattern) }, [xs]);
    }
    for (const bad of ['(a)\\1', '(?=a)a', '(?i)abc', '[[:alpha:]]+', '\\pL']) {
      expect(() => runCpuNode('RegexFullMatch', { pattern: attr(bad) }, [xs]), bad).toThrow(InvalidArgumentError);
    }
  });
});
