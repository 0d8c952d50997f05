import { describe, expect, it } from 'vitest';
import { BINARY_FNS } from '../../runtime/backends/cpu/elementwise-binary.js';
import { UNARY_FNS } from '../../runtime/backends/cpu/elementwise-unary.js';
import { kernels } from '../../runtime/backends/cpu/kernels/elementwise.js';
import { erf } from '../../runtime/backends/cpu/math-erf.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr } from '../../runtime/ir/graph.js';
import { BINARY_OPS, UNARY_OPS, schemas } from '../../runtime/ir/ops/elementwise.js';
import { tensorFromNumbers, tensorToNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { attr } from '../helpers/ir-builder.js';
import { compareWithOrt, inferNode, runCpuNode } from '../helpers/ort-single-node.js';
import { randomTensor, Rng } from '../helpers/random.js';

const EDGE = [0, -0, 1e4, -1e4, 3e38, -3e38, Infinity, -Infinity, NaN];
const t = (dtype: DType, shape: number[], values: number[]) => tensorFromNumbers(dtype, shape, values);
const f = (v: number) => attr(v, true);

describe('elementwise tables', () => {
  it('the IR tables and the CPU tables name the same ops, and every schema has a kernel', () => {
    expect(Object.keys(UNARY_FNS).sort()).toEqual(Object.keys(UNARY_OPS).sort());
    expect(Object.keys(BINARY_FNS).sort()).toEqual(Object.keys(BINARY_OPS).sort());
    expect(Object.keys(kernels).sort()).toEqual(Object.keys(schemas).sort());
  });

  it('erf matches a direct numerical integration of 2/sqrt(pi) exp(-t^2) to 1e-12', () => {
    // Composite Simpson's rule on [0, x] with 20000 panels: error ~ h^4, far below the tolerance.
    const integral = (x: number) => {
      const n = 20000;
      const h = x / n;
      let s = 1 + Math.exp(-x * x);
      for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * Math.exp(-((i * h) ** 2));
      return ((s * h) / 3) * (2 / Math.sqrt(Math.PI));
    };
    for (const x of [-7, -3.1, -2.5, -2.4999, -1, -0.3, 1e-9, 0.5, 1, 1.7, 2.49999, 2.5, 3, 4.2, 5.99, 6.5]) {
      expect(Math.abs(erf(x) - integral(x))).toBeLessThan(1e-12);
    }
    expect(erf(0)).toBe(0);
    expect(Number.isNaN(erf(NaN))).toBe(true);
    expect(erf(Infinity)).toBe(1);
    expect(erf(-Infinity)).toBe(-1);
  });
});

describe('elementwise shape inference', () => {
  it('unary ops keep symbolic shapes; IsNaN/IsInf give bool', () => {
    expect(inferNode('Relu', {}, [{ dtype: 'float32', shape: ['N', 3, 'H'] }])).toEqual([{ dtype: 'float32', shape: ['N', 3, 'H'] }]);
    expect(inferNode('IsNaN', {}, [{ dtype: 'float16', shape: ['N'] }])).toEqual([{ dtype: 'bool', shape: ['N'] }]);
    expect(inferNode('Gelu', {}, [{ dtype: 'float32' }])).toEqual([{ dtype: 'float32', shape: undefined }]);
  });

  it('binary ops broadcast symbolic dims and comparisons give bool', () => {
    expect(inferNode('Add', {}, [{ dtype: 'float32', shape: ['N', 3, 1] }, { dtype: 'float32', shape: [1, 'M'] }])[0]!.shape).toEqual(['N', 3, 'M']);
    expect(inferNode('Less', {}, [{ dtype: 'int64', shape: ['N', 4] }, { dtype: 'int64', shape: [] }])).toEqual([{ dtype: 'bool', shape: ['N', 4] }]);
    expect(inferNode('Pow', {}, [{ dtype: 'float32', shape: [2] }, { dtype: 'int64', shape: [] }])).toEqual([{ dtype: 'float32', shape: [2] }]);
    expect(inferNode('PRelu', {}, [{ dtype: 'float32', shape: ['N', 3, 5, 5] }, { dtype: 'float32', shape: [3, 1, 1] }])[0]!.shape).toEqual(['N', 3, 5, 5]);
    expect(inferNode('Where', {}, [{ dtype: 'bool', shape: ['N', 1] }, { dtype: 'string', shape: [4] }, { dtype: 'string', shape: [] }])).toEqual([{ dtype: 'string', shape: ['N', 4] }]);
    expect(inferNode('Max', {}, [{ dtype: 'int32', shape: [2, 1] }, { dtype: 'int32', shape: [3] }, { dtype: 'int32', shape: [1, 1, 1] }])[0]!.shape).toEqual([1, 2, 3]);
    expect(inferNode('Sum', {}, [{ dtype: 'float32', shape: [2] }, { dtype: 'float32' }])[0]!.shape).toBeUndefined();
  });

  it('rejects shapes and types that can never be valid', () => {
    expect(() => inferNode('Add', {}, [{ dtype: 'float32', shape: [2, 3] }, { dtype: 'float32', shape: [4] }])).toThrow(/Cannot broadcast/);
    expect(() => inferNode('Add', {}, [{ dtype: 'float32', shape: [2] }, { dtype: 'int32', shape: [2] }])).toThrow(expect.objectContaining({ code: 'DTYPE_MISMATCH' }));
    expect(() => inferNode('Relu', {}, [{ dtype: 'bool', shape: [2] }])).toThrow(expect.objectContaining({ code: 'DTYPE_MISMATCH' }));
    expect(() => inferNode('Exp', {}, [{ dtype: 'int32', shape: [2] }])).toThrow(/floating-point/);
    expect(() => inferNode('And', {}, [{ dtype: 'float32', shape: [2] }, { dtype: 'float32', shape: [2] }])).toThrow(/bool/);
    expect(() => inferNode('PRelu', {}, [{ dtype: 'float32', shape: ['N', 3, 4] }, { dtype: 'float32', shape: [3] }])).toThrow(/unidirectional/);
    expect(() => inferNode('Where', {}, [{ dtype: 'float32', shape: [2] }, { dtype: 'float32', shape: [2] }, { dtype: 'float32', shape: [2] }])).toThrow(/condition/);
    expect(() => inferNode('Mod', {}, [{ dtype: 'float32', shape: [2] }, { dtype: 'float32', shape: [2] }])).toThrow(/fmod=1/);
    expect(() => inferNode('Clip', {}, [{ dtype: 'float32', shape: [2] }, { dtype: 'float32', shape: [2] }])).toThrow(/scalar/);
  });

  it('checks broadcast agreement at run time when inference had to assume symbols agree', () => {
    expect(inferNode('Mul', {}, [{ dtype: 'float32', shape: ['N'] }, { dtype: 'float32', shape: [3] }])[0]!.shape).toEqual([3]);
    expect(() => runCpuNode('Mul', {}, [t('float32', [2], [1, 2]), t('float32', [3], [1, 2, 3])])).toThrow(/Cannot broadcast/);
  });
});

/** Unary cases: op, attributes, dtype, value range, opset. */
const UNARY_CASES: [string, Record<string, Attr>, DType, [number, number]?][] = [
  ['Relu', {}, 'float32'], ['Relu', {}, 'int32', [-50, 50]], ['Relu', {}, 'float64'],
  ['LeakyRelu', {}, 'float32'], ['LeakyRelu', { alpha: f(0.3) }, 'float32'], ['LeakyRelu', { alpha: f(0.2) }, 'float16'],
  ['Elu', {}, 'float32', [-5, 5]], ['Elu', { alpha: f(0.5) }, 'float32', [-5, 5]],
  ['Selu', {}, 'float32', [-5, 5]], ['Selu', { alpha: f(2), gamma: f(0.5) }, 'float32', [-5, 5]],
  ['Celu', {}, 'float32', [-5, 5]], ['Celu', { alpha: f(2) }, 'float32', [-5, 5]],
  ['ThresholdedRelu', {}, 'float32', [-3, 3]], ['ThresholdedRelu', { alpha: f(0.5) }, 'float32', [-3, 3]],
  ['Shrink', {}, 'float32', [-2, 2]], ['Shrink', { bias: f(1.5), lambd: f(1) }, 'float32', [-3, 3]],
  ['Sigmoid', {}, 'float32', [-20, 20]], ['Sigmoid', {}, 'float16', [-8, 8]], ['Sigmoid', {}, 'float64', [-20, 20]],
  ['HardSigmoid', {}, 'float32', [-5, 5]], ['HardSigmoid', { alpha: f(0.4), beta: f(0.3) }, 'float32', [-5, 5]],
  ['HardSwish', {}, 'float32', [-6, 6]],
  ['Tanh', {}, 'float32', [-5, 5]], ['Tanh', {}, 'float16', [-5, 5]],
  ['Softplus', {}, 'float32', [-30, 30]], ['Softsign', {}, 'float32', [-10, 10]], ['Mish', {}, 'float32', [-10, 10]],
  ['Gelu', {}, 'float32', [-6, 6]], ['Gelu', { approximate: attr('tanh') }, 'float32', [-6, 6]],
  ['Erf', {}, 'float32', [-4, 4]], ['Erf', {}, 'float16', [-3, 3]],
  ['Exp', {}, 'float32', [-20, 20]], ['Exp', {}, 'float16', [-5, 5]], ['Log', {}, 'float32', [0, 100]], ['Sqrt', {}, 'float32', [0, 100]],
  ['Reciprocal', {}, 'float32', [-10, 10]], ['Neg', {}, 'float32'], ['Neg', {}, 'int32', [-100, 100]], ['Neg', {}, 'int64', [-100, 100]],
  ['Abs', {}, 'float32'], ['Abs', {}, 'int32', [-100, 100]], ['Abs', {}, 'int8', [-100, 100]], ['Abs', {}, 'float16'],
  ['Sign', {}, 'float32'], ['Sign', {}, 'int64', [-3, 3]],
  ['Floor', {}, 'float32', [-10, 10]], ['Ceil', {}, 'float32', [-10, 10]], ['Round', {}, 'float32', [-10, 10]],
  ['Sin', {}, 'float32', [-10, 10]], ['Cos', {}, 'float32', [-10, 10]], ['Tan', {}, 'float32', [-1.5, 1.5]],
  ['Asin', {}, 'float32'], ['Acos', {}, 'float32'], ['Atan', {}, 'float32', [-10, 10]],
  ['Sinh', {}, 'float32', [-5, 5]], ['Cosh', {}, 'float32', [-5, 5]],
  ['Asinh', {}, 'float32', [-10, 10]], ['Acosh', {}, 'float32', [1, 10]], ['Atanh', {}, 'float32', [-0.99, 0.99]],
  ['Not', {}, 'bool'], ['IsNaN', {}, 'float32'], ['IsInf', {}, 'float32'],
  ['IsInf', { detect_negative: attr(0) }, 'float32'], ['IsInf', { detect_positive: attr(0) }, 'float64'],
];

describe('unary kernels match onnxruntime', () => {
  const rng = new Rng(11);
  for (const [op, attrs, dtype, range] of UNARY_CASES) {
    const label = `${op} ${JSON.stringify(Object.fromEntries(Object.entries(attrs).map(([k, a]) => [k, a.value])))} ${dtype}`;
    it(label, async () => {
      const isFloat = dtype.startsWith('float');
      const [lo, hi] = range ?? [-3, 3];
      for (const shape of [[3, 5, 7], [1], [], [2, 0, 3]]) {
        const x = randomTensor(rng, dtype, shape, { lo, hi });
        expect(await compareWithOrt(op, attrs, [x])).toEqual([]);
      }
      if (isFloat) {
        // Edge values: zeros of both signs, large magnitudes, infinities and NaN.
        const x = randomTensor(rng, dtype, [64], { lo, hi, specials: EDGE, specialRate: 0.4 });
        expect(await compareWithOrt(op, attrs, [x])).toEqual([]);
      }
    });
  }

  it('Round rounds halves to even, Not flips bools', () => {
    const y = runCpuNode('Round', {}, [t('float32', [8], [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, 2.5001])])[0]!;
    expect(Array.from(tensorToNumbers(y))).toEqual([0, 2, 2, -0, -2, -2, 2, 3]);
    expect(Array.from(tensorToNumbers(runCpuNode('Not', {}, [t('bool', [3], [1, 0, 1])])[0]!))).toEqual([0, 1, 0]);
  });

  it('applies HardSigmoid and Selu attribute defaults from the spec', () => {
    const y = tensorToNumbers(runCpuNode('HardSigmoid', {}, [t('float64', [3], [-10, 0, 1])])[0]!);
    expect(Array.from(y)).toEqual([0, 0.5, 0.7]);
    const s = tensorToNumbers(runCpuNode('Selu', {}, [t('float64', [2], [1, -Infinity])])[0]!);
    expect(s[0]).toBe(1.05070102214813232421875);
    expect(s[1]).toBeCloseTo(-1.67326319217681884765625 * 1.05070102214813232421875, 15);
  });
});

const SHAPE_PAIRS: [number[], number[]][] = [
  [[2, 3, 4], [2, 3, 4]], [[2, 3, 4], [4]], [[3, 1, 5], [1, 4, 1]], [[], [2, 3]], [[5, 1], [1]], [[2, 0, 3], [3]], [[1, 7], [6, 1]],
];

const BINARY_CASES: [string, Record<string, Attr>, DType, DType?][] = [
  ['Add', {}, 'float32'], ['Add', {}, 'int32'], ['Add', {}, 'int64'], ['Add', {}, 'float16'], ['Add', {}, 'float64'], ['Add', {}, 'uint8'],
  ['Sub', {}, 'float32'], ['Sub', {}, 'int32'], ['Sub', {}, 'int64'],
  ['Mul', {}, 'float32'], ['Mul', {}, 'int32'], ['Mul', {}, 'int64'], ['Mul', {}, 'float16'],
  ['Div', {}, 'float32'], ['Div', {}, 'int32'], ['Div', {}, 'int64'], ['Div', {}, 'float64'],
  ['Mod', {}, 'int32'], ['Mod', {}, 'int64'], ['Mod', { fmod: attr(1) }, 'int32'], ['Mod', { fmod: attr(1) }, 'float32'],
  ['Pow', {}, 'float32'], ['Pow', {}, 'float32', 'int64'], ['Pow', {}, 'float32', 'int32'], ['Pow', {}, 'int64', 'int64'], ['Pow', {}, 'int32', 'float32'],
  ['Pow', {}, 'float64', 'float64'],
  ['PRelu', {}, 'float32'],
  ['Equal', {}, 'float32'], ['Equal', {}, 'int64'], ['Equal', {}, 'bool'], ['Less', {}, 'float32'], ['Less', {}, 'int32'],
  ['Greater', {}, 'float32'], ['Greater', {}, 'int64'], ['LessOrEqual', {}, 'float32'], ['GreaterOrEqual', {}, 'float32'],
  ['And', {}, 'bool'], ['Or', {}, 'bool'], ['Xor', {}, 'bool'],
];

/** Operand values suited to each op: no integer division by zero, small integer exponents, positive float bases. */
function operands(rng: Rng, op: string, ta: DType, tb: DType, sa: number[], sb: number[]): [HostTensor, HostTensor] {
  const isInt = (d: DType) => !d.startsWith('float') && d !== 'bool';
  if (op === 'Div' || op === 'Mod') {
    const a = randomTensor(rng, ta, sa, { lo: -50, hi: 50 });
    const b = randomTensor(rng, tb, sb, { lo: 1, hi: 9 });
    // Negative divisors too (sign rules of C division and of Mod), never zero.
    const bv = tensorToNumbers(b).map((v) => (rng.next() < 0.5 ? -v : v));
    return [a, tensorFromNumbers(tb, sb, isInt(tb) ? bv : bv.map((v) => v + rng.next()))];
  }
  if (op === 'Pow') {
    const a = randomTensor(rng, ta, sa, isInt(ta) ? { lo: -4, hi: 4 } : isInt(tb) ? { lo: -3, hi: 3 } : { lo: 0, hi: 3 });
    const b = randomTensor(rng, tb, sb, isInt(tb) ? { lo: 0, hi: 4 } : { lo: isInt(ta) ? 0 : -2, hi: 3, integers: isInt(ta) });
    return [a, b];
  }
  if (ta === 'uint8') return [randomTensor(rng, ta, sa, { lo: 0, hi: 200 }), randomTensor(rng, tb, sb, { lo: 0, hi: 200 })];
  // Comparisons need equal elements to exercise their boundary: draw from a small integer set.
  const few = ['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual'].includes(op);
  return [randomTensor(rng, ta, sa, { lo: -3, hi: 3, integers: few || undefined }), randomTensor(rng, tb, sb, { lo: -3, hi: 3, integers: few || undefined })];
}

describe('binary kernels match onnxruntime', () => {
  const rng = new Rng(22);
  for (const [op, attrs, ta, tbOpt] of BINARY_CASES) {
    const tb = tbOpt ?? ta;
    it(`${op} ${JSON.stringify(Object.fromEntries(Object.entries(attrs).map(([k, a]) => [k, a.value])))} ${ta}${tbOpt ? ' ^ ' + tb : ''}`, async () => {
      for (const [sa, sb] of op === 'PRelu' ? ([[[2, 3, 4], [4]], [[2, 3, 4], [3, 1]], [[2, 3], [2, 3]], [[4], []]] as [number[], number[]][]) : SHAPE_PAIRS) {
        const [a, b] = operands(rng, op, ta, tb, sa, sb);
        expect(await compareWithOrt(op, attrs, [a, b])).toEqual([]);
      }
    });
  }

  it('float Add/Mul/Div/Pow/comparisons on edge values', async () => {
    for (const op of ['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Less', 'Equal', 'GreaterOrEqual', 'PRelu']) {
      const a = randomTensor(rng, 'float32', [7, 9], { specials: EDGE, specialRate: 0.4 });
      const b = randomTensor(rng, 'float32', [9], { specials: EDGE, specialRate: 0.4 });
      expect(await compareWithOrt(op, {}, [a, b])).toEqual([]);
    }
  });

  it('integer Div truncates toward zero, Mod follows the divisor sign (fmod=0) or the dividend (fmod=1)', () => {
    const a = t('int32', [4], [7, -7, 7, -7]);
    const b = t('int32', [4], [2, 2, -2, -2]);
    expect(Array.from(tensorToNumbers(runCpuNode('Div', {}, [a, b])[0]!))).toEqual([3, -3, -3, 3]);
    expect(Array.from(tensorToNumbers(runCpuNode('Mod', {}, [a, t('int32', [4], [3, 3, -3, -3])])[0]!))).toEqual([1, 2, -2, -1]);
    expect(Array.from(tensorToNumbers(runCpuNode('Mod', { fmod: attr(1) }, [a, t('int32', [4], [3, 3, -3, -3])])[0]!))).toEqual([1, -1, 1, -1]);
  });

  it('int32 Mul wraps like C, Pow follows C pow for 1^NaN', () => {
    expect(Array.from(tensorToNumbers(runCpuNode('Mul', {}, [t('int32', [1], [123456789]), t('int32', [1], [987654321])])[0]!))).toEqual([Math.imul(123456789, 987654321)]);
    expect(Array.from(tensorToNumbers(runCpuNode('Pow', {}, [t('float32', [2], [1, -1]), t('float32', [2], [NaN, Infinity])])[0]!))).toEqual([1, 1]);
  });
});

describe('variadic, Where and Clip match onnxruntime', () => {
  const rng = new Rng(33);
  for (const op of ['Sum', 'Mean', 'Min', 'Max']) {
    it(op, async () => {
      const dtypes: DType[] = op === 'Sum' ? ['float32', 'float64'] : op === 'Mean' ? ['float32'] : ['float32', 'int32', 'int64'];
      for (const dtype of dtypes) {
        for (const shapes of [[[3, 4]], [[3, 4], [4]], [[2, 1, 4], [3, 1], [1]], [[5], [5], [5], [5]]]) {
          const xs = shapes.map((s) => randomTensor(rng, dtype, s));
          expect(await compareWithOrt(op, {}, xs)).toEqual([]);
        }
      }
      const xs = [[4, 6], [6]].map((s) => randomTensor(rng, 'float32', s, { specials: [NaN, Infinity, -Infinity, 0], specialRate: 0.3 }));
      expect(await compareWithOrt(op, {}, xs)).toEqual([]);
    });
  }

  it('Where broadcasts condition, X and Y of any type', async () => {
    for (const dtype of ['float32', 'int64', 'int32', 'uint8', 'float16'] as DType[]) {
      for (const [sc, sx, sy] of [[[2, 3], [2, 3], [2, 3]], [[3], [2, 1], []], [[2, 1, 4], [3, 1], [1, 4]]]) {
        const c = randomTensor(rng, 'bool', sc!);
        expect(await compareWithOrt('Where', {}, [c, randomTensor(rng, dtype, sx!), randomTensor(rng, dtype, sy!)])).toEqual([]);
      }
    }
    const s = runCpuNode('Where', {}, [t('bool', [3], [1, 0, 1]), { dtype: 'string', shape: [3], data: ['a', 'b', 'c'] }, { dtype: 'string', shape: [], data: ['z'] }])[0]!;
    expect(s.data).toEqual(['a', 'z', 'c']);
  });

  it('Clip with omitted min and/or max, integer types and min > max', async () => {
    const x = randomTensor(rng, 'float32', [4, 5], { lo: -3, hi: 3 });
    const s = (v: number, d: DType = 'float32') => tensorFromNumbers(d, [], [v]);
    expect(await compareWithOrt('Clip', {}, [x])).toEqual([]);
    expect(await compareWithOrt('Clip', {}, [x, s(-1)])).toEqual([]);
    expect(await compareWithOrt('Clip', {}, [x, undefined, s(0.5)])).toEqual([]);
    expect(await compareWithOrt('Clip', {}, [x, s(-1), s(0.5)])).toEqual([]);
    expect(await compareWithOrt('Clip', {}, [x, s(1), s(-1)])).toEqual([]);
    const xi = randomTensor(rng, 'int32', [10], { lo: -20, hi: 20 });
    expect(await compareWithOrt('Clip', {}, [xi, s(-5, 'int32'), s(7, 'int32')])).toEqual([]);
    const xl = randomTensor(rng, 'int64', [10], { lo: -20, hi: 20 });
    expect(await compareWithOrt('Clip', {}, [xl, undefined, s(3, 'int64')])).toEqual([]);
    expect(Array.from(tensorToNumbers(runCpuNode('Clip', {}, [t('float32', [3], [-2, 0, 2]), s(1), s(-1)])[0]!))).toEqual([-1, -1, -1]);
  });
});
