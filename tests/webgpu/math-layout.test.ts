import { beforeAll, describe, it } from 'vitest';
import type { GpuResources } from '../../runtime/backends/webgpu/executor.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr } from '../../runtime/ir/graph.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { attr, node } from '../helpers/ir-builder.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { EINSUM_CASES } from '../helpers/op-cases.js';
import { checkAgainstCpu } from './ew-harness.js';

/** Math and layout ops of issue #9 §4 on WebGPU against the CPU reference (odd sizes, several dtypes). */

let res: GpuResources;
beforeAll(async () => {
  res = await gpuForTests();
});
const rng = new Rng(4711);
const rand = (dtype: DType, shape: number[]) => randomTensor(rng, dtype, shape);
const TOL = { rtol: 1e-5, atol: 1e-5 };

async function check(op: string, inputs: (HostTensor | undefined)[], attrs: Record<string, Attr> = {}, tol = TOL, constInputs: number[] = [], outputs = ['y']) {
  await checkAgainstCpu(res, node(op, inputs.map((t, i) => (t ? `x${i}` : '')), outputs, attrs), inputs as (HostTensor | undefined)[], tol, { constInputs });
}

describe('Einsum on WebGPU', () => {
  it('every equation of the reference suite, plus int32 and float16', async () => {
    for (const [equation, shapes] of EINSUM_CASES) await check('Einsum', shapes.map((s) => rand('float32', s)), { equation: attr(equation) });
    await check('Einsum', [rand('int32', [3, 5]), rand('int32', [5, 7])], { equation: attr('ij,jk->ik') }, { rtol: 0, atol: 0 });
    await check('Einsum', [rand('float16', [2, 9, 3]), rand('float16', [2, 3, 5])], { equation: attr('bij,bjk->bik') }, { rtol: 2e-3, atol: 2e-3 });
    await check('Einsum', [rand('float32', [37, 41])], { equation: attr('ij->') }, { rtol: 1e-4, atol: 1e-4 });
  });
});

describe('MeanVarianceNormalization, LRN, ReverseSequence, Det, MaxUnpool on WebGPU', () => {
  it('MVN over several axis sets, LRN with odd and even sizes', async () => {
    await check('MeanVarianceNormalization', [rand('float32', [2, 3, 5, 7])]);
    await check('MeanVarianceNormalization', [rand('float32', [3, 7, 2])], { axes: attr([1]) });
    await check('MeanVarianceNormalization', [rand('float32', [4, 3, 5])], { axes: attr([0, -1]) });
    await check('MeanVarianceNormalization', [rand('float16', [2, 3, 4, 5])], {}, { rtol: 5e-3, atol: 5e-3 });
    for (const size of [1, 2, 3, 4, 7]) await check('LRN', [rand('float32', [2, 6, 3, 5])], { size: attr(size), alpha: attr(0.05, true), beta: attr(0.6, true), bias: attr(1.5, true) });
    await check('LRN', [rand('float32', [1, 5, 7])], { size: attr(3) });
  });

  it('ReverseSequence on both axis orders, Det with pivoting, MaxUnpool with and without output_shape', async () => {
    const lens = (v: number[]) => ({ dtype: 'int64' as DType, shape: [v.length], data: BigInt64Array.from(v.map(BigInt)) });
    await check('ReverseSequence', [rand('float32', [5, 4, 3]), lens([5, 0, 2, 1])], {}, { rtol: 0, atol: 0 });
    await check('ReverseSequence', [rand('int64', [3, 6, 2]), lens([6, 3, 1])], { time_axis: attr(1), batch_axis: attr(0) }, { rtol: 0, atol: 0 });
    await check('Det', [rand('float32', [2, 3, 5, 5])], {}, { rtol: 1e-4, atol: 1e-5 });
    await check('Det', [rand('float32', [1, 1])]);
    // A zero leading pivot needs a row swap; a singular matrix gives 0.
    await check('Det', [{ dtype: 'float32', shape: [2, 3, 3], data: Float32Array.from([0, 2, 1, 3, 1, 4, 5, 6, 0, 1, 2, 3, 2, 4, 6, 0, 1, 1]) }], {}, { rtol: 1e-5, atol: 1e-5 });
    const xs = rand('float32', [2, 3, 2, 3]);
    const idx: number[] = [];
    for (let p = 0; p < 6; p++) for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) idx.push(p * 24 + (2 * i + rng.int(0, 1)) * 6 + 2 * j + rng.int(0, 1));
    const I = { dtype: 'int64' as DType, shape: [2, 3, 2, 3], data: BigInt64Array.from(idx.map(BigInt)) };
    await check('MaxUnpool', [xs, I], { kernel_shape: attr([2, 2]), strides: attr([2, 2]), pads: attr([0, 0, 0, 0]) }, { rtol: 0, atol: 0 });
    const outShape = { dtype: 'int64' as DType, shape: [4], data: BigInt64Array.from([2n, 3n, 6n, 7n]) };
    await check('MaxUnpool', [xs, I, outShape], { kernel_shape: attr([2, 2]), strides: attr([2, 2]) }, { rtol: 0, atol: 0 }, [2]);
  });
});

describe('empty tensors', () => {
  it('Einsum over a zero-size label, Det of no matrices, MVN of an empty batch', async () => {
    await check('Einsum', [rand('float32', [3, 0]), rand('float32', [0, 4])], { equation: attr('ij,jk->ik') });
    await check('Einsum', [rand('float32', [0, 3])], { equation: attr('ij->j') });
    await check('Det', [rand('float32', [0, 3, 3])]);
    await check('MeanVarianceNormalization', [rand('float32', [0, 3, 2, 2])]);
  });
});
