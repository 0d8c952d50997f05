import { describe, expect, it } from 'vitest';
import { GPU_KERNELS } from '../../runtime/backends/webgpu/kernels/index.js';
import { generateSource } from '../../runtime/backends/webgpu/pipeline-cache.js';
import { fullKey, type GpuTensorInfo } from '../../runtime/backends/webgpu/program.js';
import { storageFor } from '../../runtime/backends/webgpu/storage.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr, Node } from '../../runtime/ir/graph.js';
import { optimizerOp } from '../../runtime/ir/ops/optimizers.js';
import { OP_SCHEMAS } from '../../runtime/ir/ops/index.js';
import { attr, node } from '../helpers/ir-builder.js';
import { SNAPSHOT_ENV } from '../helpers/snapshot-env.js';

/**
 * The generated WGSL of the kernel keys added for issue #9's preview.training optimizers, integer TfIdfVectorizer
 * and the random generators (kept apart from wgsl-snapshots.test.ts so the families' snapshots stay together). Each
 * case is one representative shape of its keys: keys, not shapes, decide the source.
 */

type Spec = [DType, number[]];

function sources(n: Node, inputs: Spec[]): [string, string][] {
  const infos = inputs.map(([dtype, shape]): GpuTensorInfo => ({ dtype, shape, storage: storageFor(dtype, SNAPSHOT_ENV.f16, true) }));
  const outs = OP_SCHEMAS[n.op]!.infer({ node: n, inputs: infos.map((i) => ({ dtype: i.dtype, shape: i.shape })), symbol: (h) => h });
  const outputs = outs.map((o) => ({ dtype: o.dtype, shape: o.shape as number[], storage: storageFor(o.dtype, SNAPSHOT_ENV.f16, false) }));
  return GPU_KERNELS[n.op]!.plan(n, infos, outputs, SNAPSHOT_ENV).calls.map((c) => [fullKey(c.program), generateSource(c.program, SNAPSHOT_ENV.f16)]);
}

function snapshot(title: string, n: Node, inputs: Spec[], keys: number) {
  it(title, () => {
    const got = sources(n, inputs);
    expect(got.length).toBe(keys);
    for (const [key, src] of got) expect(src).toMatchSnapshot(key);
  });
}

const optimizerNode = (kind: 'Adagrad' | 'Momentum' | 'Adam', attrs: Record<string, Attr>, states: number): [Node, Spec[]] => {
  const ins = ['R', 'T', 'X', 'G', ...Array.from({ length: states }, (_, i) => `S${i}`)];
  const outs = ['Xn', ...Array.from({ length: states }, (_, i) => `S${i}n`)];
  return [node(optimizerOp(kind), ins, outs, attrs), [['float32', []], ['int64', []], ...Array.from({ length: 2 + states }, (): Spec => ['float32', [5, 3]])]];
};

describe('preview.training optimizer WGSL', () => {
  snapshot('Adagrad', ...optimizerNode('Adagrad', {}, 1), 1);
  snapshot('Momentum standard', ...optimizerNode('Momentum', { alpha: attr(0.9, true), beta: attr(0.1, true), norm_coefficient: attr(0, true), mode: attr('standard') }, 1), 1);
  snapshot('Momentum nesterov', ...optimizerNode('Momentum', { alpha: attr(0.9, true), beta: attr(0.1, true), norm_coefficient: attr(0, true), mode: attr('nesterov') }, 1), 1);
  snapshot('Adam (moments, step)', ...optimizerNode('Adam', {}, 2), 2);
});

describe('TfIdfVectorizer WGSL', () => {
  for (const mode of ['TF', 'IDF', 'TFIDF']) {
    const attrs = {
      mode: attr(mode), min_gram_length: attr(1), max_gram_length: attr(2), max_skip_count: attr(1),
      ngram_counts: attr([0, 2]), ngram_indexes: attr([0, 1, 2]), pool_int64s: attr([4, 5, 4, 5]),
    };
    snapshot(mode, node('TfIdfVectorizer', ['x'], ['y'], attrs), [['int32', [2, 6]]], 1);
  }
});

describe('random generator WGSL', () => {
  const seed = { seed: attr(1, true) };
  snapshot('RandomUniform seeded', node('RandomUniform', [], ['y'], { shape: attr([4, 4]), ...seed }), [], 1);
  snapshot('RandomNormal unseeded (+ advance)', node('RandomNormal', [], ['y'], { shape: attr([4, 4]) }), [], 2);
  snapshot('Bernoulli seeded, int32 out', node('Bernoulli', ['x'], ['y'], { dtype: attr(6), ...seed }), [['float32', [8]]], 1);
  snapshot('Multinomial seeded', node('Multinomial', ['x'], ['y'], { sample_size: attr(3), ...seed }), [['float32', [2, 5]]], 1);
});
