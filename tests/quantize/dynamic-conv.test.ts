import { describe, expect, it } from 'vitest';
import { exportOnnx, importOnnx } from '../../importers/onnx/index.js';
import type { Graph } from '../../runtime/ir/graph.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession, quantize, Tensor } from '../../sdk/node.js';
import { relativeError } from '../helpers/compare.js';
import { Rng } from '../helpers/random.js';
import { runModel, runModelOrt } from '../helpers/run-model.js';
import '../helpers/webgpu-env.js';
import { accuracy, agreement, digits, fashion, logitsOf, stepDiff, type TrainedModel } from './fixtures.js';

/**
 * Dynamic int8 on the trained CNNs (issue #11 §2): every Conv becomes DynamicQuantizeLinear → ConvInteger → Cast →
 * Mul → Add, and the Gemm MatMulInteger. onnxruntime-node loads and runs the file; EdgeKit's CPU and WebGPU
 * backends match it; top-1 agreement with float32 >= 99% and test accuracy within 0.5 point; weights about 1/4.
 */

/** The model with every DynamicQuantizeLinear and ConvInteger output exposed as a graph output. */
async function withIntegerOutputs(model: Uint8Array): Promise<{ bytes: Uint8Array; dql: string[][]; conv: string[] }> {
  const { graph } = await importOnnx(model);
  const dql = graph.nodes.filter((n) => n.op === 'DynamicQuantizeLinear').map((n) => [...n.outputs]);
  const conv = graph.nodes.filter((n) => n.op === 'ConvInteger').map((n) => n.outputs[0]!);
  graph.outputs = [...graph.outputs, ...[...dql.flat(), ...conv].map((name) => ({ ...graph.values[name]!, name }))];
  return { bytes: exportOnnx(graph, { opset: 21 }), dql, conv };
}

/**
 * Logits of each test image run on its own. DynamicQuantizeLinear takes one range per tensor, so its steps are
 * those of the largest activation in the batch: one image per run is how a dynamically quantized classifier serves
 * requests, and what is measured here (docs/quantization.md gives the batch-of-250 numbers too).
 */
async function logitsPerImage(bytes: Uint8Array, test: HostTensor, backend: 'cpu' | 'webgpu'): Promise<HostTensor> {
  const s = await InferenceSession.create(bytes, { backend });
  try {
    const per = test.shape.slice(1).reduce((a, b) => a * b, 1);
    const n = test.shape[0]!;
    let out: Float32Array | undefined;
    for (let i = 0; i < n; i++) {
      const x = (test.data as Float32Array).subarray(i * per, (i + 1) * per);
      const y = (await s.run({ input: new Tensor('float32', x, [1, ...test.shape.slice(1)]) })).logits!.toHost();
      out ??= new Float32Array(n * y.data.length);
      out.set(y.data as Float32Array, i * y.data.length);
    }
    return { dtype: 'float32', shape: [n, out!.length / n], data: out! };
  } finally {
    await s.release();
  }
}

const head = (t: HostTensor, n: number): HostTensor => {
  const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
  return { ...t, shape: [n, ...t.shape.slice(1)], data: (t.data as Float32Array).slice(0, n * per) };
};

const cases: [string, () => TrainedModel][] = [
  ['digits', digits],
  ['fashion', fashion],
];

describe.each(cases)('int8-dynamic %s CNN', (_name, load) => {
  const m = load();
  let q: Awaited<ReturnType<typeof quantize>>;
  let float: HostTensor;

  it('turns every Conv into ConvInteger (uint8 weights, zero point 128) and the Gemm into MatMulInteger', async () => {
    // Calibration examples only feed the report's layer table: the dynamic mode has no calibration.
    q = await quantize(m.bytes, { mode: 'int8-dynamic', backend: 'cpu', calibration: m.calibration(20, 2) });
    float = await logitsOf(m.bytes, m.test, 'cpu');
    const src = (await importOnnx(m.bytes)).graph;
    const { graph } = await importOnnx(q.model);
    const ops = graph.nodes.map((n) => n.op);
    const convs = src.nodes.filter((n) => n.op === 'Conv').length;
    const gemms = src.nodes.filter((n) => n.op === 'Gemm').length;
    expect(convs).toBeGreaterThanOrEqual(2);
    expect(ops).not.toContain('Conv');
    expect(ops).not.toContain('Gemm');
    expect(ops.filter((o) => o === 'ConvInteger').length).toBe(convs);
    expect(ops.filter((o) => o === 'MatMulInteger').length).toBe(gemms);
    for (const n of graph.nodes.filter((x) => x.op === 'ConvInteger')) {
      const w = graph.initializers[n.inputs[1]!]!;
      const zp = graph.initializers[n.inputs[3]!]!;
      expect(graph.values[n.inputs[0]!]!.dtype).toBe('uint8');
      expect(w.dtype).toBe('uint8');
      expect([zp.dtype, zp.shape, zp.data[0]]).toEqual(['uint8', [], 128]);
      // Symmetric: w - 128 in [-127, 127], never 0 (= -128).
      expect(Math.min(...(w.data as Uint8Array))).toBeGreaterThanOrEqual(1);
    }
    const r = q.report;
    expect(r.layers.map((l) => l.op).sort()).toEqual([...Array(convs).fill('Conv'), ...Array(gemms).fill('Gemm')]);
    for (const l of r.layers) expect(l.sqnrDb, `${l.op} ${l.node}`).toBeGreaterThan(25);
    expect(r.keptFloat.filter((k) => ['Conv', 'Gemm', 'MatMul'].includes(k.op))).toEqual([]);
    // uint8/int8 weights, float32 biases and per-channel scales: about a quarter of the float32 bytes.
    expect(r.weightBytesAfter / r.weightBytesBefore).toBeLessThan(0.27);
  }, 300_000);

  for (const backend of ['cpu', 'webgpu'] as const) {
    it(`keeps top-1 agreement >= 99% and accuracy within 0.5 point on ${backend}, one image per run`, async () => {
      const int8 = await logitsPerImage(q.model, m.test, backend);
      expect(agreement(int8, float)).toBeGreaterThanOrEqual(0.99);
      expect(Math.abs(accuracy(int8, m.labels) - accuracy(float, m.labels))).toBeLessThanOrEqual(0.005);
    }, 600_000); // 500 Fashion runs on SwiftShader take about 130 s: ConvInteger's WebGPU kernel is not tiled
  }

  it('loads in onnxruntime-node; EdgeKit CPU and WebGPU match it step for step', async () => {
    const { bytes, dql, conv } = await withIntegerOutputs(q.model);
    const feeds = { input: head(m.test, 100) };
    const ort = await runModelOrt(bytes, feeds);
    for (const backend of ['cpu', 'webgpu'] as const) {
      const ek = (await runModel(bytes, feeds, backend)) as Record<string, HostTensor>;
      const exact = new Set<string>();
      for (const [xq, xs, xz] of dql) {
        // x_scale = (max(x, 0) - min(x, 0)) / 255 and x_zp are the same float32 formula in every runtime; x_q =
        // round(x / x_scale) + x_zp may land one step apart where x / x_scale sits on a rounding half, since WGSL's
        // f32 division is within 2.5 ULP, not correctly rounded: at most one step, on under 1% of the values.
        expect(Math.abs(ek[xs!]!.data[0] as number - (ort[xs!]!.data[0] as number)), `${backend} ${xs}`).toBeLessThanOrEqual(1e-6 * (ort[xs!]!.data[0] as number));
        expect(Math.abs(Number(ek[xz!]!.data[0]) - Number(ort[xz!]!.data[0])), `${backend} ${xz}`).toBeLessThanOrEqual(1);
        const d = stepDiff(ek[xq!]!, ort[xq!]!);
        expect(d.worst, `${backend} ${xq}`).toBeLessThanOrEqual(1);
        expect(d.off / d.n, `${backend} ${xq}: share of values one step off`).toBeLessThan(0.01);
        if (d.off === 0) exact.add(xq!);
      }
      // ConvInteger is integer arithmetic: from identical quantized inputs its int32 sums are identical.
      const { graph } = await importOnnx(bytes);
      for (const c of conv) {
        const x = graph.nodes.find((n) => n.outputs[0] === c)!.inputs[0]!;
        if (exact.has(x)) expect(stepDiff(ek[c]!, ort[c]!).worst, `${backend} ${c}`).toBe(0);
      }
      // The float tail (Cast, the scale Muls, the bias Add, Relu, pools, the MatMulInteger classifier) rounds in
      // float32, in a different order once fused on the GPU: a few ULP when every step agrees; a step apart in x_q
      // moves a logit by x_scale · |w| at most, a fraction of a percent of the largest logit.
      expect(relativeError(ek.logits!, ort.logits!), backend).toBeLessThan(exact.size === dql.length ? 1e-5 : 0.01);
      expect(agreement(ek.logits!, ort.logits!)).toBeGreaterThanOrEqual(0.99);
    }
  }, 300_000);
});

describe('int8-dynamic options on Conv', () => {
  const m = digits();
  it('perChannel false: one scalar weight scale per ConvInteger, still what onnxruntime-node computes', async () => {
    const q = await quantize(m.bytes, { mode: 'int8-dynamic', backend: 'cpu', perChannel: false, reportSamples: 0 });
    const { graph } = await importOnnx(q.model);
    const convs = graph.nodes.filter((n) => n.op === 'ConvInteger');
    expect(convs.length).toBe(2);
    for (const c of convs) {
      // The Mul of the DynamicQuantizeLinear's x_scale by the weight's constant scale.
      const xScale = graph.nodes.find((n) => n.outputs[0] === c.inputs[0])!.outputs[1]!;
      const mul = graph.nodes.find((n) => n.op === 'Mul' && n.inputs[0] === xScale && n.inputs[1]! in graph.initializers);
      expect(graph.initializers[mul!.inputs[1]!]!.shape).toEqual([]);
    }
    const test = head(m.test, 100);
    const ort = (await runModelOrt(q.model, { input: test })).logits!;
    const ek = (await runModel(q.model, { input: test }, 'cpu')).logits as HostTensor;
    expect(relativeError(ek, ort)).toBeLessThan(0.01);
    expect(agreement(ek, await logitsOf(m.bytes, test, 'cpu'))).toBeGreaterThanOrEqual(0.97);
  }, 300_000);

  it('exclude and keepFirstLast keep Convs float and name them in the report', async () => {
    const byName = await quantize(m.bytes, { mode: 'int8-dynamic', backend: 'cpu', exclude: ['/conv1/Conv'], reportSamples: 0 });
    expect(byName.report.keptFloat.filter((k) => k.op === 'Conv')).toEqual([{ node: '/conv1/Conv', op: 'Conv', reason: 'excluded by the caller' }]);
    expect((await importOnnx(byName.model)).graph.nodes.filter((n) => n.op === 'ConvInteger').length).toBe(1);
    const byOp = await quantize(m.bytes, { mode: 'int8-dynamic', backend: 'cpu', exclude: ['Conv'], reportSamples: 0 });
    const ops = (await importOnnx(byOp.model)).graph.nodes.map((n) => n.op);
    expect(ops).not.toContain('ConvInteger');
    expect(ops).toContain('MatMulInteger');
    // keepFirstLast: the first Conv and the Gemm stay float; the second Conv is converted.
    const edges = await quantize(m.bytes, { mode: 'int8-dynamic', backend: 'cpu', keepFirstLast: true, reportSamples: 0 });
    expect(edges.report.keptFloat.filter((k) => k.reason.includes('keepFirstLast')).map((k) => k.node)).toEqual(['/conv1/Conv', '/fc/Gemm']);
    const test = head(m.test, 100);
    const ort = (await runModelOrt(edges.model, { input: test })).logits!;
    expect(relativeError((await runModel(edges.model, { input: test }, 'cpu')).logits as HostTensor, ort)).toBeLessThan(0.01);
  }, 300_000);
});

describe('int8-dynamic Conv forms', () => {
  it('strided, depthwise dilated, 1-D SAME_UPPER, 3-D convs and one with a computed bias become ConvInteger', async () => {
    const rng = new Rng(11);
    const t = (shape: number[], s = 0.5): HostTensor => ({ dtype: 'float32', shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(-s, s)) });
    const ints = (...v: number[]) => ({ type: 'ints' as const, value: v });
    const g: Graph = {
      name: 'forms',
      inputs: [
        { name: 'x', dtype: 'float32', shape: [2, 4, 9, 9] },
        { name: 'x1', dtype: 'float32', shape: [2, 3, 10] },
        { name: 'bb', dtype: 'float32', shape: [8] },
        { name: 'x3', dtype: 'float32', shape: [1, 2, 4, 5, 5] },
      ],
      outputs: [
        { name: 'dw', dtype: 'float32', shape: [2, 8, 5, 5] },
        { name: 'y1', dtype: 'float32', shape: [2, 5, 10] },
        { name: 'yb', dtype: 'float32', shape: [2, 8, 5, 5] },
        { name: 'y3', dtype: 'float32', shape: [1, 3, 4, 5, 5] },
      ],
      initializers: { w: t([8, 4, 3, 3]), b: t([8]), wdw: t([8, 1, 3, 3]), w1: t([5, 3, 3]), b1: t([5]), wb: t([8, 8, 1, 1]), w3: t([3, 2, 3, 3, 3]), b3: t([3]) },
      nodes: [
        { name: 'strided', op: 'Conv', domain: '', inputs: ['x', 'w', 'b'], outputs: ['a'], attrs: { strides: ints(2, 2), pads: ints(1, 1, 1, 1) } },
        { name: 'depthwise', op: 'Conv', domain: '', inputs: ['a', 'wdw'], outputs: ['dw'], attrs: { group: { type: 'int', value: 8 }, dilations: ints(2, 2), pads: ints(2, 2, 2, 2) } },
        { name: 'conv1d', op: 'Conv', domain: '', inputs: ['x1', 'w1', 'b1'], outputs: ['y1'], attrs: { auto_pad: { type: 'string', value: 'SAME_UPPER' } } },
        { name: 'computed_bias', op: 'Conv', domain: '', inputs: ['a', 'wb', 'bb'], outputs: ['yb'], attrs: {} },
        { name: 'conv3d', op: 'Conv', domain: '', inputs: ['x3', 'w3', 'b3'], outputs: ['y3'], attrs: { pads: ints(1, 1, 1, 1, 1, 1) } },
      ],
      values: {},
    };
    const float = exportOnnx(g, { opset: 17 });
    const q = await quantize(float, { mode: 'int8-dynamic', backend: 'cpu' });
    const out = (await importOnnx(q.model)).graph;
    expect(out.nodes.filter((n) => n.op === 'ConvInteger').length).toBe(5);
    expect(out.nodes.filter((n) => n.op === 'Conv')).toEqual([]);
    expect(q.report.keptFloat.filter((k) => k.op === 'Conv')).toEqual([]);
    expect(q.report.layers.map((l) => l.node)).toEqual(['strided', 'depthwise', 'conv1d', 'computed_bias', 'conv3d']);
    // The bias fed at run time is reshaped to [8, 1, 1] before the Add.
    const reshape = out.nodes.find((n) => n.op === 'Reshape')!;
    expect(reshape.inputs[0]).toBe('bb');
    expect(Array.from(out.initializers[reshape.inputs[1]!]!.data as BigInt64Array, Number)).toEqual([8, 1, 1]);
    // The 1-D conv's per-channel scale and bias broadcast as [M, 1].
    const c1 = out.nodes.find((n) => n.op === 'ConvInteger' && n.inputs[1]!.startsWith('w1'))!;
    expect(out.initializers[c1.inputs[1]!]!.shape).toEqual([5, 3, 3]);
    expect(Object.entries(out.initializers).filter(([k]) => k.startsWith('b1')).map(([, v]) => v.shape)).toEqual([[5, 1]]);
    const feeds = { x: t([2, 4, 9, 9], 1), x1: t([2, 3, 10], 1), bb: t([8]), x3: t([1, 2, 4, 5, 5], 1) };
    const ort = await runModelOrt(q.model, feeds);
    const ref = await runModelOrt(float, feeds);
    for (const backend of ['cpu', 'webgpu'] as const) {
      const ek = (await runModel(q.model, feeds, backend)) as Record<string, HostTensor>;
      for (const o of ['dw', 'y1', 'yb', 'y3']) {
        // Same integer sums as onnxruntime; the float tail rounds in another order (a few ULP of the largest value).
        expect(relativeError(ek[o]!, ort[o]!), `${backend} ${o}`).toBeLessThan(1e-5);
        // 8-bit activations and weights: about 1% of the largest value from the float model (SQNR above 30 dB).
        expect(relativeError(ek[o]!, ref[o]!), `${backend} ${o} vs float`).toBeLessThan(0.03);
      }
    }
  }, 300_000);
});
