import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DType } from '../../runtime/ir/dtype.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import { allClose } from '../helpers/compare.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { runModelOrt } from '../helpers/run-model.js';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';
import { float, int, model, vi, type PAttr } from '../importer/model-builder.js';
import { runHost } from '../helpers/session-runs.js';

/**
 * com.microsoft transformer ops on WebGPU through InferenceSession.create(bytes, { backend: 'webgpu' }): one-node
 * models whose batch and sequence dims are symbolic (dim_param), each session run at several shapes (odd hidden
 * sizes, rows past a workgroup, rows long enough for the workgroup-per-row schedule), compared with the CPU
 * reference and, where onnxruntime-node has a CPU kernel for the op, with onnxruntime-node; float32 and float16.
 */

const MS = 'com.microsoft';
const rng = new Rng(4321);
const ELEM: Partial<Record<DType, number>> = { float32: 1, float16: 10, int64: 7, float64: 11 };
const sessions: InferenceSession[] = [];

beforeAll(async () => {
  console.log(`contrib WebGPU suite on ${describeDevice(await gpuForTests())}`);
});
afterAll(async () => {
  for (const s of sessions) await s.release();
});

interface Spec {
  op: string;
  domain?: string;
  attrs?: PAttr[];
  /** Input names and declared dims ('B', 'S' symbolic); '' marks an omitted optional input. */
  inputs: ({ dtype: DType; dims: (number | string)[] } | '')[];
  outputs: number;
  skipOutputs?: number[];
  /** onnxruntime-node runs this op on its CPU (otherwise the CPU reference alone is the reference). */
  ort: boolean;
}

function bytesOf(s: Spec): Uint8Array {
  const inputs = s.inputs.map((x, i) => (x ? vi(`in${i}`, ELEM[x.dtype], x.dims) : undefined)).filter((v) => !!v);
  const outNames = Array.from({ length: s.outputs }, (_, i) => (s.skipOutputs?.includes(i) ? '' : `out${i}`));
  return model({
    nodes: [{ op: s.op, domain: s.domain ?? MS, inputs: s.inputs.map((x, i) => (x ? `in${i}` : '')), outputs: outNames, attrs: s.attrs ?? [] }],
    inputs,
    outputs: outNames.filter(Boolean).map((n) => ({ name: n })),
    opset: 21,
    extraOpsets: [{ domain: MS, version: 1 }],
  });
}

async function open(bytes: Uint8Array, backend: 'cpu' | 'webgpu'): Promise<InferenceSession> {
  const s = await InferenceSession.create(bytes, { backend });
  sessions.push(s);
  return s;
}


function expectClose(got: Record<string, HostTensor>, want: Record<string, HostTensor>, what: string, tol: number) {
  expect(Object.keys(got).sort(), what).toEqual(Object.keys(want).sort());
  for (const [name, e] of Object.entries(want)) {
    const a = got[name]!;
    expect([a.dtype, a.shape], `${what} ${name}`).toEqual([e.dtype, e.shape]);
    const r = allClose(a, e, { rtol: tol, atol: tol });
    if (!r.ok) expect.fail(`${what} output '${name}': ${r.message}`);
  }
}

/** One WebGPU and one CPU session of the model, each fed every feed set in turn (shapes differ between sets). */
async function check(spec: Spec, feedSets: (HostTensor | undefined)[][], tol?: number) {
  const bytes = bytesOf(spec);
  const [gpu, cpu] = [await open(bytes, 'webgpu'), await open(bytes, 'cpu')];
  for (const set of feedSets) {
    const feeds: Record<string, HostTensor> = {};
    set.forEach((t, i) => t && (feeds[`in${i}`] = t));
    const f16 = set[0]!.dtype === 'float16';
    const t = tol ?? (f16 ? 1.5e-2 : 2e-5);
    const what = `${spec.op} [${set.map((x) => x?.shape.join('x') ?? '-').join(', ')}] ${set[0]!.dtype}`;
    const got = await runHost(gpu, feeds);
    expectClose(got, await runHost(cpu, feeds), `${what} vs CPU`, t);
    if (spec.ort) expectClose(got, await runModelOrt(bytes, feeds), `${what} vs onnxruntime`, t * 2);
  }
}

const rand = (shape: number[], dtype: DType = 'float32', lo = -2, hi = 2) => randomTensor(rng, dtype, shape, { lo, hi });
const sym = (dtype: DType, ...dims: (number | string)[]) => ({ dtype, dims });

describe('com.microsoft GELU family and BiasAdd on WebGPU', () => {
  for (const dtype of ['float32', 'float16'] as DType[]) {
    it(`Gelu, QuickGelu (alpha) — ${dtype}`, async () => {
      const sets = [[rand([2, 3, 8], dtype, -5, 5)], [rand([1, 7, 13], dtype, -5, 5)], [rand([3, 70, 5], dtype, -5, 5)]];
      await check({ op: 'Gelu', inputs: [sym(dtype, 'B', 'S', 'H')], outputs: 1, ort: true }, sets);
      await check({ op: 'QuickGelu', inputs: [sym(dtype, 'B', 'S', 'H')], outputs: 1, ort: dtype === 'float32' }, sets);
      await check({ op: 'QuickGelu', attrs: [float('alpha', -0.6)], inputs: [sym(dtype, 'B', 'S', 'H')], outputs: 1, ort: dtype === 'float32' }, sets);
    });

    it(`FastGelu (with and without bias), BiasGelu, BiasAdd — ${dtype}`, async () => {
      for (const h of [8, 7]) {
        const sets = [[rand([2, 3, h], dtype), rand([h], dtype)], [rand([1, 33, h], dtype), rand([h], dtype)]];
        const ortF16 = dtype === 'float32';
        await check({ op: 'FastGelu', inputs: [sym(dtype, 'B', 'S', h), sym(dtype, h)], outputs: 1, ort: ortF16 }, sets);
        await check({ op: 'FastGelu', inputs: [sym(dtype, 'B', 'S', h), ''], outputs: 1, ort: ortF16 }, sets.map(([x]) => [x, undefined]));
        await check({ op: 'BiasGelu', inputs: [sym(dtype, 'B', 'S', h), sym(dtype, h)], outputs: 1, ort: ortF16 }, sets);
        await check({ op: 'BiasAdd', inputs: [sym(dtype, 'B', 'S', h), sym(dtype, h), sym(dtype, 'B', 'S', h)], outputs: 1, ort: false }, sets.map(([x, b]) => [x, b, rand(x!.shape, dtype)]));
      }
    });

    it(`BiasSplitGelu — ${dtype}`, async () => {
      const sets = [[rand([2, 3, 8], dtype), rand([8], dtype)], [rand([1, 67, 8], dtype), rand([8], dtype)]];
      await check({ op: 'BiasSplitGelu', inputs: [sym(dtype, 'B', 'S', 8), sym(dtype, 8)], outputs: 1, ort: false }, sets);
      await check({ op: 'BiasSplitGelu', inputs: [sym(dtype, 'B', 'S', 14), sym(dtype, 14)], outputs: 1, ort: false }, [[rand([3, 5, 14], dtype), rand([14], dtype)]]);
    });
  }
});

describe('com.microsoft normalizations on WebGPU', () => {
  for (const dtype of ['float32', 'float16'] as DType[]) {
    const ortOk = true;
    it(`SkipLayerNormalization: every output, optional beta/bias, skip broadcast, short and long rows — ${dtype}`, async () => {
      for (const h of [7, 160]) {
        const x = (b: number, s: number) => rand([b, s, h], dtype);
        const p = () => rand([h], dtype);
        await check(
          { op: 'SkipLayerNormalization', attrs: [float('epsilon', 1e-5)], inputs: [sym(dtype, 'B', 'S', h), sym(dtype, 'B', 'S', h), sym(dtype, h), sym(dtype, h), sym(dtype, h)], outputs: 4, ort: ortOk },
          [[x(2, 3), x(2, 3), p(), p(), p()], [x(1, 70), x(1, 70), p(), p(), p()]],
        );
        await check(
          { op: 'SkipLayerNormalization', inputs: [sym(dtype, 'B', 'S', h), sym(dtype, 'S', h), sym(dtype, h)], outputs: 1, ort: ortOk },
          [[x(3, 4), rand([4, h], dtype), p()], [x(2, 5), rand([5, h], dtype), p()]],
        );
        await check(
          { op: 'SkipLayerNormalization', inputs: [sym(dtype, 'B', 'S', h), sym(dtype, 1, 'S', h), sym(dtype, h), '', sym(dtype, h)], outputs: 4, skipOutputs: [1], ort: ortOk },
          [[x(2, 3), rand([1, 3, h], dtype), p(), undefined, p()]],
        );
      }
    });

    it(`SkipSimplifiedLayerNormalization and SimplifiedLayerNormalization — ${dtype}`, async () => {
      for (const h of [12, 131]) {
        const x = (b: number, s: number) => rand([b, s, h], dtype);
        const p = () => rand([h], dtype);
        await check(
          { op: 'SkipSimplifiedLayerNormalization', attrs: [float('epsilon', 1e-4)], inputs: [sym(dtype, 'B', 'S', h), sym(dtype, 'B', 'S', h), sym(dtype, h), sym(dtype, h)], outputs: 4, ort: ortOk },
          [[x(2, 3), x(2, 3), p(), p()], [x(1, 66), x(1, 66), p(), p()]],
        );
        await check(
          { op: 'SkipSimplifiedLayerNormalization', inputs: [sym(dtype, 'B', 'S', h), sym(dtype, 'B', 'S', h), sym(dtype, h)], outputs: 3, skipOutputs: [1], ort: ortOk },
          [[x(2, 5), x(2, 5), p()]],
        );
        await check(
          { op: 'SimplifiedLayerNormalization', domain: '', attrs: [int('axis', -1), float('epsilon', 1e-3), int('stash_type', 1)], inputs: [sym(dtype, 'B', 'S', h), sym(dtype, h)], outputs: 2, ort: ortOk },
          [[x(2, 3), p()], [x(3, 67), p()]],
        );
      }
      await check(
        { op: 'SimplifiedLayerNormalization', attrs: [int('axis', 1)], inputs: [sym(dtype, 'B', 3, 5), sym(dtype, 3, 5)], outputs: 2, ort: false },
        [[rand([2, 3, 5], dtype), rand([3, 5], dtype)], [rand([4, 3, 5], dtype), rand([3, 5], dtype)]],
      );
    });
  }
});

describe('com.microsoft ops the WebGPU backend refuses at load (never a silent CPU fallback)', () => {
  it('a SimplifiedLayerNormalization scale that varies outside the normalized axes', async () => {
    const bytes = bytesOf({ op: 'SimplifiedLayerNormalization', inputs: [sym('float32', 2, 3, 4), sym('float32', 3, 1)], outputs: 1, ort: false });
    await expect(InferenceSession.create(bytes, { backend: 'webgpu' })).rejects.toMatchObject({ code: 'UNSUPPORTED_OP', message: expect.stringContaining('scale') });
  });

  it('float64 inputs', async () => {
    const bytes = bytesOf({ op: 'QuickGelu', inputs: [sym('float64', 2, 3)], outputs: 1, ort: false });
    await expect(InferenceSession.create(bytes, { backend: 'webgpu' })).rejects.toMatchObject({ code: 'UNSUPPORTED_OP' });
  });
});

describe('com.microsoft RotaryEmbedding on WebGPU', () => {
  const ids = (shape: number[], values: number[]) => tensorFromNumbers('int64', shape, values);
  const positions = (b: number, s: number, max: number) => ids([b, s], Array.from({ length: b * s }, () => rng.int(0, max - 1)));
  const cache = (rows: number, half: number, dtype: DType) => [rand([rows, half], dtype, -1, 1), rand([rows, half], dtype, -1, 1)];

  for (const dtype of ['float32', 'float16'] as DType[]) {
    it(`[B, S, N*H] with start offsets and position ids, interleaved or not — ${dtype}`, async () => {
      for (const interleaved of [0, 1]) {
        const attrs = [int('interleaved', interleaved)];
        await check(
          { op: 'RotaryEmbedding', attrs, inputs: [sym(dtype, 'B', 'S', 24), sym('int64', 1), sym(dtype, 'M', 4), sym(dtype, 'M', 4)], outputs: 1, ort: true },
          [[rand([2, 3, 24], dtype), ids([1], [2]), ...cache(9, 4, dtype)], [rand([1, 7, 24], dtype), ids([1], [0]), ...cache(9, 4, dtype)]],
        );
        await check(
          { op: 'RotaryEmbedding', attrs: [...attrs, float('scale', 2), int('is_packed_batching', 1)], inputs: [sym(dtype, 'B', 'S', 32), sym('int64', 'B', 'S'), sym(dtype, 'M', 8), sym(dtype, 'M', 8)], outputs: 1, ort: true },
          [[rand([2, 5, 32], dtype), positions(2, 5, 11), ...cache(11, 8, dtype)], [rand([3, 2, 32], dtype), positions(3, 2, 11), ...cache(11, 8, dtype)]],
        );
      }
    });

    it(`[B, N, S, H], num_heads and a partial rotary_embedding_dim — ${dtype}`, async () => {
      for (const interleaved of [0, 1]) {
        await check(
          { op: 'RotaryEmbedding', attrs: [int('interleaved', interleaved), int('num_heads', 3)], inputs: [sym(dtype, 'B', 3, 'S', 6), sym('int64', 'B', 'S'), sym(dtype, 'M', 3), sym(dtype, 'M', 3)], outputs: 1, ort: true },
          [[rand([2, 3, 4, 6], dtype), positions(2, 4, 7), ...cache(7, 3, dtype)], [rand([1, 3, 9, 6], dtype), positions(1, 9, 10), ...cache(10, 3, dtype)]],
        );
        await check(
          { op: 'RotaryEmbedding', attrs: [int('interleaved', interleaved), int('num_heads', 2), int('rotary_embedding_dim', 4)], inputs: [sym(dtype, 'B', 'S', 20), sym('int64', 1), sym(dtype, 'M', 2), sym(dtype, 'M', 2)], outputs: 1, ort: true },
          [[rand([2, 3, 20], dtype), ids([1], [1]), ...cache(6, 2, dtype)]],
        );
      }
    });
  }

  it('a position past the caches comes back as NaN on WebGPU (the CPU backend throws)', async () => {
    const bytes = bytesOf({ op: 'RotaryEmbedding', inputs: [sym('float32', 1, 2, 8), sym('int64', 1), sym('float32', 3, 4), sym('float32', 3, 4)], outputs: 1, ort: false });
    const out = await runHost(await open(bytes, 'webgpu'), { in0: rand([1, 2, 8]), in1: ids([1], [2]), in2: rand([3, 4]), in3: rand([3, 4]) });
    const y = Array.from(out.out0!.data as Float32Array);
    expect(y.slice(0, 8).every(Number.isFinite)).toBe(true);
    expect(y.slice(8).every(Number.isNaN)).toBe(true);
  });
});
