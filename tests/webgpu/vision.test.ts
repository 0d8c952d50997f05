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
