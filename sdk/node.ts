/**
 * The Node entry: everything in index.ts, plus file loading (with external data resolved beside the model and
 * refused outside its folder) and WebGPU through the `webgpu` package (Dawn).
 */
import { fileURLToPath } from 'node:url';
import { nodeExternalDataResolver } from '../importers/onnx/external-data-node.js';
import { InvalidArgumentError } from '../runtime/errors.js';
import { webGpuRefused } from '../runtime/backends/webgpu/device.js';
import { registerNodePlatform } from './platform.js';
import { nodeModelCache, readFileWithProgress } from './loading/node-cache.js';

let gpuInstance: Promise<GPU | undefined> | undefined;

registerNodePlatform({
  async readModelFile(src, onProgress) {
    const path = src.startsWith('file:') ? fileURLToPath(src) : src;
    let bytes: Uint8Array;
    try {
      bytes = await readFileWithProgress(path, src, false, onProgress);
    } catch (e) {
      throw new InvalidArgumentError(`Cannot read the model file '${path}': ${(e as Error).message}`, { path });
    }
    return { bytes, path, externalData: nodeExternalDataResolver(path) };
  },
  modelCache: (dir) => nodeModelCache(dir),
  // One Dawn instance per process, created on first use and kept referenced for the process's life: a GPU object
  // that is garbage-collected while its device lives takes the device down with it (a crash inside Dawn).
  getGpu() {
    // Not loaded where device requests are refused (EdgeKit's worker_threads entry: sdk/worker/node-entry.ts).
    if (webGpuRefused()) return Promise.resolve(undefined);
    gpuInstance ??= (async () => {
      try {
        const { create, globals } = (await import('webgpu')) as unknown as {
          create(flags: string[]): GPU;
          globals: Record<string, unknown>;
        };
        for (const [k, v] of Object.entries(globals)) if (!(k in globalThis)) Object.assign(globalThis, { [k]: v });
        return create([]);
      } catch {
        return undefined;
      }
    })();
    return gpuInstance;
  },
});

export * from './index.js';
