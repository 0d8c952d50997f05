import { CpuSession } from '../runtime/backends/cpu/cpu-session.js';
import type { GpuResources } from '../runtime/backends/webgpu/executor.js';
import { GpuSession } from '../runtime/backends/webgpu/gpu-session.js';
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

export interface GraphRunner {
  run(feeds: Record<string, HostTensor>, outputs: readonly string[]): Promise<Record<string, HostTensor>>;
  dispose(): void;
}

export async function createRunner(graph: Graph, env: QuantizeEnv): Promise<GraphRunner> {
  if (env.backend === 'cpu') {
    const s = new CpuSession(graph);
    return {
      run: async (feeds, outputs) => s.run(feeds, outputs) as Record<string, HostTensor>,
      dispose: () => undefined,
    };
  }
  if (!env.gpu) throw new InvalidArgumentError("quantize: backend 'webgpu' needs a GPU device; pass backend 'cpu' to calibrate on the CPU reference.");
  const s = await GpuSession.create(await env.gpu(), graph, { opset: env.opset });
  return {
    run: async (feeds, outputs) => (await s.run(feeds, outputs)).host,
    dispose: () => s.dispose(),
  };
}
