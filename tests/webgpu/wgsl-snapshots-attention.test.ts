import { describe, expect, it } from 'vitest';
import { GPU_KERNELS } from '../../runtime/backends/webgpu/kernels/index.js';
import { generateSource } from '../../runtime/backends/webgpu/pipeline-cache.js';
import { fullKey, type GpuTensorInfo } from '../../runtime/backends/webgpu/program.js';
import { storageFor } from '../../runtime/backends/webgpu/storage.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr, Node } from '../../runtime/ir/graph.js';
import { OP_SCHEMAS } from '../../runtime/ir/ops/index.js';
import { attr, node } from '../helpers/ir-builder.js';
import { SNAPSHOT_ENV } from '../helpers/snapshot-env.js';

/**
 * The generated WGSL of the fused attention (kernels/attention.ts, attention-decode.ts): the row-tiled form, the
 * decode form and the present copy, snapshotted so a refactor shows its diff; and their cache keys name no shape:
 * the same node at other batch, sequence and past lengths reuses every key.
 */

type Spec = [DType, number[]] | undefined;

function plan(n: Node, inputs: Spec[]): [string, string][] {
  const infos = inputs.map((s): GpuTensorInfo | undefined => s && { dtype: s[0], shape: s[1], storage: storageFor(s[0], SNAPSHOT_ENV.f16, true) });
  const outs = OP_SCHEMAS[n.op]!.infer({ node: n, inputs: infos.map((i) => i && { dtype: i.dtype, shape: i.shape }), symbol: (h) => h });
  const outputs = outs.map((o, i) => (n.outputs[i] ? { dtype: o.dtype, shape: o.shape as number[], storage: storageFor(o.dtype, SNAPSHOT_ENV.f16, false) } : undefined));
  return GPU_KERNELS[n.op]!.plan(n, infos, outputs, SNAPSHOT_ENV).calls.map((c) => [fullKey(c.program), generateSource(c.program, SNAPSHOT_ENV.f16)]);
}

function snapshot(title: string, ins: string[], outs: string[], attrs: Record<string, Attr>, inputs: Spec[], other: Spec[], calls: number) {
  it(title, () => {
    const n = node('Attention', ins, outs, attrs);
    const got = plan(n, inputs);
    expect(got.length).toBe(calls);
    for (const [key, src] of got) expect(src).toMatchSnapshot(key);
    expect(plan(n, other).map(([k]) => k)).toEqual(got.map(([k]) => k));
  });
}

const f = (...shape: number[]): Spec => ['float32', shape];
const b = (...shape: number[]): Spec => ['bool', shape];

describe('Attention WGSL', () => {
  snapshot('row tiles, head size 64, no mask', ['q', 'k', 'v'], ['y'], { is_causal: attr(1) }, [f(1, 2, 16, 64), f(1, 2, 16, 64), f(1, 2, 16, 64)], [f(2, 2, 40, 64), f(2, 2, 40, 64), f(2, 2, 40, 64)], 1);
  snapshot(
    'row tiles, 3-D GQA with a bool mask',
    ['q', 'k', 'v', 'm'], ['y'], { q_num_heads: attr(4), kv_num_heads: attr(2) },
    [f(2, 9, 32), f(2, 9, 16), f(2, 9, 16), b(2, 1, 9, 9)], [f(1, 20, 32), f(1, 20, 16), f(1, 20, 16), b(1, 1, 20, 20)], 1,
  );
  snapshot(
    'decode with past and a float mask: present copies, then the decode form',
    ['q', 'k', 'v', 'm', 'pk', 'pv'], ['y', 'present_k', 'present_v'], { is_causal: attr(1) },
    [f(1, 2, 1, 16), f(1, 2, 1, 16), f(1, 2, 1, 16), f(1, 1, 1, 6), f(1, 2, 5, 16), f(1, 2, 5, 16)],
    [f(3, 2, 1, 16), f(3, 2, 1, 16), f(3, 2, 1, 16), f(3, 1, 1, 31), f(3, 2, 30, 16), f(3, 2, 30, 16)], 3,
  );
});
