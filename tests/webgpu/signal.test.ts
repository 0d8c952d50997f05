import { beforeAll, describe, it } from 'vitest';
import type { GpuResources } from '../../runtime/backends/webgpu/executor.js';
import type { Attr } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { attr, node } from '../helpers/ir-builder.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { checkAgainstCpu } from './ew-harness.js';

/** Windows, DFT, STFT and MelWeightMatrix on WebGPU against the CPU reference (float64 sums there, f32 here). */

let res: GpuResources;
beforeAll(async () => {
  res = await gpuForTests();
});
const rng = new Rng(2718);
const i64s = (v: number) => tensorFromNumbers('int64', [], [v]);
const TOL = { rtol: 1e-4, atol: 1e-4 };

async function check(op: string, inputs: (HostTensor | undefined)[], attrs: Record<string, Attr>, constInputs: number[] = [], tol = TOL) {
  await checkAgainstCpu(res, node(op, inputs.map((t, i) => (t ? `x${i}` : '')), ['y'], attrs), inputs, tol, { constInputs });
}

describe('signal ops on WebGPU', () => {
  it('windows in several output types', async () => {
    for (const op of ['HannWindow', 'HammingWindow', 'BlackmanWindow']) {
      for (const periodic of [0, 1]) await check(op, [i64s(13)], { periodic: attr(periodic) }, [0], { rtol: 1e-5, atol: 1e-6 });
    }
    await check('HannWindow', [tensorFromNumbers('int32', [], [8])], { output_datatype: attr(10) }, [0], { rtol: 1e-3, atol: 1e-3 });
  });

  it('DFT and STFT on odd lengths, padding, truncation, inverse, onesided, windows', async () => {
    await check('DFT', [randomTensor(rng, 'float32', [3, 11, 1])], {});
    await check('DFT', [randomTensor(rng, 'float32', [2, 9, 2])], { inverse: attr(1) });
    await check('DFT', [randomTensor(rng, 'float32', [2, 16, 3, 1]), undefined, i64s(1)], { onesided: attr(1) }, [2]);
    await check('DFT', [randomTensor(rng, 'float32', [2, 6, 2]), i64s(13)], {}, [1]);
    await check('DFT', [randomTensor(rng, 'float32', [2, 12, 4, 1]), i64s(5), i64s(-3)], {}, [1, 2]);
    await check('DFT', [randomTensor(rng, 'float32', [1, 256, 1])], {}, [], { rtol: 1e-3, atol: 1e-3 });
    const sig = randomTensor(rng, 'float32', [2, 41, 1]);
    await check('STFT', [sig, i64s(6), undefined, i64s(16)], {}, [1, 3]);
    await check('STFT', [sig, i64s(5), randomTensor(rng, 'float32', [12], { lo: 0, hi: 1 })], {}, [1]);
    await check('STFT', [randomTensor(rng, 'float32', [1, 30, 2]), i64s(7), undefined, i64s(9)], { onesided: attr(0) }, [1, 3]);
  });

  it('MelWeightMatrix', async () => {
    const f = (v: number) => tensorFromNumbers('float32', [], [v]);
    await check('MelWeightMatrix', [i64s(8), i64s(64), i64s(8000), f(0), f(4000)], {}, [0, 1, 2, 3, 4], { rtol: 1e-5, atol: 1e-6 });
    await check('MelWeightMatrix', [i64s(20), i64s(512), i64s(16000), f(50), f(7600)], {}, [0, 1, 2, 3, 4], { rtol: 1e-5, atol: 1e-6 });
  });
});
