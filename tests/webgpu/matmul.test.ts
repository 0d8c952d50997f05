import { beforeAll, describe, it } from 'vitest';
import { CPU_KERNELS } from '../../runtime/backends/cpu/kernels/index.js';
import { runNodeGpu, type GpuResources } from '../../runtime/backends/webgpu/executor.js';
import { chooseTiling } from '../../runtime/backends/webgpu/kernels/matmul.js';
import type { DType } from '../../runtime/ir/dtype.js';
import { DEFAULT_MAX_ELEMENTS } from '../../runtime/ir/tensor.js';
import { allClose } from '../helpers/compare.js';
import { attr, node } from '../helpers/ir-builder.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { checkAgainstCpu } from './ew-harness.js';
import { expect } from 'vitest';

let res: GpuResources;
beforeAll(async () => {
  res = await gpuForTests();
});
const TOL = { rtol: 1e-4, atol: 1e-5 };

describe('MatMul vs the CPU reference', () => {
  const cases: [number[], number[], DType?][] = [
    [[5, 7], [7, 3]],
    [[1, 16], [16, 70]], // skinny: one row
    [[3, 33], [33, 9]],
    [[70, 33], [33, 65]], // big tiles with ragged edges
    [[128, 40], [40, 64]],
    [[70, 33], [33, 131]], // wide: 64x128 tiles (4x8 per invocation), ragged on both sides
    [[20, 17], [17, 150]], // middle case, 2x4 per invocation
    [[9, 17], [17, 70]], // middle case with M <= 16, 1x4 per invocation
    [[2, 3, 4, 5], [5, 6]], // batched, B broadcast
    [[2, 1, 4, 5], [3, 5, 6]], // both batch dims broadcast
    [[7], [7, 3]], // 1-D A
    [[2, 7, 4], [4]], // 1-D B
    [[5], [5]], // dot product
    [[3, 0], [0, 4]], // K = 0: zeros
    [[6, 10], [10, 12], 'int32'],
    [[4, 9], [9, 5], 'float16'],
  ];
  // Each case with the GPU kernels (workgroup tiles) and the CPU-adapter ones (direct, no barriers; chooseTiling).
  for (const cpuAdapter of [false, true]) {
    for (const [sa, sb, dtype = 'float32'] of cases) {
      it(`${dtype} [${sa}] x [${sb}]${cpuAdapter ? ' (CPU-adapter kernels)' : ''}`, async () => {
        const rng = new Rng(sa.length * 100 + sb[0]!);
        const a = randomTensor(rng, dtype, sa);
        const b = randomTensor(rng, dtype, sb);
        await checkAgainstCpu(res, node('MatMul', ['a', 'b'], ['y']), [a, b], dtype === 'float16' ? { rtol: 2e-3, atol: 1e-3 } : TOL, { cpuAdapter });
      });
    }
  }
});

describe('tiling choice', () => {
  it('CPU adapters take the direct kernel (rows per invocation growing with M), GPUs keep workgroup tiles', () => {
    expect(chooseTiling(96, 12544, true)).toMatchObject({ direct: true, rm: 8, rn: 4 });
    expect(chooseTiling(256, 196, true)).toMatchObject({ direct: true, rm: 16 });
    expect(chooseTiling(16, 3136, true)).toMatchObject({ direct: true, rm: 4 });
    expect(chooseTiling(1, 1000, true)).toMatchObject({ direct: true, wx: 64, rm: 1 });
    expect(chooseTiling(96, 12544, false)).toMatchObject({ rm: 4, rn: 8, tk: 16 });
    expect(chooseTiling(1, 1000, false)).toMatchObject({ wx: 64, rm: 1, tk: 32 });
    for (const [m, n] of [[96, 12544], [320, 49], [20, 150], [1, 7]] as const) expect(chooseTiling(m, n, false).direct).toBeFalsy();
  });
});

describe('Gemm vs the CPU reference', () => {
  const M = 13, K = 21, N = 18;
  for (const transA of [0, 1]) {
    for (const transB of [0, 1]) {
      for (const cShape of [undefined, [N], [M, 1], [], [M, N], [1, N]]) {
        it(`transA=${transA} transB=${transB} C=${cShape ? `[${cShape}]` : 'none'}`, async () => {
          const rng = new Rng(transA * 10 + transB + (cShape?.length ?? 5));
          const a = randomTensor(rng, 'float32', transA ? [K, M] : [M, K]);
          const b = randomTensor(rng, 'float32', transB ? [N, K] : [K, N]);
          const c = cShape && randomTensor(rng, 'float32', cShape);
          const n = node('Gemm', ['a', 'b', ...(c ? ['c'] : [])], ['y'], { transA: attr(transA), transB: attr(transB), alpha: attr(0.75, true), beta: attr(-1.5, true) });
          await checkAgainstCpu(res, n, c ? [a, b, c] : [a, b], TOL, { cpuAdapter: false });
          await checkAgainstCpu(res, n, c ? [a, b, c] : [a, b], TOL, { cpuAdapter: true });
        });
      }
    }
  }

  it('large Gemm with default alpha/beta (a classifier head)', async () => {
    const rng = new Rng(77);
    const a = randomTensor(rng, 'float32', [2, 300]);
    const b = randomTensor(rng, 'float32', [100, 300]);
    const c = randomTensor(rng, 'float32', [100]);
    await checkAgainstCpu(res, node('Gemm', ['a', 'b', 'c'], ['y'], { transB: attr(1) }), [a, b, c], TOL);
  });
});

describe('fused activation epilogue', () => {
  for (const [act, attrs] of [['Relu', {}], ['LeakyRelu', { activation_alpha: attr(0.2, true) }], ['Sigmoid', {}], ['Gelu', { activation_approximate: attr('tanh') }]] as const) {
    it(`Gemm + ${act}`, async () => {
      const rng = new Rng(act.length);
      const a = randomTensor(rng, 'float32', [70, 24]);
      const b = randomTensor(rng, 'float32', [24, 66]);
      const c = randomTensor(rng, 'float32', [66]);
      const gemmNode = node('Gemm', ['a', 'b', 'c'], ['y'], { activation: attr(act), ...attrs });
      const [gpu] = await runNodeGpu(res, gemmNode, [a, b, c]);
      const ctx = { maxElements: DEFAULT_MAX_ELEMENTS };
      const [lin] = CPU_KERNELS.Gemm!([a, b, c], node('Gemm', ['a', 'b', 'c'], ['y']), ctx);
      const actAttrs = Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k.slice(11), v]));
      const [want] = CPU_KERNELS[act]!([lin!], node(act, ['x'], ['y'], actAttrs), ctx);
      const r = allClose(gpu!, want!, TOL);
      expect(r.ok, r.ok ? '' : r.message).toBe(true);
    });
  }
});
