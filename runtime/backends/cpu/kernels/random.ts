import { fromNumbers, toNumbers } from '../../../ir/dtype.js';
import { distribution, keysOf, normalAt, sampleSize, schemas, uniformAt } from '../../../ir/ops/random.js';
import { hostTensor, sizeOf, type HostTensor } from '../../../ir/tensor.js';
import { outputsOf } from '../data-index.js';
import type { CpuKernel } from '../kernel.js';

/**
 * CPU reference for the random generators (the generator and the seed/no-seed behaviour: ir/ops/random.ts). Values
 * are computed in float64 from the shared draws and rounded to the output type once.
 */

/** RandomUniform(Like): low + (high - low) u; RandomNormal(Like): mean + scale z. */
const generate: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas[node.op], node, inputs, ctx);
  const keys = keysOf(node);
  const { normal, a, b } = distribution(node);
  const n = sizeOf(o!.shape, ctx.maxElements);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = normal ? a + b * normalAt(keys, i) : a + (b - a) * uniformAt(keys, i);
  return [hostTensor(o!.dtype, o!.shape, fromNumbers(o!.dtype, v))];
};

/** Bernoulli: y[i] = 1 where u_i < p[i], else 0 (p = 1 always draws 1, p = 0 never). */
const bernoulli: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.Bernoulli, node, inputs, ctx);
  const x = inputs[0] as HostTensor;
  const keys = keysOf(node);
  const p = toNumbers(x.dtype, x.data);
  const v = new Float64Array(p.length);
  for (let i = 0; i < p.length; i++) v[i] = uniformAt(keys, i) < p[i]! ? 1 : 0;
  return [hostTensor(o!.dtype, o!.shape, fromNumbers(o!.dtype, v))];
};

/**
 * Multinomial: sample s of batch row b takes the first class k whose cumulative exp(x[b, k] - max) exceeds
 * u * sum (u = uniform of element b * sample_size + s): the inverse CDF of softmax(x[b]).
 */
const multinomial: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.Multinomial, node, inputs, ctx);
  const x = inputs[0] as HostTensor;
  const keys = keysOf(node);
  const [batch, classes] = x.shape as [number, number];
  const samples = sampleSize(node);
  const logits = toNumbers(x.dtype, x.data);
  const v = new Float64Array(batch * samples);
  for (let r = 0; r < batch; r++) {
    const row = logits.subarray(r * classes, (r + 1) * classes);
    const max = row.reduce((m, t) => Math.max(m, t), -Infinity);
    const w = row.map((t) => Math.exp(t - max));
    const total = w.reduce((s, t) => s + t, 0);
    for (let s = 0; s < samples; s++) {
      const target = uniformAt(keys, r * samples + s) * total;
      let k = 0;
      let acc = w[0]!;
      while (k < classes - 1 && acc <= target) acc += w[++k]!;
      v[r * samples + s] = k;
    }
  }
  return [hostTensor(o!.dtype, o!.shape, fromNumbers(o!.dtype, v))];
};

export const kernels: Record<string, CpuKernel> = {
  RandomUniform: generate, RandomNormal: generate, RandomUniformLike: generate, RandomNormalLike: generate,
  Bernoulli: bernoulli, Multinomial: multinomial,
};
