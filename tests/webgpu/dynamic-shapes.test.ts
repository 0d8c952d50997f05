import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { exportOnnx } from '../../importers/onnx/index.js';
import { InferenceSession, InvalidArgumentError, ShapeError, Tensor } from '../../sdk/node.js';
import { attr, buildGraph, f32, i64, node } from '../helpers/ir-builder.js';
import { allClose } from '../helpers/compare.js';
import { Rng } from '../helpers/random.js';
import { runModelOrt } from '../helpers/run-model.js';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { FIXTURES, readBytes } from '../models/fixture-files.js';

/**
 * Dynamic shapes through the public API, on models exported by torch.onnx with dynamic axes
 * (scripts/fixtures/dynamic_fixture.py): Shape -> Gather -> Concat -> Reshape chains, GroupNorm's reshapes, Resize
 * to computed sizes, old opsets, and a shape that depends on tensor data. Each runs at several input shapes through
 * InferenceSession.create(bytes, { backend }) then run, on WebGPU and on the CPU, against onnxruntime-node.
 */

const dir = join(FIXTURES, 'dynamic');
const model = (name: string) => readBytes(join(dir, `${name}.onnx`));

function randomTensor(shape: number[], seed: number): HostTensor {
  const rng = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'float32', shape, data: Float32Array.from({ length: n }, () => rng.uniform()) };
}

const toTensors = (feeds: Record<string, HostTensor>) => Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new Tensor(t.dtype, t.data, t.shape)]));

async function expectMatchesOrt(session: InferenceSession, bytes: Uint8Array, feeds: Record<string, HostTensor>, rtol: number): Promise<void> {
  const want = await runModelOrt(bytes, feeds);
  const got = await session.run(toTensors(feeds));
  for (const [name, ref] of Object.entries(want)) {
    const t = got[name]!.toHost();
    expect(t.shape).toEqual(ref.shape);
    const r = allClose(t, ref, { rtol, atol: rtol });
    expect(r.ok, `${name} at ${JSON.stringify(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, v.shape])))}: ${r.message}`).toBe(true);
  }
}

beforeAll(async () => {
  await gpuForTests();
});

const backends = [
  ['webgpu', 1e-3],
  ['cpu', 1e-4],
] as const;

describe.each(backends)('exported dynamic-shape models on %s', (backend, rtol) => {
  it.each(['vit-block-op17', 'vit-block-op11'])('%s (attention with reshapes from x.shape) at batch 1-3, seq 1-9', async (name) => {
    const bytes = model(name);
    const session = await InferenceSession.create(bytes, { backend });
    try {
      expect(session.inputMetadata[0]!.shape).toEqual(['batch', 'seq', 12]);
      let seed = 1;
      for (const [b, t] of [[1, 7], [2, 5], [3, 9], [1, 1], [2, 5]] as const) {
        await expectMatchesOrt(session, bytes, { tokens: randomTensor([b, t, 12], seed++) }, rtol);
      }
      if (backend === 'webgpu') {
        const gpu = session.report().gpu!;
        expect(gpu.signature).toBe('[2,5,12]');
        // Shape arithmetic folded when the plan was made: no stage boundary, no readback.
        expect(gpu.stages).toBe(1);
        expect(gpu.readbacks).toBe(0);
        expect(session.report().nodes.some((n) => n.op === 'Shape')).toBe(false);
      }
    } finally {
      await session.release();
    }
  });

  it('unet-groupnorm-op13 (GroupNorm reshapes, Resize to computed sizes, skip Concat) at several image sizes', async () => {
    const bytes = model('unet-groupnorm-op13');
    const session = await InferenceSession.create(bytes, { backend });
    try {
      let seed = 10;
      for (const [b, h, w] of [[1, 8, 8], [2, 6, 10], [1, 16, 4]] as const) {
        await expectMatchesOrt(session, bytes, { image: randomTensor([b, 4, h, w], seed++) }, rtol);
      }
    } finally {
      await session.release();
    }
  });

  it('ragged-op13: a Slice end and a Range limit computed from the data (the longest row of the mask)', async () => {
    const bytes = model('ragged-op13');
    const session = await InferenceSession.create(bytes, { backend });
    try {
      let seed = 20;
      for (const [b, t, lengths] of [[2, 9, [5, 7]], [3, 6, [1, 6, 2]], [2, 9, [5, 7]], [1, 4, [3]]] as const) {
        const mask = Float32Array.from({ length: b * t }, (_, i) => (i % t < (lengths[Math.floor(i / t)] as number) ? 1 : 0));
        const feeds: Record<string, HostTensor> = { x: randomTensor([b, t, 6], seed++), mask: { dtype: 'float32', shape: [b, t], data: mask } };
        await expectMatchesOrt(session, bytes, feeds, rtol);
      }
      if (backend === 'webgpu') {
        const gpu = session.report().gpu!;
        // n is read back once, between the two stages' submits.
        expect(gpu.stages).toBe(2);
        expect(gpu.readbacks).toBe(1);
        expect(gpu.readbackValues.length).toBeGreaterThan(0);
      }
    } finally {
      await session.release();
    }
  });
});

describe('freeDimensionOverrides', () => {
  it('fixes symbolic dims at load: metadata shows them, the plan (pipelines included) is made inside create', async () => {
    const bytes = model('vit-block-op17');
    const session = await InferenceSession.create(bytes, { backend: 'webgpu', freeDimensionOverrides: { batch: 2, seq: 6 } });
    try {
      expect(session.inputMetadata[0]!.shape).toEqual([2, 6, 12]);
      const before = session.report().gpu!;
      expect(before.signature).toBe('[2,6,12]');
      expect(before.pipelines).toBeGreaterThan(0);
      await expectMatchesOrt(session, bytes, { tokens: randomTensor([2, 6, 12], 3) }, 1e-3);
      await expect(session.run({ tokens: new Tensor('float32', new Float32Array(3 * 6 * 12), [3, 6, 12]) })).rejects.toThrow(ShapeError);
    } finally {
      await session.release();
    }
  });

  it('fixes only the named dims; the others stay symbolic', async () => {
    const bytes = model('vit-block-op17');
    const session = await InferenceSession.create(bytes, { backend: 'cpu', freeDimensionOverrides: { batch: 1 } });
    try {
      expect(session.inputMetadata[0]!.shape).toEqual([1, 'seq', 12]);
      await expectMatchesOrt(session, bytes, { tokens: randomTensor([1, 4, 12], 4) }, 1e-4);
    } finally {
      await session.release();
    }
  });

  it('rejects a name no input uses, and values that are not sizes', async () => {
    const bytes = model('vit-block-op17');
    await expect(InferenceSession.create(bytes, { backend: 'webgpu', freeDimensionOverrides: { batch_size: 1 } })).rejects.toThrow(/batch_size.*'batch', 'seq'/);
    await expect(InferenceSession.create(bytes, { backend: 'cpu', freeDimensionOverrides: { batch: -1 } })).rejects.toThrow(InvalidArgumentError);
    await expect(InferenceSession.create(bytes, { backend: 'cpu', freeDimensionOverrides: { batch: 1.5 } })).rejects.toThrow(InvalidArgumentError);
  });
});

/** Models whose output sizes come from tensor data, built in the IR and written as ONNX. */
const dataDependent = {
  // NonZero of a thresholded score map, then the selected scores (GatherND-free: Compress on the flattened map).
  nonzero: () =>
    exportOnnx(
      buildGraph({
        inputs: [['scores', 'float32', ['n', 'm']]],
        initializers: { half: f32([0.5], []), flat_shape: i64([-1]), zero: i64([0]), one: i64([1]) },
        nodes: [
          node('Greater', ['scores', 'half'], ['keep']),
          node('NonZero', ['keep'], ['where']),
          node('Reshape', ['keep', 'flat_shape'], ['keep_flat']),
          node('Reshape', ['scores', 'flat_shape'], ['scores_flat']),
          node('Compress', ['scores_flat', 'keep_flat'], ['picked']),
          node('Compress', ['scores', 'keep_rows'], ['rows'], { axis: attr(0) }),
          node('Slice', ['keep', 'zero', 'one', 'one'], ['keep_col']),
          node('Reshape', ['keep_col', 'flat_shape'], ['keep_rows']),
        ],
        outputs: ['where', 'picked', 'rows'],
      }),
    ),
  // A Reshape to a computed shape and a Range to a computed limit (as int64 from float data).
  computedShape: () =>
    exportOnnx(
      buildGraph({
        inputs: [['x', 'float32', ['n']], ['k', 'float32', [1]]],
        initializers: { zero_i: i64([0], []), one_i: i64([1], []), minus1: i64([-1]) },
        nodes: [
          node('Cast', ['k'], ['k_int'], { to: attr(7) }),
          node('Concat', ['k_int', 'minus1'], ['shape'], { axis: attr(0) }),
          node('Reshape', ['x', 'shape'], ['grid']),
          node('Squeeze', ['k_int'], ['limit']),
          node('Range', ['zero_i', 'limit', 'one_i'], ['ramp']),
        ],
        outputs: ['grid', 'ramp'],
      }),
    ),
};

describe('shapes computed from tensor data (stage boundaries)', () => {
  const nonzeroFeeds = (n: number, m: number, seed: number): Record<string, HostTensor> => ({ scores: randomTensor([n, m], seed) });
  it.each(backends)('NonZero and Compress on %s match onnxruntime-node at sizes past one workgroup', async (backend, rtol) => {
    const bytes = dataDependent.nonzero();
    const session = await InferenceSession.create(bytes, { backend });
    try {
      let seed = 40;
      for (const [n, m] of [[3, 4], [1, 1], [37, 29], [300, 17], [3, 4]] as const) {
        await expectMatchesOrt(session, bytes, nonzeroFeeds(n, m, seed++), rtol);
      }
      // Nothing selected: empty outputs, not an error.
      await expectMatchesOrt(session, bytes, { scores: { dtype: 'float32', shape: [4, 5], data: new Float32Array(20).fill(-1) } }, rtol);
      if (backend === 'webgpu') {
        const gpu = session.report().gpu!;
        expect(gpu.readbacks).toBeGreaterThan(0);
        expect(gpu.readbackValues.every((v) => v.endsWith('edgekit_count'))).toBe(true);
      }
    } finally {
      await session.release();
    }
  });

  it.each(backends)('NonMaxSuppression on %s: random detections, many classes, both box formats', async (backend) => {
    for (const centerPointBox of [0, 1]) {
      const bytes = exportOnnx(
        buildGraph({
          inputs: [['boxes', 'float32', ['batch', 'n', 4]], ['scores', 'float32', ['batch', 'classes', 'n']]],
          initializers: { max: i64([20]), iou: f32([0.4], [1]), min_score: f32([0.1], [1]) },
          nodes: [node('NonMaxSuppression', ['boxes', 'scores', 'max', 'iou', 'min_score'], ['selected'], { center_point_box: attr(centerPointBox) })],
          outputs: ['selected'],
        }),
      );
      const session = await InferenceSession.create(bytes, { backend });
      try {
        for (const [b, c, n] of [[2, 3, 200], [1, 1, 5], [3, 2, 64]] as const) {
          const rng = new Rng(b * 100 + n + centerPointBox);
          const boxes = Float32Array.from({ length: b * n * 4 }, (_, i) => (i % 4 < 2 ? rng.uniform(0, 10) : rng.uniform(0.5, 3) * (centerPointBox ? 1 : rng.next() < 0.5 ? -1 : 1)));
          // Corner boxes: (y1, x1) plus a signed extent, so flipped corners occur too.
          if (!centerPointBox) for (let i = 0; i < boxes.length; i += 4) { boxes[i + 2] = boxes[i]! + boxes[i + 2]!; boxes[i + 3] = boxes[i + 1]! + boxes[i + 3]!; }
          const scores = Float32Array.from({ length: b * c * n }, () => rng.next());
          await expectMatchesOrt(session, bytes, { boxes: { dtype: 'float32', shape: [b, n, 4], data: boxes }, scores: { dtype: 'float32', shape: [b, c, n], data: scores } }, 0);
        }
        if (backend === 'webgpu') expect(session.report().gpu!.readbacks).toBe(1);
      } finally {
        await session.release();
      }
    }
  });

  it.each(backends)('Unique on %s: flattened and along an axis, sorted and in first-occurrence order', async (backend) => {
    for (const [axis, sorted] of [[undefined, 1], [undefined, 0], [1, 1], [0, 0]] as const) {
      const bytes = exportOnnx(
        buildGraph({
          inputs: [['ids', 'int64', ['a', 'b']]],
          nodes: [node('Unique', ['ids'], ['values', 'first', 'inverse', 'counts'], { sorted: attr(sorted), ...(axis === undefined ? {} : { axis: attr(axis) }) })],
          outputs: ['values', 'first', 'inverse', 'counts'],
        }),
      );
      const session = await InferenceSession.create(bytes, { backend });
      try {
        for (const [a, b, range] of [[20, 25, 30], [3, 2, 2], [7, 40, 3]] as const) {
          const rng = new Rng(a * b + range + (axis ?? 9) * 3 + sorted);
          const ids: HostTensor = { dtype: 'int64', shape: [a, b], data: BigInt64Array.from({ length: a * b }, () => BigInt(rng.int(-range, range))) };
          await expectMatchesOrt(session, bytes, { ids }, 0);
        }
      } finally {
        await session.release();
      }
    }
  });

  it('staged runs release what crosses a boundary: 300 runs over changing read-back values keep live GPU bytes flat', async () => {
    const bytes = model('ragged-op13');
    const session = await InferenceSession.create(bytes, { backend: 'webgpu' });
    try {
      const run = async (i: number) => {
        const lengths = [1 + (i % 4), 1 + ((i * 7) % 5)];
        const mask = Float32Array.from({ length: 2 * 6 }, (_, k) => (k % 6 < lengths[Math.floor(k / 6)]! ? 1 : 0));
        const out = await session.run({ x: new Tensor('float32', randomTensor([2, 6, 6], i).data as Float32Array, [2, 6, 6]), mask: new Tensor('float32', mask, [2, 6]) });
        out.pooled!.dispose();
      };
      for (let i = 0; i < 20; i++) await run(i); // every read-back value (n = 1..5) planned once
      const live = session.report().gpu!.liveBytes;
      for (let i = 20; i < 320; i++) await run(i);
      expect(session.report().gpu!.liveBytes).toBe(live);
    } finally {
      await session.release();
    }
  });

  it.each(backends)('a Reshape to a computed shape and a Range to a computed limit on %s', async (backend, rtol) => {
    const bytes = dataDependent.computedShape();
    const session = await InferenceSession.create(bytes, { backend });
    try {
      for (const [n, k] of [[12, 3], [12, 4], [10, 5], [12, 3]] as const) {
        await expectMatchesOrt(session, bytes, { x: randomTensor([n], n + k), k: { dtype: 'float32', shape: [1], data: Float32Array.of(k) } }, rtol);
      }
      if (backend === 'webgpu') expect(session.report().gpu!.stages).toBe(2);
    } finally {
      await session.release();
    }
  });
});
