import { readdirSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import onnxProto from 'onnx-proto';
import type { GpuResources } from '../../runtime/backends/webgpu/executor.js';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import { createWorker } from '../../sdk/worker/client.js';

/**
 * Soak loops (issue #14): many runs of one WebGPU session with alternating input shapes and output locations, and
 * many create/release cycles, measuring what must not grow: live GPU bytes and buffers (GpuMemory.stats(), the
 * only code that creates GPU buffers), compiled pipelines (the device's cache) and the JS heap after a full GC.
 * Shared by the short versions in tests/reliability/soak.test.ts and the long ones (npm run soak).
 */

/** A full garbage collection (V8's gc(), unlocked at run time: vitest's forks do not pass --expose-gc). */
export function fullGc(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

export interface Snapshot {
  liveBytes: number;
  buffers: number;
  leasedBytes: number;
  pipelines: number;
  heapBytes: number;
}

/**
 * Figures after the queue drained: the pool is trimmed first (GpuMemory.trim), so liveBytes counts buffers in use,
 * not the bounded cache of free buffers by size class (which may gain a size class when shapes alternate).
 */
export async function snapshot(res: GpuResources): Promise<Snapshot> {
  await res.memory.trim();
  fullGc();
  await new Promise((r) => setTimeout(r, 0));
  fullGc();
  const m = res.memory.stats();
  return { liveBytes: m.liveBytes, buffers: m.buffers, leasedBytes: m.leasedBytes, pipelines: res.pipelines.size, heapBytes: process.memoryUsage().heapUsed };
}

/**
 * The model with its input's dims named (symbolic) and the graph outputs' shapes cleared, so one file serves
 * several input shapes: `dims` maps an input dim index to the name it gets (mobilenet_v2 is exported for 224x224).
 */
export function withSymbolicDims(bytes: Uint8Array, dims: Record<number, string>): Uint8Array {
  const P = onnxProto.onnx;
  const m = P.ModelProto.decode(bytes);
  const init = new Set((m.graph!.initializer ?? []).map((t) => t.name));
  for (const i of m.graph!.input ?? []) {
    if (init.has(i.name)) continue;
    const d = i.type?.tensorType?.shape?.dim ?? [];
    for (const [k, name] of Object.entries(dims)) {
      const dim = d[Number(k)];
      if (dim) {
        dim.dimParam = name;
        dim.dimValue = undefined as unknown as number;
        (dim as { value?: string }).value = 'dimParam';
      }
    }
  }
  for (const o of m.graph!.output ?? []) if (o.type?.tensorType) o.type.tensorType.shape = null;
  m.graph!.valueInfo = [];
  return P.ModelProto.encode(m).finish();
}

export interface RunSoakResult {
  /** Runs made: `runs`, or fewer if the time budget (`stopAt`) ended the loop first. */
  runs: number;
  /** True when `stopAt` ended the loop before `runs`. */
  stoppedEarly: boolean;
  afterWarmup: Snapshot;
  end: Snapshot;
  ms: number;
}

/**
 * `runs` runs of one session, input shapes cycling through `inputs`, outputs alternating between the host and
 * 'gpu-buffer' (each GPU output read back on every 10th run, then disposed). The snapshot after `warmup` runs is
 * the baseline (every shape's plan exists by then); the end snapshot is taken with the session still alive.
 * `stopAt` (a Date.now() time) is a time budget for long soaks on a shared machine: the loop stops there (never
 * before the warm-up), the end checks still apply, and the result says how many runs were made.
 */
export async function soakRuns(res: GpuResources, bytes: Uint8Array, inputs: Tensor[], runs: number, warmup = 100, onProgress?: (i: number, s: Snapshot) => void, progressEvery = 1000, stopAt = Infinity): Promise<RunSoakResult> {
  const s = await InferenceSession.create(bytes, { backend: 'webgpu' });
  const name = s.inputNames[0]!;
  let afterWarmup: Snapshot | undefined;
  const t0 = performance.now();
  let i = 0;
  try {
    for (; i < runs; i++) {
      if (i >= warmup && Date.now() >= stopAt) break;
      const x = inputs[i % inputs.length]!;
      if (i % 2 === 0) await s.run({ [name]: x });
      else {
        const out = await s.run({ [name]: x }, { preferredOutputLocation: 'gpu-buffer' });
        for (const t of Object.values(out)) {
          if (i % 10 === 1) await t.getData();
          t.dispose();
        }
      }
      if (i + 1 === warmup) afterWarmup = await snapshot(res);
      if (onProgress && (i + 1) % progressEvery === 0) onProgress(i + 1, await snapshot(res));
    }
    return { runs: i, stoppedEarly: i < runs, afterWarmup: afterWarmup!, end: await snapshot(res), ms: performance.now() - t0 };
  } finally {
    await s.release();
  }
}

export interface CycleSoakResult {
  cycles: number;
  baseline: Snapshot;
  afterFirst: Snapshot;
  end: Snapshot;
  ms: number;
}

/**
 * `cycles` create / run / release cycles; GPU buffers must return to the baseline, pipelines stop growing after the
 * first. `onProgress` gets a snapshot every `progressEvery` cycles (the heap's course over a long soak: growth that
 * levels off is V8's caches filling, growth that keeps its slope is a leak).
 */
export async function soakCycles(res: GpuResources, bytes: Uint8Array, input: Tensor, cycles: number, onProgress?: (i: number, s: Snapshot) => void, progressEvery = 250): Promise<CycleSoakResult> {
  const baseline = await snapshot(res);
  let afterFirst: Snapshot | undefined;
  const t0 = performance.now();
  for (let i = 0; i < cycles; i++) {
    const s = await InferenceSession.create(bytes, { backend: 'webgpu' });
    try {
      const out = await s.run({ [s.inputNames[0]!]: input }, { preferredOutputLocation: i % 2 ? 'gpu-buffer' : 'cpu' });
      for (const t of Object.values(out)) t.dispose();
    } finally {
      await s.release();
    }
    if (i === 0) afterFirst = await snapshot(res);
    if (onProgress && (i + 1) % progressEvery === 0) onProgress(i + 1, await snapshot(res));
  }
  return { cycles, baseline, afterFirst: afterFirst!, end: await snapshot(res), ms: performance.now() - t0 };
}

export interface WorkerSnapshot extends Snapshot {
  /** The process's OS threads (/proc/self/task): each live worker_threads worker is one more. */
  threads: number;
  /** Bytes of ArrayBuffers alive on this thread (fed tensors are transferred to workers, outputs back). */
  arrayBuffers: number;
}

async function workerSnapshot(res: GpuResources): Promise<WorkerSnapshot> {
  const s = await snapshot(res);
  return { ...s, threads: readdirSync('/proc/self/task').length, arrayBuffers: process.memoryUsage().arrayBuffers };
}

export interface WorkerCycleSoakResult {
  cycles: number;
  pool: number;
  baseline: WorkerSnapshot;
  afterFirst: WorkerSnapshot;
  /** The largest thread count seen with a pool up (baseline + pool, or the workers did not run in parallel). */
  peakThreads: number;
  end: WorkerSnapshot;
  /** Runs whose outputs differed from `expected` (must be 0). */
  mismatches: number;
  ms: number;
}

/**
 * `cycles` cycles of a worker pool (issue #14): `pool` workers started with createWorker() on `entry`, two CPU
 * sessions in each, a run on every session checked against `expected` (a main-thread run of the same input), the
 * sessions released and the workers terminated. Threads, ArrayBuffers, GPU buffers and the heap must come back to
 * where they were after the first cycle (which loads what stays: modules, the libuv pool).
 */
export async function soakWorkerCycles(res: GpuResources, entry: URL, model: Uint8Array, input: () => Tensor, expected: Float32Array, cycles: number, pool = 2): Promise<WorkerCycleSoakResult> {
  const baseline = await workerSnapshot(res);
  let afterFirst: WorkerSnapshot | undefined;
  let peakThreads = 0;
  let mismatches = 0;
  const t0 = performance.now();
  for (let i = 0; i < cycles; i++) {
    const workers = await Promise.all(Array.from({ length: pool }, () => createWorker({ url: entry })));
    try {
      peakThreads = Math.max(peakThreads, readdirSync('/proc/self/task').length);
      await Promise.all(
        workers.map(async (w) => {
          // Model bytes are transferred to the worker: each session gets its own copy.
          const sessions = await Promise.all([w.createSession(model.slice(), { backend: 'cpu' }), w.createSession(model.slice(), { backend: 'cpu' })]);
          try {
            for (const s of sessions) {
              const out = await s.run({ [s.inputNames[0]!]: input() });
              const got = Object.values(out)[0]!.data as Float32Array;
              if (got.length !== expected.length || got.some((v, k) => v !== expected[k])) mismatches++;
            }
          } finally {
            await Promise.all(sessions.map((s) => s.release()));
          }
        }),
      );
    } finally {
      await Promise.all(workers.map((w) => w.terminate()));
    }
    if (i === 0) afterFirst = await workerSnapshot(res);
  }
  return { cycles, pool, baseline, afterFirst: afterFirst!, peakThreads, end: await workerSnapshot(res), mismatches, ms: performance.now() - t0 };
}
