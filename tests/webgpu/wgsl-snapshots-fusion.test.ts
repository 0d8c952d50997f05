import { describe, expect, it } from 'vitest';
import { GPU_KERNELS } from '../../runtime/backends/webgpu/kernels/index.js';
import { generateSource } from '../../runtime/backends/webgpu/pipeline-cache.js';
import { fullKey, type GpuTensorInfo } from '../../runtime/backends/webgpu/program.js';
import { storageFor } from '../../runtime/backends/webgpu/storage.js';
import type { Attr } from '../../runtime/ir/graph.js';
import { attr, node } from '../helpers/ir-builder.js';
import { SNAPSHOT_ENV } from '../helpers/snapshot-env.js';

/**
 * The generated WGSL of the matrix-kernel forms the Transformer fusions create (fusion.ts, fusion-qkv.ts): a batched
 * MatMul with a row bias and a QuickGelu (SiLU) epilogue, and a MatMul whose product is split among three outputs
 * (the QKV group), each in the tiled and the direct (CPU adapter) family; and a check that the keys name no shape.
 */

const t = (shape: number[], readOnly = true): GpuTensorInfo => ({ dtype: 'float32', shape, storage: storageFor('float32', false, readOnly) });

function plan(ins: string[], outs: string[], attrs: Record<string, Attr>, inputs: number[][], outputs: number[][], cpuAdapter: boolean): [string, string][] {
  const n = node('MatMul', ins, outs, attrs);
  const env = { ...SNAPSHOT_ENV, cpuAdapter };
  return GPU_KERNELS.MatMul!.plan(n, inputs.map((s) => t(s)), outputs.map((s) => t(s, false)), env).calls.map((c) => [fullKey(c.program), generateSource(c.program, false)]);
}

function snapshot(title: string, ins: string[], outs: string[], attrs: Record<string, Attr>, shapes: [number[][], number[][]], other: [number[][], number[][]]) {
  for (const cpuAdapter of [false, true]) {
    it(`${title} (${cpuAdapter ? 'direct' : 'tiled'})`, () => {
      const got = plan(ins, outs, attrs, shapes[0], shapes[1], cpuAdapter);
      expect(got.length).toBe(1);
      for (const [key, src] of got) expect(src).toMatchSnapshot(key);
      expect(plan(ins, outs, attrs, other[0], other[1], cpuAdapter).map(([k]) => k)).toEqual(got.map(([k]) => k));
    });
  }
}

describe('fused matrix-kernel WGSL', () => {
  snapshot(
    'MatMul + row bias + SiLU', ['a', 'w', 'b'], ['y'], { activation: attr('QuickGelu'), activation_alpha: attr(1, true) },
    [[[2, 5, 16], [16, 24], [24]], [[2, 5, 24]]],
    [[[3, 9, 16], [16, 24], [24]], [[3, 9, 24]]],
  );
  snapshot(
    'MatMul split among three outputs (QKV) with a bias', ['x', 'w', 'b'], ['q', 'k', 'v'], {},
    [[[2, 5, 16], [16, 40], [40]], [[2, 5, 16], [2, 5, 16], [2, 5, 8]]],
    [[[3, 7, 16], [16, 48], [48]], [[3, 7, 16], [3, 7, 16], [3, 7, 16]]],
  );
});
