import { beforeAll, describe, it } from 'vitest';
import type { GpuResources } from '../../runtime/backends/webgpu/executor.js';
import type { Attr } from '../../runtime/ir/graph.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { attr, node } from '../helpers/ir-builder.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { checkAgainstCpu } from './ew-harness.js';

/** GridSample (and RoiAlign) on WebGPU against the CPU reference. */

let res: GpuResources;
beforeAll(async () => {
  res = await gpuForTests();
});
const rng = new Rng(99);

async function check(op: string, inputs: HostTensor[], attrs: Record<string, Attr>, tol = { rtol: 1e-4, atol: 1e-5 }, constInputs: number[] = []) {
  await checkAgainstCpu(res, node(op, inputs.map((_, i) => `x${i}`), ['y'], attrs), inputs, tol, { constInputs });
}

describe('GridSample on WebGPU', () => {
  it('every mode, padding mode and align_corners; odd sizes; grids outside [-1, 1]; float16', async () => {
    for (const mode of ['bilinear', 'nearest', 'bicubic']) {
      for (const padding_mode of ['zeros', 'border', 'reflection']) {
        for (const align_corners of [0, 1]) {
          const X = randomTensor(rng, 'float32', [2, 3, 7, 5]);
          const grid = randomTensor(rng, 'float32', [2, 4, 3, 2], { lo: -2.3, hi: 2.3 });
          await check('GridSample', [X, grid], { mode: attr(mode), padding_mode: attr(padding_mode), align_corners: attr(align_corners) });
        }
      }
    }
    await check('GridSample', [randomTensor(rng, 'float32', [1, 2, 1, 1]), randomTensor(rng, 'float32', [1, 2, 2, 2], { lo: -1.5, hi: 1.5 })], { padding_mode: attr('reflection') });
    await check('GridSample', [randomTensor(rng, 'float16', [1, 2, 4, 4]), randomTensor(rng, 'float16', [1, 3, 3, 2])], { mode: attr('linear') }, { rtol: 5e-3, atol: 5e-3 });
  });
});

describe('GridSample 3-D on WebGPU', () => {
  it('linear and nearest, every padding mode and align_corners', async () => {
    for (const mode of ['linear', 'nearest']) {
      for (const padding_mode of ['zeros', 'border', 'reflection']) {
        for (const align_corners of [0, 1]) {
          const X = randomTensor(rng, 'float32', [2, 3, 4, 5, 3]);
          const grid = randomTensor(rng, 'float32', [2, 3, 2, 5, 3], { lo: -1.8, hi: 1.8 });
          await check('GridSample', [X, grid], { mode: attr(mode), padding_mode: attr(padding_mode), align_corners: attr(align_corners) });
        }
      }
    }
  });
});

describe('RoiAlign on WebGPU', () => {
  it('avg and max, sampling ratios, both coordinate modes, rois past the edges', async () => {
    const X = randomTensor(rng, 'float32', [2, 3, 9, 7]);
    const rois = { dtype: 'float32' as const, shape: [5, 4], data: Float32Array.from([0, 0, 6, 8, 1.5, 2.2, 4.1, 5.9, -2, -1, 3, 4, 5, 6, 9.5, 11, 2, 2, 2.2, 2.3]) };
    const bi = { dtype: 'int64' as const, shape: [5], data: BigInt64Array.from([0n, 1n, 1n, 0n, 1n]) };
    for (const mode of ['avg', 'max']) {
      for (const ctm of ['half_pixel', 'output_half_pixel']) {
        for (const sampling_ratio of [0, 3]) {
          await check('RoiAlign', [X, rois, bi], { mode: attr(mode), coordinate_transformation_mode: attr(ctm), sampling_ratio: attr(sampling_ratio), output_height: attr(2), output_width: attr(5), spatial_scale: attr(0.7, true) });
        }
      }
    }
  });
});
