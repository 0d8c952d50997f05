import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import { allClose } from '../helpers/compare.js';
import { attr } from '../helpers/ir-builder.js';
import { encodeModel, type ModelNode } from '../helpers/onnx-model.js';
import type { DType } from '../../runtime/ir/dtype.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { runModelOrt } from '../helpers/run-model.js';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';
import { runHost } from '../helpers/session-runs.js';

/**
 * The attention fusion (runtime/backends/webgpu/fuse-attention.ts) through the public API: torch.onnx exports
 * (tests/fixtures/attention, scripts/fixtures/attention_fixture.py: a hand-written causal attention with a padding
 * mask at opset 14, nn.MultiheadAttention at opset 17, dynamic batch and sequence) and a hand-built expanded chain
 * with S = 1024. Each runs on WebGPU at several shapes, matches onnxruntime-node within 1e-3, and report() shows the
 * fused node; the long sequence plans no [S, S] buffer. The forms other exporters write (tests/fixtures/attention/forms,
 * scripts/fixtures/attention_forms.py: torch >= 2.1's SDPA with Q and K pre-scaled, HF padding masks, type_as, ...)
 * and hand-built variants (pre-scales, Casts and CastLikes, and the cases that must keep a node outside the fused one
 * or stay unfused) are checked against onnxruntime-node and the CPU backend.
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


async function expectOrt(s: InferenceSession, bytes: Uint8Array, feeds: Record<string, HostTensor>, what: string) {
  const got = await runHost(s, feeds);
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

/** WebGPU against the CPU backend and onnxruntime-node (1e-2 for float16, as tests/webgpu/attention.test.ts). */
async function expectBoth(bytes: Uint8Array, feeds: Record<string, HostTensor>, what: string, tol: number): Promise<InferenceSession> {
  const s = await gpuSession(bytes);
  const cpu = await InferenceSession.create(bytes, { backend: 'cpu' });
  sessions.push(cpu);
  const got = await runHost(s, feeds);
  for (const [want, ref] of [[await runHost(cpu, feeds), 'CPU backend'], [await runModelOrt(bytes, feeds), 'onnxruntime-node']] as const) {
    for (const [name, e] of Object.entries(want)) {
      expect([got[name]!.dtype, got[name]!.shape], `${what} ${name} vs ${ref}`).toEqual([e.dtype, e.shape]);
      const r = allClose(got[name]!, e, { rtol: tol, atol: tol });
      if (!r.ok) expect.fail(`${what} output '${name}' vs ${ref}: ${r.message}`);
    }
  }
  return s;
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
      // MatMul(q, k^T), Div, Where, Softmax and MatMul(p, v) went into the one node, and so did the Reshape/Transpose
      // pairs splitting q, k (its two transposes folded by the importer into one [0, 2, 3, 1]) and v into heads and
      // merging y back: the fused node reads the [B, S, 32] projections and writes the merged output (packed layout).
      expect([...fused[0]!.nodes].map((n) => n.replace(/_\d+$/, '')).sort()).toEqual(
        ['/Div', '/MatMul', '/MatMul', '/Reshape', '/Reshape', '/Reshape', '/Reshape', '/Softmax', '/Transpose', '/Transpose', '/Transpose', '/Transpose', '/Where'],
      );
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
    for (const [b, seq, past] of [[2, 5, 3], [1, 1, 9], [1, 4, 0]]) {
      await expectOrt(s, bytes, gptFeeds(b, seq, past), `B=${b} S=${seq} past=${past}`);
      const fused = attentionFusions(s);
      expect(fused).toHaveLength(2);
      // With a past, each block's fused node takes Concat(past, new) for K and V (writing present.{i}.key/value
      // itself) and the head split/merge Reshapes and Transposes: the decoder form of the packed layout. A past of
      // length 0 keeps the 4-D form (the Concats stay).
      for (const [i, f] of fused.entries()) {
        const names = f.nodes.map((n) => n.replace(`/gpt/blocks.${i}/`, ''));
        for (const n of ['Concat_3', 'Concat_4', 'Reshape', 'Transpose', 'Reshape_3', 'Transpose_4']) expect(names.includes(n), `${n} fused (past ${past})`).toBe(past > 0);
      }
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

describe('attention fusion on the forms exporters write (tests/fixtures/attention/forms, scripts/fixtures/attention_forms.py)', () => {
  const form = (name: string) => new Uint8Array(readFileSync(new URL(`../fixtures/attention/forms/${name}`, import.meta.url)));
  const rng = new Rng(41);
  /** Row b keeps its first len - b keys (row 0 none padded), as padding masks do. */
  const keeps = (b: number, len: number) => Array.from({ length: b * len }, (_, i) => (i % len < len - Math.floor(i / len) ? 1 : 0));
  const feedsFor = (names: readonly string[], b: number, len: number): Record<string, HostTensor> => {
    const f: Record<string, HostTensor> = { x: randomTensor(rng, 'float32', [b, len, 32]) };
    for (const n of names) {
      if (n === 'keep') f[n] = tensorFromNumbers('bool', [b, len], keeps(b, len));
      if (n === 'attention_mask') f[n] = tensorFromNumbers('int64', [b, len], keeps(b, len));
      if (n === 'attn_mask') f[n] = tensorFromNumbers('float32', [len, len], Array.from({ length: len * len }, (_, i) => (i % len <= Math.floor(i / len) ? 0 : -Infinity)));
      // nn.MultiheadAttention's key_padding_mask: true pads (never the first key, so no row is masked throughout).
      if (n === 'pad') f[n] = tensorFromNumbers('bool', [b, len], keeps(b, len).map((k, i) => (i % len === 0 ? 0 : 1 - k)));
    }
    return f;
  };

  // file -> the model nodes the one fused Attention must name. The pre-scaling Muls (torch >= 2.1's SDPA form) are
  // among them, and so are the Reshape/Transpose pairs that split Q, K and V into heads and merge Y back: the fused
  // node reads the [B, S, H*D] projections and writes the merged [B, S, H*D] output itself (packed layout).
  const split = (k: string, v: string) => ['/Reshape', '/Transpose', '/Reshape_1', k, '/Reshape_2', v];
  const merge = (t: string) => [t, '/Reshape_3'];
  const cases: [string, string[]][] = [
    ['sdpa-op14.onnx', [...split('/Transpose_2', '/Transpose_1'), '/Mul_2', '/Mul_1', '/MatMul', '/Softmax', '/MatMul_1', ...merge('/Transpose_3')]],
    ['sdpa-op17.onnx', [...split('/Transpose_2', '/Transpose_1'), '/Mul_2', '/Mul_1', '/MatMul', '/Softmax', '/MatMul_1', ...merge('/Transpose_3')]],
    // The bool mask's Where(keep, 0, -inf) goes in as well: keep becomes the kernel's bool mask.
    ['sdpa-bool-mask-op14.onnx', [...split('/Transpose_2', '/Transpose_1'), '/Mul_2', '/Mul_1', '/MatMul', '/Where', '/Add', '/Softmax', '/MatMul_1', ...merge('/Transpose_3')]],
    ['sdpa-causal-op17.onnx', [...split('/Transpose_3', '/Transpose_2'), '/Mul_2', '/Mul_1', '/MatMul', '/Add', '/Softmax', '/MatMul_1', ...merge('/Transpose_4')]],
    ['q-scaled-op14.onnx', [...split('/Transpose_2', '/Transpose_1'), '/Mul', '/MatMul', '/Softmax', '/MatMul_1', ...merge('/Transpose_3')]],
    ['hf-padding-mask-op14.onnx', [...split('/Transpose_2', '/Transpose_1'), '/MatMul', '/Div', '/Add', '/Softmax', '/MatMul_1', ...merge('/Transpose_3')]],
    ['softmax-f32-op14.onnx', [...split('/Transpose_2', '/Transpose_1'), '/MatMul', '/Mul', '/Cast', '/Softmax', '/Cast_1', '/MatMul_1', ...merge('/Transpose_3')]],
    // bmm over [B*H, S, Dh]: not the packed form; the pre-scaling Div and k's Transpose go in.
    ['mha-masks-op14.onnx', ['/attn/Transpose_4', '/attn/Div_2', '/attn/MatMul_1', '/attn/Mul_5', '/attn/Add_2', '/attn/Softmax', '/attn/MatMul_2']],
  ];
  // Without a mask the whole block is three dispatches: the Q/K/V projections (one grouped matmul), the fused
  // attention and the output projection.
  const dispatches: Record<string, number> = { 'sdpa-bool-mask-op14.onnx': 5, 'sdpa-op14.onnx': 3, 'sdpa-op17.onnx': 3, 'q-scaled-op14.onnx': 3, 'softmax-f32-op14.onnx': 3 };
  for (const [file, nodes] of cases) {
    it(`${file}: one fused node, matches onnxruntime-node and the CPU backend`, async () => {
      const bytes = form(file);
      const s = await gpuSession(bytes);
      const cpu = await InferenceSession.create(bytes, { backend: 'cpu' });
      sessions.push(cpu);
      for (const [b, len] of [[2, 5], [1, 9], [3, 4]] as const) {
        const feeds = feedsFor(s.inputNames, b, len);
        await expectOrt(s, bytes, feeds, `${file} B=${b} S=${len}`);
        const r = allClose((await runHost(s, feeds)).y!, (await runHost(cpu, feeds)).y!, { rtol: 1e-3, atol: 1e-3 });
        if (!r.ok) expect.fail(`${file} B=${b} S=${len} vs CPU backend: ${r.message}`);
        const fused = attentionFusions(s);
        expect(fused).toHaveLength(1);
        expect([...fused[0]!.nodes].sort()).toEqual([...nodes].sort());
        if (dispatches[file]) expect(s.report().gpu!.dispatches, 'dispatches').toBe(dispatches[file]);
      }
    });
  }
});

describe('attention fusion: pre-scaled Q and Kᵀ, Casts and CastLikes in the chain', () => {
  const CODE: Record<string, number> = { float32: 1, float16: 10 };
  const [h, len, d] = [2, 7, 16];

  interface Form {
    dtype?: DType;
    /** A factor on Q before the MatMul: Mul(q, a), Mul(a, q), Div(q, 1/a), or a per-channel [D] vector. */
    q?: 'mul' | 'mul-first' | 'div' | 'vec';
    /** A factor on Transpose(K) before the MatMul: Mul(kt, a), or a per-key [T] vector. */
    k?: 'mul' | 'vec';
    /** The scaled Q is a graph output too. */
    readQ?: boolean;
    /** A Mul(scores, c) after the MatMul. */
    post?: boolean;
    /** A float32 -> float32 Cast / CastLike on the scores between the MatMul and the scale. */
    scoreCast?: 'Cast' | 'CastLike';
    /** The mask is a float16 input Cast to float32 on its own branch before the Add. */
    maskCast?: boolean;
    /**
     * The mask is a bool input made additive: Where(keep, 0, -inf) ('ninf'), Where(drop, -inf, 0) ('not'),
     * Where(keep, 0, -1e4) ('finite'); 'shared': the 'ninf' Where's output is a graph output too.
     */
    boolAdd?: 'ninf' | 'not' | 'finite' | 'shared';
    /** float16 chain: the scores Cast up to float32 before a float32 mask Add. */
    upBeforeMask?: boolean;
    /** Cast / CastLike to float32 before Softmax and back to the chain's dtype after it. */
    softmaxCasts?: 'Cast' | 'CastLike';
  }

  /** The chain in `f`'s form; `chain` flags which nodes the fusion must take (n<i> names, in order). */
  function build(f: Form) {
    const dtype = f.dtype ?? 'float32';
    const rng = new Rng(len + Object.keys(f).length);
    const q = randomTensor(rng, dtype, [1, h, len, d]);
    const k = randomTensor(rng, dtype, [1, h, len, d]);
    const v = randomTensor(rng, dtype, [1, h, len, d]);
    const maskType: DType = f.maskCast ? 'float16' : f.upBeforeMask ? 'float32' : dtype;
    const causal = (i: number) => i % len <= Math.floor(i / len);
    const mask = f.boolAdd
      ? tensorFromNumbers('bool', [len, len], Array.from({ length: len * len }, (_, i) => (causal(i) !== (f.boolAdd === 'not') ? 1 : 0)))
      : tensorFromNumbers(maskType, [len, len], Array.from({ length: len * len }, (_, i) => (causal(i) ? 0 : -1e4)));
    const a = Math.sqrt(1 / Math.sqrt(d));
    const init: Record<string, HostTensor> = {
      a: tensorFromNumbers(dtype, [1], [a]),
      a0: tensorFromNumbers(dtype, [], [a]),
      inv_a: tensorFromNumbers(dtype, [], [1 / a]),
      qvec: tensorFromNumbers(dtype, [d], Array.from({ length: d }, (_, i) => 0.2 + i / d)),
      kvec: tensorFromNumbers(dtype, [len], Array.from({ length: len }, (_, i) => 0.3 + i / len)),
      c: tensorFromNumbers(dtype, [], [f.q || f.k ? 1.5 : 1 / Math.sqrt(d)]),
      like32: tensorFromNumbers('float32', [1], [0]),
      zero: tensorFromNumbers(dtype, [1], [0]),
      ninf: tensorFromNumbers(dtype, [1], [-Infinity]),
      big: tensorFromNumbers(dtype, [1], [-1e4]),
    };
    const nodes: ModelNode[] = [];
    const chain: boolean[] = [];
    const add = (n: ModelNode, inChain: boolean) => (nodes.push(n), chain.push(inChain));
    const cast = (kind: 'Cast' | 'CastLike', x: string, to: DType, out: string, like: string) =>
      kind === 'Cast' ? { op: 'Cast', inputs: [x], outputs: [out], attrs: { to: attr(CODE[to]!) } } : { op: 'CastLike', inputs: [x, like], outputs: [out] };
    let qv = 'q';
    if (f.q === 'mul') add({ op: 'Mul', inputs: ['q', 'a'], outputs: [(qv = 'qs')] }, !f.readQ);
    if (f.q === 'mul-first') add({ op: 'Mul', inputs: ['a0', 'q'], outputs: [(qv = 'qs')] }, !f.readQ);
    if (f.q === 'div') add({ op: 'Div', inputs: ['q', 'inv_a'], outputs: [(qv = 'qs')] }, !f.readQ);
    if (f.q === 'vec') add({ op: 'Mul', inputs: ['q', 'qvec'], outputs: [(qv = 'qs')] }, false);
    add({ op: 'Transpose', inputs: ['k'], outputs: ['kt'], attrs: { perm: attr([0, 1, 3, 2]) } }, f.k !== 'vec');
    let kv = 'kt';
    if (f.k === 'mul') add({ op: 'Mul', inputs: ['kt', 'a0'], outputs: [(kv = 'kts')] }, true);
    if (f.k === 'vec') add({ op: 'Mul', inputs: ['kt', 'kvec'], outputs: [(kv = 'kts')] }, false);
    add({ op: 'MatMul', inputs: [qv, kv], outputs: ['scores'] }, true);
    let cur = 'scores';
    if (f.scoreCast) add(cast(f.scoreCast, cur, 'float32', (cur = 'scores32'), 'like32'), true);
    if (f.post) add({ op: 'Mul', inputs: [cur, 'c'], outputs: [(cur = 'scaled')] }, true);
    if (f.upBeforeMask) add(cast('Cast', cur, 'float32', (cur = 'up'), 'like32'), true);
    let m = 'mask';
    if (f.maskCast) add({ op: 'Cast', inputs: ['mask'], outputs: [(m = 'mask32')], attrs: { to: attr(1) } }, false);
    if (f.boolAdd) {
      const [a, b] = f.boolAdd === 'not' ? ['ninf', 'zero'] : ['zero', f.boolAdd === 'finite' ? 'big' : 'ninf'];
      add({ op: 'Where', inputs: ['mask', a, b], outputs: [(m = 'additive')] }, f.boolAdd === 'ninf' || f.boolAdd === 'not');
    }
    add({ op: 'Add', inputs: [cur, m], outputs: [(cur = 'masked')] }, true);
    if (f.softmaxCasts) add(cast(f.softmaxCasts, cur, 'float32', (cur = 'masked32'), 'like32'), true);
    add({ op: 'Softmax', inputs: [cur], outputs: [(cur = 'p')], attrs: { axis: attr(-1) } }, true);
    if (f.softmaxCasts || f.upBeforeMask) add(cast(f.softmaxCasts ?? 'Cast', cur, dtype, (cur = 'pd'), 'v'), true);
    add({ op: 'MatMul', inputs: [cur, 'v'], outputs: ['y'] }, true);
    const used = new Set(nodes.flatMap((n) => n.inputs));
    const bytes = encodeModel({
      nodes,
      inputs: { q, k, v, mask },
      initializers: Object.fromEntries(Object.entries(init).filter(([n]) => used.has(n))),
      outputs: f.readQ ? ['y', 'qs'] : f.boolAdd === 'shared' ? ['y', 'additive'] : ['y'],
    });
    return { bytes, feeds: { q, k, v, mask }, fused: nodes.map((_, i) => `n${i}`).filter((_, i) => chain[i]) };
  }

  /** WebGPU against the CPU backend and onnxruntime-node (1e-3 for float32, 1e-2 for float16 as above). */
  async function check(f: Form): Promise<{ fused: string[]; got: string[][] }> {
    const { bytes, feeds, fused } = build(f);
    const tol = f.dtype === 'float16' ? 1e-2 : 1e-3;
    const s = await expectBoth(bytes, feeds, JSON.stringify(f), tol);
    return { fused, got: attentionFusions(s).map((x) => [...x.nodes].sort()) };
  }

  const fusedForms: [string, Form][] = [
    ['torch >= 2.1 SDPA: Q and Kᵀ each times sqrt(scale), no scale after', { q: 'mul', k: 'mul' }],
    ['the same in float16', { dtype: 'float16', q: 'mul', k: 'mul' }],
    ['Q alone pre-scaled, Mul(a, q)', { q: 'mul-first' }],
    ['Q pre-divided, with a scale after the MatMul too', { q: 'div', post: true }],
    ['Kᵀ alone pre-scaled', { k: 'mul' }],
    ['a float32 -> float32 Cast on the scores before the scale', { post: true, scoreCast: 'Cast' }],
    ['a float32 -> float32 CastLike on the scores before the scale', { post: true, scoreCast: 'CastLike' }],
    ['CastLike to float32 around Softmax and back (float16)', { dtype: 'float16', post: true, softmaxCasts: 'CastLike' }],
    ['CastLike around Softmax in float32', { post: true, softmaxCasts: 'CastLike' }],
    ['the mask Cast to the scores\' dtype on its own branch', { post: true, maskCast: true }],
    ['a bool mask added as Where(keep, 0, -inf): keep becomes the bool mask', { post: true, boolAdd: 'ninf' }],
    ['a bool mask added as Where(drop, -inf, 0): Not(drop) becomes the bool mask', { q: 'mul', k: 'mul', boolAdd: 'not' }],
  ];
  for (const [name, f] of fusedForms) {
    it(`${name}: fused`, async () => {
      const { fused, got } = await check(f);
      expect(got).toEqual([[...fused].sort()]);
    });
  }

  // The chain still fuses, but these factors stay separate nodes: folding them into the scale would change results.
  const keptForms: [string, Form][] = [
    ['a per-channel factor on Q ([D] vector, not a scale)', { q: 'vec', post: true }],
    ['a per-key factor on Kᵀ ([T] vector)', { k: 'vec', post: true }],
    ['a pre-scaled Q that is also a graph output', { q: 'mul', k: 'mul', readQ: true }],
    ['Where(keep, 0, -1e4) (a finite fill adds to the score, it does not replace it): a float mask', { post: true, boolAdd: 'finite' }],
    ['Where(keep, 0, -inf) whose output is also a graph output: a float mask', { post: true, boolAdd: 'shared' }],
  ];
  for (const [name, f] of keptForms) {
    it(`${name}: the factor stays outside the fused node`, async () => {
      const { fused, got } = await check(f);
      expect(got).toEqual([[...fused].sort()]);
    });
  }

  it('float16 scores Cast up to float32 before a float32 mask Add stay unfused (the kernel\'s mask is Q\'s type)', async () => {
    const { got } = await check({ dtype: 'float16', post: true, upBeforeMask: true });
    expect(got).toEqual([]);
  });
});

describe('attention fusion on the packed layout: heads split from [B, S, H*D] projections and merged back', () => {
  const [b, len, h, d] = [2, 6, 4, 8];

  interface Packed {
    /** Key/value heads (1: MQA written with broadcasting). */
    kvHeads?: number;
    /** Q's head-split Transpose output is a graph output too. */
    readQ?: boolean;
    /** Y merged to [B*S, H*D] instead of [B, S, H*D]. */
    flatY?: boolean;
    /** A causal bool mask through Where(mask, S, -inf). */
    causal?: boolean;
    /** float16 projections, Softmax between Cast(float32) and Cast(float16) as float16 exports write it. */
    f16?: boolean;
  }

  function build(f: Packed) {
    const kvh = f.kvHeads ?? h;
    const rng = new Rng(kvh + (f.readQ ? 10 : 0) + (f.flatY ? 20 : 0) + (f.causal ? 40 : 0) + (f.f16 ? 80 : 0));
    const dt: DType = f.f16 ? 'float16' : 'float32';
    const q = randomTensor(rng, dt, [b, len, h * d]);
    const k = randomTensor(rng, dt, [b, len, kvh * d]);
    const v = randomTensor(rng, dt, [b, len, kvh * d]);
    const shape = (n: number[]) => tensorFromNumbers('int64', [n.length], n);
    const nodes: ModelNode[] = [
      { op: 'Reshape', inputs: ['q', 'q_shape'], outputs: ['q4r'] },
      { op: 'Transpose', inputs: ['q4r'], outputs: ['q4'], attrs: { perm: attr([0, 2, 1, 3]) } },
      { op: 'Reshape', inputs: ['k', 'kv_shape'], outputs: ['k4r'] },
      { op: 'Transpose', inputs: ['k4r'], outputs: ['kt'], attrs: { perm: attr([0, 2, 3, 1]) } },
      { op: 'Reshape', inputs: ['v', 'kv_shape'], outputs: ['v4r'] },
      { op: 'Transpose', inputs: ['v4r'], outputs: ['v4'], attrs: { perm: attr([0, 2, 1, 3]) } },
      { op: 'MatMul', inputs: ['q4', 'kt'], outputs: ['scores'] },
      { op: 'Mul', inputs: ['scores', 'scale'], outputs: ['scaled'] },
      ...(f.causal ? [{ op: 'Where', inputs: ['causal', 'scaled', 'ninf'], outputs: ['masked'] }] : []),
      ...(f.f16
        ? [
            { op: 'Cast', inputs: [f.causal ? 'masked' : 'scaled'], outputs: ['up'], attrs: { to: attr(1) } },
            { op: 'Softmax', inputs: ['up'], outputs: ['p32'], attrs: { axis: attr(-1) } },
            { op: 'Cast', inputs: ['p32'], outputs: ['p'], attrs: { to: attr(10) } },
          ]
        : [{ op: 'Softmax', inputs: [f.causal ? 'masked' : 'scaled'], outputs: ['p'], attrs: { axis: attr(-1) } }]),
      { op: 'MatMul', inputs: ['p', 'v4'], outputs: ['y4'] },
      { op: 'Transpose', inputs: ['y4'], outputs: ['yt'], attrs: { perm: attr([0, 2, 1, 3]) } },
      { op: 'Reshape', inputs: ['yt', 'y_shape'], outputs: ['y'] },
    ];
    const bytes = encodeModel({
      nodes,
      inputs: { q, k, v },
      initializers: {
        q_shape: shape([b, len, h, d]),
        kv_shape: shape([b, len, kvh, d]),
        y_shape: shape(f.flatY ? [b * len, h * d] : [b, len, h * d]),
        scale: tensorFromNumbers(dt, [], [1 / Math.sqrt(d)]),
        ...(f.causal
          ? {
              causal: tensorFromNumbers('bool', [len, len], Array.from({ length: len * len }, (_, i) => (i % len <= Math.floor(i / len) ? 1 : 0))),
              ninf: tensorFromNumbers(dt, [], [-Infinity]),
            }
          : {}),
      },
      outputs: f.readQ ? ['y', 'q4'] : ['y'],
    });
    return { bytes, feeds: { q, k, v }, count: nodes.length };
  }

  async function check(f: Packed) {
    const { bytes, feeds, count } = build(f);
    // float16: 1e-2 as the Cast cases above (the kernel rounds once at its store, the chain at each step).
    const s = await expectBoth(bytes, feeds, JSON.stringify(f), f.f16 ? 1e-2 : 1e-3);
    const fused = attentionFusions(s);
    expect(fused).toHaveLength(1);
    return { nodes: [...fused[0]!.nodes].sort(), all: Array.from({ length: count }, (_, i) => `n${i}`).sort(), dispatches: s.report().gpu!.dispatches };
  }

  it('every split and merge goes into the fused node: one dispatch', async () => {
    const { nodes, all, dispatches } = await check({});
    expect(nodes).toEqual(all);
    expect(dispatches).toBe(1);
  });

  it('float16 with Softmax between Casts and a causal mask: packed, one dispatch', async () => {
    const { nodes, all, dispatches } = await check({ f16: true, causal: true });
    expect(nodes).toEqual(all);
    expect(dispatches).toBe(1);
  });

  it('with a causal bool mask (Where -inf)', async () => {
    const { nodes, all } = await check({ causal: true });
    expect(nodes).toEqual(all);
  });

  it('one key/value head for four query heads (MQA by broadcasting): kv_num_heads 1', async () => {
    const { nodes, all, dispatches } = await check({ kvHeads: 1 });
    expect(nodes).toEqual(all);
    expect(dispatches).toBe(1);
  });

  it('a head-split Q that is also a graph output keeps the 4-D form (its Transpose stays)', async () => {
    const { nodes } = await check({ readQ: true });
    expect(nodes).not.toContain('n1');
    expect(nodes).not.toContain('n11');
  });

  it('Y merged to another shape ([B*S, H*D]) keeps the 4-D form (the merge stays)', async () => {
    const { nodes } = await check({ flatY: true });
    expect(nodes).not.toContain('n11');
    expect(nodes).not.toContain('n12');
  });
});
