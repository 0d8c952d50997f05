import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { GpuResources } from '../../runtime/backends/webgpu/executor.js';
import { Tensor } from '../../sdk/node.js';
import { gpuForTests } from '../helpers/webgpu-env.js';
import { Rng } from '../helpers/random.js';
import { FIXTURES } from '../models/fixture-files.js';
import { soakCycles, soakRuns, withSymbolicDims, type Snapshot } from './soak.js';

/**
 * Soak (issue #14). Short by default (npm test): 200 runs of the digits CNN at three batch sizes, alternating
 * host and GPU outputs, and 50 create/release cycles. `npm run soak` sets EDGEKIT_SOAK=full: 10,000 runs of
 * mobilenet_v2 at two input sizes and 1,000 cycles. Live GPU bytes, buffers and pipelines must end exactly where
 * they were after the warm-up; the JS heap (after a full GC) within a small allowance for V8's own caches.
 */

const FULL = process.env.EDGEKIT_SOAK === 'full';
const HEAP_SLACK = 4 * 2 ** 20;

let res: GpuResources;
beforeAll(async () => {
  res = await gpuForTests();
});

function randomInput(rng: Rng, dims: number[]): Tensor {
  const n = dims.reduce((a, b) => a * b, 1);
  return new Tensor('float32', Float32Array.from({ length: n }, () => rng.uniform(-1, 1)), dims);
}

const fmt = (s: Snapshot) => `live ${(s.liveBytes / 2 ** 20).toFixed(2)} MiB in ${s.buffers} buffers, ${s.pipelines} pipelines, heap ${(s.heapBytes / 2 ** 20).toFixed(1)} MiB`;

describe('soak: many runs of one WebGPU session', () => {
  it(FULL ? `${process.env.EDGEKIT_SOAK_RUNS ?? '10,000'} runs of mobilenet_v2 (224 and 192 px, host and GPU outputs)` : '200 runs of the digits CNN (batches 1, 4, 7; host and GPU outputs)', async () => {
    const rng = new Rng(14);
    const [bytes, inputs, runs] = FULL
      ? [withSymbolicDims(new Uint8Array(readFileSync(join(FIXTURES, 'generated', 'mobilenet_v2.onnx'))), { 2: 'H', 3: 'W' }), [randomInput(rng, [1, 3, 224, 224]), randomInput(rng, [1, 3, 192, 192])], Number(process.env.EDGEKIT_SOAK_RUNS ?? 10_000)]
      : [new Uint8Array(readFileSync(join(FIXTURES, 'digits', 'digits-cnn.onnx'))), [1, 4, 7].map((n) => randomInput(rng, [n, 1, 8, 8])), 200];
    const r = await soakRuns(res, bytes, inputs, runs, FULL ? Math.min(100, runs / 2) : 20, (i, s) => console.log(`soak: ${i} runs: ${fmt(s)}`));
    console.log(`soak: ${r.runs} runs in ${(r.ms / 1000).toFixed(1)} s; after warm-up ${fmt(r.afterWarmup)}; at the end ${fmt(r.end)}`);
    expect(r.end.liveBytes).toBe(r.afterWarmup.liveBytes);
    expect(r.end.buffers).toBe(r.afterWarmup.buffers);
    expect(r.end.leasedBytes).toBe(r.afterWarmup.leasedBytes);
    expect(r.end.pipelines).toBe(r.afterWarmup.pipelines);
    expect(r.end.heapBytes - r.afterWarmup.heapBytes).toBeLessThan(HEAP_SLACK);
  }, FULL ? 86_400_000 : 300_000);
});

describe('soak: create/release cycles', () => {
  it(FULL ? '1,000 cycles of the digits CNN' : '50 cycles of the digits CNN', async () => {
    const bytes = new Uint8Array(readFileSync(join(FIXTURES, 'digits', 'digits-cnn.onnx')));
    const r = await soakCycles(res, bytes, randomInput(new Rng(3), [2, 1, 8, 8]), FULL ? 1000 : 50);
    console.log(`soak: ${r.cycles} cycles in ${(r.ms / 1000).toFixed(1)} s; before ${fmt(r.baseline)}; after the first ${fmt(r.afterFirst)}; at the end ${fmt(r.end)}`);
    // Every buffer a session made is gone once it is released (pooled buffers are destroyed by settle()).
    expect(r.end.leasedBytes).toBe(r.baseline.leasedBytes);
    expect(r.end.liveBytes).toBe(r.afterFirst.liveBytes);
    expect(r.end.buffers).toBe(r.afterFirst.buffers);
    // Pipelines are cached per device by WGSL key: the first cycle compiles them, later cycles reuse them.
    expect(r.end.pipelines).toBe(r.afterFirst.pipelines);
    expect(r.end.heapBytes - r.afterFirst.heapBytes).toBeLessThan(HEAP_SLACK);
  }, FULL ? 86_400_000 : 300_000);
});
