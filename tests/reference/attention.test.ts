import onnx from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { exportOnnx, importOnnx } from '../../importers/onnx/index.js';
import type { Attr } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { allClose } from '../helpers/compare.js';
import { attentionCases, msAttentionCases } from '../helpers/attention-cases.js';
import { attr } from '../helpers/ir-builder.js';
import { encodeModel } from '../helpers/onnx-model.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { runModelCpu, runModelOrt } from '../helpers/run-model.js';

/**
 * Opset-23 Attention, RMSNormalization and RotaryEmbedding on the CPU reference, through
 * InferenceSession.create(bytes, { backend: 'cpu' }), against onnxruntime-node running the same one-node model.
 */

function oneNode(op: string, attrs: Record<string, Attr>, inputs: (HostTensor | undefined)[], outputs: number) {
  const feeds: Record<string, HostTensor> = {};
  const names = inputs.map((t, i) => {
    if (!t) return '';
    feeds[`in${i}`] = t;
    return `in${i}`;
  });
  const outs = Array.from({ length: outputs }, (_, i) => `out${i}`);
  return { bytes: encodeModel({ nodes: [{ op, inputs: names, outputs: outs, attrs }], inputs: feeds, outputs: outs, opsets: { '': 23 } }), feeds };
}

async function againstOrt(op: string, attrs: Record<string, Attr>, inputs: (HostTensor | undefined)[], outputs: number, tol = 2e-5) {
  const { bytes, feeds } = oneNode(op, attrs, inputs, outputs);
  const want = await runModelOrt(bytes, feeds);
  const got = (await runModelCpu(bytes, feeds)) as Record<string, HostTensor>;
  expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  for (const [name, e] of Object.entries(want)) {
    expect([got[name]!.dtype, got[name]!.shape], name).toEqual([e.dtype, e.shape]);
    const r = allClose(got[name]!, e, { rtol: tol, atol: tol });
    if (!r.ok) expect.fail(`${op} output ${name}: ${r.message}`);
  }
}

describe('Attention-23 on the CPU, against onnxruntime-node', () => {
  for (const c of attentionCases(7)) it(c.name, () => againstOrt('Attention', c.attrs, c.inputs, c.outputs));

  it('float16', async () => {
    for (const c of attentionCases(8, 'float16').slice(0, 4)) await againstOrt('Attention', c.attrs, c.inputs, c.outputs, 4e-3);
  });

  it('qk_matmul_output modes 0 (scaled Q K^T) and 3 (softmax)', async () => {
    const rng = new Rng(3);
    const inputs = [randomTensor(rng, 'float32', [1, 2, 3, 4]), randomTensor(rng, 'float32', [1, 2, 5, 4]), randomTensor(rng, 'float32', [1, 2, 5, 4])];
    for (const mode of [0, 3]) await againstOrt('Attention', { qk_matmul_output_mode: attr(mode), is_causal: attr(1) }, inputs, 4);
    const { bytes, feeds } = oneNode('Attention', { qk_matmul_output_mode: attr(1) }, inputs, 4);
    await expect(runModelCpu(bytes, feeds)).rejects.toThrow(/qk_matmul_output_mode 1 is not supported/);
  });

  it('a query whose keys are all masked out yields zeros', async () => {
    const rng = new Rng(4);
    const mask = tensorFromNumbers('bool', [2, 3], [1, 0, 1, 0, 0, 0]);
    await againstOrt('Attention', {}, [randomTensor(rng, 'float32', [1, 1, 2, 4]), randomTensor(rng, 'float32', [1, 1, 3, 4]), randomTensor(rng, 'float32', [1, 1, 3, 4]), mask], 1);
  });

  it('exportOnnx writes a graph with Attention at opset 23 (IR 11) by default, and onnxruntime runs it', async () => {
    const c = attentionCases(9)[5]!;
    const { bytes, feeds } = oneNode('Attention', c.attrs, c.inputs, c.outputs);
    const out = exportOnnx((await importOnnx(bytes)).graph);
    const m = onnx.onnx.ModelProto.decode(out);
    expect([Number(m.irVersion), Number(m.opsetImport[0]!.version)]).toEqual([11, 23]);
    const [a, b] = [await runModelOrt(out, feeds), await runModelOrt(bytes, feeds)];
    for (const k of Object.keys(b)) expect(allClose(a[k]!, b[k]!, { rtol: 1e-6, atol: 1e-6 }).ok, k).toBe(true);
  });

  it('shape errors name the problem', async () => {
    const rng = new Rng(5);
    const q = randomTensor(rng, 'float32', [1, 3, 2, 4]);
    const kv = randomTensor(rng, 'float32', [1, 2, 2, 4]);
    const { bytes, feeds } = oneNode('Attention', {}, [q, kv, kv], 1);
    await expect(runModelCpu(bytes, feeds)).rejects.toThrow(/multiple of the key\/value head count/);
  });
});

describe('RMSNormalization-23 and RotaryEmbedding-23 on the CPU, against onnxruntime-node', () => {
  const rng = new Rng(11);
  it('RMSNormalization over the last axis and over the last two', async () => {
    await againstOrt('RMSNormalization', {}, [randomTensor(rng, 'float32', [2, 3, 8]), randomTensor(rng, 'float32', [8])], 1);
    await againstOrt('RMSNormalization', { axis: attr(-2), epsilon: attr(0.01, true) }, [randomTensor(rng, 'float32', [2, 3, 8]), randomTensor(rng, 'float32', [3, 8])], 1);
  });

  it('RotaryEmbedding with position_ids, 4-D and 3-D, interleaved or not, partial rotary_embedding_dim', async () => {
    const cos = randomTensor(rng, 'float32', [16, 4]);
    const sin = randomTensor(rng, 'float32', [16, 4]);
    const pos = tensorFromNumbers('int64', [2, 3], [0, 1, 2, 5, 6, 7]);
    await againstOrt('RotaryEmbedding', {}, [randomTensor(rng, 'float32', [2, 2, 3, 8]), cos, sin, pos], 1);
    await againstOrt('RotaryEmbedding', { interleaved: attr(1), num_heads: attr(2) }, [randomTensor(rng, 'float32', [2, 3, 16]), cos, sin, pos], 1);
    await againstOrt('RotaryEmbedding', { num_heads: attr(2), rotary_embedding_dim: attr(8) }, [randomTensor(rng, 'float32', [2, 3, 24]), cos, sin, pos], 1);
  });

  it('RotaryEmbedding without position_ids: per-token caches [B, S, D/2]', async () => {
    const cos = randomTensor(rng, 'float32', [2, 3, 4]);
    const sin = randomTensor(rng, 'float32', [2, 3, 4]);
    await againstOrt('RotaryEmbedding', {}, [randomTensor(rng, 'float32', [2, 2, 3, 8]), cos, sin], 1);
    await againstOrt('RotaryEmbedding', { interleaved: attr(1), num_heads: attr(2) }, [randomTensor(rng, 'float32', [2, 3, 16]), cos, sin], 1);
  });
});

describe('com.microsoft MultiHeadAttention and GroupQueryAttention on the CPU, against onnxruntime-node', () => {
  for (const c of msAttentionCases(31)) {
    it(c.name, async () => {
      const feeds: Record<string, HostTensor> = {};
      const names = c.inputs.map((t, i) => {
        if (!t) return '';
        feeds[`in${i}`] = t;
        return `in${i}`;
      });
      const outs = Array.from({ length: c.outputs }, (_, i) => `out${i}`);
      const bytes = encodeModel({ nodes: [{ op: c.op, domain: 'com.microsoft', inputs: names, outputs: outs, attrs: c.attrs }], inputs: feeds, outputs: outs, opsets: { '': 21, 'com.microsoft': 1 } });
      const want = await runModelOrt(bytes, feeds);
      const got = (await runModelCpu(bytes, feeds)) as Record<string, HostTensor>;
      for (const [name, e] of Object.entries(want)) {
        expect([got[name]!.dtype, got[name]!.shape], name).toEqual([e.dtype, e.shape]);
        const r = allClose(got[name]!, e, { rtol: 2e-5, atol: 2e-5 });
        if (!r.ok) expect.fail(`${c.op} output ${name}: ${r.message}`);
      }
    });
  }
});
