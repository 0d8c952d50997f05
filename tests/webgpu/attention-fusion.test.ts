import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import { allClose } from '../helpers/compare.js';
import { attr } from '../helpers/ir-builder.js';
import { encodeModel } from '../helpers/onnx-model.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { runModelOrt } from '../helpers/run-model.js';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';

/**
 * The attention fusion (runtime/backends/webgpu/fuse-attention.ts) through the public API: torch.onnx exports
 * (tests/fixtures/attention, scripts/fixtures/attention_fixture.py: a hand-written causal attention with a padding
 * mask at opset 14, nn.MultiheadAttention at opset 17, dynamic batch and sequence) and a hand-built expanded chain
 * with S = 1024. Each runs on WebGPU at several shapes, matches onnxruntime-node within 1e-3, and report() shows the
 * fused node; the long sequence plans no [S, S] buffer.
 */

const sessions: InferenceSession[] = [];
beforeAll(async () => {
  console.log(`attention fusion suite on ${describeDevice(await gpuForTests())}`);
});
afterAll(async () => {
  for (const s of sessions) await s.release();
});

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../fixtures/attention/${name}`, import.meta.url)));

async function gpuSession(bytes: Uint8Array): Promise<InferenceSession> {
  const s = await InferenceSession.create(bytes, { backend: 'webgpu' });
  sessions.push(s);
  return s;
}

async function runOn(s: InferenceSession, feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
  const tensors: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(feeds)) tensors[k] = new Tensor(t.dtype, t.data, t.shape);
  const out = await s.run<Record<string, Tensor>>(tensors);
  return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.toHost()]));
}

async function expectOrt(s: InferenceSession, bytes: Uint8Array, feeds: Record<string, HostTensor>, what: string) {
  const got = await runOn(s, feeds);
  const want = await runModelOrt(bytes, feeds);
  for (const [name, e] of Object.entries(want)) {
    expect(got[name]!.shape, `${what} ${name}`).toEqual(e.shape);
    const r = allClose(got[name]!, e, { rtol: 1e-3, atol: 1e-3 });
    if (!r.ok) expect.fail(`${what} output '${name}': ${r.message}`);
  }
}

/** The plan's fusions of kind 'attention' (report().gpu.fusions, filled from attrs.fusion / attrs.fused_from). */
function attentionFusions(s: InferenceSession): { node: string; nodes: string[] }[] {
  const gpu = s.report().gpu as { fusions?: { kind: string; node: string; nodes: string[] }[] } | undefined;
  expect(gpu?.fusions, 'report().gpu.fusions').toBeDefined();
  return gpu!.fusions!.filter((f) => f.kind === 'attention');
}

describe('attention fusion on torch.onnx exports', () => {
  const rng = new Rng(17);

  it('hand-written causal attention with a padding mask (opset 14): Where(-inf) mask, Div scale', async () => {
    const bytes = fixture('sdpa-causal-op14.onnx');
    const s = await gpuSession(bytes);
    for (const [b, len, pad] of [[2, 5, 2], [1, 9, 0], [3, 16, 7]]) {
      const keep = tensorFromNumbers('bool', [b, len], Array.from({ length: b * len }, (_, i) => (i % len < len - (Math.floor(i / len) === b - 1 ? pad : 0) ? 1 : 0)));
      await expectOrt(s, bytes, { x: randomTensor(rng, 'float32', [b, len, 32]), keep }, `B=${b} S=${len}`);
      const fused = attentionFusions(s);
      expect(fused).toHaveLength(1);
      // MatMul(q, k^T), Div, Where, Softmax and MatMul(p, v) went into the one node. (k's two transposes, folded
      // into one [0, 2, 3, 1] by the importer, stay: the fusion transposes their output back to [B, H, S, Dh].)
      expect(fused[0]!.nodes.map((n) => n.replace(/_\d+$/, ''))).toEqual(['/MatMul', '/Div', '/Where', '/Softmax', '/MatMul']);
    }
  });

  it('nn.MultiheadAttention (opset 17): bmm over [B*H, S, Dh], pre-scaled q', async () => {
    const bytes = fixture('mha-op17.onnx');
    const s = await gpuSession(bytes);
    for (const [b, len] of [[2, 5], [1, 12]]) {
      await expectOrt(s, bytes, { x: randomTensor(rng, 'float32', [b, len, 32]) }, `B=${b} S=${len}`);
      expect(attentionFusions(s)).toHaveLength(1);
    }
  });
});

describe('attention in the GPT fixtures (tests/fixtures/gpt): past KV, attention_mask, both export forms', () => {
  const gptFeeds = (b: number, seq: number, past: number) => {
    const feeds: Record<string, HostTensor> = {
      input_ids: tensorFromNumbers('int64', [b, seq], Array.from({ length: b * seq }, (_, i) => 65 + ((i * 7) % 50))),
      attention_mask: tensorFromNumbers('int64', [b, past + seq], Array(b * (past + seq)).fill(1)),
      position_ids: tensorFromNumbers('int64', [b, seq], Array.from({ length: b * seq }, (_, i) => past + (i % seq))),
    };
    const rng = new Rng(past);
    for (let l = 0; l < 2; l++) for (const kv of ['key', 'value']) feeds[`past_key_values.${l}.${kv}`] = randomTensor(rng, 'float32', [b, 4, past, 16]);
    return feeds;
  };
  const gpt = (name: string) => new Uint8Array(readFileSync(new URL(`../fixtures/gpt/${name}`, import.meta.url)));

  it('torch.onnx opset 17 (Mul scale, Where mask after Concat(past, new)): both blocks fused', async () => {
    const bytes = gpt('gpt-op17.onnx');
    const s = await gpuSession(bytes);
    for (const [b, seq, past] of [[2, 5, 3], [1, 1, 9]]) {
      await expectOrt(s, bytes, gptFeeds(b, seq, past), `B=${b} S=${seq} past=${past}`);
      expect(attentionFusions(s)).toHaveLength(2);
    }
  });

  it('com.microsoft form (MultiHeadAttention with past and a key padding mask)', async () => {
    const bytes = gpt('gpt-contrib.onnx');
    const s = await gpuSession(bytes);
    for (const [b, seq, past] of [[2, 5, 3], [1, 1, 9]]) await expectOrt(s, bytes, gptFeeds(b, seq, past), `B=${b} S=${seq} past=${past}`);
  });
});

describe('attention fusion on an expanded chain built by hand', () => {
  /** Q [1, H, S, D], K [1, H, S, D], V, float mask [S, S]: MatMul(Q, Transpose(K)) -> Mul(scale) -> Add(mask) -> Softmax -> MatMul(V). */
  function chain(h: number, s: number, d: number, scoresOut = false) {
    const rng = new Rng(s);
    const q = randomTensor(rng, 'float32', [1, h, s, d]);
    const k = randomTensor(rng, 'float32', [1, h, s, d]);
    const v = randomTensor(rng, 'float32', [1, h, s, d]);
    const mask = tensorFromNumbers('float32', [s, s], Array.from({ length: s * s }, (_, i) => (i % s <= Math.floor(i / s) ? 0 : -1e9)));
    const bytes = encodeModel({
      nodes: [
        { op: 'Transpose', inputs: ['k'], outputs: ['kt'], attrs: { perm: attr([0, 1, 3, 2]) } },
        { op: 'MatMul', inputs: ['q', 'kt'], outputs: ['scores'] },
        { op: 'Mul', inputs: ['scores', 'scale'], outputs: ['scaled'] },
        { op: 'Add', inputs: ['scaled', 'mask'], outputs: ['masked'] },
        { op: 'Softmax', inputs: ['masked'], outputs: ['p'], attrs: { axis: attr(-1) } },
        { op: 'MatMul', inputs: ['p', 'v'], outputs: ['y'] },
      ],
      inputs: { q, k, v, mask },
      initializers: { scale: tensorFromNumbers('float32', [], [1 / Math.sqrt(d)]) },
      outputs: scoresOut ? ['y', 'scores'] : ['y'],
    });
    return { bytes, feeds: { q, k, v, mask } };
  }

  it('S = 1024: fused, matches onnxruntime, and plans no S x S buffer', async () => {
    const [h, len, d] = [2, 1024, 16];
    const { bytes, feeds } = chain(h, len, d);
    const s = await gpuSession(bytes);
    await expectOrt(s, bytes, feeds, `S=${len}`);
    expect(attentionFusions(s)[0]!.nodes.sort()).toEqual(['n0', 'n1', 'n2', 'n3', 'n4', 'n5']);
    // One [1, H, S, S] score tensor alone would take H * S * S * 4 = 8 MiB; the plan's activations stay far below
    // one [S, S] matrix (only Y and small helpers live in the arena).
    const arena = s.report().gpu!.activationBytes;
    expect(arena).toBeLessThan(len * len * 4);
    expect(arena).toBeLessThanOrEqual(h * len * d * 4 * 2);
  });

  it('leaves the chain alone when an intermediate is read elsewhere (the scores are a graph output)', async () => {
    const { bytes, feeds } = chain(1, 6, 8, true);
    const s = await gpuSession(bytes);
    await expectOrt(s, bytes, feeds, 'scores as output');
    expect(attentionFusions(s)).toHaveLength(0);
  });
});
