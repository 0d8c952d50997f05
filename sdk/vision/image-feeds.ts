import type { GpuResources } from '../../runtime/backends/webgpu/executor.js';
import { Tensor } from '../tensor.js';
import type { SessionValue } from '../values.js';
import { convertImage } from './image.js';

/**
 * Replaces the image tensors among a run's feeds (Tensor.fromImage) by the tensors they become: on the session's
 * device for a WebGPU session (they never leave the GPU), read back for a CPU session. `temps` are the GPU tensors
 * made here, which the run disposes once it is done with them.
 */
export async function resolveImageFeeds(
  feeds: Record<string, SessionValue>,
  gpu: () => Promise<GpuResources>,
  onCpu: boolean,
): Promise<{ feeds: Record<string, SessionValue>; temps: Tensor[] }> {
  const images = Object.entries(feeds).filter((e): e is [string, Tensor] => e[1] instanceof Tensor && e[1].location === 'image');
  if (!images.length) return { feeds, temps: [] };
  const out = { ...feeds };
  const temps: Tensor[] = [];
  const res = await gpu();
  try {
    for (const [k, v] of images) {
      const t = Tensor.fromGpu(await convertImage(res, v.pendingImage()!), res.memory);
      if (onCpu) out[k] = new Tensor('float32', await t.getData(true), t.dims);
      else {
        temps.push(t);
        out[k] = t;
      }
    }
  } catch (e) {
    for (const t of temps) t.dispose();
    throw e;
  }
  return { feeds: out, temps };
}
