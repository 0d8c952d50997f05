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
  await checkAgainstCpu(res, node(op, inputs.map((t, i) => (t ? `x${i}` : '')), outputs, attrs), inputs, tol, { constInputs });
}

describe('Einsum on WebGPU', () => {
  it('every equation of the reference suite, plus int32 and float16', async () => {
    for (const [equation, shapes] of EINSUM_CASES) await check('Einsum', shapes.map((s) => rand('float32', s)), { equation: attr(equation) });
    await check('Einsum', [rand('int32', [3, 5]), rand('int32', [5, 7])], { equation: attr('ij,jk->ik') }, { rtol: 0, atol: 0 });
    await check('Einsum', [rand('float16', [2, 9, 3]), rand('float16', [2, 3, 5])], { equation: attr('bij,bjk->bik') }, { rtol: 2e-3, atol: 2e-3 });
    await check('Einsum', [rand('float32', [37, 41])], { equation: attr('ij->') }, { rtol: 1e-4, atol: 1e-4 });
  });
});
