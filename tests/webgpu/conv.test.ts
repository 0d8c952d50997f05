import { beforeAll, describe, expect, it } from 'vitest';
import { CPU_KERNELS } from '../../runtime/backends/cpu/kernels/index.js';
import { runNodeGpu, type GpuResources } from '../../runtime/backends/webgpu/executor.js';
import type { Attr } from '../../runtime/ir/graph.js';
import { DEFAULT_MAX_ELEMENTS } from '../../runtime/ir/tensor.js';
import { allClose } from '../helpers/compare.js';
import { attr, node } from '../helpers/ir-builder.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { checkAgainstCpu } from './ew-harness.js';

let res: GpuResources;
beforeAll(async () => {
  res = await gpuForTests();
});
const TOL = { rtol: 1e-4, atol: 1e-5 };

type Case = [string, number[], number[], Record<string, Attr>, boolean];
const cases: Case[] = [
  ['3x3 pad 1', [1, 3, 8, 8], [4, 3, 3, 3], { pads: attr([1, 1, 1, 1]) }, true],
  ['stride 2, dilation 2, asymmetric pads', [2, 3, 11, 10], [5, 3, 3, 2], { strides: attr([2, 2]), dilations: attr([2, 2]), pads: attr([0, 1, 2, 0]) }, false],
  ['groups = 2', [2, 4, 7, 6], [6, 2, 3, 3], { group: attr(2), pads: attr([1, 1, 1, 1]) }, true],
  ['depthwise stride 2', [1, 8, 9, 9], [8, 1, 3, 3], { group: attr(8), strides: attr([2, 2]), pads: attr([1, 1, 1, 1]) }, true],
  ['depthwise with channel multiplier 2', [2, 4, 6, 5], [8, 1, 3, 3], { group: attr(4), pads: attr([1, 0, 1, 2]) }, false],
  ['1x1 as GEMM', [2, 16, 5, 5], [32, 16, 1, 1], {}, true],
  ['1x1 strided (implicit GEMM)', [1, 8, 7, 7], [12, 8, 1, 1], { strides: attr([2, 2]) }, true],
  ['big tiles 3x3', [1, 32, 16, 16], [64, 32, 3, 3], { pads: attr([1, 1, 1, 1]) }, true],
  ['auto_pad SAME_UPPER stride 2', [1, 3, 9, 8], [4, 3, 3, 3], { auto_pad: attr('SAME_UPPER'), strides: attr([2, 2]) }, false],
  ['auto_pad VALID 5x5', [1, 2, 9, 9], [3, 2, 5, 5], { auto_pad: attr('VALID') }, true],
  ['1-D conv', [2, 3, 20], [5, 3, 4], { strides: attr([2]), pads: attr([1, 2]) }, true],
  ['7x7 stride 2 (a ResNet stem, small)', [1, 3, 20, 20], [8, 3, 7, 7], { strides: attr([2, 2]), pads: attr([3, 3, 3, 3]) }, true],
];

describe('Conv vs the CPU reference', () => {
  for (const [title, xs, ws, attrs, withBias] of cases) {
    it(title, async () => {
      const rng = new Rng(xs.reduce((a, b) => a * 31 + b, 7));
      const x = randomTensor(rng, 'float32', xs);
      const w = randomTensor(rng, 'float32', ws);
      const b = withBias ? randomTensor(rng, 'float32', [ws[0]!]) : undefined;
      // The GPU kernels (workgroup tiles) and the CPU-adapter ones (direct where chooseTiling picks it).
      for (const cpuAdapter of [false, true]) {
        await checkAgainstCpu(res, node('Conv', ['x', 'w', ...(b ? ['b'] : [])], ['y'], attrs), b ? [x, w, b] : [x, w], TOL, { cpuAdapter });
      }
    });
  }

  it('float16 weights and input (packed) compute in f32', async () => {
    const rng = new Rng(3);
    const x = randomTensor(rng, 'float16', [1, 4, 6, 6]);
    const w = randomTensor(rng, 'float16', [4, 4, 3, 3]);
    await checkAgainstCpu(res, node('Conv', ['x', 'w'], ['y'], { pads: attr([1, 1, 1, 1]) }), [x, w], { rtol: 5e-3, atol: 2e-3 });
  });

  for (const [kind, xs, ws, group] of [['general', [1, 4, 8, 8], [8, 4, 3, 3], 1], ['depthwise', [1, 6, 8, 8], [6, 1, 3, 3], 6]] as const) {
    it(`fused bias + Relu epilogue (${kind})`, async () => {
      const rng = new Rng(group);
      const x = randomTensor(rng, 'float32', [...xs]);
      const w = randomTensor(rng, 'float32', [...ws]);
      const b = randomTensor(rng, 'float32', [ws[0]]);
      const attrs = { pads: attr([1, 1, 1, 1]), group: attr(group) };
      const [gpu] = await runNodeGpu(res, node('Conv', ['x', 'w', 'b'], ['y'], { ...attrs, activation: attr('Relu') }), [x, w, b]);
      const ctx = { maxElements: DEFAULT_MAX_ELEMENTS };
      const [lin] = CPU_KERNELS.Conv!([x, w, b], node('Conv', ['x', 'w', 'b'], ['y'], attrs), ctx);
      const [want] = CPU_KERNELS.Relu!([lin!], node('Relu', ['x'], ['y']), ctx);
      const r = allClose(gpu!, want!, TOL);
      expect(r.ok, r.ok ? '' : r.message).toBe(true);
    });
  }
});
