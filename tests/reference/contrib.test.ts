import { describe, expect, it } from 'vitest';
import { exportOnnx, importOnnx } from '../../importers/onnx/index.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { allClose } from '../helpers/compare.js';
import { attr } from '../helpers/ir-builder.js';
import { encodeModel, type ModelNode } from '../helpers/onnx-model.js';
import { inferNode } from '../helpers/ort-single-node.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { runModelCpu, runModelOrt } from '../helpers/run-model.js';

/**
 * com.microsoft transformer ops on the CPU reference, through InferenceSession.create(bytes, { backend: 'cpu' }),
 * against onnxruntime-node running the same one-node model. BiasAdd and BiasSplitGelu have no CPU kernel in
 * onnxruntime, so their reference is onnxruntime running the same formula as standard ops (Add, Split, Gelu, Mul).
 */

const MS = 'com.microsoft';
const rng = new Rng(1234);
const OPSETS = { '': 21, [MS]: 1 };
const SPECIALS = [0, -0, 8, -8, 30, -30];

const rand = (shape: number[], dtype: DType = 'float32', lo = -2, hi = 2) => randomTensor(rng, dtype, shape, { lo, hi });
const ids = (shape: number[], values: number[]) => tensorFromNumbers('int64', shape, values);

interface Case {
  op: string;
  domain?: string;
  attrs?: Record<string, Attr>;
  /** Inputs in order; undefined = omitted optional input. */
  inputs: (HostTensor | undefined)[];
  outputs?: number;
  /** Output indices left unnamed (omitted optional outputs). */
  skipOutputs?: number[];
}

function oneNode(c: Case): { bytes: Uint8Array; feeds: Record<string, HostTensor> } {
  const feeds: Record<string, HostTensor> = {};
  const names = c.inputs.map((t, i) => {
    if (!t) return '';
    feeds[`in${i}`] = t;
    return `in${i}`;
  });
  const outputs = Array.from({ length: c.outputs ?? 1 }, (_, i) => (c.skipOutputs?.includes(i) ? '' : `out${i}`));
  const node: ModelNode = { op: c.op, domain: c.domain ?? MS, inputs: names, outputs, attrs: c.attrs };
  return { bytes: encodeModel({ nodes: [node], inputs: feeds, outputs: outputs.filter(Boolean), opsets: OPSETS }), feeds };
}

function expectClose(got: Record<string, unknown>, want: Record<string, HostTensor>, what: string, rtol: number, atol: number) {
  expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  for (const [name, e] of Object.entries(want)) {
    const a = got[name] as HostTensor;
    expect(a.dtype, `${what} ${name} dtype`).toBe(e.dtype);
    expect(a.shape, `${what} ${name} shape`).toEqual(e.shape);
    const r = allClose(a, e, { rtol, atol });
    if (!r.ok) expect.fail(`${what} output '${name}': ${r.message}`);
  }
}

/** The CPU backend and onnxruntime-node on the same one-node model. */
async function againstOrt(c: Case, tol: { rtol?: number; atol?: number } = {}) {
  const { bytes, feeds } = oneNode(c);
  const want = await runModelOrt(bytes, feeds);
  const got = await runModelCpu(bytes, feeds);
  const f16 = c.inputs[0]?.dtype === 'float16';
  expectClose(got, want, `${c.op} ${JSON.stringify(c.attrs ?? {})}`, tol.rtol ?? (f16 ? 4e-3 : 2e-5), tol.atol ?? (f16 ? 4e-3 : 2e-5));
}

describe('com.microsoft GELU family on the CPU, against onnxruntime-node', () => {
  it('Gelu (float32 with large magnitudes, float16)', async () => {
    await againstOrt({ op: 'Gelu', inputs: [randomTensor(rng, 'float32', [3, 7, 5], { lo: -4, hi: 4, specials: SPECIALS })] });
    await againstOrt({ op: 'Gelu', inputs: [rand([2, 9], 'float16')] });
  });

  it('FastGelu with and without bias', async () => {
    await againstOrt({ op: 'FastGelu', inputs: [randomTensor(rng, 'float32', [2, 3, 6], { lo: -4, hi: 4, specials: SPECIALS })] });
    await againstOrt({ op: 'FastGelu', inputs: [rand([2, 3, 6]), rand([6])] });
    await againstOrt({ op: 'FastGelu', inputs: [rand([5, 7]), undefined] });
  });

  it('BiasGelu', async () => {
    await againstOrt({ op: 'BiasGelu', inputs: [rand([4, 3, 10]), rand([10])] });
    await againstOrt({ op: 'BiasGelu', inputs: [rand([7]), rand([7])] });
  });

  it('QuickGelu with the default alpha and others', async () => {
    await againstOrt({ op: 'QuickGelu', inputs: [randomTensor(rng, 'float32', [3, 11], { lo: -6, hi: 6, specials: SPECIALS })] });
    for (const alpha of [1, -0.7, 2.5]) await againstOrt({ op: 'QuickGelu', attrs: { alpha: attr(alpha, true) }, inputs: [rand([2, 2, 9])] });
  });
});

describe('BiasAdd and BiasSplitGelu on the CPU, against onnxruntime-node running their formulas', () => {
  it('BiasAdd: X + bias + skip', async () => {
    for (const shape of [[2, 3, 8], [1, 5, 7]]) {
      const x = rand(shape);
      const bias = rand([shape[2]!]);
      const skip = rand(shape);
      const got = await runModelCpu(oneNode({ op: 'BiasAdd', inputs: [x, bias, skip] }).bytes, { in0: x, in1: bias, in2: skip });
      const ref = encodeModel({
        nodes: [{ op: 'Add', inputs: ['x', 'b'], outputs: ['t'] }, { op: 'Add', inputs: ['t', 's'], outputs: ['out0'] }],
        inputs: { x, b: bias, s: skip },
        outputs: ['out0'],
      });
      expectClose(got, await runModelOrt(ref, { x, b: bias, s: skip }), 'BiasAdd', 1e-6, 1e-6);
    }
  });

  it('BiasSplitGelu: (X + bias) split in halves, left * Gelu(right)', async () => {
    for (const [shape, dtype] of [[[2, 3, 8], 'float32'], [[1, 5, 14], 'float32'], [[2, 2, 6], 'float16']] as [number[], DType][]) {
      const x = rand(shape, dtype);
      const bias = rand([shape[2]!], dtype);
      const got = await runModelCpu(oneNode({ op: 'BiasSplitGelu', inputs: [x, bias] }).bytes, { in0: x, in1: bias });
      const ref = encodeModel({
        nodes: [
          { op: 'Add', inputs: ['x', 'b'], outputs: ['h'] },
          { op: 'Split', inputs: ['h'], outputs: ['left', 'right'], attrs: { axis: attr(-1), num_outputs: attr(2) } },
          { op: 'Gelu', domain: MS, inputs: ['right'], outputs: ['g'] },
          { op: 'Mul', inputs: ['left', 'g'], outputs: ['out0'] },
        ],
        inputs: { x, b: bias },
        outputs: ['out0'],
        opsets: OPSETS,
      });
      const tol = dtype === 'float16' ? 8e-3 : 1e-5;
      expectClose(got, await runModelOrt(ref, { x, b: bias }), 'BiasSplitGelu', tol, tol);
    }
  });
});

describe('com.microsoft normalizations on the CPU, against onnxruntime-node', () => {
  it('SkipLayerNormalization: all four outputs, beta and bias each optional, epsilon', async () => {
    const [b, s, h] = [2, 3, 10];
    for (const [beta, bias] of [[true, true], [false, false], [true, false], [false, true]]) {
      const inputs = [rand([b, s, h]), rand([b, s, h]), rand([h], 'float32', 0.5, 1.5), beta ? rand([h]) : undefined, bias ? rand([h]) : undefined];
      await againstOrt({ op: 'SkipLayerNormalization', inputs, outputs: 4 });
    }
    await againstOrt({ op: 'SkipLayerNormalization', attrs: { epsilon: attr(0.25, true) }, inputs: [rand([1, 4, 6]), rand([1, 4, 6]), rand([6])], outputs: 4 });
  });

  it('SkipLayerNormalization: skip broadcast over the batch ([S, H], [1, S, H]), 2-D input, omitted outputs, float16', async () => {
    await againstOrt({ op: 'SkipLayerNormalization', inputs: [rand([3, 4, 8]), rand([4, 8]), rand([8]), rand([8])], outputs: 4 });
    await againstOrt({ op: 'SkipLayerNormalization', inputs: [rand([3, 4, 8]), rand([1, 4, 8]), rand([8]), undefined, rand([8])], outputs: 4 });
    await againstOrt({ op: 'SkipLayerNormalization', inputs: [rand([5, 9]), rand([5, 9]), rand([9]), rand([9])], outputs: 4, skipOutputs: [1, 2] });
    await againstOrt({ op: 'SkipLayerNormalization', inputs: [rand([2, 3, 16], 'float16'), rand([2, 3, 16], 'float16'), rand([16], 'float16'), rand([16], 'float16'), rand([16], 'float16')], outputs: 4 }, { rtol: 1e-2, atol: 1e-2 });
  });

  it('SkipSimplifiedLayerNormalization: with and without bias, epsilon, float16', async () => {
    await againstOrt({ op: 'SkipSimplifiedLayerNormalization', inputs: [rand([2, 3, 12]), rand([2, 3, 12]), rand([12]), rand([12])], outputs: 4 });
    await againstOrt({ op: 'SkipSimplifiedLayerNormalization', attrs: { epsilon: attr(0.1, true) }, inputs: [rand([4, 7]), rand([4, 7]), rand([7])], outputs: 4, skipOutputs: [1] });
    await againstOrt({ op: 'SkipSimplifiedLayerNormalization', inputs: [rand([3, 2, 8], 'float16'), rand([3, 2, 8], 'float16'), rand([8], 'float16')], outputs: 4, skipOutputs: [1] }, { rtol: 1e-2, atol: 1e-2 });
  });

  it('SimplifiedLayerNormalization (default domain, as onnxruntime registers it): axis, epsilon, stash_type, broadcast scale', async () => {
    await againstOrt({ op: 'SimplifiedLayerNormalization', domain: '', inputs: [rand([2, 3, 10]), rand([10])], outputs: 2 });
    await againstOrt({ op: 'SimplifiedLayerNormalization', domain: '', attrs: { axis: attr(1), epsilon: attr(0.3, true), stash_type: attr(1) }, inputs: [rand([2, 3, 4]), rand([3, 4])], outputs: 2 });
    await againstOrt({ op: 'SimplifiedLayerNormalization', domain: '', attrs: { axis: attr(-2) }, inputs: [rand([2, 3, 4]), rand([1, 4])], outputs: 2 });
    await againstOrt({ op: 'SimplifiedLayerNormalization', domain: '', inputs: [rand([5, 6], 'float16'), rand([6], 'float16')] }, { rtol: 1e-2, atol: 1e-2 });
  });

  it('SimplifiedLayerNormalization in the com.microsoft domain equals onnxruntime default-domain result', async () => {
    const x = rand([3, 2, 9]);
    const scale = rand([9]);
    const ms = oneNode({ op: 'SimplifiedLayerNormalization', attrs: { epsilon: attr(1e-3, true) }, inputs: [x, scale], outputs: 2 });
    const dflt = oneNode({ op: 'SimplifiedLayerNormalization', domain: '', attrs: { epsilon: attr(1e-3, true) }, inputs: [x, scale], outputs: 2 });
    expectClose(await runModelCpu(ms.bytes, ms.feeds), await runModelOrt(dflt.bytes, dflt.feeds), 'SimplifiedLayerNormalization', 2e-5, 2e-5);
  });
});

describe('com.microsoft RotaryEmbedding on the CPU, against onnxruntime-node', () => {
  const caches = (rows: number, half: number, dtype: DType = 'float32') => [rand([rows, half], dtype, -1, 1), rand([rows, half], dtype, -1, 1)];

  it('[B, S, N*H] input, start-offset and [B, S] position ids, interleaved or not', async () => {
    for (const interleaved of [0, 1]) {
      await againstOrt({ op: 'RotaryEmbedding', attrs: { interleaved: attr(interleaved) }, inputs: [rand([2, 3, 16]), ids([1], [2]), ...caches(8, 8)] });
      await againstOrt({ op: 'RotaryEmbedding', attrs: { interleaved: attr(interleaved) }, inputs: [rand([2, 3, 24]), ids([2, 3], [0, 5, 1, 7, 7, 2]), ...caches(8, 4)] });
      await againstOrt({ op: 'RotaryEmbedding', attrs: { interleaved: attr(interleaved) }, inputs: [rand([1, 2, 8]), ids([], [3]), ...caches(5, 4)] });
    }
  });

  it('[B, N, S, H] input, num_heads and a partial rotary_embedding_dim', async () => {
    for (const interleaved of [0, 1]) {
      await againstOrt({ op: 'RotaryEmbedding', attrs: { interleaved: attr(interleaved), num_heads: attr(3) }, inputs: [rand([2, 3, 4, 6]), ids([2, 4], [0, 1, 2, 3, 6, 5, 4, 3]), ...caches(7, 3)] });
      await againstOrt({
        op: 'RotaryEmbedding',
        attrs: { interleaved: attr(interleaved), num_heads: attr(2), rotary_embedding_dim: attr(4) },
        inputs: [rand([2, 3, 20]), ids([1], [1]), ...caches(6, 2)],
      });
      await againstOrt({
        op: 'RotaryEmbedding',
        attrs: { interleaved: attr(interleaved), num_heads: attr(2), rotary_embedding_dim: attr(6) },
        inputs: [rand([1, 2, 3, 10]), ids([1, 3], [2, 0, 1]), ...caches(4, 3)],
      });
    }
  });

  it('scale and is_packed_batching leave the output as onnxruntime leaves it; float16', async () => {
    await againstOrt({ op: 'RotaryEmbedding', attrs: { scale: attr(0.5, true), is_packed_batching: attr(1) }, inputs: [rand([2, 2, 8]), ids([1], [0]), ...caches(4, 4)] });
    await againstOrt({ op: 'RotaryEmbedding', attrs: { interleaved: attr(1) }, inputs: [rand([2, 3, 16], 'float16'), ids([2, 3], [1, 2, 3, 0, 0, 4]), ...caches(5, 8, 'float16')] }, { rtol: 5e-3, atol: 5e-3 });
  });

  it('a position outside the caches is a typed error naming it', async () => {
    const c = oneNode({ op: 'RotaryEmbedding', inputs: [rand([1, 2, 8]), ids([1], [4]), ...caches(5, 4)] });
    await expect(runModelCpu(c.bytes, c.feeds)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('position 5') });
  });
});

describe('com.microsoft schemas: symbolic dims, typed errors', () => {
  const f32 = (...shape: (number | string)[]) => ({ dtype: 'float32' as const, shape });
  it('infers shapes on symbolic batch and sequence dims', () => {
    expect(inferNode('com.microsoft.FastGelu', {}, [f32('B', 'S', 8), f32(8)])).toEqual([f32('B', 'S', 8)]);
    expect(inferNode('com.microsoft.BiasSplitGelu', {}, [f32('B', 'S', 8), f32(8)])).toEqual([f32('B', 'S', 4)]);
    expect(inferNode('com.microsoft.BiasSplitGelu', {}, [f32('B', 'S', 'D'), f32('D')])[0]!.shape).toEqual(['B', 'S', 's0']);
    const skip = inferNode('com.microsoft.SkipLayerNormalization', {}, [f32('B', 'S', 8), f32('S', 8), f32(8)], 4);
    expect(skip).toEqual([f32('B', 'S', 8), f32('B', 'S', 1), f32('B', 'S', 1), f32('B', 'S', 8)]);
    expect(inferNode('com.microsoft.SimplifiedLayerNormalization', { axis: attr(1) }, [f32('B', 'S', 8), f32(8)], 2)).toEqual([f32('B', 'S', 8), f32('B', 1, 1)]);
    const rot = inferNode('com.microsoft.RotaryEmbedding', {}, [f32('B', 'S', 16), { dtype: 'int64', shape: ['B', 'S'] }, f32('M', 4), f32('M', 4)]);
    expect(rot).toEqual([f32('B', 'S', 16)]);
  });

  it('rejects shapes and types that can never run', () => {
    expect(() => inferNode('com.microsoft.BiasGelu', {}, [f32(2, 8), f32(7)])).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH' }));
    expect(() => inferNode('com.microsoft.BiasSplitGelu', {}, [f32(2, 3, 7), f32(7)])).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH' }));
    expect(() => inferNode('com.microsoft.SkipLayerNormalization', {}, [f32(2, 3, 8), f32(3, 7), f32(8)])).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH' }));
    expect(() => inferNode('com.microsoft.SkipSimplifiedLayerNormalization', {}, [f32(2, 8), f32(8), f32(8)])).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH' }));
    expect(() => inferNode('com.microsoft.Gelu', {}, [{ dtype: 'int32', shape: [3] }])).toThrow(expect.objectContaining({ code: 'DTYPE_MISMATCH' }));
    expect(() => inferNode('com.microsoft.SimplifiedLayerNormalization', { stash_type: attr(10) }, [f32(2, 4), f32(4)])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    const rot = (x: number[], cache: number[], attrs: Record<string, Attr> = {}) => () => inferNode('com.microsoft.RotaryEmbedding', attrs, [f32(...x), { dtype: 'int64', shape: [1] }, f32(...cache), f32(...cache)]);
    expect(rot([1, 2, 10], [4, 4])).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH' }));
    expect(rot([1, 2, 16], [4, 4], { num_heads: attr(2), rotary_embedding_dim: attr(4) })).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH' }));
    expect(rot([1, 2, 16], [4, 2], { rotary_embedding_dim: attr(4) })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('imports the com.microsoft domain into IR ops named by it', async () => {
    const { bytes } = oneNode({ op: 'QuickGelu', attrs: { alpha: attr(1.5, true) }, inputs: [rand([2, 3])] });
    const { graph } = await importOnnx(bytes);
    expect(graph.nodes.map((n) => [n.op, n.domain])).toEqual([['com.microsoft.QuickGelu', '']]);
  });

  it('exportOnnx writes the ops back to their domains: onnxruntime runs the exported model as the original', async () => {
    const feeds = { x: rand([2, 3, 8]), skip: rand([2, 3, 8]) };
    const bytes = encodeModel({
      nodes: [
        { op: 'SkipLayerNormalization', domain: MS, inputs: ['x', 'skip', 'gamma'], outputs: ['ln', '', '', 'sum'], attrs: { epsilon: attr(1e-5, true) } },
        { op: 'FastGelu', domain: MS, inputs: ['ln', 'bias'], outputs: ['act'] },
        { op: 'SimplifiedLayerNormalization', inputs: ['act', 'gamma'], outputs: ['rms'] },
        { op: 'BiasGelu', domain: MS, inputs: ['rms', 'bias'], outputs: ['y'] },
      ],
      inputs: feeds,
      initializers: { gamma: rand([8]), bias: rand([8]) },
      outputs: ['y', 'sum'],
      opsets: OPSETS,
    });
    const exported = exportOnnx((await importOnnx(bytes)).graph);
    const nodes = (await importOnnx(exported)).graph.nodes.map((n) => n.op);
    expect(nodes).toEqual(['com.microsoft.SkipLayerNormalization', 'com.microsoft.FastGelu', 'com.microsoft.SimplifiedLayerNormalization', 'com.microsoft.BiasGelu']);
    expectClose(await runModelOrt(exported, feeds), await runModelOrt(bytes, feeds), 'exported model', 1e-6, 1e-6);
    expectClose(await runModelCpu(bytes, feeds), await runModelOrt(bytes, feeds), 'CPU on the chain', 2e-5, 2e-5);
  });
});
