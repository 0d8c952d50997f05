import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GpuGraphPlan, type GpuResources } from '../../runtime/backends/webgpu/executor.js';
import { optimize, specialize } from '../../runtime/ir/passes/index.js';
import { importOnnx } from '../../importers/onnx/import.js';
import type { Attr } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import { allClose } from '../helpers/compare.js';
import { encodeModel, type ModelNode } from '../helpers/onnx-model.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { runModelOrt } from '../helpers/run-model.js';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';

/**
 * Transformer pattern fusions of the WebGPU plan (fusion-norm.ts, fusion-gelu.ts, fusion-qkv.ts, fusion.ts) through
 * the public API: small ONNX models written the way torch.onnx writes each pattern, loaded with
 * InferenceSession.create(bytes, { backend: 'webgpu' }). Each checks what report() says was fused, that the plan
 * has fewer dispatches than the model has nodes, and that the outputs match onnxruntime-node (1e-3) and the CPU
 * backend. The negative cases (a constant that differs, an intermediate read elsewhere, a graph output in the
 * middle) must stay unfused and still be right.
 */

const rng = new Rng(2024);
const H = 16;
const sessions: InferenceSession[] = [];
let res: GpuResources;

beforeAll(async () => {
  res = await gpuForTests();
  console.log(`transformer fusion suite on ${describeDevice(res)}`);
});
afterAll(async () => {
  for (const s of sessions) await s.release();
});

const f32 = (v: number[], shape: number[] = [v.length]) => tensorFromNumbers('float32', shape, v);
const i64 = (v: number[]) => tensorFromNumbers('int64', [v.length], v);
const ints = (v: number[]): Attr => ({ type: 'ints', value: v });
const n = (op: string, inputs: string[], outputs: string[], attrs?: Record<string, Attr>, domain?: string): ModelNode => ({ op, inputs, outputs, attrs, domain });

interface Case {
  nodes: ModelNode[];
  inputs: Record<string, HostTensor>;
  outputs: string[];
  initializers?: Record<string, HostTensor>;
  opsets?: Record<string, number>;
}

interface Outcome {
  kinds: string[];
  fusions: { kind: string; node: string; nodes: string[] }[];
  dispatches: number;
  nodes: number;
}

/** Runs `c` on WebGPU, the CPU backend and onnxruntime-node; checks the outputs agree; returns what was fused. */
async function check(c: Case, tol = { rtol: 1e-3, atol: 1e-4 }): Promise<Outcome> {
  const bytes = encodeModel({ nodes: c.nodes, inputs: c.inputs, outputs: c.outputs, initializers: c.initializers, opsets: c.opsets ?? { '': 17 } });
  const gpu = await InferenceSession.create(bytes, { backend: 'webgpu' });
  const cpu = await InferenceSession.create(bytes, { backend: 'cpu' });
  sessions.push(gpu, cpu);
  const feeds = Object.fromEntries(Object.entries(c.inputs).map(([k, t]) => [k, new Tensor(t.dtype, t.data, t.shape)]));
  const got = await gpu.run(feeds);
  const want = await cpu.run(feeds);
  const ort = await runModelOrt(bytes, c.inputs);
  for (const o of c.outputs) {
    const g = await got[o]!.toHost();
    for (const [ref, what] of [[await want[o]!.toHost(), 'CPU backend'], [ort[o]!, 'onnxruntime-node']] as const) {
      const r = allClose(g, ref, tol);
      expect(r.ok, `${o} vs ${what}: ${r.ok ? '' : r.message}`).toBe(true);
    }
  }
  const report = gpu.report();
  const fusions = report.gpu!.fusions;
  return { kinds: fusions.map((f) => f.kind).sort(), fusions, dispatches: report.gpu!.dispatches, nodes: cpu.report().nodes.length };
}

const x3 = () => randomTensor(rng, 'float32', [2, 5, H], { lo: -3, hi: 3 });
const row = (lo = -1, hi = 1) => randomTensor(rng, 'float32', [H], { lo, hi });

/** Expanded LayerNorm (torch.onnx opset 14-17): ReduceMean, Sub, Pow, ReduceMean, Add eps, Sqrt, Div, Mul, Add. */
function layerNormNodes(x: string, y: string, p: string, opts: { axesInput?: boolean; eps?: string; square?: 'pow' | 'mul' } = {}): ModelNode[] {
  const mean = (i: string, o: string) => (opts.axesInput ? n('ReduceMean', [i, `${p}axes`], [o]) : n('ReduceMean', [i], [o], { axes: ints([-1]) }));
  return [
    mean(x, `${p}mean`),
    n('Sub', [x, `${p}mean`], [`${p}d`]),
    opts.square === 'mul' ? n('Mul', [`${p}d`, `${p}d`], [`${p}sq`]) : n('Pow', [`${p}d`, `${p}two`], [`${p}sq`]),
    mean(`${p}sq`, `${p}var`),
    n('Add', [`${p}var`, opts.eps ?? `${p}eps`], [`${p}ve`]),
    n('Sqrt', [`${p}ve`], [`${p}std`]),
    n('Div', [`${p}d`, `${p}std`], [`${p}n`]),
    n('Mul', [`${p}n`, `${p}gamma`], [`${p}g`]),
    n('Add', [`${p}g`, `${p}beta`], [y]),
  ];
}
const lnConsts = (p: string, eps = 1e-5) => ({ [`${p}two`]: f32([2], []), [`${p}eps`]: f32([eps], []), [`${p}gamma`]: row(0.5, 1.5), [`${p}beta`]: row(), [`${p}axes`]: i64([-1]) });

/** RMSNorm written out: Pow, ReduceMean, Add eps, Sqrt, then Reciprocal + Mul, Div(1, .) + Mul, or Div(x, .); Mul gamma. */
function rmsNormNodes(x: string, y: string, p: string, form: 'reciprocal' | 'one-over' | 'div'): ModelNode[] {
  const head = [
    n('Pow', [x, `${p}two`], [`${p}sq`]),
    n('ReduceMean', [`${p}sq`], [`${p}ms`], { axes: ints([-1]) }),
    n('Add', [`${p}ms`, `${p}eps`], [`${p}ve`]),
    n('Sqrt', [`${p}ve`], [`${p}root`]),
  ];
  const scale =
    form === 'div'
      ? [n('Div', [x, `${p}root`], [`${p}n`])]
      : [form === 'reciprocal' ? n('Reciprocal', [`${p}root`], [`${p}r`]) : n('Div', [`${p}one`, `${p}root`], [`${p}r`]), n('Mul', [x, `${p}r`], [`${p}n`])];
  return [...head, ...scale, n('Mul', [`${p}gamma`, `${p}n`], [y])];
}
const rmsConsts = (p: string) => ({ [`${p}two`]: f32([2], []), [`${p}eps`]: f32([1e-6], []), [`${p}one`]: f32([1], []), [`${p}gamma`]: row(0.5, 1.5) });

/** x * 0.5 * (1 + erf(x / sqrt 2)) as torch.onnx writes nn.GELU(). */
function geluErfNodes(x: string, y: string, p: string, sqrt2 = `${p}sqrt2`): ModelNode[] {
  return [
    n('Div', [x, sqrt2], [`${p}u`]),
    n('Erf', [`${p}u`], [`${p}e`]),
    n('Add', [`${p}e`, `${p}one`], [`${p}p`]),
    n('Mul', [x, `${p}p`], [`${p}xp`]),
    n('Mul', [`${p}xp`, `${p}half`], [y]),
  ];
}
const geluConsts = (p: string) => ({ [`${p}sqrt2`]: f32([Math.SQRT2], []), [`${p}one`]: f32([1], []), [`${p}half`]: f32([0.5], []) });

/** 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))) as HF's gelu_new writes it (Pow(x, 3)). */
function geluTanhNodes(x: string, y: string, p: string): ModelNode[] {
  return [
    n('Pow', [x, `${p}three`], [`${p}cube`]),
    n('Mul', [`${p}kappa`, `${p}cube`], [`${p}kc`]),
    n('Add', [x, `${p}kc`], [`${p}s`]),
    n('Mul', [`${p}beta`, `${p}s`], [`${p}in`]),
    n('Tanh', [`${p}in`], [`${p}t`]),
    n('Add', [`${p}one`, `${p}t`], [`${p}p`]),
    n('Mul', [`${p}half`, x], [`${p}hx`]),
    n('Mul', [`${p}hx`, `${p}p`], [y]),
  ];
}
const tanhConsts = (p: string) => ({
  [`${p}three`]: f32([3], []), [`${p}kappa`]: f32([0.044715], []), [`${p}beta`]: f32([Math.sqrt(2 / Math.PI)], []), [`${p}one`]: f32([1], []), [`${p}half`]: f32([0.5], []),
});

describe('LayerNorm and RMSNorm written out', () => {
  it('fuses expanded LayerNorm (axes attribute at opset 17, axes input at opset 18, Pow or Mul square)', async () => {
    for (const [opset, axesInput, square] of [[17, false, 'pow'], [18, true, 'mul']] as const) {
      const r = await check({
        nodes: layerNormNodes('x', 'y', 'ln/', { axesInput, square }), inputs: { x: x3() }, outputs: ['y'], initializers: lnConsts('ln/'), opsets: { '': opset },
      });
      expect(r.kinds).toEqual(['LayerNorm']);
      expect(r.fusions[0]!.nodes).toHaveLength(9);
      expect(r.dispatches).toBe(1);
    }
  });

  it('fuses RMSNorm written out with Reciprocal, Div(1, .) or Div(x, .)', async () => {
    for (const form of ['reciprocal', 'one-over', 'div'] as const) {
      const r = await check({ nodes: rmsNormNodes('x', 'y', 'rms/', form), inputs: { x: x3() }, outputs: ['y'], initializers: rmsConsts('rms/') });
      expect(r.kinds).toEqual(['RMSNorm']);
      expect(r.dispatches).toBe(1);
    }
    // The square as Mul(x, x) and no gamma (the fused kernel gets a scale of ones).
    const nodes = rmsNormNodes('x', 'y', 'rms/', 'div').slice(0, -1);
    nodes[0] = n('Mul', ['x', 'x'], ['rms/sq']);
    nodes[nodes.length - 1] = n('Div', ['x', 'rms/root'], ['y']);
    const r = await check({ nodes, inputs: { x: x3() }, outputs: ['y'], initializers: rmsConsts('rms/') });
    expect(r.kinds).toEqual(['RMSNorm']);
    expect(r.fusions[0]!.nodes).toHaveLength(5);
  });

  it('folds the residual Add into the norm and writes the sum when the residual stream reads it', async () => {
    // h = a + b; y = LN(h); out = y + h (the sum read again); z = RMSNorm(out + b) with that sum unused elsewhere.
    const r = await check({
      nodes: [
        n('Add', ['a', 'b'], ['h']),
        ...layerNormNodes('h', 'y', 'ln/'),
        n('Add', ['y', 'h'], ['out']),
        n('Add', ['out', 'b'], ['h2']),
        ...rmsNormNodes('h2', 'z', 'rms/', 'reciprocal'),
      ],
      inputs: { a: x3(), b: x3() }, outputs: ['out', 'z'], initializers: { ...lnConsts('ln/'), ...rmsConsts('rms/') },
    });
    expect(r.kinds).toEqual(['SkipLayerNorm', 'SkipRMSNorm']);
    expect(r.dispatches).toBe(3); // SkipLayerNorm (with the sum), the Add, SkipRMSNorm
    expect(r.nodes).toBe(19);
  });

  it('folds a residual Add into the model\'s own LayerNormalization', async () => {
    const r = await check({
      nodes: [n('Add', ['a', 'b'], ['h']), n('LayerNormalization', ['h', 'g', 'bb'], ['y'], { epsilon: { type: 'float', value: 1e-5 } })],
      inputs: { a: x3(), b: x3() }, outputs: ['y'], initializers: { g: row(), bb: row() },
    });
    expect(r.kinds).toEqual(['SkipLayerNorm']);
    expect(r.dispatches).toBe(1);
  });

  it('leaves a per-channel eps, a read intermediate and a graph output in the middle alone', async () => {
    // eps as a vector: not one constant.
    const eps = await check({
      nodes: layerNormNodes('x', 'y', 'ln/', { eps: 'epsv' }), inputs: { x: x3() }, outputs: ['y'], initializers: { ...lnConsts('ln/'), epsv: row(1e-5, 2e-5) },
    });
    expect(eps.kinds).toEqual([]);
    expect(eps.dispatches).toBe(9);
    // The variance also feeds another node.
    const read = await check({
      nodes: [...layerNormNodes('x', 'y', 'ln/'), n('Mul', ['ln/var', 'ln/two'], ['v2'])], inputs: { x: x3() }, outputs: ['y', 'v2'], initializers: lnConsts('ln/'),
    });
    expect(read.kinds).toEqual([]);
    // The variance + eps is a graph output.
    const out = await check({ nodes: layerNormNodes('x', 'y', 'ln/'), inputs: { x: x3() }, outputs: ['y', 'ln/ve'], initializers: lnConsts('ln/') });
    expect(out.kinds).toEqual([]);
    // The mean is a graph output: no LayerNorm, but what follows Sub(x, mean) is an RMSNorm of d = x - mean (and it
    // is fused as one: the same numbers).
    const mean = await check({ nodes: layerNormNodes('x', 'y', 'ln/'), inputs: { x: x3() }, outputs: ['y', 'ln/mean'], initializers: lnConsts('ln/') });
    expect(mean.kinds).toEqual(['RMSNorm']);
    // RMSNorm whose square is Pow(x, 3): not a norm.
    const cube = await check({
      nodes: rmsNormNodes('x', 'y', 'rms/', 'div'), inputs: { x: randomTensor(rng, 'float32', [2, 5, H], { lo: 0.5, hi: 2 }) }, outputs: ['y'],
      initializers: { ...rmsConsts('rms/'), 'rms/two': f32([3], []) },
    });
    expect(cube.kinds).toEqual([]);
  });
});

describe('GELU and SiLU written out, and into the MatMul epilogue', () => {
  it('fuses the erf form after a biased MatMul into one dispatch', async () => {
    const r = await check({
      nodes: [n('MatMul', ['x', 'w'], ['m']), n('Add', ['m', 'bias'], ['h']), ...geluErfNodes('h', 'y', 'gelu/')],
      inputs: { x: x3() }, outputs: ['y'], initializers: { w: randomTensor(rng, 'float32', [H, 24], { lo: -0.5, hi: 0.5 }), bias: randomTensor(rng, 'float32', [24]), ...geluConsts('gelu/') },
    });
    expect(r.kinds).toEqual(['MatMul+Bias+Gelu']);
    expect(r.fusions[0]!.nodes).toHaveLength(7);
    expect(r.dispatches).toBe(1);
    // x * (1 / sqrt 2) instead of the division, 1 + erf with the 1 first, and (p * 0.5) * x.
    const r2 = await check({
      nodes: [
        n('Mul', ['x', 'rs2'], ['u']), n('Erf', ['u'], ['e']), n('Add', ['one', 'e'], ['p']), n('Mul', ['p', 'half'], ['ph']), n('Mul', ['ph', 'x'], ['y']),
      ],
      inputs: { x: x3() }, outputs: ['y'], initializers: { rs2: f32([Math.SQRT1_2], []), one: f32([1], []), half: f32([0.5], []) },
    });
    expect(r2.kinds).toEqual(['Gelu']);
    expect(r2.dispatches).toBe(1);
  });

  it('fuses the tanh form, with the cube as Pow or Mul(x, Mul(x, x))', async () => {
    const r = await check({ nodes: geluTanhNodes('x', 'y', 't/'), inputs: { x: x3() }, outputs: ['y'], initializers: tanhConsts('t/') });
    expect(r.kinds).toEqual(['GeluTanh']);
    expect(r.dispatches).toBe(1);
    const nodes = geluTanhNodes('x', 'y', 't/');
    nodes.splice(0, 1, n('Mul', ['x', 'x'], ['t/xx']), n('Mul', ['x', 't/xx'], ['t/cube']));
    const r2 = await check({
      nodes: [n('MatMul', ['a', 'w'], ['x']), ...nodes], inputs: { a: x3() }, outputs: ['y'], initializers: { ...tanhConsts('t/'), w: randomTensor(rng, 'float32', [H, H], { lo: -0.5, hi: 0.5 }) },
    });
    expect(r2.kinds).toEqual(['MatMul+GeluTanh']);
    expect(r2.dispatches).toBe(1);
  });

  it('fuses SiLU and QuickGelu written out, standalone and after a MatMul', async () => {
    const r = await check({
      nodes: [
        n('Sigmoid', ['x'], ['s']), n('Mul', ['x', 's'], ['y1']),
        n('MatMul', ['x', 'w'], ['m']), n('Sigmoid', ['m'], ['s2']), n('Mul', ['s2', 'm'], ['y2']),
        n('Mul', ['x', 'alpha'], ['ax']), n('Sigmoid', ['ax'], ['s3']), n('Mul', ['x', 's3'], ['y3']),
      ],
      inputs: { x: x3() }, outputs: ['y1', 'y2', 'y3'], initializers: { w: randomTensor(rng, 'float32', [H, 8]), alpha: f32([1.702], []) },
    });
    expect(r.kinds).toEqual(['MatMul+SiLU', 'QuickGelu', 'SiLU']);
    expect(r.dispatches).toBe(3);
  });

  it('folds com.microsoft FastGelu, BiasGelu, Gelu and QuickGelu into the MatMul epilogue', async () => {
    const w = () => randomTensor(rng, 'float32', [H, 12], { lo: -0.5, hi: 0.5 });
    const b = () => randomTensor(rng, 'float32', [12]);
    const ms = 'com.microsoft';
    const r = await check({
      nodes: [
        n('MatMul', ['x', 'w1'], ['m1']), n('FastGelu', ['m1', 'b1'], ['y1'], {}, ms),
        n('MatMul', ['x', 'w2'], ['m2']), n('BiasGelu', ['m2', 'b2'], ['y2'], {}, ms),
        n('MatMul', ['x', 'w3'], ['m3']), n('Gelu', ['m3'], ['y3'], {}, ms),
        n('MatMul', ['x', 'w4'], ['m4']), n('QuickGelu', ['m4'], ['y4'], { alpha: { type: 'float', value: 1.5 } }, ms),
      ],
      inputs: { x: x3() }, outputs: ['y1', 'y2', 'y3', 'y4'], initializers: { w1: w(), w2: w(), w3: w(), w4: w(), b1: b(), b2: b() },
      opsets: { '': 17, [ms]: 1 },
    });
    // Four projections of one input, but each with an activation the epilogue folds: kept apart, not grouped.
    expect(r.kinds).toEqual(['MatMul+BiasGelu', 'MatMul+FastGelu', 'MatMul+Gelu', 'MatMul+QuickGelu']);
    expect(r.fusions.find((f) => f.kind === 'MatMul+FastGelu')!.nodes).toEqual(['n0', 'n1']);
    expect(r.dispatches).toBe(4);
  });

  it('leaves a GELU with another constant, an extra reader or an output in the middle alone', async () => {
    const wrong = await check({
      nodes: geluErfNodes('x', 'y', 'g/'), inputs: { x: x3() }, outputs: ['y'], initializers: { ...geluConsts('g/'), 'g/sqrt2': f32([1.5], []) },
    });
    expect(wrong.kinds).toEqual([]);
    expect(wrong.dispatches).toBe(5);
    const read = await check({
      nodes: [...geluErfNodes('x', 'y', 'g/'), n('Neg', ['g/e'], ['z'])], inputs: { x: x3() }, outputs: ['y', 'z'], initializers: geluConsts('g/'),
    });
    expect(read.kinds).toEqual([]);
    const out = await check({ nodes: geluErfNodes('x', 'y', 'g/'), inputs: { x: x3() }, outputs: ['y', 'g/p'], initializers: geluConsts('g/') });
    expect(out.kinds).toEqual([]);
    const tanh = await check({ nodes: geluTanhNodes('x', 'y', 't/'), inputs: { x: x3() }, outputs: ['y'], initializers: { ...tanhConsts('t/'), 't/kappa': f32([0.05], []) } });
    expect(tanh.kinds).toEqual([]);
  });
});

describe('Q, K and V projections as one GEMM', () => {
  it('fuses three biased projections of one input into one dispatch with three outputs', async () => {
    const w = () => randomTensor(rng, 'float32', [H, 8], { lo: -0.5, hi: 0.5 });
    const b = () => randomTensor(rng, 'float32', [8]);
    const r = await check({
      nodes: [
        n('MatMul', ['x', 'wq'], ['mq']), n('Add', ['mq', 'bq'], ['q']),
        n('MatMul', ['x', 'wk'], ['mk']), n('Add', ['bk', 'mk'], ['k']),
        n('MatMul', ['x', 'wv'], ['mv']), n('Add', ['mv', 'bv'], ['v']),
        n('Mul', ['q', 'k'], ['qk']),
      ],
      inputs: { x: x3() }, outputs: ['qk', 'v'], initializers: { wq: w(), wk: w(), wv: w(), bq: b(), bk: b(), bv: b() },
    });
    expect(r.kinds).toEqual(['QKV']);
    expect(r.fusions[0]!.nodes).toHaveLength(6);
    expect(r.dispatches).toBe(2);
  });

  it('fuses projections of different widths, without biases, and leaves a projection of a runtime weight alone', async () => {
    const r = await check({
      nodes: [n('MatMul', ['x', 'wq'], ['q']), n('MatMul', ['x', 'wk'], ['k']), n('MatMul', ['x', 'wr'], ['r'])],
      inputs: { x: x3(), wr: randomTensor(rng, 'float32', [H, 3]) }, outputs: ['q', 'k', 'r'],
      initializers: { wq: randomTensor(rng, 'float32', [H, 5]), wk: randomTensor(rng, 'float32', [H, 7]) },
    });
    expect(r.kinds).toEqual(['MatMulGroup']);
    expect(r.dispatches).toBe(2);
  });
});

describe('a torch.onnx export of a tiny Transformer encoder block', () => {
  // scripts/fixtures/transformer_fixture.py: embedding Linear, pre-norm attention with separate Q/K/V Linears, a
  // residual stream through a second LayerNorm, an exact-GELU MLP, an RMSNorm written out, a SiLU-gated MLP, a
  // tanh-GELU MLP and a Linear head; opset 14 (LayerNorm expanded) and 17 (LayerNormalization).
  const expected: Record<number, string[]> = {
    14: ['GeluTanh', 'LayerNorm', 'MatMul+Bias', 'MatMul+Bias', 'MatMul+Bias', 'MatMul+Bias', 'MatMul+Bias+Gelu', 'MatMul+Bias+Residual', 'MatMul+Residual', 'MatMul+SiLU', 'QKV', 'SkipLayerNorm', 'SkipRMSNorm'],
    17: ['GeluTanh', 'MatMul+Bias', 'MatMul+Bias', 'MatMul+Bias', 'MatMul+Bias', 'MatMul+Bias+Gelu', 'MatMul+Bias+Residual', 'MatMul+Residual', 'MatMul+SiLU', 'QKV', 'SkipLayerNorm', 'SkipRMSNorm'],
  };
  for (const opset of [14, 17]) {
    it(`opset ${opset}: the expected fusions, fewer dispatches, onnxruntime-node's and the CPU backend's numbers`, async () => {
      const bytes = new Uint8Array(readFileSync(`tests/fixtures/transformer/encoder-block-op${opset}.onnx`));
      const gpu = await InferenceSession.create(bytes, { backend: 'webgpu' });
      const cpu = await InferenceSession.create(bytes, { backend: 'cpu' });
      sessions.push(gpu, cpu);
      for (const [batch, seq] of [[2, 5], [1, 9]] as const) {
        const x = randomTensor(rng, 'float32', [batch, seq, 24], { lo: -2, hi: 2 });
        const got = await (await gpu.run({ x: new Tensor('float32', x.data, x.shape) })).y!.toHost();
        const want = await (await cpu.run({ x: new Tensor('float32', x.data, x.shape) })).y!.toHost();
        const ort = (await runModelOrt(bytes, { x })).y!;
        for (const [ref, what] of [[ort, 'onnxruntime-node'], [want, 'CPU backend']] as const) {
          const r = allClose(got, ref, { rtol: 1e-3, atol: 1e-3 });
          expect(r.ok, `[${batch}, ${seq}] vs ${what}: ${r.ok ? '' : r.message}`).toBe(true);
        }
        const report = gpu.report().gpu!;
        const kinds = report.fusions.map((f) => f.kind).filter((k) => k !== 'attention').sort();
        expect(kinds).toEqual(expected[opset]);
        // Every fused node names model nodes that exist, each claimed once.
        const sources = report.fusions.flatMap((f) => f.nodes);
        expect(new Set(sources).size).toBe(sources.length);
        const modelNodes = new Set(cpu.report().nodes.map((n) => n.name));
        for (const n of sources) expect(modelNodes.has(n), n).toBe(true);
        // The same specialized graph planned without fusion: at least twice the dispatches.
        const { graph } = optimize((await importOnnx(bytes)).graph);
        const unfused = await GpuGraphPlan.create(res, specialize(graph, { x: [batch, seq, 24] }), { fuse: false });
        const plain = unfused.report().dispatches;
        unfused.dispose();
        expect(report.dispatches).toBeLessThan(plain / 2);
        console.log(`encoder-block-op${opset} [${batch}, ${seq}]: ${plain} dispatches unfused, ${report.dispatches} fused; ${report.fusions.length} fused nodes`);
      }
    });
  }
});
