import { describe, expect, it } from 'vitest';
import { DTypeError, InvalidArgumentError, ShapeError } from '../../runtime/errors.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr, Dim } from '../../runtime/ir/graph.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { attr } from '../helpers/ir-builder.js';
import { compareWithOrt, inferNode } from '../helpers/ort-single-node.js';
import { randomTensor, Rng } from '../helpers/random.js';
import { nodeModel, str } from '../importer/model-builder.js';
import { checkAgainstOrt } from '../importer/ort-check.js';

/** GridSample (and RoiAlign): inference and the CPU reference against onnxruntime-node. */

const rng = new Rng(1606);
const x = (shape: Dim[] | undefined, dtype: DType = 'float32') => ({ dtype, shape });

async function expectOrt(op: string, attrs: Record<string, Attr>, inputs: (HostTensor | undefined)[], opts: Parameters<typeof compareWithOrt>[3] = {}) {
  const what = `${op} ${JSON.stringify(attrs)} ${JSON.stringify(inputs.map((t) => t && [t.dtype, t.shape]))}`;
  expect(await compareWithOrt(op, attrs, inputs, { rtol: 1e-4, atol: 1e-5, ...opts }), what).toEqual([]);
}

describe('GridSample', () => {
  it('infers [N, C, Ho, Wo] and rejects bad attributes', () => {
    expect(inferNode('GridSample', {}, [x(['N', 3, 'H', 'W']), x(['N', 5, 7, 2])])[0]!.shape).toEqual(['N', 3, 5, 7]);
    expect(() => inferNode('GridSample', { mode: attr('area') }, [x([1, 1, 2, 2]), x([1, 1, 1, 2])])).toThrow(InvalidArgumentError);
    expect(() => inferNode('GridSample', { padding_mode: attr('wrap') }, [x([1, 1, 2, 2]), x([1, 1, 1, 2])])).toThrow(InvalidArgumentError);
    expect(() => inferNode('GridSample', {}, [x([1, 1, 2, 2]), x([1, 1, 1, 3])])).toThrow(ShapeError);
    expect(() => inferNode('GridSample', {}, [x([1, 1, 2, 2]), x([1, 1, 1, 2], 'int32')])).toThrow(DTypeError);
  });

  it('matches onnxruntime for every mode, padding mode and align_corners, with grids reaching outside', async () => {
    for (const mode of ['bilinear', 'nearest', 'bicubic']) {
      for (const padding_mode of ['zeros', 'border', 'reflection']) {
        for (const align_corners of [0, 1]) {
          const X = randomTensor(rng, 'float32', [2, 3, 5, 4]);
          const grid = randomTensor(rng, 'float32', [2, 3, 6, 2], { lo: -1.7, hi: 1.7 });
          await expectOrt('GridSample', { mode: attr(mode), padding_mode: attr(padding_mode), align_corners: attr(align_corners) }, [X, grid], { opset: 16 });
        }
      }
    }
  });
});

describe('RoiAlign', () => {
  it('infers [R, C, oh, ow] and checks types', () => {
    expect(inferNode('RoiAlign', { output_height: attr(3), output_width: attr(2) }, [x(['N', 4, 'H', 'W']), x(['R', 4]), x(['R'], 'int64')])[0]!.shape).toEqual(['R', 4, 3, 2]);
    expect(() => inferNode('RoiAlign', {}, [x([1, 4, 5, 5]), x([2, 4]), x([2], 'int32')])).toThrow(DTypeError);
    expect(() => inferNode('RoiAlign', { mode: attr('sum') }, [x([1, 4, 5, 5]), x([2, 4]), x([2], 'int64')])).toThrow(InvalidArgumentError);
  });

  it('matches onnxruntime: avg and max, sampling ratios, both coordinate modes, rois past the edges', async () => {
    const X = randomTensor(rng, 'float32', [2, 3, 9, 7]);
    const rois = { dtype: 'float32' as DType, shape: [4, 4], data: Float32Array.from([0, 0, 6, 8, 1.5, 2.2, 4.1, 5.9, -2, -1, 3, 4, 5, 6, 9.5, 11]) };
    const bi = { dtype: 'int64' as DType, shape: [4], data: BigInt64Array.from([0n, 1n, 1n, 0n]) };
    for (const mode of ['avg', 'max']) {
      for (const ctm of ['half_pixel', 'output_half_pixel']) {
        for (const sampling_ratio of [0, 2]) {
          await expectOrt('RoiAlign', { mode: attr(mode), coordinate_transformation_mode: attr(ctm), sampling_ratio: attr(sampling_ratio), output_height: attr(3), output_width: attr(4), spatial_scale: attr(0.8, true) }, [X, rois, bi], { opset: 16 });
        }
      }
    }
  });
});

describe('GridSample-20 in 3-D', () => {
  it('matches onnxruntime for linear and nearest, every padding mode and align_corners', async () => {
    expect(inferNode('GridSample', {}, [x(['N', 2, 4, 5, 6]), x(['N', 3, 2, 7, 3])])[0]!.shape).toEqual(['N', 2, 3, 2, 7]);
    expect(() => inferNode('GridSample', { mode: attr('cubic') }, [x([1, 2, 4, 5, 6]), x([1, 3, 2, 7, 3])])).toThrow(InvalidArgumentError);
    expect(() => inferNode('GridSample', {}, [x([1, 2, 4, 5, 6]), x([1, 3, 2, 7, 2])])).toThrow(ShapeError);
    for (const mode of ['linear', 'nearest']) {
      for (const padding_mode of ['zeros', 'border', 'reflection']) {
        for (const align_corners of [0, 1]) {
          const X = randomTensor(rng, 'float32', [2, 2, 3, 4, 5]);
          const grid = randomTensor(rng, 'float32', [2, 2, 3, 4, 3], { lo: -1.6, hi: 1.6 });
          await expectOrt('GridSample', { mode: attr(mode), padding_mode: attr(padding_mode), align_corners: attr(align_corners) }, [X, grid], { opset: 20 });
        }
      }
    }
  });
});

describe('GridSample-16 through the importer', () => {
  it('bilinear and bicubic become linear and cubic; the exported opset-21 model runs in onnxruntime', async () => {
    for (const mode of ['bilinear', 'bicubic', 'nearest']) {
      const { bytes, feeds } = nodeModel({
        op: 'GridSample', opset: 16, attrs: [str('mode', mode), str('padding_mode', 'border')],
        inputs: [{ name: 'x', value: randomTensor(rng, 'float32', [1, 2, 5, 6]) }, { name: 'grid', value: randomTensor(rng, 'float32', [1, 3, 4, 2], { lo: -1.2, hi: 1.2 }) }],
        outputs: [{ name: 'y' }],
      });
      const { problems, imported } = await checkAgainstOrt(bytes, feeds, { rtol: 1e-4, atol: 1e-5 });
      expect(problems, mode).toEqual([]);
      expect(imported.graph.nodes[0]!.attrs['mode']).toEqual({ type: 'string', value: mode.replace('bi', '').replace('cubic', 'cubic') });
    }
  });
});
