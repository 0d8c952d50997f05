import { describe, expect, it } from 'vitest';
import { GPU_TRAIN_KERNELS } from '../../runtime/backends/webgpu/kernels/train/index.js';
import { optimizerPrograms } from '../../runtime/backends/webgpu/optimizer.js';
import { generateSource } from '../../runtime/backends/webgpu/pipeline-cache.js';
import { fullKey, type GpuTensorInfo } from '../../runtime/backends/webgpu/program.js';
import { storageFor } from '../../runtime/backends/webgpu/storage.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr, Node } from '../../runtime/ir/graph.js';
import { tensorFromNumbers } from '../../runtime/ir/tensor.js';
import { adam, adamw, rmsprop, sgd } from '../../runtime/train/optimizers.js';
import { TRAIN_DOMAIN, TRAIN_SCHEMAS } from '../../runtime/train/ops/index.js';
import { SNAPSHOT_ENV } from '../helpers/snapshot-env.js';
import { attr } from '../helpers/ir-builder.js';

/**
 * The generated WGSL of each training kernel key and of the optimizer step's programs, snapshot-tested so a
 * refactor shows its diff (as tests/webgpu/wgsl-snapshots.test.ts does for the inference kernels).
 */
const ENV = SNAPSHOT_ENV;

type Spec = [DType, number[], number[]?];

function sources(op: string, inputs: (Spec | undefined)[], attrs: Record<string, Attr> = {}, outputs?: string[]): [string, string][] {
  const n: Node = { name: op, op, domain: TRAIN_DOMAIN, inputs: inputs.map((s, i) => (s ? `x${i}` : '')), outputs: outputs ?? ['y'], attrs };
  const infos = inputs.map((s): GpuTensorInfo | undefined =>
    s && { dtype: s[0], shape: s[1], storage: storageFor(s[0], ENV.f16, true), ...(s[2] ? { value: tensorFromNumbers(s[0], s[1], s[2]) } : {}) });
  const outs = TRAIN_SCHEMAS[op]!.infer({ node: n, inputs: infos.map((i) => i && { dtype: i.dtype, shape: i.shape, value: i.value }), symbol: (h) => h });
  const outInfos = n.outputs.map((o, i) => (o ? { dtype: outs[i]!.dtype, shape: outs[i]!.shape as number[], storage: storageFor(outs[i]!.dtype, ENV.f16, false) } : undefined));
  const plan = GPU_TRAIN_KERNELS[op]!.plan(n, infos, outInfos, ENV);
  return plan.calls.map((c) => [fullKey(c.program), generateSource(c.program, ENV.f16)]);
}

const CASES: [string, string, (Spec | undefined)[], Record<string, Attr>?, string[]?][] = [
  ['SumToShape', 'SumToShape', [['float32', [3, 4, 5]], ['int64', [2], [1, 5]]]],
  ['GeluGrad exact', 'GeluGrad', [['float32', [8]], ['float32', [8]]]],
  ['GeluGrad tanh', 'GeluGrad', [['float32', [8]], ['float32', [8]]], { approximate: attr('tanh') }],
  ['SoftmaxGrad long rows', 'SoftmaxGrad', [['float32', [2, 300]], ['float32', [2, 300]]]],
  ['LogSoftmax grad short rows', 'SoftmaxGrad', [['float32', [2, 5]], ['float32', [2, 5]]], { log: attr(1) }],
  ['ConvGradInput', 'ConvGradInput', [['float32', [1, 2, 3, 3]], ['float32', [2, 3, 3, 3]], ['int64', [4], [1, 3, 5, 5]]]],
  ['ConvGradWeight', 'ConvGradWeight', [['float32', [1, 3, 5, 5]], ['float32', [1, 2, 3, 3]], ['int64', [4], [2, 3, 3, 3]]]],
  ['BatchNormGrad', 'BatchNormGrad', [['float32', [2, 3, 4, 4]], ['float32', [2, 3, 4, 4]], ['float32', [3]], ['float32', [3]], ['float32', [3]]], {}, ['dx', 'ds', 'db']],
  ['LayerNormGrad', 'LayerNormGrad', [['float32', [4, 8]], ['float32', [4, 8]], ['float32', [8]]], {}, ['dx', 'ds']],
  ['AveragePoolGrad', 'AveragePoolGrad', [['float32', [1, 2, 2, 2]], ['int64', [4], [1, 2, 4, 4]]], { kernel_shape: attr([2, 2]), strides: attr([2, 2]) }],
  ['MaxPoolGrad', 'MaxPoolGrad', [['float32', [1, 2, 2, 2]], ['float32', [1, 2, 4, 4]]], { kernel_shape: attr([2, 2]), strides: attr([2, 2]) }],
  ['SeededDropout', 'SeededDropout', [['float32', [16]], ['float32', [], [0.5]], ['uint32', []]], {}, ['y', 'mask']],
  ['CrossEntropyLoss', 'CrossEntropyLoss', [['float32', [4, 5]], ['int64', [4]]]],
  ['CrossEntropyLossGrad', 'CrossEntropyLossGrad', [['float32', []], ['float32', [4, 5]], ['int64', [4]]]],
  ['CrossEntropyLoss probabilities', 'CrossEntropyLoss', [['float32', [4, 5]], ['float32', [4, 5]]]],
  ['BCEWithLogitsLoss', 'BCEWithLogitsLoss', [['float32', [6]], ['float32', [6]]]],
  ['BCEWithLogitsLossGrad', 'BCEWithLogitsLossGrad', [['float32', []], ['float32', [6]], ['float32', [6]]]],
];

describe('training kernel WGSL', () => {
  for (const [title, op, inputs, attrs, outputs] of CASES) {
    it(title, () => {
      for (const [key, src] of sources(op, inputs, attrs, outputs)) expect(src).toMatchSnapshot(key);
    });
  }
});

describe('optimizer step WGSL', () => {
  const cases = [
    ['SGD momentum Nesterov, clip by value', sgd({ momentum: 0.9, nesterov: true }), { value: 1 }],
    ['Adam, clip by norm', adam(), { norm: 1 }],
    ['AdamW', adamw(), {}],
    ['RMSprop momentum centered', rmsprop({ momentum: 0.9, centered: true }), {}],
  ] as const;
  for (const [title, cfg, clip] of cases) {
    it(title, () => {
      for (const p of Object.values(optimizerPrograms(cfg, clip))) expect(generateSource(p, false)).toMatchSnapshot(fullKey(p));
    });
  }
});
