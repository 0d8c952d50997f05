import { describe, expect, it } from 'vitest';
import { DTypeError, InvalidArgumentError, ShapeError, UnsupportedOpError } from '../../runtime/errors.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr, Dim } from '../../runtime/ir/graph.js';
import { hostTensor, tensorFromNumbers, tensorToNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { attr, i64 } from '../helpers/ir-builder.js';
import { compareWithOrt, inferNode, runCpuNode, runOrtNode } from '../helpers/ort-single-node.js';
import { randomTensor, Rng } from '../helpers/random.js';

/**
 * Shape plumbing ops (Reshape, Flatten, Squeeze, Unsqueeze, Shape, Size, Identity, Dropout, Constant,
 * ConstantOfShape, Cast, CastLike, Range): symbolic shape inference, and the CPU kernels against onnxruntime-node.
 */

const toAttrs = (a: Record<string, number | string | number[]>): Record<string, Attr> => Object.fromEntries(Object.entries(a).map(([k, v]) => [k, attr(v)]));
const x = (shape: Dim[] | undefined, dtype: DType = 'float32') => ({ dtype, shape });
const k64 = (v: number[]) => ({ dtype: 'int64' as DType, shape: [v.length] as Dim[], value: i64(v) });
const dyn64 = (n: number | undefined) => ({ dtype: 'int64' as DType, shape: n === undefined ? undefined : [n] as Dim[] });
const shapeOf = (op: string, attrs: Record<string, Attr>, inputs: Parameters<typeof inferNode>[2], outputs = 1) => inferNode(op, attrs, inputs, outputs)[0]!.shape;
const ORT_DTYPES: DType[] = ['float32', 'float64', 'float16', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool'];
const strings = (shape: number[], rng: Rng) => hostTensor('string', shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => `s${rng.int(0, 999)}`));
const rng = new Rng(2024);
const sample = (dtype: DType, shape: number[]) => (dtype === 'string' ? strings(shape, rng) : randomTensor(rng, dtype, shape, dtype === 'uint8' || dtype.startsWith('uint') ? { lo: 0, hi: 200 } : {}));

async function expectOrt(op: string, attrs: Record<string, Attr>, inputs: (HostTensor | undefined)[], opts: Parameters<typeof compareWithOrt>[3] = {}) {
  expect(await compareWithOrt(op, attrs, inputs, opts), `${op} ${JSON.stringify(inputs.map((t) => t && [t.dtype, t.shape]))}`).toEqual([]);
}

describe('shape-ops inference', () => {
  it('Reshape: 0 copies, -1 divides out, symbolic dims cancel', () => {
    expect(shapeOf('Reshape', {}, [x(['N', 3, 4]), k64([0, -1])])).toEqual(['N', 12]);
    expect(shapeOf('Reshape', {}, [x(['N', 'C', 4, 4]), k64([0, 0, -1])])).toEqual(['N', 'C', 16]);
    expect(shapeOf('Reshape', {}, [x(['N', 6]), k64([-1, 2, 3])])).toEqual(['N', 2, 3]);
    expect(shapeOf('Reshape', {}, [x(['N', 2, 'T', 3]), k64([0, -1, 6])])).toEqual(['N', 'T', 6]);
    expect(shapeOf('Reshape', {}, [x(['N', 6]), k64([2, -1])])).toEqual([2, '3*N']);
    expect(shapeOf('Reshape', {}, [x(['N', 6]), k64([4, -1])])).toEqual([4, 's0']);
    expect(shapeOf('Reshape', {}, [x(['N', 'M']), k64([3, -1])])).toEqual([3, 's0']);
    expect(shapeOf('Reshape', {}, [x([2, 3, 4]), k64([4, -1, 2])])).toEqual([4, 3, 2]);
    expect(shapeOf('Reshape', toAttrs({ allowzero: 1 }), [x([0, 3]), k64([3, 0])])).toEqual([3, 0]);
    expect(shapeOf('Reshape', {}, [x(['B', 'T', 768]), k64([0, 0, 12, 64])])).toEqual(['B', 'T', 12, 64]);
    // Shape unknown at inference time: its length still fixes the rank.
    expect(shapeOf('Reshape', {}, [x(['N', 4]), dyn64(3)])).toEqual(['s0', 's1', 's2']);
    expect(shapeOf('Reshape', {}, [x(['N', 4]), dyn64(undefined)])).toBeUndefined();
    expect(() => shapeOf('Reshape', {}, [x([2, 3]), k64([4, -1])])).toThrow(ShapeError);
    expect(() => shapeOf('Reshape', {}, [x([2, 3]), k64([5])])).toThrow(/6 elements/);
    expect(() => shapeOf('Reshape', {}, [x([2, 3]), k64([-1, -1])])).toThrow(/more than one -1/);
    expect(() => shapeOf('Reshape', toAttrs({ allowzero: 1 }), [x([2, 3]), k64([0, -1])])).toThrow(/allowzero/);
    expect(() => shapeOf('Reshape', {}, [x([2, 3]), { dtype: 'int32', shape: [2] }])).toThrow(DTypeError);
  });

  it('Flatten, Squeeze, Unsqueeze on symbolic shapes', () => {
    expect(shapeOf('Flatten', {}, [x(['N', 3, 'H', 'W'])])).toEqual(['N', '3*H*W']);
    expect(shapeOf('Flatten', toAttrs({ axis: 0 }), [x(['N', 3])])).toEqual([1, '3*N']);
    expect(shapeOf('Flatten', toAttrs({ axis: -1 }), [x([2, 3, 4])])).toEqual([6, 4]);
    expect(shapeOf('Flatten', toAttrs({ axis: 3 }), [x([2, 3, 4])])).toEqual([24, 1]);
    expect(() => shapeOf('Flatten', toAttrs({ axis: 4 }), [x([2, 3, 4])])).toThrow(ShapeError);
    expect(shapeOf('Squeeze', {}, [x(['N', 1, 3, 1]), k64([1, -1])])).toEqual(['N', 3]);
    expect(shapeOf('Squeeze', {}, [x([1, 3, 1])])).toEqual([3]);
    expect(shapeOf('Squeeze', {}, [x(['N', 1, 3])])).toBeUndefined();
    expect(shapeOf('Squeeze', {}, [x(['N', 1, 3]), dyn64(1)])).toEqual(['s0', 's1']);
    expect(() => shapeOf('Squeeze', {}, [x([2, 3]), k64([0])])).toThrow(/size 2/);
    expect(shapeOf('Unsqueeze', {}, [x(['N', 3]), k64([0, -1])])).toEqual([1, 'N', 3, 1]);
    expect(shapeOf('Unsqueeze', {}, [x(['N', 3]), k64([3, 1])])).toEqual(['N', 1, 3, 1]);
    expect(shapeOf('Unsqueeze', {}, [x([]), k64([0])])).toEqual([1]);
    expect(() => shapeOf('Unsqueeze', {}, [x([2]), k64([0, 0])])).toThrow(/repeat/);
    expect(() => shapeOf('Unsqueeze', {}, [x([2]), k64([2])])).toThrow(/out of range/);
  });

  it('Shape, Size, Identity, Dropout, Constant, ConstantOfShape, Cast, CastLike, Range', () => {
    expect(inferNode('Shape', {}, [x(['N', 3, 'H'])])).toEqual([{ dtype: 'int64', shape: [3] }]);
    expect(shapeOf('Shape', toAttrs({ start: 1, end: -1 }), [x(['N', 3, 'H', 'W'])])).toEqual([2]);
    expect(shapeOf('Shape', toAttrs({ start: 5 }), [x(['N', 3])])).toEqual([0]);
    expect(shapeOf('Shape', {}, [x(undefined)])).toEqual(['s0']);
    expect(inferNode('Size', {}, [x(['N', 3])])).toEqual([{ dtype: 'int64', shape: [] }]);
    expect(inferNode('Identity', {}, [x(['N'], 'string')])).toEqual([{ dtype: 'string', shape: ['N'] }]);
    expect(inferNode('Dropout', {}, [x(['N', 4], 'float16')], 2)).toEqual([{ dtype: 'float16', shape: ['N', 4] }, { dtype: 'bool', shape: ['N', 4] }]);
    expect(() => inferNode('Dropout', {}, [x([2], 'int32')])).toThrow(DTypeError);
    expect(inferNode('Constant', { value_ints: attr([1, 2, 3]) }, [])).toEqual([{ dtype: 'int64', shape: [3] }]);
    expect(inferNode('Constant', { value_float: attr(2.5) }, [])).toEqual([{ dtype: 'float32', shape: [] }]);
    expect(inferNode('Constant', { value_strings: { type: 'strings', value: ['a', 'b'] } }, [])).toEqual([{ dtype: 'string', shape: [2] }]);
    expect(inferNode('Constant', { value: attr(tensorFromNumbers('bool', [2, 1], [1, 0])) }, [])).toEqual([{ dtype: 'bool', shape: [2, 1] }]);
    expect(() => inferNode('Constant', {}, [])).toThrow(InvalidArgumentError);
    expect(() => inferNode('Constant', { value_int: attr(1), value_float: attr(1.5) }, [])).toThrow(/exactly one/);
    expect(inferNode('ConstantOfShape', {}, [k64([2, 3])])).toEqual([{ dtype: 'float32', shape: [2, 3] }]);
    expect(inferNode('ConstantOfShape', { value: attr(i64([7], [1])) }, [dyn64(2)])).toEqual([{ dtype: 'int64', shape: ['s0', 's1'] }]);
    expect(() => inferNode('ConstantOfShape', {}, [k64([2, -1])])).toThrow(ShapeError);
    expect(inferNode('Cast', { to: attr(10) }, [x(['N'])])).toEqual([{ dtype: 'float16', shape: ['N'] }]);
    expect(inferNode('Cast', { to: attr(8) }, [x([2], 'int64')])).toEqual([{ dtype: 'string', shape: [2] }]);
    expect(() => inferNode('Cast', { to: attr(17) }, [x([2])])).toThrow(UnsupportedOpError);
    expect(() => inferNode('Cast', {}, [x([2])])).toThrow(InvalidArgumentError);
    expect(inferNode('CastLike', {}, [x(['N']), x([], 'bfloat16')])).toEqual([{ dtype: 'bfloat16', shape: ['N'] }]);
    const s = (dtype: DType, v: number) => ({ dtype, shape: [] as Dim[], value: tensorFromNumbers(dtype, [], [v]) });
    expect(shapeOf('Range', {}, [s('int64', 0), s('int64', 10), s('int64', 3)])).toEqual([4]);
    expect(shapeOf('Range', {}, [s('float32', 1), s('float32', 0), s('float32', 0.25)])).toEqual([0]);
    expect(shapeOf('Range', {}, [s('int32', 0), { dtype: 'int32', shape: [] }, s('int32', 1)])).toEqual(['s0']);
    expect(() => shapeOf('Range', {}, [s('int32', 0), s('int64', 5), s('int32', 1)])).toThrow(DTypeError);
    expect(() => shapeOf('Range', {}, [s('int32', 0), s('int32', 5), s('int32', 0)])).toThrow(/delta/);
    expect(() => shapeOf('Range', {}, [s('uint8', 0), s('uint8', 5), s('uint8', 1)])).toThrow(DTypeError);
  });
});

describe('relabelling ops match onnxruntime on every element type', () => {
  it('Reshape with 0, -1 and allowzero', async () => {
    const cases: [number[], number[], number][] = [
      [[2, 3, 4], [4, -1], 0], [[2, 3, 4], [0, -1], 0], [[2, 3, 4], [0, 0, 2, 2], 0], [[2, 3, 4], [-1], 0], [[24], [2, 3, 4], 0],
      [[1, 5], [5], 0], [[0, 3], [3, 0], 1], [[0, 3], [-1, 3], 0], [[3, 1, 2], [0, -1, 1], 0], [[7], [1, 7, 1], 0], [[], [1, 1], 0],
    ];
    for (const [from, to, allowzero] of cases) {
      await expectOrt('Reshape', toAttrs({ allowzero }), [sample('float32', from), i64(to)]);
      await expectOrt('Reshape', toAttrs({ allowzero }), [sample('float32', from), i64(to)], { constants: [1] });
    }
    for (const dtype of [...ORT_DTYPES, 'string'] as DType[]) await expectOrt('Reshape', {}, [sample(dtype, [2, 3, 2]), i64([3, -1])]);
  });

  it('Flatten / Squeeze / Unsqueeze / Identity', async () => {
    for (const axis of [0, 1, 2, 3, -1, -3]) await expectOrt('Flatten', toAttrs({ axis }), [sample('float32', [2, 3, 5])]);
    for (const dtype of [...ORT_DTYPES, 'string'] as DType[]) {
      await expectOrt('Flatten', {}, [sample(dtype, [2, 3, 2])]);
      await expectOrt('Squeeze', {}, [sample(dtype, [1, 3, 1, 2]), i64([0, -2])]);
      await expectOrt('Unsqueeze', {}, [sample(dtype, [3, 2]), i64([-1, 0])]);
      await expectOrt('Identity', {}, [sample(dtype, [4, 3])]);
    }
    await expectOrt('Squeeze', {}, [sample('float32', [1, 3, 1, 1])]);
    await expectOrt('Squeeze', {}, [sample('int64', [1])]);
    await expectOrt('Unsqueeze', {}, [sample('int64', []), i64([0, 1])]);
    await expectOrt('Unsqueeze', {}, [sample('float32', [2, 0]), i64([1, 3])]);
  });

  it('outputs never alias inputs', () => {
    const t = tensorFromNumbers('int32', [2, 2], [1, 2, 3, 4]);
    for (const [op, ins] of [['Identity', [t]], ['Reshape', [t, i64([4])]], ['Flatten', [t]]] as [string, HostTensor[]][]) {
      const y = runCpuNode(op, {}, ins)[0]!;
      expect(y.data).not.toBe(t.data);
      (y.data as Int32Array)[0] = 99;
      expect((t.data as Int32Array)[0]).toBe(1);
    }
  });

  it('Shape with start/end and Size', async () => {
    const t = sample('float32', [2, 3, 4, 5]);
    for (const [start, end] of [[undefined, undefined], [1, undefined], [undefined, -1], [-2, undefined], [1, 2], [-10, 10], [3, 1], [0, 0]]) {
      const attrs = toAttrs({ ...(start !== undefined ? { start } : {}), ...(end !== undefined ? { end } : {}) });
      await expectOrt('Shape', attrs, [t]);
    }
    await expectOrt('Shape', {}, [sample('string', [])]);
    await expectOrt('Size', {}, [t]);
    await expectOrt('Size', {}, [sample('bool', [3, 0])]);
    await expectOrt('Size', {}, [sample('string', [])]);
  });
});

describe('Dropout', () => {
  it('inference mode passes data through with an all-true mask (as onnxruntime)', async () => {
    const t = sample('float32', [3, 5]);
    await expectOrt('Dropout', {}, [t], { outputs: 2 });
    await expectOrt('Dropout', {}, [t, tensorFromNumbers('float32', [], [0.3])], { outputs: 2 });
    await expectOrt('Dropout', {}, [t, tensorFromNumbers('float32', [], [0.3]), tensorFromNumbers('bool', [], [0])], { outputs: 2 });
    await expectOrt('Dropout', {}, [sample('float16', [4])], { outputs: 2 });
    // training_mode with ratio 0 is also the identity.
    await expectOrt('Dropout', {}, [t, tensorFromNumbers('float32', [], [0]), tensorFromNumbers('bool', [], [1])], { outputs: 2 });
  });

  it('training mode keeps 1 - ratio of the elements, scaled by 1 / (1 - ratio), reproducibly per seed', () => {
    const n = 20000;
    const t = tensorFromNumbers('float32', [n], new Array(n).fill(2));
    const ins = [t, tensorFromNumbers('float32', [], [0.25]), tensorFromNumbers('bool', [], [1])];
    const [y, mask] = runCpuNode('Dropout', toAttrs({ seed: 7 }), ins, 2);
    const m = mask!.data as Uint8Array;
    const kept = m.reduce((a, b) => a + b, 0);
    // Binomial(20000, 0.75): sd ≈ 61, so ±400 is > 6 sd.
    expect(Math.abs(kept - 15000)).toBeLessThan(400);
    const v = tensorToNumbers(y!);
    for (let i = 0; i < n; i++) expect(v[i]).toBe(m[i] ? Math.fround(2 / 0.75) : 0);
    const [y2] = runCpuNode('Dropout', toAttrs({ seed: 7 }), ins, 2);
    expect(y2!.data).toEqual(y!.data);
    const [y3] = runCpuNode('Dropout', toAttrs({ seed: 8 }), ins, 2);
    expect(y3!.data).not.toEqual(y!.data);
    // And onnxruntime agrees on the statistics (not the mask: different generators).
    return runOrtNode('Dropout', toAttrs({ seed: 7 }), ins, { outputs: 2 }).then(([, om]) => {
      const okept = (om!.data as Uint8Array).reduce((a, b) => a + b, 0);
      expect(Math.abs(okept - 15000)).toBeLessThan(400);
    });
  });
});

describe('Constant and ConstantOfShape', () => {
  it('Constant builds each value* form', async () => {
    const t = tensorFromNumbers('float16', [2, 2], [1, -2, 0.5, 65504]);
    for (const attrs of [
      { value: attr(t) }, { value: attr(hostTensor('string', [2], ['x', 'yz'])) }, { value: attr(i64([1, -2], [1, 2])) },
      { value_float: attr(2.5) }, { value_floats: attr([1, 2.5, -3], true) }, { value_int: attr(-7) }, { value_ints: attr([4, 5]) },
      { value_string: attr('hello') }, { value_strings: { type: 'strings', value: ['a', '', 'c'] } as Attr },
    ] as Record<string, Attr>[]) {
      await expectOrt('Constant', attrs, []);
    }
  });

  it('ConstantOfShape fills any value type, including empty and scalar shapes', async () => {
    await expectOrt('ConstantOfShape', {}, [i64([2, 3])]);
    await expectOrt('ConstantOfShape', { value: attr(tensorFromNumbers('int64', [1], [-9007199254740991])) }, [i64([3])]);
    await expectOrt('ConstantOfShape', { value: attr(tensorFromNumbers('bool', [1], [1])) }, [i64([2, 2])]);
    await expectOrt('ConstantOfShape', { value: attr(tensorFromNumbers('float16', [1], [1.5])) }, [i64([4])]);
    await expectOrt('ConstantOfShape', { value: attr(tensorFromNumbers('int32', [1], [5])) }, [i64([0, 3])]);
    await expectOrt('ConstantOfShape', { value: attr(tensorFromNumbers('float64', [1], [0.1])) }, [i64([])]);
    await expectOrt('ConstantOfShape', {}, [i64([2, 2])], { constants: [0] });
  });
});

describe('Cast matches onnxruntime', () => {
  const CODES: Partial<Record<DType, number>> = {
    float32: 1, uint8: 2, int8: 3, uint16: 4, int16: 5, int32: 6, int64: 7, string: 8, bool: 9, float16: 10, float64: 11, uint32: 12, uint64: 13,
  };
  const NUMERIC: DType[] = ['float32', 'float64', 'float16', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool'];

  it('between every pair of numeric types and bool (in-range values)', async () => {
    for (const from of NUMERIC) {
      // Values every target can hold after truncation (0..100, with fractions for float sources), plus zeros.
      const t = from === 'bool' ? sample('bool', [3, 4]) : randomTensor(rng, from, [3, 4], { lo: 0, hi: 100, integers: !from.startsWith('float') });
      for (const to of NUMERIC) {
        await expectOrt('Cast', { to: attr(CODES[to]!) }, [t]);
        await expectOrt('CastLike', {}, [t, sample(to, [1])]);
      }
    }
  });

  it('negative values, fractions, truncation toward zero and integer wrap-around', async () => {
    const f = tensorFromNumbers('float32', [8], [-1.7, -0.5, 0.5, 1.99, -100.25, 127.9, -128.9, 3.5]);
    for (const to of ['int8', 'int16', 'int32', 'int64', 'bool', 'float16', 'float64'] as DType[]) await expectOrt('Cast', { to: attr(CODES[to]!) }, [f]);
    const big = hostTensor('int64', [5], BigInt64Array.from([2n ** 40n + 5n, -1n, -(2n ** 33n) - 3n, 2n ** 62n + 1n, -129n]));
    for (const to of ['int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'uint64', 'float32', 'float64', 'bool', 'string'] as DType[]) {
      await expectOrt('Cast', { to: attr(CODES[to]!) }, [big]);
    }
    const i32 = tensorFromNumbers('int32', [4], [-1, 300, -129, 65537]);
    for (const to of ['int8', 'uint8', 'int16', 'uint16', 'uint32', 'uint64'] as DType[]) await expectOrt('Cast', { to: attr(CODES[to]!) }, [i32]);
  });

  it('float specials: NaN and infinities to floats and bool, float16 rounding and overflow', async () => {
    const sp = tensorFromNumbers('float64', [9], [NaN, Infinity, -Infinity, 0, -0, 65520, 1e-8, 70000, 1 + 2 ** -11]);
    for (const to of ['float32', 'float16', 'bool'] as DType[]) await expectOrt('Cast', { to: attr(CODES[to]!) }, [sp]);
    await expectOrt('Cast', { to: attr(CODES.float64!) }, [tensorFromNumbers('float16', [4], [NaN, -Infinity, 0.1, 65504])]);
  });

  it('numbers to strings: shortest round-trip digits (the ONNX test data), "NaN", "INF"; integers in decimal', async () => {
    const str = (dtype: DType, values: number[]) => runCpuNode('Cast', { to: attr(8) }, [tensorFromNumbers(dtype, [values.length], values)])[0]!.data;
    // Inputs and expected strings of onnx's test_cast_FLOAT_to_STRING (onnxruntime prints "%.8g" instead: 0.60484552).
    expect(str('float32', [0.9767611, 0.6048455, 0.039187793, 0.064147495])).toEqual(['0.9767611', '0.6048455', '0.039187793', '0.064147495']);
    // Layout as C's %g with 8 digits for float32 (17 for float64): exponent form below 1e-4 and from 1e8.
    expect(str('float32', [0, -0, 1.5, -2.25, Math.PI, 1e-5, 1e-4, 1e20, 123456789, 16777216, 0.1, 1 / 3, 100])).toEqual(
      ['0', '-0', '1.5', '-2.25', '3.1415927', '1e-05', '0.0001', '1e+20', '1.2345679e+08', '16777216', '0.1', '0.33333334', '100']);
    expect(str('float32', [NaN, Infinity, -Infinity])).toEqual(['NaN', 'INF', '-INF']);
    expect(str('float64', [0.1, 1 / 3, 1e300, 123456789.125, -1e-7])).toEqual(['0.1', '0.3333333333333333', '1e+300', '123456789.125', '-1e-07']);
    expect(str('float16', [0.1, 65504, -3])).toEqual(['0.1', '65504', '-3']);
    // Every float32 string reads back as exactly the same value.
    const t = randomTensor(rng, 'float32', [200], { lo: -1e6, hi: 1e6 });
    const back = runCpuNode('Cast', { to: attr(1) }, [runCpuNode('Cast', { to: attr(8) }, [t])[0]!])[0]!;
    expect(back.data).toEqual(t.data);
    // Integers and bool agree with onnxruntime.
    for (const from of ['int8', 'uint8', 'int32', 'uint32', 'int64', 'uint64', 'bool'] as DType[]) await expectOrt('Cast', { to: attr(8) }, [sample(from, [5])]);
  });

  it('strings parse like strtod / strtoll, as onnxruntime does', async () => {
    const s = hostTensor('string', [13], ['1.5', ' 2', '-3e2', 'inf', '-INF', 'NaN', 'nan', '0x10', '+4', '1e40', 'infinity', '7.9', '1,5']);
    for (const to of ['float32', 'float64', 'float16'] as DType[]) await expectOrt('Cast', { to: attr(CODES[to]!) }, [s]);
    const si = hostTensor('string', [8], ['12', '-7', ' 3', '+4', '2147483648', '9007199254740993', '7.9', '1.5e3']);
    for (const to of ['int8', 'uint8', 'int16', 'int32', 'int64', 'uint32', 'bool'] as DType[]) await expectOrt('Cast', { to: attr(CODES[to]!) }, [si]);
    await expectOrt('Cast', { to: attr(8) }, [hostTensor('string', [2], ['a', 'b'])]);
    expect(() => runCpuNode('Cast', { to: attr(1) }, [hostTensor('string', [1], ['abc'])])).toThrow(/cannot read a number/);
  });

  it('bfloat16 by hand (onnxruntime-node has no bfloat16 tensors)', () => {
    const f = tensorFromNumbers('float32', [4], [1, -2.5, 1 + 2 ** -9, 3.0e38]);
    const b = runCpuNode('Cast', { to: attr(16) }, [f])[0]!;
    expect(b.dtype).toBe('bfloat16');
    // bfloat16 keeps 8 significant bits: 1 + 2^-9 rounds to 1 (ties-to-even), 3e38 to 0x7f62.
    expect(Array.from(b.data as Uint16Array)).toEqual([0x3f80, 0xc020, 0x3f80, 0x7f62]);
    const back = runCpuNode('Cast', { to: attr(1) }, [b])[0]!;
    expect(Array.from(back.data as Float32Array).slice(0, 3)).toEqual([1, -2.5, 1]);
    expect(runCpuNode('Cast', { to: attr(8) }, [b])[0]!.data).toEqual(['1', '-2.5', '1', '3e+38']);
  });
});

describe('Range matches onnxruntime', () => {
  it('positive and negative deltas, empty ranges, every supported type', async () => {
    const cases: [DType, number, number, number][] = [
      ['int32', 0, 10, 3], ['int32', 10, 0, -3], ['int64', -5, 5, 1], ['int64', 5, 5, 1], ['int64', 0, 10, -1], ['int16', 1, 100, 7],
      ['float32', 0, 1, 0.1], ['float32', 1, -1, -0.3], ['float64', 0.5, 3.25, 0.25], ['float32', 0, 0.95, 0.05], ['float64', 2, 1, 0.5],
    ];
    for (const [dtype, s, l, d] of cases) {
      const ins = [s, l, d].map((v) => tensorFromNumbers(dtype, [], [v]));
      await expectOrt('Range', {}, ins);
      await expectOrt('Range', {}, ins, { constants: [0, 1, 2] });
    }
    // int64 beyond 2^53 stays exact.
    const big = [2n ** 60n, 2n ** 60n + 5n, 2n].map((v) => hostTensor('int64', [], BigInt64Array.of(v)));
    expect(runCpuNode('Range', {}, big)[0]!.data).toEqual(BigInt64Array.from([2n ** 60n, 2n ** 60n + 2n, 2n ** 60n + 4n]));
  });
});
