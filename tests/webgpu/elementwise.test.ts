import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuResources } from '../../runtime/backends/webgpu/executor.js';
import { EW_OPS } from '../../runtime/backends/webgpu/kernels/elementwise-ops.js';
import type { DType } from '../../runtime/ir/dtype.js';
import { UNARY_OPS } from '../../runtime/ir/ops/elementwise.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { InvalidArgumentError, UnsupportedOpError } from '../../runtime/errors.js';
import { attr, node } from '../helpers/ir-builder.js';
import { Rng, randomTensor, type RandomTensorOptions } from '../helpers/random.js';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';
import { checkAgainstCpu } from './ew-harness.js';
import { runNodeGpu } from '../../runtime/backends/webgpu/executor.js';

let res: GpuResources;
beforeAll(async () => {
  res = await gpuForTests();
  console.info(`WebGPU device: ${describeDevice(res)}`);
});

// Shapes: odd (scalar path), a last dim divisible by 4 (vec4 path), rank 0.
const SHAPES = [[7], [2, 3, 8], [3, 5], []];
const ACTIVATION_EDGES = [0, -0, 30, -30, 100, -100, 1e-5, -1e-5, Infinity, -Infinity];

/** Input domain per unary op (where the function is defined and well-conditioned) and its edge values. */
const UNARY_DOMAIN: Record<string, RandomTensorOptions> = {
  Log: { lo: 0.01, hi: 10, specials: [0, Infinity, 1] },
  Sqrt: { lo: 0, hi: 10, specials: [0, Infinity, 1e-30] },
  Reciprocal: { lo: 0.1, hi: 10, specials: [-0.5, -3, Infinity] },
  Acosh: { lo: 1, hi: 10 },
  Asin: { lo: -0.99, hi: 0.99, specials: [0, 1e-4] },
  Acos: { lo: -0.99, hi: 0.99 },
  Atanh: { lo: -0.95, hi: 0.95, specials: [0, 1e-4, -1e-5] },
  Atan: { lo: -10, hi: 10, specials: [0, 1e-4] },
  Asinh: { lo: -10, hi: 10, specials: [0, 1e-4, -1e-5] },
  Sin: { lo: -3, hi: 3, specials: [0] },
  Cos: { lo: -3, hi: 3, specials: [0] },
  Tan: { lo: -1.2, hi: 1.2, specials: [0] },
  Exp: { lo: -20, hi: 20, specials: [0, -Infinity, Infinity] },
  Sinh: { lo: -10, hi: 10, specials: [0, 1e-4, -1e-5] },
  Cosh: { lo: -10, hi: 10, specials: [0] },
  Round: { lo: -5, hi: 5, specials: [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, -0] },
  Floor: { lo: -5, hi: 5, specials: [-2, 2, -0.5, 0] },
  Ceil: { lo: -5, hi: 5, specials: [-2, 2, -0.5, 0] },
  Erf: { lo: -4, hi: 4, specials: [0, 1e-4, -1e-3, 0.49, 0.51, -0.5, 5, -6, Infinity, -Infinity] },
  Gelu: { lo: -6, hi: 6, specials: [0, 1e-4, -1e-3, 0.49, -0.51, -10, 10, Infinity, -Infinity] },
};
const SPECIAL_ATTRS: Record<string, Node['attrs'][]> = {
  LeakyRelu: [{}, { alpha: attr(0.3, true) }],
  Elu: [{}, { alpha: attr(0.5, true) }],
  Celu: [{ alpha: attr(2.0, true) }],
  ThresholdedRelu: [{ alpha: attr(0.25, true) }],
  Shrink: [{ bias: attr(0.1, true), lambd: attr(0.3, true) }],
  HardSigmoid: [{ alpha: attr(0.3, true), beta: attr(0.4, true) }],
  Gelu: [{}, { approximate: attr('tanh') }],
  IsInf: [{}, { detect_negative: attr(0) }, { detect_positive: attr(0) }],
};
type Node = import('../../runtime/ir/graph.js').Node;

const floatUnary = Object.keys(EW_OPS).filter((op) => UNARY_OPS[op] && UNARY_OPS[op]!.types !== 'bool');

describe('elementwise unary ops vs the CPU reference (float32)', () => {
  for (const op of floatUnary) {
    it(op, async () => {
      const rng = new Rng(op.length * 7919 + op.charCodeAt(0));
      const domain = UNARY_DOMAIN[op] ?? { lo: -6, hi: 6, specials: ACTIVATION_EDGES };
      for (const attrs of SPECIAL_ATTRS[op] ?? [{}]) {
        for (const shape of SHAPES) {
          const x = randomTensor(rng, 'float32', shape, { specialRate: 0.3, ...domain });
          await checkAgainstCpu(res, node(op, ['x'], ['y'], attrs), [x]);
        }
      }
    });
  }

  it('IsNaN sees NaN', async () => {
    const x = tensorFromNumbers('float32', [6], [NaN, 0, Infinity, -NaN, 1, -Infinity]);
    const [y] = await runNodeGpu(res, node('IsNaN', ['x'], ['y']), [x]);
    expect(Array.from(y!.data as Uint8Array)).toEqual([1, 0, 0, 1, 0, 0]);
  });

  it('Tanh saturates instead of overflowing for huge |x|', async () => {
    const x = tensorFromNumbers('float32', [8], [1e30, -1e30, 88, -88, 89, -89, 3e38, -3e38]);
    const [y] = await runNodeGpu(res, node('Tanh', ['x'], ['y']), [x]);
    expect(Array.from(y!.data as Float32Array)).toEqual([1, -1, 1, -1, 1, -1, 1, -1]);
  });
});

describe('elementwise unary ops on integers and bools', () => {
  const cases: [string, DType][] = [
    ['Relu', 'int32'], ['Neg', 'int32'], ['Abs', 'int32'], ['Sign', 'int32'], ['Abs', 'uint32'], ['Sign', 'uint8'],
    ['Neg', 'int64'], ['Relu', 'int8'], ['Not', 'bool'],
  ];
  for (const [op, dtype] of cases) {
    it(`${op} ${dtype}`, async () => {
      const rng = new Rng(17);
      for (const shape of SHAPES) {
        const x = randomTensor(rng, dtype, shape, dtype.startsWith('uint') ? { lo: 0, hi: 100 } : {});
        await checkAgainstCpu(res, node(op, ['x'], ['y']), [x]);
      }
    });
  }
});

/** Shape pairs: same shape, vec4 with a broadcast row, a column broadcast, scalar, both sides broadcasting. */
const PAIRS: [number[], number[]][] = [
  [[5], [5]],
  [[2, 3, 4], [4]],
  [[2, 1, 5], [3, 1]],
  [[4, 8], []],
  [[1, 3, 1, 4], [2, 1, 5, 1]],
  [[], [3, 4]],
];

function operands(rng: Rng, op: string, dtype: DType, sa: number[], sb: number[]): [HostTensor, HostTensor] {
  const isInt = !dtype.startsWith('float');
  if (op === 'Pow' && !isInt) {
    if (rng.next() < 0.5) return [randomTensor(rng, dtype, sa, { lo: 0.1, hi: 3, specials: [0, 1] }), randomTensor(rng, dtype, sb, { lo: -3, hi: 3, specials: [0] })];
    return [randomTensor(rng, dtype, sa, { lo: -3, hi: 3, specials: [-1, 0, 1] }), randomTensor(rng, dtype, sb, { lo: -3, hi: 3, integers: true })];
  }
  if (op === 'Pow') return [randomTensor(rng, dtype, sa, { lo: -5, hi: 5 }), randomTensor(rng, dtype, sb, { lo: -2, hi: 6 })];
  if (op === 'Div' || op === 'Mod') {
    const b = isInt ? randomTensor(rng, dtype, sb, { lo: -7, hi: 7, specials: [0] }) : randomTensor(rng, dtype, sb, { lo: 0.5, hi: 3, specials: [-1.5, -0.75] });
    return [randomTensor(rng, dtype, sa, isInt ? { lo: -40, hi: 40 } : { lo: -10, hi: 10 }), b];
  }
  if (['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual'].includes(op)) {
    return [randomTensor(rng, dtype, sa, { lo: -2, hi: 2, integers: true }), randomTensor(rng, dtype, sb, { lo: -2, hi: 2, integers: true })];
  }
  return [randomTensor(rng, dtype, sa), randomTensor(rng, dtype, sb)];
}

describe('elementwise binary ops with broadcasting vs the CPU reference', () => {
  const cases: [string, DType, Node['attrs']?][] = [
    ['Add', 'float32'], ['Sub', 'float32'], ['Mul', 'float32'], ['Div', 'float32'], ['Pow', 'float32'],
    ['Mod', 'float32', { fmod: attr(1) }],
    ['Equal', 'float32'], ['Less', 'float32'], ['Greater', 'float32'], ['LessOrEqual', 'float32'], ['GreaterOrEqual', 'float32'],
    ['Add', 'int32'], ['Sub', 'int32'], ['Mul', 'int32'], ['Div', 'int32'], ['Mod', 'int32'], ['Mod', 'int32', { fmod: attr(1) }],
    ['Pow', 'int32'], ['Less', 'int32'], ['Equal', 'int32'], ['Add', 'int64'], ['Mul', 'uint8'], ['Div', 'uint32'],
    ['Equal', 'bool'], ['And', 'bool'], ['Or', 'bool'], ['Xor', 'bool'],
  ];
  for (const [op, dtype, attrs] of cases) {
    it(`${op} ${dtype}${attrs ? ' ' + JSON.stringify(Object.keys(attrs)) : ''}`, async () => {
      const rng = new Rng(op.length * 31 + dtype.length);
      for (const [sa, sb] of PAIRS) {
        const [a, b] = operands(rng, op, dtype, sa, sb);
        await checkAgainstCpu(res, node(op, ['a', 'b'], ['y'], attrs ?? {}), [a, b]);
      }
    });
  }

  it('Pow with an integer exponent tensor on a float base', async () => {
    const a = tensorFromNumbers('float32', [6], [-2, -2, 3, 0.5, -1, 0]);
    const b = tensorFromNumbers('int32', [6], [2, 3, -1, 2, 5, 0]);
    await checkAgainstCpu(res, node('Pow', ['a', 'b'], ['y']), [a, b]);
  });

  it('PRelu broadcasts the slope unidirectionally', async () => {
    const rng = new Rng(5);
    for (const [sx, ss] of [[[2, 3, 4, 4], [3, 1, 1]], [[5, 7], [7]], [[2, 8], [1]]] as [number[], number[]][]) {
      await checkAgainstCpu(res, node('PRelu', ['x', 's'], ['y']), [randomTensor(rng, 'float32', sx), randomTensor(rng, 'float32', ss)]);
    }
  });
});

describe('Where, Clip and the variadic ops', () => {
  it('Where broadcasts three ways', async () => {
    const rng = new Rng(9);
    for (const [sc, sx, sy] of [[[2, 3, 4], [4], [2, 1, 4]], [[5], [5], [5]], [[3, 1], [1, 6], []]] as [number[], number[], number[]][]) {
      for (const dtype of ['float32', 'int32', 'bool'] as DType[]) {
        await checkAgainstCpu(res, node('Where', ['c', 'x', 'y'], ['z']), [randomTensor(rng, 'bool', sc), randomTensor(rng, dtype, sx), randomTensor(rng, dtype, sy)]);
      }
    }
  });

  it('Clip with min and max, one of them, or none', async () => {
    const rng = new Rng(10);
    for (const dtype of ['float32', 'int32'] as DType[]) {
      const x = randomTensor(rng, dtype, [3, 8], dtype === 'int32' ? { lo: -20, hi: 20 } : { lo: -3, hi: 3 });
      const lo = tensorFromNumbers(dtype, [], [-1]);
      const hi = tensorFromNumbers(dtype, [1], [2]);
      await checkAgainstCpu(res, node('Clip', ['x', 'lo', 'hi'], ['y']), [x, lo, hi]);
      await checkAgainstCpu(res, node('Clip', ['x', '', 'hi'], ['y']), [x, undefined, hi]);
      await checkAgainstCpu(res, node('Clip', ['x', 'lo'], ['y']), [x, lo]);
      await checkAgainstCpu(res, node('Clip', ['x'], ['y']), [x]);
    }
  });

  it('Sum, Mean, Min, Max over 1 to 10 broadcast operands (more than 7 are chained)', async () => {
    const rng = new Rng(11);
    const shapes = [[2, 3, 4], [4], [3, 1], [1, 3, 4], [], [2, 1, 1], [4], [3, 4], [1], [2, 3, 4]];
    for (const op of ['Sum', 'Mean', 'Min', 'Max']) {
      for (const n of [1, 3, 8, 10]) {
        const xs = shapes.slice(0, n).map((s) => randomTensor(rng, 'float32', s));
        const names = xs.map((_, i) => `x${i}`);
        await checkAgainstCpu(res, node(op, names, ['y']), xs);
      }
    }
    const ints = shapes.slice(0, 3).map((s) => randomTensor(rng, 'int32', s));
    await checkAgainstCpu(res, node('Max', ['a', 'b', 'c'], ['y']), ints);
  });
});

describe('storage types', () => {
  it('float16 inputs are read packed and results rounded back to float16', async () => {
    const rng = new Rng(12);
    for (const [sa, sb] of PAIRS) {
      const a = randomTensor(rng, 'float16', sa, { lo: -4, hi: 4 });
      const b = randomTensor(rng, 'float16', sb, { lo: -4, hi: 4 });
      await checkAgainstCpu(res, node('Mul', ['a', 'b'], ['y']), [a, b], { rtol: 1e-3, atol: 1e-4 });
    }
    await checkAgainstCpu(res, node('Sigmoid', ['x'], ['y']), [randomTensor(rng, 'float16', [3, 7])], { rtol: 1e-3, atol: 1e-4 });
  });

  it('int64 values outside int32 are rejected at upload, not wrapped', async () => {
    const a = tensorFromNumbers('int64', [2], [1, 2 ** 40]);
    await expect(runNodeGpu(res, node('Neg', ['a'], ['y']), [a])).rejects.toThrow(InvalidArgumentError);
  });

  it('ops without a GPU kernel for a dtype are reported as unsupported', async () => {
    const x = tensorFromNumbers('uint32', [3], [1, 2, 3]);
    await expect(runNodeGpu(res, node('Pow', ['a', 'b'], ['y']), [x, x])).rejects.toThrow(UnsupportedOpError);
    const d = tensorFromNumbers('float64', [3], [1, 2, 3]);
    await expect(runNodeGpu(res, node('Relu', ['a'], ['y']), [d])).rejects.toThrow(UnsupportedOpError);
  });

  it('a value bound twice in one dispatch (Add(x, x)) is copied instead of aliased', async () => {
    const rng = new Rng(13);
    const x = randomTensor(rng, 'float32', [2, 8]);
    const g = await import('../../runtime/ir/infer.js');
    const v = await import('../../runtime/ir/validate.js');
    const { GpuGraphPlan } = await import('../../runtime/backends/webgpu/executor.js');
    const graph = g.inferShapes(v.validateAndSort({
      name: 't', inputs: [{ name: 'x', dtype: 'float32', shape: [2, 8] }], outputs: [{ name: 'z', dtype: 'float32' }], initializers: {},
      nodes: [node('Exp', ['x'], ['e']), node('Add', ['e', 'e'], ['z'])], values: {},
    }));
    const plan = await GpuGraphPlan.create(res, graph);
    const out = await plan.run({ x });
    plan.dispose();
    const want = Array.from(x.data as Float32Array, (t) => 2 * Math.fround(Math.exp(t)));
    Array.from(out.z!.data as Float32Array).forEach((y, i) => expect(y).toBeCloseTo(want[i]!, 5));
  });
});

afterAll(() => undefined);
