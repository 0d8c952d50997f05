import { describe, expect, it } from 'vitest';
import { DTypeError, InvalidArgumentError, ShapeError } from '../../runtime/errors.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr, Dim } from '../../runtime/ir/graph.js';
import { hostTensor, tensorFromNumbers, tensorToNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { attr, i64 } from '../helpers/ir-builder.js';
import { compareWithOrt, inferNode, runCpuNode } from '../helpers/ort-single-node.js';
import { randomTensor, Rng } from '../helpers/random.js';

/**
 * Resize-19: shape inference (scales, sizes, axes, keep_aspect_ratio_policy, symbolic dims) and the CPU kernel
 * against onnxruntime-node for every mode, coordinate transformation, nearest rounding, cubic coefficient,
 * exclude_outside, tf_crop_and_resize extrapolation, antialias, and N-linear resizes of several axes.
 */

const rng = new Rng(1919);
const f32 = (v: number[]) => tensorFromNumbers('float32', [v.length], v);
const toAttrs = (a: Record<string, number | string | number[]>): Record<string, Attr> => Object.fromEntries(Object.entries(a).map(([k, v]) => [k, attr(v)]));
const COORDS = ['half_pixel', 'half_pixel_symmetric', 'pytorch_half_pixel', 'align_corners', 'asymmetric'];
const NEAREST = ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'];
const TOL = { opset: 19, rtol: 1e-5, atol: 1e-5 };

async function expectOrt(attrs: Record<string, number | string | number[]>, inputs: (HostTensor | undefined)[], opts: Parameters<typeof compareWithOrt>[3] = TOL) {
  const what = `Resize ${JSON.stringify(attrs)} ${JSON.stringify(inputs.map((t) => t && (t.data.length <= 8 ? Array.from(tensorToNumbers(t)) : t.shape)))}`;
  expect(await compareWithOrt('Resize', toAttrs(attrs), inputs, opts), what).toEqual([]);
}

describe('Resize inference', () => {
  const x = (shape: Dim[] | undefined, dtype: DType = 'float32') => ({ dtype, shape });
  const scales = (v: number[]) => ({ dtype: 'float32' as DType, shape: [v.length] as Dim[], value: f32(v) });
  const sizes = (v: number[]) => ({ dtype: 'int64' as DType, shape: [v.length] as Dim[], value: i64(v) });
  const shapeOf = (attrs: Record<string, number | string | number[]>, inputs: Parameters<typeof inferNode>[2]) => inferNode('Resize', toAttrs(attrs), inputs)[0]!.shape;

  it('exact with constant scales or sizes, expressions or symbols on symbolic dims', () => {
    expect(shapeOf({}, [x([1, 3, 5, 7]), undefined, scales([1, 1, 2, 0.5])])).toEqual([1, 3, 10, 3]);
    expect(shapeOf({}, [x(['N', 3, 'H', 'W']), undefined, scales([1, 1, 2, 1.5])])).toEqual(['N', 3, 'H*2', 'floor(W*1.5)']);
    expect(shapeOf({}, [x(['N', 3, 'H', 'W']), undefined, undefined, sizes([1, 3, 224, 224])])).toEqual([1, 3, 224, 224]);
    expect(shapeOf({ axes: [-2, -1] }, [x(['N', 3, 'H', 'W']), undefined, undefined, sizes([64, 32])])).toEqual(['N', 3, 64, 32]);
    expect(shapeOf({ axes: [2, 3], keep_aspect_ratio_policy: 'not_larger' }, [x([1, 3, 40, 60]), undefined, undefined, sizes([20, 20])])).toEqual([1, 3, 13, 20]);
    expect(shapeOf({ axes: [2, 3], keep_aspect_ratio_policy: 'not_smaller' }, [x([1, 3, 40, 60]), undefined, undefined, sizes([20, 20])])).toEqual([1, 3, 20, 30]);
    expect(shapeOf({ axes: [2, 3], keep_aspect_ratio_policy: 'not_larger' }, [x(['N', 3, 'H', 60]), undefined, undefined, sizes([20, 20])])).toEqual(['N', 3, 's0', 's1']);
    // Runtime scales: only the resized axes become unknown.
    expect(shapeOf({ axes: [2] }, [x(['N', 3, 8]), undefined, { dtype: 'float32', shape: [1] }])).toEqual(['N', 3, 's0']);
    // Empty placeholders (opset 11 style) count as absent.
    expect(shapeOf({}, [x([2, 4]), { dtype: 'float32', shape: [0] }, { dtype: 'float32', shape: [0] }, sizes([3, 3])])).toEqual([3, 3]);
    expect(shapeOf({}, [x(undefined), undefined, scales([2])])).toBeUndefined();
  });

  it('rejects invalid nodes', () => {
    expect(() => shapeOf({}, [x([2, 4])])).toThrow(/scales or sizes/);
    expect(() => shapeOf({}, [x([2, 4]), undefined, scales([1, 2]), sizes([2, 8])])).toThrow(/not both/);
    expect(() => shapeOf({}, [x([2, 4]), undefined, scales([2])])).toThrow(ShapeError);
    expect(() => shapeOf({}, [x([2, 4]), undefined, scales([1, -2])])).toThrow(/positive/);
    expect(() => shapeOf({ mode: 'area' }, [x([2, 4]), undefined, scales([1, 2])])).toThrow(InvalidArgumentError);
    expect(() => shapeOf({ coordinate_transformation_mode: 'center' }, [x([2, 4]), undefined, scales([1, 2])])).toThrow(/coordinate_transformation_mode/);
    expect(() => shapeOf({ antialias: 1 }, [x([2, 4]), undefined, scales([1, 0.5])])).toThrow(/antialias/);
    expect(() => shapeOf({}, [x([2, 4], 'bool'), undefined, scales([1, 2])])).toThrow(DTypeError);
    expect(() => shapeOf({}, [x([2, 4]), undefined, { dtype: 'float64', shape: [2] }])).toThrow(DTypeError);
    expect(() => shapeOf({}, [x([2, 4]), undefined, undefined, { dtype: 'int32', shape: [2] }])).toThrow(DTypeError);
  });
});

describe('Resize matches onnxruntime', () => {
  const X = randomTensor(rng, 'float32', [1, 2, 5, 7]);
  const SCALES = [[1, 1, 2, 3], [1, 1, 0.5, 0.6], [1, 1, 1.7, 0.35], [1, 1, 1, 2.5], [1, 1, 0.8, 1.3]];
  const SIZES = [[1, 2, 3, 9], [1, 2, 8, 4], [1, 2, 1, 1], [1, 2, 5, 7]];

  it('nearest: every nearest_mode and coordinate transformation, scales and sizes', async () => {
    for (const nearest_mode of NEAREST) {
      for (const coordinate_transformation_mode of [...COORDS, 'tf_half_pixel_for_nn']) {
        const attrs = { mode: 'nearest', nearest_mode, coordinate_transformation_mode };
        // Includes exact .5 ties that float evaluation misses by an ulp: half_pixel_symmetric W 7 → 4 at scale 0.6
        // (x_original 0.5), asymmetric 7 → 4 by sizes (2 / (4/7) = 3.5).
        for (const s of SCALES) await expectOrt(attrs, [X, undefined, f32(s)]);
        for (const s of SIZES) await expectOrt(attrs, [X, undefined, undefined, i64(s)]);
      }
    }
  });

  it('linear: every coordinate transformation, up and down, 2-D, 3-D (all axes), 4-D and 5-D', async () => {
    for (const coordinate_transformation_mode of COORDS) {
      const attrs = { mode: 'linear', coordinate_transformation_mode };
      for (const s of SCALES) await expectOrt(attrs, [X, undefined, f32(s)]);
      for (const s of SIZES) await expectOrt(attrs, [X, undefined, undefined, i64(s)]);
      await expectOrt(attrs, [randomTensor(rng, 'float32', [4, 6]), undefined, f32([2.5, 0.5])]);
      // Trilinear over every axis of a 3-D tensor and over D, H, W of a 5-D one: N-linear, not just bilinear.
      await expectOrt(attrs, [randomTensor(rng, 'float32', [3, 4, 5]), undefined, f32([2, 1.5, 0.6])]);
      await expectOrt(attrs, [randomTensor(rng, 'float32', [1, 2, 3, 4, 5]), undefined, undefined, i64([1, 2, 5, 2, 8])]);
    }
  });

  it('cubic: coordinate transformations, cubic_coeff_a and exclude_outside', async () => {
    for (const coordinate_transformation_mode of COORDS) {
      for (const [cubic_coeff_a, exclude_outside] of [[-0.75, 0], [-0.5, 0], [-0.75, 1], [-0.5, 1]]) {
        const attrs = { mode: 'cubic', coordinate_transformation_mode, cubic_coeff_a: cubic_coeff_a!, exclude_outside: exclude_outside! };
        for (const s of SCALES) await expectOrt(attrs, [X, undefined, f32(s)]);
        for (const s of SIZES.slice(0, 2)) await expectOrt(attrs, [X, undefined, undefined, i64(s)]);
      }
    }
  });

  it('antialias: linear and cubic downsampling (and upsampling, where it changes nothing)', async () => {
    for (const mode of ['linear', 'cubic']) {
      for (const coordinate_transformation_mode of ['half_pixel', 'pytorch_half_pixel', 'align_corners', 'asymmetric']) {
        for (const exclude_outside of [0, 1]) {
          const attrs = { mode, coordinate_transformation_mode, exclude_outside, antialias: 1 };
          for (const s of [[1, 1, 0.5, 0.6], [1, 1, 0.3, 0.45], [1, 1, 2, 1.5]]) await expectOrt(attrs, [X, undefined, f32(s)]);
          await expectOrt(attrs, [randomTensor(rng, 'float32', [1, 1, 17, 12]), undefined, undefined, i64([1, 1, 4, 5])]);
        }
      }
    }
  });

  it('tf_crop_and_resize with roi and extrapolation_value, for every mode', async () => {
    const roi = f32([0, 0, -0.2, 0.3, 1, 1, 0.8, 1.4]);
    for (const mode of ['nearest', 'linear', 'cubic']) {
      const attrs = { mode, coordinate_transformation_mode: 'tf_crop_and_resize', extrapolation_value: 9.5 };
      await expectOrt(attrs, [X, roi, undefined, i64([1, 2, 6, 4])]);
      await expectOrt(attrs, [X, roi, undefined, i64([1, 2, 1, 3])]);
      await expectOrt(attrs, [X, f32([0, 0, 0.2, 0.3, 1, 1, 0.8, 0.9]), f32([1, 1, 2, 1.5])]);
      await expectOrt({ ...attrs, axes: [3, 2] }, [X, f32([0.1, 0.2, 0.9, 1.1]), undefined, i64([4, 3])]);
    }
  });

  it('axes (incl. negative) and keep_aspect_ratio_policy', async () => {
    for (const mode of ['nearest', 'linear', 'cubic']) {
      await expectOrt({ mode, axes: [2, 3] }, [X, undefined, f32([1.5, 0.5])]);
      await expectOrt({ mode, axes: [-1, -2] }, [X, undefined, undefined, i64([4, 9])]);
      for (const keep_aspect_ratio_policy of ['stretch', 'not_larger', 'not_smaller']) {
        for (const s of [[7, 9], [2, 20], [10, 14]]) {
          await expectOrt({ mode, axes: [2, 3], keep_aspect_ratio_policy }, [X, undefined, undefined, i64(s)]);
        }
      }
    }
  });

  it('integer and float64 inputs; constant scales/sizes', async () => {
    for (const dtype of ['uint8', 'int8', 'int32'] as DType[]) {
      const xi = randomTensor(rng, dtype, [1, 1, 4, 5], { lo: dtype === 'uint8' ? 0 : -100, hi: 100 });
      // Linear results truncate toward zero into integer types (as onnxruntime and the reference cast).
      for (const mode of ['nearest', 'linear']) await expectOrt({ mode }, [xi, undefined, f32([1, 1, 1.7, 0.6])]);
    }
    await expectOrt({ mode: 'linear' }, [X, undefined, f32([1, 1, 2, 0.5])], { ...TOL, constants: [2] });
    await expectOrt({ mode: 'cubic' }, [X, undefined, undefined, i64([1, 2, 9, 3])], { ...TOL, constants: [3] });
  });
});

describe('Resize by hand', () => {
  const run = (attrs: Record<string, number | string | number[]>, inputs: (HostTensor | undefined)[]) => runCpuNode('Resize', toAttrs(attrs), inputs)[0]!;

  it('1-D linear (onnxruntime refuses 1-D linear): half_pixel clamps at the edges', () => {
    const y = run({ mode: 'linear' }, [tensorFromNumbers('float32', [3], [0, 10, 20]), undefined, f32([2])]);
    // x_original = (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25, 1.75, 2.25, clamped to [0, 2].
    expect(Array.from(tensorToNumbers(y))).toEqual([0, 2.5, 7.5, 12.5, 17.5, 20]);
  });

  it('nearest copies int64 and float16 bits exactly', () => {
    const big = hostTensor('int64', [1, 3], BigInt64Array.from([2n ** 60n + 1n, -(2n ** 55n) - 3n, 7n]));
    const y = run({ mode: 'nearest', nearest_mode: 'floor', coordinate_transformation_mode: 'asymmetric' }, [big, undefined, f32([1, 2])]);
    expect(y.data).toEqual(BigInt64Array.from([2n ** 60n + 1n, 2n ** 60n + 1n, -(2n ** 55n) - 3n, -(2n ** 55n) - 3n, 7n, 7n]));
    const h = tensorFromNumbers('float16', [2], [0.1, -3]);
    expect(Array.from(run({ mode: 'nearest' }, [h, undefined, f32([1.5])]).data as Uint16Array)).toEqual([0x2e66, 0x2e66, 0xc200]);
  });

  it('half_pixel_symmetric centres the output when in * scale is fractional', () => {
    // in 4, scale 0.6: output 2 (2.4 → 2); adjustment 2 / 2.4, offset 2 * (1 - 1/1.2) = 1/3;
    // x_original = 1/3 + (i + 0.5) / 0.6 - 0.5 = 0.6667, 2.3333 → linear between neighbours.
    const y = run({ mode: 'linear', coordinate_transformation_mode: 'half_pixel_symmetric' }, [tensorFromNumbers('float32', [4], [0, 3, 6, 9]), undefined, f32([0.6])]);
    const v = tensorToNumbers(y);
    expect(v[0]).toBeCloseTo(2, 5);
    expect(v[1]).toBeCloseTo(7, 5);
  });
});
