import { beforeAll, describe, expect, it } from 'vitest';
import type { GpuResources } from '../../runtime/backends/webgpu/executor.js';
import { fuseForGpu } from '../../runtime/backends/webgpu/fusion.js';
import { msOp } from '../../runtime/ir/ops/contrib.js';
import { tensorFromNumbers } from '../../runtime/ir/tensor.js';
import { attr, buildGraph, i64, node } from '../helpers/ir-builder.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { checkGraphAgainstCpu } from './ew-harness.js';
import { GpuGraphPlan, halfPrecisionWeights } from '../../runtime/backends/webgpu/executor.js';
import { allClose } from '../helpers/compare.js';
import { runGraphCpu } from '../../runtime/backends/cpu/executor.js';

/** Epilogue fusion of the GPU plan (fusion.ts): fewer dispatches, the same numbers as the unfused CPU reference. */
let res: GpuResources;
beforeAll(async () => {
  res = await gpuForTests();
});
const TOL = { rtol: 1e-4, atol: 1e-5 };
const rng = new Rng(31);

function smallNet() {
  return buildGraph({
    inputs: [['x', 'float32', [2, 3, 8, 8]]],
    initializers: {
      w1: randomTensor(rng, 'float32', [8, 3, 3, 3]), b1: randomTensor(rng, 'float32', [8]),
      w2: randomTensor(rng, 'float32', [8, 1, 3, 3]),
      lo: tensorFromNumbers('float32', [], [0]), hi: tensorFromNumbers('float32', [], [0.5]),
      fc: randomTensor(rng, 'float32', [8, 5]), fb: randomTensor(rng, 'float32', [5]),
      alpha: tensorFromNumbers('float32', [], [0.2]),
    },
    nodes: [
      node('Conv', ['x', 'w1', 'b1'], ['c1'], { pads: attr([1, 1, 1, 1]) }),
      node('Relu', ['c1'], ['r1']),
      node('Conv', ['r1', 'w2'], ['c2'], { group: attr(8), strides: attr([2, 2]), pads: attr([1, 1, 1, 1]) }),
      node('Clip', ['c2', 'lo', 'hi'], ['r2']),
      node('GlobalAveragePool', ['r2'], ['g']),
      node('Flatten', ['g'], ['f']),
      node('MatMul', ['f', 'fc'], ['m']),
      node('Add', ['fb', 'm'], ['logits']),
      node('LeakyRelu', ['logits'], ['y'], { alpha: attr(0.3, true) }),
    ],
    outputs: ['y'],
  });
}

describe('GPU epilogue fusion', () => {
  it('collapses producer -> activation and MatMul -> Add chains', () => {
    const fused = fuseForGpu(smallNet());
    expect(fused.nodes.map((n) => n.op)).toEqual(['Conv', 'Conv', 'GlobalAveragePool', 'Flatten', 'Gemm']);
    expect(fused.nodes[0]!.attrs.activation).toEqual({ type: 'string', value: 'Relu' });
    expect(fused.nodes[1]!.attrs).toMatchObject({ activation: { value: 'Clip' }, activation_min: { value: 0 }, activation_max: { value: 0.5 } });
    expect(fused.nodes[4]!.inputs).toEqual(['f', 'fc', 'fb']);
    expect(fused.nodes[4]!.attrs).toMatchObject({ activation: { value: 'LeakyRelu' }, activation_alpha: { value: 0.3 } });
  });

  it('runs the fused plan with fewer dispatches and the CPU reference results', async () => {
    const g = smallNet();
    const feeds = { x: randomTensor(rng, 'float32', [2, 3, 8, 8]) };
    const report = await checkGraphAgainstCpu(res, g, feeds, TOL);
    expect(report.dispatches).toBe(5);
    const unfused = await GpuGraphPlan.create(res, g, { fuse: false });
    expect(unfused.report().dispatches).toBe(9);
    unfused.dispose();
  });

  it('leaves values with other readers, graph outputs and non-row biases alone', async () => {
    const g = buildGraph({
      inputs: [['a', 'float32', [4, 6]], ['b', 'float32', [6, 3]]],
      initializers: { bias: randomTensor(rng, 'float32', [4, 1]) },
      nodes: [
        node('MatMul', ['a', 'b'], ['m']),
        node('Add', ['m', 'bias'], ['s']), // a column bias: not Gemm's C broadcast
        node('Sigmoid', ['s'], ['t']),
        node('MatMul', ['a', 'b'], ['m2']),
        node('Tanh', ['m2'], ['u']),
        node('Mul', ['m2', 'u'], ['v']), // m2 has two readers
      ],
      outputs: ['t', 'v', 's'],
    });
    expect(fuseForGpu(g).nodes.map((n) => n.op)).toEqual(['MatMul', 'Add', 'Sigmoid', 'MatMul', 'Tanh', 'Mul']);
    await checkGraphAgainstCpu(res, g, { a: randomTensor(rng, 'float32', [4, 6]), b: randomTensor(rng, 'float32', [6, 3]) }, TOL);
  });

  it('fuses Gelu and HardSwish into a batched MatMul', async () => {
    for (const act of ['Gelu', 'HardSwish']) {
      const g = buildGraph({
        inputs: [['a', 'float32', [2, 5, 7]]],
        initializers: { w: randomTensor(rng, 'float32', [7, 9]), shape: i64([10, 9]) },
        nodes: [node('MatMul', ['a', 'w'], ['m']), node(act, ['m'], ['h']), node('Reshape', ['h', 'shape'], ['y'])],
        outputs: ['y'],
      });
      const report = await checkGraphAgainstCpu(res, g, { a: randomTensor(rng, 'float32', [2, 5, 7], { lo: -3, hi: 3 }) }, TOL);
      expect(report.dispatches).toBe(2);
    }
  });

  it('folds residual adds into Conv (GEMM, 1x1 and depthwise), Gemm and MatMul, before the activation', async () => {
    // A resnet-style block (conv -> add(skip) -> relu), a mobilenet-style one (1x1 project -> add(skip), skip first
    // in the Add), a depthwise conv with a residual, a Gemm and a batched MatMul with residuals.
    const g = buildGraph({
      inputs: [['x', 'float32', [2, 6, 7, 5]], ['a', 'float32', [3, 5, 9]], ['a0', 'float32', [5, 9]]],
      initializers: {
        w1: randomTensor(rng, 'float32', [6, 6, 3, 3]), b1: randomTensor(rng, 'float32', [6]),
        w2: randomTensor(rng, 'float32', [6, 6, 1, 1]),
        w3: randomTensor(rng, 'float32', [6, 1, 3, 3]), b3: randomTensor(rng, 'float32', [6]),
        wm: randomTensor(rng, 'float32', [9, 4]), skip: randomTensor(rng, 'float32', [3, 5, 4]),
        wg: randomTensor(rng, 'float32', [4, 9]), bg: randomTensor(rng, 'float32', [4]), sg: randomTensor(rng, 'float32', [5, 4]),
      },
      nodes: [
        node('Conv', ['x', 'w1', 'b1'], ['c1'], { pads: attr([1, 1, 1, 1]) }),
        node('Add', ['c1', 'x'], ['s1']),
        node('Relu', ['s1'], ['r1']),
        node('Conv', ['r1', 'w2'], ['c2']),
        node('Add', ['r1', 'c2'], ['s2']),
        node('Conv', ['s2', 'w3', 'b3'], ['c3'], { group: attr(6), pads: attr([1, 1, 1, 1]) }),
        node('Add', ['c3', 's2'], ['y1']),
        node('MatMul', ['a', 'wm'], ['m']),
        node('Add', ['m', 'skip'], ['s4']),
        node('Tanh', ['s4'], ['y2']),
        node('Gemm', ['a0', 'wg', 'bg'], ['gm'], { transB: attr(1) }),
        node('Add', ['gm', 'sg'], ['y3']),
      ],
      outputs: ['y1', 'y2', 'y3'],
    });
    const fused = fuseForGpu(g);
    expect(fused.nodes.map((n) => n.op)).toEqual(['Conv', 'Conv', 'Conv', 'MatMul', 'Gemm']);
    expect(fused.nodes[0]!.inputs).toEqual(['x', 'w1', 'b1', 'x']);
    expect(fused.nodes[0]!.attrs).toMatchObject({ residual: { value: 1 }, activation: { value: 'Relu' } });
    expect(fused.nodes[1]!.inputs).toEqual(['r1', 'w2', '', 'r1']);
    expect(fused.nodes[3]!.inputs).toEqual(['a', 'wm', '', 'skip']);
    expect(fused.nodes[3]!.attrs).toMatchObject({ residual: { value: 1 }, activation: { value: 'Tanh' } });
    const feeds = { x: randomTensor(rng, 'float32', [2, 6, 7, 5]), a: randomTensor(rng, 'float32', [3, 5, 9]), a0: randomTensor(rng, 'float32', [5, 9]) };
    for (const cpuAdapter of [false, true]) {
      const report = await checkGraphAgainstCpu(res, g, feeds, TOL, { cpuAdapter });
      expect(report.dispatches).toBe(5);
      // Both matrix kernel families carry the residual epilogue.
      expect(report.pipelines.filter((k) => k.includes(':res:')).some((k) => k.includes(':direct:'))).toBe(cpuAdapter);
    }
  });

  it('fuses only one of two producers that meet in one Add (a resnet downsample block)', async () => {
    const g = buildGraph({
      inputs: [['x', 'float32', [1, 4, 6, 6]]],
      initializers: { w1: randomTensor(rng, 'float32', [8, 4, 3, 3]), w2: randomTensor(rng, 'float32', [8, 4, 1, 1]), b2: randomTensor(rng, 'float32', [8]) },
      nodes: [
        node('Conv', ['x', 'w1'], ['main'], { pads: attr([1, 1, 1, 1]), strides: attr([2, 2]) }),
        node('Conv', ['x', 'w2', 'b2'], ['down'], { strides: attr([2, 2]) }),
        node('Add', ['main', 'down'], ['s']),
        node('Relu', ['s'], ['y']),
      ],
      outputs: ['y'],
    });
    const fused = fuseForGpu(g);
    expect(fused.nodes.map((n) => n.op)).toEqual(['Conv', 'Conv']);
    expect(fused.nodes[1]!.inputs).toEqual(['x', 'w1', '', 'down']);
    const report = await checkGraphAgainstCpu(res, g, { x: randomTensor(rng, 'float32', [1, 4, 6, 6]) }, TOL);
    expect(report.dispatches).toBe(2);
  });

  it('leaves broadcasting adds, self adds and adds after an activation unfused', () => {
    const g = buildGraph({
      inputs: [['x', 'float32', [1, 4, 5, 5]]],
      initializers: { w: randomTensor(rng, 'float32', [4, 4, 1, 1]), row: randomTensor(rng, 'float32', [1, 4, 1, 1]) },
      nodes: [
        node('Conv', ['x', 'w'], ['c1']),
        node('Add', ['c1', 'row'], ['s1']), // broadcasts: not a residual
        node('Conv', ['s1', 'w'], ['c2']),
        node('Add', ['c2', 'c2'], ['s2']), // c2 twice
        node('Conv', ['s2', 'w'], ['c3']),
        node('Relu', ['c3'], ['r3']),
        node('Add', ['r3', 'x'], ['y']), // the activation comes first: Add(Relu(conv)) is not Relu(conv + x)
      ],
      outputs: ['y'],
    });
    expect(fuseForGpu(g).nodes.map((n) => n.op)).toEqual(['Conv', 'Add', 'Conv', 'Add', 'Conv', 'Add']);
  });
});

describe("weightPrecision 'float16'", () => {
  it('halves only large, in-range float32 weights that matrix kernels alone read', async () => {
    const big = randomTensor(rng, 'float32', [16, 8, 3, 3]);
    const huge = randomTensor(rng, 'float32', [16, 8, 3, 3]);
    (huge.data as Float32Array)[5] = 1e6; // beyond float16's range: stays float32
    const g = buildGraph({
      inputs: [['x', 'float32', [1, 8, 6, 6]]],
      initializers: {
        big, huge, small: randomTensor(rng, 'float32', [16, 8, 1, 1]), bias: randomTensor(rng, 'float32', [16]),
        shared: randomTensor(rng, 'float32', [16, 8, 3, 3]), fc: randomTensor(rng, 'float32', [16, 32]),
      },
      nodes: [
        node('Conv', ['x', 'big', 'bias'], ['a'], { pads: attr([1, 1, 1, 1]) }),
        node('Conv', ['x', 'huge'], ['b'], { pads: attr([1, 1, 1, 1]) }),
        node('Conv', ['x', 'small'], ['c']),
        node('Conv', ['x', 'shared'], ['d'], { pads: attr([1, 1, 1, 1]) }),
        node('Add', ['shared', 'shared'], ['e']), // 'shared' also read elementwise: stays float32
        node('GlobalAveragePool', ['a'], ['p']),
        node('Flatten', ['p'], ['f']),
        node('MatMul', ['f', 'fc'], ['y']),
      ],
      outputs: ['y', 'b', 'c', 'd', 'e'],
    });
    expect([...halfPrecisionWeights(g)].sort()).toEqual(['big', 'fc']);
    expect([...halfPrecisionWeights(g, { big: 1 })]).toEqual(['fc']); // externally bound (trained) weights never
    const feeds = { x: randomTensor(rng, 'float32', [1, 8, 6, 6]) };
    const expected = await checkGraphAgainstCpu(res, g, feeds, TOL); // float32: exact tolerance
    const plan = await GpuGraphPlan.create(res, g, { weightPrecision: 'float16' });
    try {
      expect(plan.report().weightBytes).toBeLessThan(expected.weightBytes);
      const out = await plan.run(feeds);
      // Weights rounded to float16 (relative 2^-11 each): results agree to about 1e-3.
      const cpu = runGraphCpu(g, feeds);
      for (const k of ['y', 'b', 'c', 'd', 'e']) {
        const r = allClose(out[k]!, cpu[k]!, { rtol: 5e-3, atol: 5e-3 });
        expect(r.ok, `${k}: ${r.ok ? '' : r.message}`).toBe(true);
      }
      // Outputs that read only float32 weights are exact.
      for (const k of ['b', 'c', 'e']) expect(allClose(out[k]!, cpu[k]!, TOL).ok).toBe(true);
    } finally {
      plan.dispose();
    }
  });
});

describe('fusion records and the Transformer epilogue forms', () => {
  const attrOf = (n: { attrs: Record<string, unknown> }, k: string) => (n.attrs[k] as { value: unknown } | undefined)?.value;

  it('every epilogue fusion records its kind and the model nodes it replaces', () => {
    const fused = fuseForGpu(smallNet());
    expect(fused.nodes.map((n) => attrOf(n, 'fusion'))).toEqual(['Conv+Relu', 'Conv+Clip', undefined, undefined, 'MatMul+Bias+LeakyRelu']);
    expect(attrOf(fused.nodes[4]!, 'fused_from')).toEqual(['MatMul_m', 'Add_logits', 'LeakyRelu_y']);
    expect(attrOf(fused.nodes[0]!, 'fused_from')).toEqual(['Conv_c1', 'Relu_r1']);
  });

  it('adds a row bias to a batched MatMul in both kernel families, then its residual and activation', async () => {
    const g = buildGraph({
      inputs: [['a', 'float32', [2, 3, 5, 9]], ['r', 'float32', [2, 3, 5, 7]]],
      initializers: { w: randomTensor(rng, 'float32', [9, 7]), bias: randomTensor(rng, 'float32', [1, 7]) },
      nodes: [node('MatMul', ['a', 'w'], ['m']), node('Add', ['bias', 'm'], ['s']), node('Add', ['s', 'r'], ['t']), node('Sigmoid', ['t'], ['y'])],
      outputs: ['y'],
    });
    // The bias Add is the MatMul's C; the residual Add folds into the MatMul too (pass 1 sees the biased MatMul).
    const fused = fuseForGpu(g);
    expect(fused.nodes.map((n) => [n.op, attrOf(n, 'fusion')])).toEqual([['MatMul', 'MatMul+Bias+Residual+Sigmoid']]);
    expect(fused.nodes[0]!.inputs).toEqual(['a', 'w', 'bias', 'r']);
    const feeds = { a: randomTensor(rng, 'float32', [2, 3, 5, 9]), r: randomTensor(rng, 'float32', [2, 3, 5, 7]) };
    for (const cpuAdapter of [false, true]) expect((await checkGraphAgainstCpu(res, g, feeds, TOL, { cpuAdapter })).dispatches).toBe(1);
  });

  it('splits one product among three outputs in both kernel families (QKV), and keeps bound weights apart', async () => {
    const wq = randomTensor(rng, 'float32', [12, 4]);
    const wk = randomTensor(rng, 'float32', [12, 6]);
    const wv = randomTensor(rng, 'float32', [12, 5]);
    const g = buildGraph({
      inputs: [['x', 'float32', [3, 7, 12]]],
      initializers: { wq, wk, wv, bk: randomTensor(rng, 'float32', [6]) },
      nodes: [node('MatMul', ['x', 'wq'], ['q']), node('MatMul', ['x', 'wk'], ['mk']), node('Add', ['mk', 'bk'], ['k']), node('MatMul', ['x', 'wv'], ['v'])],
      outputs: ['q', 'k', 'v'],
    });
    const fused = fuseForGpu(g);
    expect(fused.nodes).toHaveLength(1);
    expect(fused.nodes[0]!.outputs).toEqual(['q', 'k', 'v']);
    expect(attrOf(fused.nodes[0]!, 'fused_from')).toEqual(['MatMul_q', 'MatMul_mk', 'Add_k', 'MatMul_v']);
    // The concatenated weight [12, 15] and bias [15] (zeros for the unbiased projections), shared by later plans.
    const wName = fused.nodes[0]!.inputs[1]!;
    expect(fused.initializers[wName]!.shape).toEqual([12, 15]);
    expect(fused.initializers[fused.nodes[0]!.inputs[2]!]!.shape).toEqual([15]);
    expect(fuseForGpu(g).initializers[wName]).toBe(fused.initializers[wName]);
    const feeds = { x: randomTensor(rng, 'float32', [3, 7, 12]) };
    for (const cpuAdapter of [false, true]) {
      const report = await checkGraphAgainstCpu(res, g, feeds, TOL, { cpuAdapter });
      expect(report.dispatches).toBe(1);
      expect(report.fusions.map((f) => f.kind)).toEqual(['QKV']);
    }
    // Weights bound outside the plan (the GPU trainer's parameters) change between runs: never concatenated.
    expect(fuseForGpu(g, { bound: { wk: 1 } }).nodes.map((n) => n.outputs.length)).toEqual([2, 1]);
  });
});

describe('2-D projections exported as Gemm', () => {
  it('groups Gemms of one input (transB weights transposed once) into one split MatMul', async () => {
    const g = buildGraph({
      inputs: [['x', 'float32', [5, 12]]],
      initializers: {
        wq: randomTensor(rng, 'float32', [8, 12]), bq: randomTensor(rng, 'float32', [8]),
        wk: randomTensor(rng, 'float32', [6, 12]), bk: randomTensor(rng, 'float32', [1, 6]),
        wv: randomTensor(rng, 'float32', [12, 4]),
        wa: randomTensor(rng, 'float32', [3, 12]),
      },
      nodes: [
        node('Gemm', ['x', 'wq', 'bq'], ['q'], { transB: attr(1) }),
        node('Gemm', ['x', 'wk', 'bk'], ['k'], { transB: attr(1) }),
        node('Gemm', ['x', 'wv'], ['v']),
        node('Gemm', ['x', 'wa'], ['a'], { transB: attr(1), alpha: attr(0.5, true) }), // alpha != 1: stays alone
      ],
      outputs: ['q', 'k', 'v', 'a'],
    });
    const fused = fuseForGpu(g);
    expect(fused.nodes.map((n) => [n.op, n.outputs])).toEqual([['MatMul', ['q', 'k', 'v']], ['Gemm', ['a']]]);
    expect(fused.initializers[fused.nodes[0]!.inputs[1]!]!.shape).toEqual([12, 18]);
    const feeds = { x: randomTensor(rng, 'float32', [5, 12]) };
    for (const cpuAdapter of [false, true]) expect((await checkGraphAgainstCpu(res, g, feeds, TOL, { cpuAdapter })).dispatches).toBe(2);
  });
});

describe('com.microsoft activations with a bias', () => {
  it('folds FastGelu(x, bias) into a Gemm without C and BiasGelu into a 2-D MatMul, in both kernel families', async () => {
    const g = buildGraph({
      inputs: [['a', 'float32', [5, 9]]],
      initializers: { w: randomTensor(rng, 'float32', [6, 9]), w2: randomTensor(rng, 'float32', [9, 6]), b: randomTensor(rng, 'float32', [6]) },
      nodes: [
        node('Gemm', ['a', 'w'], ['gm'], { transB: attr(1), alpha: attr(0.5, true), beta: attr(3, true) }),
        node(msOp('FastGelu'), ['gm', 'b'], ['y1']),
        node('MatMul', ['a', 'w2'], ['mm']),
        node(msOp('BiasGelu'), ['mm', 'b'], ['y2']),
      ],
      outputs: ['y1', 'y2'],
    });
    const fused = fuseForGpu(g);
    expect(fused.nodes.map((n) => [n.op, n.inputs, (n.attrs.fusion as { value: string }).value])).toEqual([
      ['Gemm', ['a', 'w', 'b'], 'Gemm+FastGelu'],
      ['MatMul', ['a', 'w2', 'b'], 'MatMul+BiasGelu'],
    ]);
    // Gemm had no C: its beta (3) now scales the bias, so the fusion sets it to 1.
    expect(fused.nodes[0]!.attrs).toMatchObject({ beta: { value: 1 }, activation: { value: 'Gelu' }, activation_approximate: { value: 'tanh' } });
    const feeds = { a: randomTensor(rng, 'float32', [5, 9], { lo: -2, hi: 2 }) };
    for (const cpuAdapter of [false, true]) expect((await checkGraphAgainstCpu(res, g, feeds, TOL, { cpuAdapter })).dispatches).toBe(2);
  });
});

describe('Transformer patterns in float16', () => {
  it('fuses a float16 GELU (constants rounded to float16) and LayerNorm, with the CPU reference results', async () => {
    const h = (v: number[], shape: number[] = []) => tensorFromNumbers('float16', shape, v);
    const g = buildGraph({
      inputs: [['x', 'float16', [2, 3, 8]]],
      initializers: {
        sqrt2: h([Math.SQRT2]), one: h([1]), half: h([0.5]), two: h([2]), eps: h([1e-5]),
        gamma: tensorFromNumbers('float16', [8], [1, 0.5, 2, 1, 1.5, 0.75, 1, 1.25]), axes: i64([-1]),
      },
      nodes: [
        node('Div', ['x', 'sqrt2'], ['u']), node('Erf', ['u'], ['e']), node('Add', ['e', 'one'], ['p']), node('Mul', ['x', 'p'], ['xp']), node('Mul', ['xp', 'half'], ['gl']),
        node('ReduceMean', ['gl', 'axes'], ['mean']), node('Sub', ['gl', 'mean'], ['d']), node('Pow', ['d', 'two'], ['sq']), node('ReduceMean', ['sq', 'axes'], ['var']),
        node('Add', ['var', 'eps'], ['ve']), node('Sqrt', ['ve'], ['std']), node('Div', ['d', 'std'], ['n']), node('Mul', ['n', 'gamma'], ['y']),
      ],
      outputs: ['y'],
    });
    expect(fuseForGpu(g).nodes.map((n) => (n.attrs.fusion as { value: string }).value)).toEqual(['Gelu', 'LayerNorm']);
    const report = await checkGraphAgainstCpu(res, g, { x: randomTensor(rng, 'float16', [2, 3, 8], { lo: -3, hi: 3 }) }, { rtol: 1e-2, atol: 1e-2 });
    expect(report.dispatches).toBe(2);
  });
});

describe('what a fusion leaves unread', () => {
  it('drops a DequantizeLinear that two fused QDQ groups shared (it would be dispatched for nothing), within one step of the CPU', async () => {
    const q = (dtype: 'int8' | 'uint8', shape: number[]) => tensorFromNumbers(dtype, shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => Math.round(rng.uniform(-60, 60))));
    const g = buildGraph({
      inputs: [['x', 'uint8', [1, 4, 5, 5]]],
      initializers: {
        xs: tensorFromNumbers('float32', [], [0.05]), xz: tensorFromNumbers('uint8', [], [128]),
        w1: q('int8', [6, 4, 1, 1]), w2: q('int8', [6, 4, 3, 3]), ws: tensorFromNumbers('float32', [], [0.01]),
        ys: tensorFromNumbers('float32', [], [0.2]), yz: tensorFromNumbers('uint8', [], [120]),
      },
      nodes: [
        node('DequantizeLinear', ['x', 'xs', 'xz'], ['dx']),
        node('DequantizeLinear', ['w1', 'ws'], ['dw1']), node('DequantizeLinear', ['w2', 'ws'], ['dw2']),
        node('Conv', ['dx', 'dw1'], ['c1']), node('QuantizeLinear', ['c1', 'ys', 'yz'], ['y1']),
        node('Conv', ['dx', 'dw2'], ['c2'], { pads: attr([1, 1, 1, 1]) }), node('QuantizeLinear', ['c2', 'ys', 'yz'], ['y2']),
      ],
      outputs: ['y1', 'y2'],
    });
    const fused = fuseForGpu(g);
    expect(fused.nodes.map((n) => n.op)).toEqual(['QdqConv', 'QdqConv']);
    expect(g.nodes.filter((n) => n.op === 'DequantizeLinear')).toHaveLength(3); // the model's graph is not touched
    const x = tensorFromNumbers('uint8', [1, 4, 5, 5], Array.from({ length: 100 }, (_, i) => (i * 37) % 256));
    const expected = runGraphCpu(g, { x });
    for (const cpuAdapter of [false, true]) {
      const plan = await GpuGraphPlan.create(res, g, { cpuAdapter });
      try {
        const got = await plan.run({ x });
        // The fused accumulator is exact where the CPU's float Conv rounds: codes may differ by one step.
        for (const y of ['y1', 'y2']) {
          const a = Array.from(got[y]!.data as Uint8Array);
          const e = Array.from(expected[y]!.data as Uint8Array);
          expect(Math.max(...a.map((v, i) => Math.abs(v - e[i]!)))).toBeLessThanOrEqual(1);
        }
        expect(plan.report().dispatches).toBe(2);
      } finally {
        plan.dispose();
      }
    }
  });
});
