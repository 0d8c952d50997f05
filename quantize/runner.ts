import { CpuSession } from '../runtime/backends/cpu/cpu-session.js';
import type { GpuResources } from '../runtime/backends/webgpu/executor.js';
import { GpuSession, type GpuFeed } from '../runtime/backends/webgpu/gpu-session.js';
import { decodeFromGpu, storageBytes } from '../runtime/backends/webgpu/storage.js';
import { InvalidArgumentError } from '../runtime/errors.js';
import type { Graph } from '../runtime/ir/graph.js';
import type { HostTensor } from '../runtime/ir/tensor.js';

/**
 * Where the quantizer runs models (calibration, the report): EdgeKit's own runtime, on the GPU when the caller
 * gives GPU resources (the SDK's quantize() does so for backend 'webgpu', its default where WebGPU exists), on the
 * CPU reference otherwise. Never a silent fallback: a graph the GPU cannot run is the GPU backend's typed error.
 */
export interface QuantizeEnv {
  backend: 'cpu' | 'webgpu';
  /** The shared device (backend 'webgpu'). */
  gpu?: () => Promise<GpuResources>;
  opset?: number;
}

/**
 * A run output left where the runner computed it (a GPU buffer on WebGPU, a host tensor on the CPU), to feed a
 * later run as an input without a readback (calibration histograms accumulate this way, quantize/histogram.ts).
 */
export interface KeptOutput {
  /** Gives its buffer back (idempotent). */
  dispose(): void;
}

export interface GraphRunner {
  run(feeds: Record<string, HostTensor>, outputs: readonly string[]): Promise<Record<string, HostTensor>>;
  /** A run whose `keep` outputs stay with the runner; `kept` feeds inputs with outputs kept by earlier runs. */
  runKeeping(feeds: Record<string, HostTensor>, kept: Record<string, KeptOutput>, keep: readonly string[]): Promise<Record<string, KeptOutput>>;
  /** Copies kept outputs to the host (on WebGPU: one submit reading back exactly their bytes). */
  read(kept: readonly KeptOutput[]): Promise<HostTensor[]>;
  dispose(): void;
}

/** The host tensor or GPU reference behind a KeptOutput of this module. */
const FEED = Symbol('feed');
type Kept = KeptOutput & { [FEED]: HostTensor | GpuFeed };
const hostKept = (t: HostTensor): Kept => ({ [FEED]: t, dispose: () => undefined });

export async function createRunner(graph: Graph, env: QuantizeEnv): Promise<GraphRunner> {
  if (env.backend === 'cpu') {
    const s = new CpuSession(graph);
    return {
      run: async (feeds, outputs) => s.run(feeds, outputs) as Record<string, HostTensor>,
      runKeeping: async (feeds, kept, keep) => {
        const inputs: Record<string, HostTensor> = { ...feeds };
        for (const [k, v] of Object.entries(kept)) inputs[k] = (v as Kept)[FEED] as HostTensor;
        const r = s.run(inputs, keep) as Record<string, HostTensor>;
        return Object.fromEntries(keep.map((k): [string, Kept] => [k, hostKept(r[k]!)]));
      },
      read: async (kept) => kept.map((k) => (k as Kept)[FEED] as HostTensor),
      dispose: () => undefined,
    };
  }
  if (!env.gpu) throw new InvalidArgumentError("quantize: backend 'webgpu' needs a GPU device; pass backend 'cpu' to calibrate on the CPU reference.");
  const res = await env.gpu();
  const s = await GpuSession.create(res, graph, { opset: env.opset });
  return {
    run: async (feeds, outputs) => (await s.run(feeds, outputs)).host,
    runKeeping: async (feeds, kept, keep) => {
      const inputs: Record<string, GpuFeed> = { ...feeds };
      for (const [k, v] of Object.entries(kept)) inputs[k] = (v as Kept)[FEED];
      const r = await s.run(inputs, [], keep);
      const out: Record<string, Kept> = {};
      for (const k of keep) {
        const t = r.gpu[k];
        // An output the plan has no buffer for (a constant) comes back on the host.
        out[k] = t
          ? { [FEED]: { buffer: t.buffer, offset: t.offset, storage: t.storage, dtype: t.dtype, shape: t.shape, onGpu: true }, dispose: () => res.memory.release(t.lease) }
          : hostKept(r.host[k]!);
      }
      return out;
    },
    read: async (kept) => {
      res.ctx.assertAlive();
      const encoder = res.ctx.device.createCommandEncoder();
      const reads = kept.map((k) => {
        const f = (k as Kept)[FEED];
        if (!('onGpu' in f)) return f;
        const finish = res.memory.encodeReadback(encoder, f.buffer, f.offset, storageBytes(f.storage, f.shape.reduce((a, b) => a * b, 1)));
        return async () => decodeFromGpu(await finish(), f.storage, f.dtype, [...f.shape]);
      });
      res.ctx.device.queue.submit([encoder.finish()]);
      return Promise.all(reads.map((r) => (typeof r === 'function' ? r() : r)));
    },
    dispose: () => s.dispose(),
  };
}
