import { describe, expect, it } from 'vitest';
import { GPU_KERNELS } from '../../runtime/backends/webgpu/kernels/index.js';
import { generateSource } from '../../runtime/backends/webgpu/pipeline-cache.js';
import { fullKey, type GpuTensorInfo } from '../../runtime/backends/webgpu/program.js';
import { storageFor } from '../../runtime/backends/webgpu/storage.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr, Node } from '../../runtime/ir/graph.js';
import { msOp } from '../../runtime/ir/ops/contrib.js';
import { OP_SCHEMAS } from '../../runtime/ir/ops/index.js';
import { attr, node } from '../helpers/ir-builder.js';
import { SNAPSHOT_ENV } from '../helpers/snapshot-env.js';

/**
 * The generated WGSL of the com.microsoft transformer kernels (kept apart from wgsl-snapshots.test.ts so the
 * family's snapshots stay together), and a check that their cache keys name no shape: the same node at another
 * batch and sequence length (the same vector width, which keys may name) reuses every key.
 */

type Spec = [DType, number[]];

function plan(n: Node, inputs: Spec[]): [string, string][] {
  const infos = inputs.map(([dtype, shape]): GpuTensorInfo => ({ dtype, shape, storage: storageFor(dtype, SNAPSHOT_ENV.f16, true) }));
  const outs = OP_SCHEMAS[n.op]!.infer({ node: n, inputs: infos.map((i) => ({ dtype: i.dtype, shape: i.shape })), symbol: (h) => h });
  const outputs = outs.map((o, i) => (n.outputs[i] ? { dtype: o.dtype, shape: o.shape as number[], storage: storageFor(o.dtype, SNAPSHOT_ENV.f16, false) } : undefined));
  return GPU_KERNELS[n.op]!.plan(n, infos, outputs, SNAPSHOT_ENV).calls.map((c) => [fullKey(c.program), generateSource(c.program, SNAPSHOT_ENV.f16)]);
}

/** Snapshots the sources of `n` on `inputs`, and checks `other` (the same ranks, other sizes) plans the same keys. */
function snapshot(title: string, op: string, ins: string[], outs: string[], attrs: Record<string, Attr>, inputs: Spec[], other: Spec[]) {
  it(title, () => {
    const n = node(msOp(op), ins, outs, attrs);
    const got = plan(n, inputs);
    expect(got.length).toBe(1);
    for (const [key, src] of got) expect(src).toMatchSnapshot(key);
    expect(plan(n, other).map(([k]) => k)).toEqual(got.map(([k]) => k));
  });
}

const f = (...shape: number[]): Spec => ['float32', shape];
const h = (...shape: number[]): Spec => ['float16', shape];

describe('com.microsoft elementwise WGSL', () => {
  snapshot('Gelu', 'Gelu', ['x'], ['y'], {}, [f(2, 3, 8)], [f(5, 1, 8)]);
  snapshot('QuickGelu', 'QuickGelu', ['x'], ['y'], { alpha: attr(1.5, true) }, [f(2, 3, 7)], [f(3, 3, 7)]);
  snapshot('FastGelu with bias', 'FastGelu', ['x', 'b'], ['y'], {}, [f(2, 3, 8), f(8)], [f(1, 11, 8), f(8)]);
  snapshot('FastGelu without bias (float16)', 'FastGelu', ['x'], ['y'], {}, [h(2, 3, 6)], [h(4, 3, 6)]);
  snapshot('BiasGelu', 'BiasGelu', ['x', 'b'], ['y'], {}, [f(2, 3, 6), f(6)], [f(7, 2, 6), f(6)]);
  snapshot('BiasAdd', 'BiasAdd', ['x', 'b', 's'], ['y'], {}, [f(2, 3, 8), f(8), f(2, 3, 8)], [f(1, 5, 8), f(8), f(1, 5, 8)]);
  snapshot('BiasSplitGelu', 'BiasSplitGelu', ['x', 'b'], ['y'], {}, [f(2, 3, 8), f(8)], [f(3, 7, 8), f(8)]);
});

describe('com.microsoft normalization WGSL', () => {
  const ln = (b: number, s: number, hd: number): Spec[] => [f(b, s, hd), f(b, s, hd), f(hd), f(hd), f(hd)];
  snapshot('SkipLayerNormalization, all outputs (thread rows)', 'SkipLayerNormalization', ['x', 's', 'g', 'be', 'bi'], ['y', 'm', 'i', 'sum'], {}, ln(2, 3, 16), ln(4, 9, 16));
  snapshot('SkipLayerNormalization, all outputs (workgroup rows)', 'SkipLayerNormalization', ['x', 's', 'g', 'be', 'bi'], ['y', 'm', 'i', 'sum'], {}, ln(2, 3, 256), ln(1, 5, 300));
  snapshot('SkipSimplifiedLayerNormalization (float16)', 'SkipSimplifiedLayerNormalization', ['x', 's', 'g'], ['y', '', 'i'], {}, [h(2, 3, 8), h(3, 8), h(8)], [h(4, 2, 8), h(2, 8), h(8)]);
  snapshot('SimplifiedLayerNormalization', 'SimplifiedLayerNormalization', ['x', 'g'], ['y', 'i'], { axis: attr(-1) }, [f(2, 3, 8), f(8)], [f(6, 1, 8), f(8)]);
});

describe('com.microsoft RotaryEmbedding WGSL', () => {
  const ids = (...shape: number[]): Spec => ['int64', shape];
  snapshot('[B, S, N*H], start offset', 'RotaryEmbedding', ['x', 'p', 'c', 's'], ['y'], {}, [f(2, 3, 16), ids(1), f(8, 8), f(8, 8)], [f(1, 6, 16), ids(1), f(9, 8), f(9, 8)]);
  snapshot('[B, N, S, H], position ids, interleaved', 'RotaryEmbedding', ['x', 'p', 'c', 's'], ['y'], { interleaved: attr(1), num_heads: attr(2) }, [f(2, 2, 3, 8), ids(2, 3), f(5, 4), f(5, 4)], [f(1, 2, 4, 8), ids(1, 4), f(6, 4), f(6, 4)]);
});
