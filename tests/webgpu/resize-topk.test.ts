import { beforeAll, describe, it } from 'vitest';
import type { GpuResources } from '../../runtime/backends/webgpu/executor.js';
import type { Attr } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { attr, i64, node } from '../helpers/ir-builder.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { checkAgainstCpu } from './ew-harness.js';

/** ConvTranspose, Resize and TopK against the CPU reference on random inputs. */
let res: GpuResources;
beforeAll(async () => {
  res = await gpuForTests();
});
const TOL = { rtol: 1e-4, atol: 1e-5 };
const rng = new Rng(404);
const f32 = (values: number[], shape = [values.length]) => tensorFromNumbers('float32', shape, values);

describe('ConvTranspose', () => {
  const cases: [string, number[], number[], Record<string, Attr>, boolean][] = [
    ['stride 2 with bias', [1, 3, 4, 5], [3, 2, 3, 3], { strides: attr([2, 2]) }, true],
    ['pads, dilation, output_padding', [2, 2, 5, 4], [2, 3, 3, 2], { strides: attr([2, 3]), pads: attr([1, 0, 1, 1]), dilations: attr([2, 1]), output_padding: attr([1, 2]) }, false],
    ['groups', [1, 4, 3, 3], [4, 2, 2, 2], { group: attr(2), strides: attr([2, 2]) }, true],
    ['output_shape', [1, 2, 3, 4], [2, 2, 3, 3], { strides: attr([2, 2]), output_shape: attr([7, 9]) }, false],
    ['1-D', [2, 3, 6], [3, 4, 3], { strides: attr([3]), pads: attr([1, 2]) }, true],
  ];
  for (const [title, xs, ws, attrs, withBias] of cases) {
    it(title, async () => {
      const x = randomTensor(rng, 'float32', xs);
      const w = randomTensor(rng, 'float32', ws);
      const m = ws[1]! * ((attrs.group?.value as number | undefined) ?? 1);
      const inputs: HostTensor[] = withBias ? [x, w, randomTensor(rng, 'float32', [m])] : [x, w];
      await checkAgainstCpu(res, node('ConvTranspose', inputs.map((_, i) => `x${i}`), ['y'], attrs), inputs, TOL);
    });
  }
});

describe('Resize', () => {
  const x = randomTensor(rng, 'float32', [1, 2, 5, 6]);
  const scales = (s: number[]) => f32(s);
  type Case = [string, Record<string, Attr>, (HostTensor | undefined)[]];
  const cases: Case[] = [
    ['nearest upsample (half_pixel, round_prefer_floor)', {}, [undefined, scales([1, 1, 2, 1.5])]],
    ['nearest downsample floor asymmetric', { coordinate_transformation_mode: attr('asymmetric'), nearest_mode: attr('floor') }, [undefined, scales([1, 1, 0.6, 0.5])]],
    ['linear upsample half_pixel', { mode: attr('linear') }, [undefined, scales([1, 1, 1.7, 2])]],
    ['linear align_corners by sizes', { mode: attr('linear'), coordinate_transformation_mode: attr('align_corners') }, [undefined, undefined, i64([1, 2, 9, 4])]],
    ['linear downsample with antialias', { mode: attr('linear'), antialias: attr(1) }, [undefined, scales([1, 1, 0.5, 0.4])]],
    ['cubic pytorch_half_pixel', { mode: attr('cubic'), coordinate_transformation_mode: attr('pytorch_half_pixel') }, [undefined, scales([1, 1, 1.4, 0.8])]],
    ['cubic exclude_outside', { mode: attr('cubic'), exclude_outside: attr(1), cubic_coeff_a: attr(-0.5, true) }, [undefined, scales([1, 1, 2, 2])]],
    ['tf_crop_and_resize with extrapolation', { mode: attr('linear'), coordinate_transformation_mode: attr('tf_crop_and_resize'), extrapolation_value: attr(-3, true) }, [f32([0, 0, -0.2, 0.1, 1, 1, 0.9, 1.3]), undefined, i64([1, 2, 4, 5])]],
    ['axes input', { mode: attr('linear'), axes: attr([2, 3]) }, [undefined, scales([1.5, 0.5])]],
  ];
  for (const [title, attrs, params] of cases) {
    it(title, async () => {
      const names = ['x', ...params.map((p, i) => (p ? `p${i}` : ''))];
      await checkAgainstCpu(res, node('Resize', names, ['y'], attrs), [x, ...params], TOL, { constInputs: [1, 2, 3] });
    });
  }

  it('nearest on int32 copies exactly', async () => {
    const xi = randomTensor(rng, 'int32', [2, 3, 4], { lo: -1000, hi: 1000 });
    await checkAgainstCpu(res, node('Resize', ['x', '', 's'], ['y'], { nearest_mode: attr('ceil') }), [xi, undefined, f32([1, 2.5, 0.75])], { rtol: 0, atol: 0 }, { constInputs: [1, 2] });
  });
});

describe('TopK', () => {
  it('largest and smallest along each axis, with ties and NaN', async () => {
    const ties = f32([3, 1, 3, NaN, 2, 3, -1, NaN, 0, 5], [2, 5]);
    for (const largest of [1, 0]) {
      await checkAgainstCpu(res, node('TopK', ['x', 'k'], ['v', 'i'], { largest: attr(largest) }), [ties, i64([3])], { rtol: 0, atol: 0 }, { constInputs: [1] });
      await checkAgainstCpu(res, node('TopK', ['x', 'k'], ['v', 'i'], { axis: attr(1), largest: attr(largest) }), [randomTensor(rng, 'float32', [3, 7, 4]), i64([4])], { rtol: 0, atol: 0 }, { constInputs: [1] });
      await checkAgainstCpu(res, node('TopK', ['x', 'k'], ['v', 'i'], { axis: attr(0), largest: attr(largest) }), [randomTensor(rng, 'int32', [6, 3], { lo: -3, hi: 3 }), i64([6])], { rtol: 0, atol: 0 }, { constInputs: [1] });
    }
    await checkAgainstCpu(res, node('TopK', ['x', 'k'], ['v', 'i']), [randomTensor(rng, 'float32', [2, 1000]), i64([5])], { rtol: 0, atol: 0 }, { constInputs: [1] });
  });
});
