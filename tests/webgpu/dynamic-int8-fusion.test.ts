import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { exportOnnx, importOnnx } from '../../importers/onnx/index.js';
import { GpuGraphPlan, type GpuPlanReport, type GpuResources } from '../../runtime/backends/webgpu/executor.js';
import { fuseDynamicInt8 } from '../../runtime/backends/webgpu/fuse-dynamic-int8.js';
import { setQuantDotPath, type QuantDotPath } from '../../runtime/backends/webgpu/kernels/quant-dot.js';
import type { Graph } from '../../runtime/ir/graph.js';
import { optimize, specialize } from '../../runtime/ir/passes/index.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession, quantize, Tensor } from '../../sdk/node.js';
import { relativeError } from '../helpers/compare.js';
import { attr, buildGraph, node } from '../helpers/ir-builder.js';
import { randomTensor, Rng } from '../helpers/random.js';
import { runModel, runModelOrt } from '../helpers/run-model.js';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';
import { digits, fashion, stepDiff } from '../quantize/fixtures.js';

/**
 * The dynamic-int8 fusion of the WebGPU plan (runtime/backends/webgpu/fuse-dynamic-int8.ts): every
 * ConvInteger | MatMulInteger -> Cast -> Mul(x_scale * w_scale) [-> Add(bias)] [-> Relu] chain of the quantizer's
 * int8-dynamic files runs as one packed kernel with a float epilogue. The fused plan must equal the unfused plan bit
 * for bit (the epilogue rounds as the unfused ops do), with both dot paths pinned and planned both as for a CPU adapter
 * (SwiftShader's own) and as for a GPU adapter (forced), with fewer dispatches; through the public API it must match the
 * CPU backend (which runs the file as written) and onnxruntime-node within the tolerance of
 * tests/quantize/dynamic-conv.test.ts; chains the kernel cannot take must stay unfused.
 */

let res: GpuResources;
const PATHS: QuantDotPath[] = ['packed', 'unpacked'];

beforeAll(async () => {
  res = await gpuForTests();
  console.log(`dynamic int8 fusion suite on ${describeDevice(res)}`);
});
afterEach(() => setQuantDotPath(undefined));

/** The fusion kinds this pass writes ('ConvInteger+Scale+Bias+Relu', 'MatMulInteger+Scale'...). */
const isDynamic = (kind: string) => /^(ConvInteger|MatMulInteger)\+Scale/.test(kind);

/** The model's float32 bits: equality of these is equality bit for bit (NaN payloads and -0 included). */
const bits = (t: HostTensor) => new Uint32Array(Float32Array.from(t.data as Float32Array).buffer);

/** The optimized graph of `bytes` specialized to the feeds' shapes, as a session plans it. */
async function graphFor(bytes: Uint8Array, feeds: Record<string, HostTensor>): Promise<Graph> {
  const { graph } = await importOnnx(bytes);
  return specialize(optimize(graph).graph, Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, t.shape])));
}

async function runPlan(g: Graph, feeds: Record<string, HostTensor>, opts: { fuse?: boolean; cpuAdapter?: boolean }): Promise<{ out: Record<string, HostTensor>; report: GpuPlanReport }> {
  const plan = await GpuGraphPlan.create(res, g, opts);
  try {
    return { out: await plan.run(feeds), report: plan.report() };
  } finally {
    plan.dispose();
  }
}

/**
 * Fused against unfused plans, every output bit for bit, for both dot paths and both kernel families; the fused
 * plan has `chains` dynamic-int8 fusions and as many fewer dispatches as the nodes they absorbed (each of the Cast,
 * the Muls, the Add and the Relu is one dispatch unfused). Returns the fusions of the last fused plan.
 */
async function expectFusedExact(bytes: Uint8Array, feeds: Record<string, HostTensor>, chains: number): Promise<GpuPlanReport['fusions']> {
  const g = await graphFor(bytes, feeds);
  let fusions: GpuPlanReport['fusions'] = [];
  for (const path of PATHS) {
    setQuantDotPath(path);
    for (const cpuAdapter of [true, false]) {
      const fused = await runPlan(g, feeds, { cpuAdapter });
      const unfused = await runPlan(g, feeds, { cpuAdapter, fuse: false });
      fusions = fused.report.fusions.filter((f) => isDynamic(f.kind));
      expect(fusions.length, `${path}, cpuAdapter ${cpuAdapter}: fused chains`).toBe(chains);
      const absorbed = fusions.reduce((n, f) => n + f.nodes.length - 1, 0);
      expect(fused.report.dispatches, `${path}, cpuAdapter ${cpuAdapter}: dispatches`).toBe(unfused.report.dispatches - absorbed);
      for (const [name, want] of Object.entries(unfused.out)) {
        expect(bits(fused.out[name]!), `${path}, cpuAdapter ${cpuAdapter}: ${name}`).toEqual(bits(want));
      }
    }
  }
  return fusions;
}

/** The model with every DynamicQuantizeLinear output exposed (not part of a fused chain, so the fusion stays). */
async function withDqlOutputs(bytes: Uint8Array): Promise<{ bytes: Uint8Array; xq: string[] }> {
  const { graph } = await importOnnx(bytes);
  const dql = graph.nodes.filter((n) => n.op === 'DynamicQuantizeLinear');
  graph.outputs = [...graph.outputs, ...dql.map((n) => ({ ...graph.values[n.outputs[0]!]!, name: n.outputs[0]! }))];
  return { bytes: exportOnnx(graph, { opset: 21 }), xq: dql.map((n) => n.outputs[0]!) };
}

/**
 * The public API on WebGPU (fused) against the CPU backend and onnxruntime-node, as dynamic-conv.test.ts compares
 * them: from the same x_q the integer sums are identical and the float tail agrees to a few ULP (relative 1e-5);
 * x_q one step apart somewhere (WGSL's f32 division is not correctly rounded) moves an output by a fraction of a
 * percent (0.01).
 */
async function expectMatchesReferences(model: Uint8Array, feeds: Record<string, HostTensor>, outputs: string[], chains: number): Promise<void> {
  const { bytes, xq } = await withDqlOutputs(model);
  const session = await InferenceSession.create(bytes, { backend: 'webgpu' });
  try {
    const run = await session.run<Record<string, Tensor>>(Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new Tensor(t.dtype, t.data, t.shape)])));
    const gpu = Object.fromEntries(Object.entries(run).map(([k, t]) => [k, t.toHost()]));
    expect(session.report().gpu!.fusions.filter((f) => isDynamic(f.kind)).length).toBe(chains);
    const refs = { cpu: (await runModel(bytes, feeds, 'cpu')) as Record<string, HostTensor>, onnxruntime: await runModelOrt(bytes, feeds) };
    for (const [who, ref] of Object.entries(refs)) {
      const exact = xq.every((v) => stepDiff(gpu[v]!, ref[v]!).off === 0);
      for (const v of xq) expect(stepDiff(gpu[v]!, ref[v]!).worst, `${who} ${v}`).toBeLessThanOrEqual(1);
      for (const o of outputs) expect(relativeError(gpu[o]!, ref[o]!), `${who} ${o}`).toBeLessThan(exact ? 1e-5 : 0.01);
    }
  } finally {
    await session.release();
  }
}

const head = (t: HostTensor, n: number): HostTensor => {
  const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
  return { ...t, shape: [n, ...t.shape.slice(1)], data: (t.data as Float32Array).slice(0, n * per) };
};

describe.each([
  ['digits', digits, 16],
  ['Fashion', fashion, 4],
] as const)('int8-dynamic %s CNN on WebGPU', (_name, load, batch) => {
  const m = load();
  it('runs each Conv and Gemm chain as one kernel, bit for bit the unfused plan, and matches the CPU and onnxruntime-node', async () => {
    const q = await quantize(m.bytes, { mode: 'int8-dynamic', backend: 'cpu', reportSamples: 0 });
    const feeds = { input: head(m.test, batch) };
    const { graph } = await importOnnx(q.model);
    const products = graph.nodes.filter((n) => n.op === 'ConvInteger' || n.op === 'MatMulInteger').length;
    const fusions = await expectFusedExact(q.model, feeds, products);
    // Every Cast, scale Mul, output Mul and bias Add the quantizer wrote went into a kernel, with the Relu reading
    // the bias Add (Fashion's conv3 is followed by a residual Add, which stays).
    const absorbed = new Set(fusions.flatMap((f) => f.nodes));
    const chain = graph.nodes.filter((n) => /_(Cast|scale_Mul|output_Mul|bias_Add)$/.test(n.name));
    expect(chain.length).toBe(4 * products);
    for (const n of chain) expect(absorbed.has(n.name), n.name).toBe(true);
    const relus = graph.nodes.filter((n) => n.op === 'Relu' && chain.some((c) => c.outputs[0] === n.inputs[0]));
    expect(fusions.filter((f) => f.kind.endsWith('+Relu')).length).toBe(relus.length);
    await expectMatchesReferences(q.model, feeds, ['logits'], products);
  }, 600_000);
});

describe('hand-written int8-dynamic chains', () => {
  const rng = new Rng(23);
  const t = (shape: number[], s = 0.5) => randomTensor(rng, 'float32', shape, { lo: -s, hi: s });
  /**
   * A flat first conv (3 input channels) with bias and Relu; a strided conv of 36 channels (16-channel blocks, the
   * last partial) without bias; a grouped 1x1 conv with bias and Relu; Gemm (transB) with bias and Relu; a batched
   * MatMul without bias.
   */
  const float = exportOnnx(
    buildGraph({
      inputs: [['x', 'float32', [2, 3, 9, 9]], ['x2', 'float32', [2, 3, 12]]],
      initializers: {
        wa: t([8, 3, 3, 3]), ba: t([8]), wb: t([36, 8, 3, 3]), wc: t([6, 18, 1, 1]), bc: t([6]),
        fc: t([10, 6 * 3 * 3]), fb: t([10]), wm: t([12, 7]),
      },
      nodes: [
        node('Conv', ['x', 'wa', 'ba'], ['ca'], { pads: attr([1, 1, 1, 1]) }, 'conv_a'),
        node('Relu', ['ca'], ['a']),
        node('Conv', ['a', 'wb'], ['b'], { strides: attr([2, 2]), pads: attr([1, 1, 1, 1]) }, 'conv_b'),
        node('Conv', ['b', 'wc', 'bc'], ['cc'], { group: attr(2), strides: attr([2, 2]) }, 'conv_c'),
        node('Relu', ['cc'], ['c']),
        node('Flatten', ['c'], ['f']),
        node('Gemm', ['f', 'fc', 'fb'], ['g'], { transB: attr(1) }, 'gemm'),
        node('Relu', ['g'], ['y1']),
        node('MatMul', ['x2', 'wm'], ['y2'], {}, 'matmul'),
      ],
      outputs: ['y1', 'y2', 'b'],
    }),
    { opset: 17 },
  );
  const feeds = { x: t([2, 3, 9, 9], 1), x2: t([2, 3, 12], 1) };
  const OUTPUTS = ['y1', 'y2', 'b'];

  for (const perChannel of [true, false]) {
    it(`fuses per-${perChannel ? 'channel' : 'tensor'} w scales, with and without bias and Relu, Conv and MatMul forms`, async () => {
      const q = await quantize(float, { mode: 'int8-dynamic', backend: 'cpu', perChannel, reportSamples: 0 });
      const fusions = await expectFusedExact(q.model, feeds, 5);
      expect(Object.fromEntries(fusions.map((f) => [f.node, f.kind]))).toEqual({
        conv_a_ConvInteger: 'ConvInteger+Scale+Bias+Relu',
        conv_b_ConvInteger: 'ConvInteger+Scale',
        conv_c_ConvInteger: 'ConvInteger+Scale+Bias+Relu',
        gemm_MatMulInteger: 'MatMulInteger+Scale+Bias+Relu',
        matmul_MatMulInteger: 'MatMulInteger+Scale',
      });
      await expectMatchesReferences(q.model, feeds, OUTPUTS, 5);
    }, 600_000);
  }

  it('fuses a conv whose weight zero point is not 128 (the kernel then also sums x)', async () => {
    const q = await quantize(float, { mode: 'int8-dynamic', backend: 'cpu', reportSamples: 0 });
    const { graph } = await importOnnx(q.model);
    const conv = graph.nodes.find((n) => n.name === 'conv_b_ConvInteger')!;
    graph.initializers[conv.inputs[3]!] = tensorFromNumbers('uint8', [], [121]);
    const bytes = exportOnnx(graph, { opset: 21 });
    await expectFusedExact(bytes, feeds, 5);
    await expectMatchesReferences(bytes, feeds, OUTPUTS, 5);
  }, 600_000);

  /** The quantized graph with one chain changed so that the pass must leave it alone. */
  async function variant(change: (g: Graph) => void): Promise<Uint8Array> {
    const q = await quantize(float, { mode: 'int8-dynamic', backend: 'cpu', reportSamples: 0 });
    const { graph } = await importOnnx(q.model);
    change(graph);
    return exportOnnx(graph, { opset: 21 });
  }
  const nodeOf = (g: Graph, name: string) => g.nodes.find((n) => n.name === name)!;

  const NEGATIVE: [string, string, (g: Graph) => void][] = [
    ['a scale that is not DynamicQuantizeLinear\'s x_scale times w_scale (a constant)', 'conv_a', (g) => {
      g.initializers.fixed_scale = tensorFromNumbers('float32', [], [0.02]);
      const sm = nodeOf(g, 'conv_a_scale_Mul');
      sm.inputs = ['fixed_scale', sm.inputs[1]!];
    }],
    // The MatMul's: its sums over K = 12 stay inside float16's range.
    ['a Cast to float16 (then back to float32)', 'matmul', (g) => {
      const cast = nodeOf(g, 'matmul_Cast');
      const out = cast.outputs[0]!;
      cast.attrs = { to: { type: 'int', value: 10 } };
      cast.outputs = ['matmul_half'];
      g.nodes.splice(g.nodes.indexOf(cast) + 1, 0, node('Cast', ['matmul_half'], [out], { to: attr(1) }, 'matmul_Cast_back'));
    }],
    ['a Cast output read twice', 'gemm', (g) => {
      const cast = nodeOf(g, 'gemm_Cast');
      g.nodes.push(node('Neg', [cast.outputs[0]!], ['gemm_acc_neg'], {}, 'gemm_Neg'));
      g.outputs.push({ name: 'gemm_acc_neg', dtype: 'float32' });
    }],
  ];
  for (const [title, layer, change] of NEGATIVE) {
    it(`leaves a chain with ${title} unfused`, async () => {
      const bytes = await variant(change);
      // The chain's integer product is still the model's own op in the GPU graph.
      const product = layer.startsWith('conv') ? 'ConvInteger' : 'MatMulInteger';
      const g = fuseDynamicInt8(await graphFor(bytes, feeds));
      expect(g.nodes.find((n) => n.name === `${layer}_${product}`)?.op).toBe(product);
      await expectFusedExact(bytes, feeds, 4);
      const outputs = [...OUTPUTS, ...(layer === 'gemm' ? ['gemm_acc_neg'] : [])];
      const gpu = (await runModel(bytes, feeds, 'webgpu')) as Record<string, HostTensor>;
      const cpu = (await runModel(bytes, feeds, 'cpu')) as Record<string, HostTensor>;
      for (const o of outputs) expect(relativeError(gpu[o]!, cpu[o]!), o).toBeLessThan(0.01);
    }, 600_000);
  }
});
