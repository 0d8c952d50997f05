import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import { allClose } from '../helpers/compare.js';
import { attr } from '../helpers/ir-builder.js';
import { encodeModel } from '../helpers/onnx-model.js';
import type { DType } from '../../runtime/ir/dtype.js';
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

describe('attention fusion with Softmax between Casts (float16 exports, autocast)', () => {
  const CODE: Record<string, number> = { float32: 1, float16: 10 }; // TensorProto data types

  /**
   * MatMul(Q, Transpose(K)) -> Mul(scale) -> Add(mask) -> [Cast(pre)] -> Softmax -> [Cast(post)] -> MatMul(V) in
   * `dtype`, as torch.onnx writes softmax(scores.float()).to(q.dtype). `readP` makes the Softmax output a graph
   * output too; `vType` gives V another type than Q and K.
   */
  function castChain(dtype: DType, casts: { pre?: DType; post?: DType }, readP = false, vType: DType = dtype) {
    const [h, s, d] = [2, 7, 16];
    const rng = new Rng(s + (casts.pre ? 1 : 0) + (casts.post ? 2 : 0));
    const q = randomTensor(rng, dtype, [1, h, s, d]);
    const k = randomTensor(rng, dtype, [1, h, s, d]);
    const v = randomTensor(rng, vType, [1, h, s, d]);
    // Causal: -1e4 fits float16 and still takes a key out after exp.
    const mask = tensorFromNumbers(dtype, [s, s], Array.from({ length: s * s }, (_, i) => (i % s <= Math.floor(i / s) ? 0 : -1e4)));
    const nodes = [
      { op: 'Transpose', inputs: ['k'], outputs: ['kt'], attrs: { perm: attr([0, 1, 3, 2]) } },
      { op: 'MatMul', inputs: ['q', 'kt'], outputs: ['scores'] },
      { op: 'Mul', inputs: ['scores', 'scale'], outputs: ['scaled'] },
      { op: 'Add', inputs: ['scaled', 'mask'], outputs: ['masked'] },
    ];
    let cur = 'masked';
    if (casts.pre) nodes.push({ op: 'Cast', inputs: [cur], outputs: [(cur = 'up')], attrs: { to: attr(CODE[casts.pre]!) } });
    nodes.push({ op: 'Softmax', inputs: [cur], outputs: [(cur = 'p')], attrs: { axis: attr(-1) } });
    if (casts.post) nodes.push({ op: 'Cast', inputs: [cur], outputs: [(cur = 'down')], attrs: { to: attr(CODE[casts.post]!) } });
    nodes.push({ op: 'MatMul', inputs: [cur, 'v'], outputs: ['y'] });
    const bytes = encodeModel({
      nodes,
      inputs: { q, k, v, mask },
      initializers: { scale: tensorFromNumbers(dtype, [], [1 / Math.sqrt(d)]) },
      outputs: readP ? ['y', 'p'] : ['y'],
    });
    return { bytes, feeds: { q, k, v, mask }, count: nodes.length };
  }

  /** WebGPU against the CPU backend and onnxruntime-node (1e-2 for float16, as tests/webgpu/attention.test.ts). */
  async function expectBoth(bytes: Uint8Array, feeds: Record<string, HostTensor>, what: string, tol: number): Promise<InferenceSession> {
    const s = await gpuSession(bytes);
    const cpu = await InferenceSession.create(bytes, { backend: 'cpu' });
    sessions.push(cpu);
    const got = await runOn(s, feeds);
    for (const [want, ref] of [[await runOn(cpu, feeds), 'CPU backend'], [await runModelOrt(bytes, feeds), 'onnxruntime-node']] as const) {
      for (const [name, e] of Object.entries(want)) {
        expect([got[name]!.dtype, got[name]!.shape], `${what} ${name} vs ${ref}`).toEqual([e.dtype, e.shape]);
        const r = allClose(got[name]!, e, { rtol: tol, atol: tol });
        if (!r.ok) expect.fail(`${what} output '${name}' vs ${ref}: ${r.message}`);
      }
    }
    return s;
  }

  const fusedCases: [string, DType, { pre?: DType; post?: DType }][] = [
    ['float16: Cast(float32) -> Softmax -> Cast(float16)', 'float16', { pre: 'float32', post: 'float16' }],
    ['float32 with both Casts (to float32)', 'float32', { pre: 'float32', post: 'float32' }],
    ['float32 with the Cast before Softmax only', 'float32', { pre: 'float32' }],
    ['float32 with the Cast after Softmax only', 'float32', { post: 'float32' }],
  ];
  for (const [name, dtype, casts] of fusedCases) {
    it(`${name}: fused`, async () => {
      const { bytes, feeds, count } = castChain(dtype, casts);
      const s = await expectBoth(bytes, feeds, name, dtype === 'float16' ? 1e-2 : 1e-3);
      const fused = attentionFusions(s);
      expect(fused).toHaveLength(1);
      // Every model node went into the fused node, the Casts included (the float32 -> float32 ones too: the
      // import keeps them, so the matcher has to take them).
      expect(fused[0]!.nodes.sort()).toEqual(Array.from({ length: count }, (_, i) => `n${i}`));
    });
  }

  it('a Cast to another type (float16 in a float32 chain) stays unfused', async () => {
    const { bytes, feeds } = castChain('float32', { pre: 'float16', post: 'float32' });
    const s = await expectBoth(bytes, feeds, 'Cast to float16', 1e-3);
    expect(attentionFusions(s)).toHaveLength(0);
  });

  it('float16 scores with an up-Cast and no Cast back (float32 probabilities times a float32 V) stay unfused', async () => {
    const { bytes, feeds } = castChain('float16', { pre: 'float32' }, false, 'float32');
    const s = await expectBoth(bytes, feeds, 'no Cast back', 1e-2);
    expect(attentionFusions(s)).toHaveLength(0);
  });

  it('float16 with the Softmax output read elsewhere stays unfused', async () => {
    const { bytes, feeds } = castChain('float16', { pre: 'float32', post: 'float16' }, true);
    const s = await expectBoth(bytes, feeds, 'p as output', 1e-2);
    expect(attentionFusions(s)).toHaveLength(0);
  });
});
