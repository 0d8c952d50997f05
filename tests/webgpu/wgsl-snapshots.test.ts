import { describe, expect, it } from 'vitest';
import { GPU_KERNELS } from '../../runtime/backends/webgpu/kernels/index.js';
import { EW_OPS } from '../../runtime/backends/webgpu/kernels/elementwise-ops.js';
import { generateSource } from '../../runtime/backends/webgpu/pipeline-cache.js';
import { fullKey, type GpuTensorInfo, type KernelEnv } from '../../runtime/backends/webgpu/program.js';
import { storageFor } from '../../runtime/backends/webgpu/storage.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Node } from '../../runtime/ir/graph.js';
import { OP_SCHEMAS } from '../../runtime/ir/ops/index.js';
import { tensorFromNumbers } from '../../runtime/ir/tensor.js';
import { attr, node } from '../helpers/ir-builder.js';

/**
 * The generated WGSL of each kernel key, snapshot-tested so a refactor shows its diff. Keys, not shapes, decide the
 * source: each case below is one representative shape of a key.
 */
const ENV: KernelEnv = {
  f16: false,
  limits: {
    maxBufferSize: 2 ** 28, maxStorageBufferBindingSize: 2 ** 27, maxUniformBufferBindingSize: 65536, maxStorageBuffersPerShaderStage: 8,
    maxComputeWorkgroupStorageSize: 16384, maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupSizeX: 256,
    maxComputeWorkgroupSizeY: 256, maxComputeWorkgroupSizeZ: 64, maxComputeWorkgroupsPerDimension: 65535,
    minStorageBufferOffsetAlignment: 256, minUniformBufferOffsetAlignment: 256, maxBindGroups: 4,
  },
  maxElements: 2 ** 30,
};

type Spec = [DType, number[], number[]?];

/** The WGSL (by full key) of every program the kernel plans for `n` on inputs of these dtypes and shapes. */
export function sourcesFor(n: Node, inputs: (Spec | undefined)[]): [string, string][] {
  const infos = inputs.map((s): GpuTensorInfo | undefined =>
    s && { dtype: s[0], shape: s[1], storage: storageFor(s[0], ENV.f16, true), ...(s[2] ? { value: tensorFromNumbers(s[0], s[1], s[2]) } : {}) });
  const outs = OP_SCHEMAS[n.op]!.infer({
    node: n,
    inputs: infos.map((i) => i && { dtype: i.dtype, shape: i.shape, value: i.value }),
    symbol: (h) => h,
  });
  const outputs = outs.map((o) => ({ dtype: o.dtype, shape: o.shape as number[], storage: storageFor(o.dtype, ENV.f16, false) }));
  const plan = GPU_KERNELS[n.op]!.plan(n, infos, outputs, ENV);
  return plan.calls.map((c) => [fullKey(c.program), generateSource(c.program, ENV.f16)]);
}

function snapshotAll(cases: [string, Node, (Spec | undefined)[]][]): void {
  for (const [title, n, inputs] of cases) {
    it(title, () => {
      for (const [key, src] of sourcesFor(n, inputs)) expect(src).toMatchSnapshot(key);
    });
  }
}

describe('elementwise WGSL', () => {
  const cases: [string, Node, (Spec | undefined)[]][] = [];
  for (const [op, def] of Object.entries(EW_OPS)) {
    const dtype: DType = def.kinds.includes('f') ? 'float32' : def.kinds.includes('i') ? 'int32' : 'bool';
    const n = Math.max(def.arity[0], Math.min(def.arity[1], 2));
    const ins: Spec[] = Array.from({ length: n }, (_, i) => [dtype, i === 0 ? [3, 8] : [8]]);
    if (def.condFirst) ins.splice(0, 1, ['bool', [3, 8]], ['float32', [8]]);
    if (op === 'Clip') ins.splice(1, 1, ['float32', []], ['float32', []]);
    const attrs = op === 'Mod' ? { fmod: attr(1) } : {};
    cases.push([`${op} (broadcast, vec4)`, node(op, ins.map((_, i) => `x${i}`), ['y'], attrs), ins]);
  }
  cases.push(
    ['Add flat vec4', node('Add', ['a', 'b'], ['y']), [['float32', [4, 8]], ['float32', [4, 8]]]],
    ['Add flat scalar', node('Add', ['a', 'b'], ['y']), [['float32', [5]], ['float32', [5]]]],
    ['Add rank-3 scalar broadcast', node('Add', ['a', 'b'], ['y']), [['float32', [2, 3, 5]], ['float32', [3, 1]]]],
    ['Add packed float16', node('Add', ['a', 'b'], ['y']), [['float16', [3, 8]], ['float16', [3, 8]]]],
    ['Add int32', node('Add', ['a', 'b'], ['y']), [['int32', [3, 5]], ['int32', [5]]]],
    ['Gelu tanh', node('Gelu', ['x'], ['y'], { approximate: attr('tanh') }), [['float32', [16]]]],
    ['Pow int32', node('Pow', ['a', 'b'], ['y']), [['int32', [16]], ['int32', [16]]]],
    ['Sum of 9 (chained)', node('Sum', Array.from({ length: 9 }, (_, i) => `x${i}`), ['y']), Array.from({ length: 9 }, (): Spec => ['float32', [4]])],
  );
  snapshotAll(cases);
});
