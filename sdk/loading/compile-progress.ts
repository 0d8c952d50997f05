import type { PipelineCache } from '../../runtime/backends/webgpu/pipeline-cache.js';
import type { LoadOptions } from './options.js';

/**
 * Reports the pipelines compiled on a device from now until the returned function is called, as 'compile' progress
 * (done of those started). The cache is shared by every model on the device, so a model loading beside another
 * hears of both; pipelines already compiled for an earlier model are not compiled again and not counted.
 */
export function observeCompiles(cache: PipelineCache, onProgress: LoadOptions['onProgress']): () => void {
  if (!onProgress) return () => undefined;
  const base = cache.compiles;
  const observer = (started: number, finished: number) => {
    try {
      onProgress({ phase: 'compile', done: Math.min(started - base.started, Math.max(0, finished - base.finished)), total: started - base.started });
    } catch {
      // progress callbacks never fail a load
    }
  };
  cache.observers.add(observer);
  return () => void cache.observers.delete(observer);
}
