import { beforeAll, describe, it } from 'vitest';
import type { GpuResources } from '../../runtime/backends/webgpu/executor.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { attr, node } from '../helpers/ir-builder.js';
import { Rng, randomTensor } from '../helpers/random.js';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { checkAgainstCpu } from './ew-harness.js';

/**
 * NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss on WebGPU against the CPU reference: every reduction, with
 * and without weights and ignore_index, odd class counts, more targets than the reduction workgroup (strided
 * accumulation), large logits (the max shift), float16, and the softmax form's log_prob output.
 */

let res: GpuResources;
beforeAll(async () => {
  res = await gpuForTests();
});
const rng = new Rng(31337);
const count = (s: number[]) => s.reduce((a, b) => a * b, 1);
function targets(shape: number[], c: number, ii?: number, dtype: DType = 'int64'): HostTensor {
  return tensorFromNumbers(dtype, shape, Array.from({ length: count(shape) }, () => (ii !== undefined && rng.next() < 0.2 ? ii : rng.int(0, c - 1))));
}

async function check(op: string, inputs: (HostTensor | undefined)[], attrs: Record<string, Attr>, outputs: string[], tol = { rtol: 1e-4, atol: 1e-5 }) {
  await checkAgainstCpu(res, node(op, inputs.map((t, i) => (t ? `x${i}` : '')), outputs, attrs), inputs, tol);
}

describe('losses on WebGPU', () => {
  for (const op of ['NegativeLogLikelihoodLoss', 'SoftmaxCrossEntropyLoss']) {
    it(`${op}: reductions, weights, ignore_index, shapes`, async () => {
      const outs = op === 'SoftmaxCrossEntropyLoss' ? ['loss', 'log_prob'] : ['loss'];
      for (const reduction of ['none', 'sum', 'mean']) {
        for (const shape of [[7, 5], [3, 11, 4], [2, 3, 9, 5, 3], [40, 3, 9]]) {
          const c = shape[1]!;
          const ts = [shape[0]!, ...shape.slice(2)];
          const input = randomTensor(rng, 'float32', shape, { lo: -4, hi: 4 });
          const w = randomTensor(rng, 'float32', [c], { lo: 0.1, hi: 2 });
          await check(op, [input, targets(ts, c)], { reduction: attr(reduction) }, outs);
          await check(op, [input, targets(ts, c, -100, 'int32'), w], { reduction: attr(reduction), ignore_index: attr(-100) }, outs);
          await check(op, [input, targets(ts, c, 2), w], { reduction: attr(reduction), ignore_index: attr(2) }, outs.slice(0, 1));
        }
      }
    });
  }

  it('large logits, float16, and log_prob alone', async () => {
    const big = randomTensor(rng, 'float32', [4, 6], { lo: 500, hi: 900 });
    await check('SoftmaxCrossEntropyLoss', [big, targets([4], 6)], { reduction: attr('mean') }, ['loss', 'log_prob'], { rtol: 1e-4, atol: 1e-3 });
    const h = randomTensor(rng, 'float16', [5, 7, 3], { lo: -2, hi: 2 });
    await check('NegativeLogLikelihoodLoss', [h, targets([5, 3], 7)], { reduction: attr('sum') }, ['loss'], { rtol: 2e-3, atol: 2e-3 });
    await check('SoftmaxCrossEntropyLoss', [h, targets([5, 3], 7), randomTensor(rng, 'float16', [7], { lo: 0.5, hi: 1.5 })], { reduction: attr('none') }, ['loss', 'log_prob'], { rtol: 2e-3, atol: 2e-3 });
    await check('SoftmaxCrossEntropyLoss', [randomTensor(rng, 'float32', [3, 4]), targets([3], 4)], {}, ['', 'log_prob']);
  });
});
