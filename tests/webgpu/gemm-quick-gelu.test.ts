import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnsupportedOpError } from '../../runtime/errors.js';
import type { Attr } from '../../runtime/ir/graph.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import { allClose } from '../helpers/compare.js';
import { encodeModel, type ModelNode } from '../helpers/onnx-model.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { runModelOrt } from '../helpers/run-model.js';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';

/**
 * com.microsoft GemmQuickGelu (importers/onnx/ops/com-microsoft.ts): Y = QuickGelu_alpha(X @ W [+ bias]).
 * onnxruntime-node 1.30 has no kernel (nor schema) for it, so the reference is onnxruntime-node running the same
 * computation as the graph it stands for, MatMul [-> Add(bias)] -> com.microsoft.QuickGelu, which it does run.
 * Both EdgeKit backends run the GemmQuickGelu model, over alpha (absent = 1.702, and others), with and without the
 * bias, 2-D and batched 3-D X, constant and fed weights, at several shapes; on WebGPU it plans as one fused matmul.
 */

const MS = 'com.microsoft';
const OPSETS = { '': 21, [MS]: 1 };
const sessions: InferenceSession[] = [];
beforeAll(async () => {
  console.log(`GemmQuickGelu suite on ${describeDevice(await gpuForTests())}`);
});
afterAll(async () => {
  for (const s of sessions) await s.release();
});

async function runOn(s: InferenceSession, feeds: Record<string, HostTensor>): Promise<HostTensor> {
  const tensors: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(feeds)) tensors[k] = new Tensor(t.dtype, t.data, t.shape);
  const out = await s.run<Record<string, Tensor>>(tensors);
  return out.y!.toHost();
}

interface Case {
  name: string;
  alpha?: number;
  bias: boolean;
  /** X's leading dims (before K). */
  lead: number[];
  k: number;
  n: number;
  /** W (and the bias) are graph inputs instead of initializers. */
  fedWeights?: boolean;
  dtype?: DType;
}

/** The GemmQuickGelu model and the composed graph onnxruntime-node runs, with feeds. */
function build(c: Case, rng: Rng) {
  const dtype = c.dtype ?? 'float32';
  const x = randomTensor(rng, dtype, [...c.lead, c.k]);
  const w = randomTensor(rng, dtype, [c.k, c.n]);
  const bias = randomTensor(rng, dtype, [c.n]);
  const weights: Record<string, HostTensor> = c.bias ? { w, bias } : { w };
  const alpha: Record<string, Attr> = c.alpha === undefined ? {} : { alpha: { type: 'float', value: c.alpha } };
  const io = (nodes: ModelNode[]) =>
    encodeModel({
      nodes,
      inputs: c.fedWeights ? { x, ...weights } : { x },
      initializers: c.fedWeights ? {} : weights,
      outputs: ['y'],
      opsets: OPSETS,
    });
  const fused = io([{ op: 'GemmQuickGelu', domain: MS, inputs: c.bias ? ['x', 'w', 'bias'] : ['x', 'w'], outputs: ['y'], attrs: alpha }]);
  const composed = io([
    { op: 'MatMul', inputs: ['x', 'w'], outputs: ['p'] },
    ...(c.bias ? [{ op: 'Add', inputs: ['p', 'bias'], outputs: ['pb'] }] : []),
    { op: 'QuickGelu', domain: MS, inputs: [c.bias ? 'pb' : 'p'], outputs: ['y'], attrs: alpha },
  ]);
  return { fused, composed, feeds: c.fedWeights ? { x, ...weights } : { x } };
}

describe('com.microsoft GemmQuickGelu on both backends against onnxruntime-node (composed graph)', () => {
  const cases: Case[] = [
    { name: 'default alpha (1.702), bias, 2-D X', bias: true, lead: [5], k: 24, n: 40 },
    { name: 'alpha 1 (SiLU), no bias, batched X', alpha: 1, bias: false, lead: [2, 7], k: 16, n: 37 },
    { name: 'alpha 1.702 written out, bias, batched X', alpha: 1.702, bias: true, lead: [3, 4], k: 33, n: 20 },
    { name: 'negative alpha, bias, rows past a tile', alpha: -0.75, bias: true, lead: [70], k: 8, n: 12 },
    { name: 'fed W and bias (not constants)', alpha: 2.5, bias: true, lead: [2, 3], k: 12, n: 9, fedWeights: true },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const rng = new Rng(c.k * 100 + c.n);
      const { fused, composed, feeds } = build(c, rng);
      const want = (await runModelOrt(composed, feeds)).y!;
      const gpu = await InferenceSession.create(fused, { backend: 'webgpu' });
      const cpu = await InferenceSession.create(fused, { backend: 'cpu' });
      sessions.push(gpu, cpu);
      for (const [s, what] of [[cpu, 'CPU backend'], [gpu, 'WebGPU']] as const) {
        const got = await runOn(s, feeds);
        expect(got.shape, what).toEqual(want.shape);
        // f32 accumulation order differs from onnxruntime's (tiled on the GPU): 1e-4 relative, K <= 33.
        const r = allClose(got, want, { rtol: 1e-4, atol: 1e-5 });
        if (!r.ok) expect.fail(`${c.name} on ${what} vs onnxruntime-node: ${r.message}`);
      }
      // The WebGPU plan runs it as one matmul with the bias and QuickGelu in its epilogue: one fused node naming
      // the three IR nodes the import made (the model's node and its _matmul/_bias helpers).
      const fusions = gpu.report().gpu!.fusions;
      expect(fusions).toHaveLength(1);
      expect(fusions[0]!.kind).toMatch(/QuickGelu$/);
      expect([...fusions[0]!.nodes].sort()).toEqual(c.bias ? ['n0', 'n0_bias', 'n0_matmul'] : ['n0', 'n0_matmul']);
      expect(gpu.report().gpu!.dispatches).toBe(1);
    });
  }

  it('float16: WebGPU matches the CPU backend (1e-2, float16 storage)', async () => {
    const c: Case = { name: 'f16', alpha: 1.702, bias: true, lead: [3, 5], k: 16, n: 24, dtype: 'float16' };
    const { fused, feeds } = build(c, new Rng(9));
    const gpu = await InferenceSession.create(fused, { backend: 'webgpu' });
    const cpu = await InferenceSession.create(fused, { backend: 'cpu' });
    sessions.push(gpu, cpu);
    const r = allClose(await runOn(gpu, feeds), await runOn(cpu, feeds), { rtol: 1e-2, atol: 1e-2 });
    if (!r.ok) expect.fail(`float16 WebGPU vs CPU backend: ${r.message}`);
  });
});

describe('com.microsoft GemmQuickGelu forms that are refused at load', () => {
  const rng = new Rng(3);
  const x = randomTensor(rng, 'float32', [2, 4]);
  const refused = async (what: string, node: ModelNode, initializers: Record<string, HostTensor>, pattern: RegExp) => {
    const bytes = encodeModel({ nodes: [node], inputs: { x }, initializers, outputs: ['y'], opsets: OPSETS });
    for (const backend of ['cpu', 'webgpu'] as const) {
      const err = await InferenceSession.create(bytes, { backend }).catch((e: unknown) => e);
      expect(err, `${what} on ${backend}`).toBeInstanceOf(UnsupportedOpError);
      expect((err as Error).message).toMatch(/com\.microsoft::GemmQuickGelu \(opset 1\) at node 'n0'/);
      expect((err as Error).message).toMatch(pattern);
    }
  };
  const w = randomTensor(rng, 'float32', [4, 3]);

  it('a Gemm-style attribute (transB): no published schema says what it means', async () => {
    await refused('transB', { op: 'GemmQuickGelu', domain: MS, inputs: ['x', 'w'], outputs: ['y'], attrs: { transB: { type: 'int', value: 1 } } }, { w }, /'transB' not supported/);
  });

  it('a batched W (rank 3)', async () => {
    await refused('W rank 3', { op: 'GemmQuickGelu', domain: MS, inputs: ['x', 'w'], outputs: ['y'] }, { w: randomTensor(rng, 'float32', [1, 4, 3]) }, /W must be a \[K, N\] matrix, got rank 3/);
  });

  it('a bias that is not a [N] vector', async () => {
    await refused('bias rank 2', { op: 'GemmQuickGelu', domain: MS, inputs: ['x', 'w', 'b'], outputs: ['y'] }, { w, b: randomTensor(rng, 'float32', [2, 3]) }, /bias must be a \[N\] vector, got rank 2/);
  });
});
