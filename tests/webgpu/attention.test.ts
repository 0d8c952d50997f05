import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import { attentionCases, msAttentionCases } from '../helpers/attention-cases.js';
import { allClose } from '../helpers/compare.js';
import { attr } from '../helpers/ir-builder.js';
import { encodeModel } from '../helpers/onnx-model.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { runModelOrt } from '../helpers/run-model.js';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';
import { model, vi } from '../importer/model-builder.js';
import { expectOutputsClose as expectClose, runHost } from '../helpers/session-runs.js';

/**
 * Opset-23 Attention on WebGPU (the fused flash kernel, kernels/attention.ts) through
 * InferenceSession.create(bytes, { backend: 'webgpu' }), against onnxruntime-node and the CPU reference: every case
 * of tests/helpers/attention-cases.ts in float32 and float16, a model with symbolic batch and sequence dims run at
 * several shapes, and the refusals.
 */

const sessions: InferenceSession[] = [];
beforeAll(async () => {
  console.log(`attention WebGPU suite on ${describeDevice(await gpuForTests())}`);
});
afterAll(async () => {
  for (const s of sessions) await s.release();
});

async function open(bytes: Uint8Array, backend: 'cpu' | 'webgpu'): Promise<InferenceSession> {
  const s = await InferenceSession.create(bytes, { backend });
  sessions.push(s);
  return s;
}



function oneNode(attrs: Record<string, Attr>, inputs: (HostTensor | undefined)[], outputs: number) {
  const feeds: Record<string, HostTensor> = {};
  const names = inputs.map((t, i) => {
    if (!t) return '';
    feeds[`in${i}`] = t;
    return `in${i}`;
  });
  const outs = Array.from({ length: outputs }, (_, i) => `out${i}`);
  return { bytes: encodeModel({ nodes: [{ op: 'Attention', inputs: names, outputs: outs, attrs }], inputs: feeds, outputs: outs, opsets: { '': 23 } }), feeds };
}

describe('Attention-23 on WebGPU (fused kernel)', () => {
  for (const dtype of ['float32', 'float16'] as DType[]) {
    // float16 skips the long case: its float32 run covers the tiles, and SwiftShader compiles slowly.
    for (const c of attentionCases(21, dtype).filter((x) => dtype === 'float32' || !x.name.startsWith('long'))) {
      it(`${c.name} — ${dtype}`, async () => {
        const { bytes, feeds } = oneNode(c.attrs, c.inputs, c.outputs);
        const got = await runHost(await open(bytes, 'webgpu'), feeds);
        const tol = dtype === 'float16' ? 1e-2 : 1e-4;
        expectClose(got, await runHost(await open(bytes, 'cpu'), feeds), `${c.name} vs CPU`, tol);
        // onnxruntime-node's CPU Attention takes float16 too, but computes it in float16: compare float32 only.
        if (dtype === 'float32') expectClose(got, await runModelOrt(bytes, feeds), `${c.name} vs onnxruntime`, tol);
      });
    }
  }

  it('symbolic batch, sequence and past lengths: one session, several shapes (3-D GQA with past and a mask)', async () => {
    const rng = new Rng(5);
    const bytes = model({
      nodes: [{
        op: 'Attention',
        inputs: ['q', 'k', 'v', 'mask', 'past_k', 'past_v'],
        outputs: ['y', 'present_k', 'present_v'],
        attrs: [{ name: 'q_num_heads', type: 2, i: 6 }, { name: 'kv_num_heads', type: 2, i: 2 }, { name: 'is_causal', type: 2, i: 1 }],
      }],
      inputs: [
        vi('q', 1, ['B', 'S', 48]), vi('k', 1, ['B', 'S', 16]), vi('v', 1, ['B', 'S', 16]), vi('mask', 9, ['B', 1, 'S', 'T']),
        vi('past_k', 1, ['B', 2, 'P', 8]), vi('past_v', 1, ['B', 2, 'P', 8]),
      ],
      outputs: [{ name: 'y' }, { name: 'present_k' }, { name: 'present_v' }],
      opset: 23,
    });
    const gpu = await open(bytes, 'webgpu');
    for (const [b, s, p] of [[1, 4, 0], [2, 3, 9], [3, 1, 40]]) {
      const r = (shape: number[]) => randomTensor(rng, 'float32', shape, { lo: -1, hi: 1 });
      const mask = randomTensor(rng, 'bool', [b, 1, s, p + s]);
      for (let i = 0; i < b * s; i++) (mask.data as Uint8Array)[i * (p + s)] = 1;
      const feeds = { q: r([b, s, 48]), k: r([b, s, 16]), v: r([b, s, 16]), mask, past_k: r([b, 2, p, 8]), past_v: r([b, 2, p, 8]) };
      expectClose(await runHost(gpu, feeds), await runModelOrt(bytes, feeds), `B=${b} S=${s} P=${p}`, 1e-4);
    }
  });

  it('refuses what it does not compute, at load: qk_matmul_output, float64', async () => {
    const rng = new Rng(6);
    const x = randomTensor(rng, 'float32', [1, 2, 3, 4]);
    const { bytes } = oneNode({ qk_matmul_output_mode: attr(3) }, [x, x, x], 4);
    await expect(InferenceSession.create(bytes, { backend: 'webgpu' })).rejects.toMatchObject({ code: 'UNSUPPORTED_OP', message: expect.stringContaining('qk_matmul_output') });
    const y = randomTensor(rng, 'float64', [1, 2, 3, 4]);
    await expect(InferenceSession.create(oneNode({}, [y, y, y], 1).bytes, { backend: 'webgpu' })).rejects.toMatchObject({ code: 'UNSUPPORTED_OP' });
  });
});

describe('com.microsoft MultiHeadAttention and GroupQueryAttention on WebGPU (the same fused kernel)', () => {
  for (const c of msAttentionCases(41)) {
    it(c.name, async () => {
      const feeds: Record<string, HostTensor> = {};
      const names = c.inputs.map((t, i) => {
        if (!t) return '';
        feeds[`in${i}`] = t;
        return `in${i}`;
      });
      const outs = Array.from({ length: c.outputs }, (_, i) => `out${i}`);
      const bytes = encodeModel({ nodes: [{ op: c.op, domain: 'com.microsoft', inputs: names, outputs: outs, attrs: c.attrs }], inputs: feeds, outputs: outs, opsets: { '': 21, 'com.microsoft': 1 } });
      const s = await open(bytes, 'webgpu');
      expectClose(await runHost(s, feeds), await runModelOrt(bytes, feeds), `${c.name} vs onnxruntime`, 1e-4);
    });
  }
});

describe('RMSNormalization-23 and RotaryEmbedding-23 on WebGPU (the com.microsoft kernels)', () => {
  it('RMSNormalization, and RotaryEmbedding with and without position_ids, against onnxruntime', async () => {
    const rng = new Rng(8);
    const r = (shape: number[]) => randomTensor(rng, 'float32', shape, { lo: -1, hi: 1 });
    const cases: [string, Record<string, Attr>, HostTensor[]][] = [
      ['RMSNormalization', { epsilon: attr(1e-3, true) }, [r([2, 5, 12]), r([12])]],
      ['RotaryEmbedding', { num_heads: attr(2) }, [r([2, 3, 16]), r([9, 4]), r([9, 4]), tensorFromNumbers('int64', [2, 3], [0, 1, 2, 4, 5, 6])]],
      ['RotaryEmbedding', { interleaved: attr(1) }, [r([2, 2, 3, 8]), r([2, 3, 4]), r([2, 3, 4])]],
    ];
    for (const [op, attrs, inputs] of cases) {
      const feeds: Record<string, HostTensor> = {};
      inputs.forEach((t, i) => (feeds[`in${i}`] = t));
      const bytes = encodeModel({ nodes: [{ op, inputs: Object.keys(feeds), outputs: ['out0'], attrs }], inputs: feeds, outputs: ['out0'], opsets: { '': 23 } });
      expectClose(await runHost(await open(bytes, 'webgpu'), feeds), await runModelOrt(bytes, feeds), op, 1e-4);
    }
  });
});
