import type { HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession, Tensor } from '../../sdk/node.js';

/** Runs one model `times` times in one session (the same feeds each time) and returns every run's outputs. */
export async function runRepeatedly(bytes: Uint8Array, feeds: Record<string, HostTensor>, backend: 'cpu' | 'webgpu', times: number): Promise<Record<string, HostTensor>[]> {
  const session = await InferenceSession.create(bytes, { backend });
  try {
    const runs: Record<string, HostTensor>[] = [];
    for (let k = 0; k < times; k++) {
      const tensors: Record<string, Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) tensors[name] = new Tensor(t.dtype, t.data, t.shape);
      const out = await session.run(tensors);
      runs.push(Object.fromEntries(Object.entries(out).map(([name, t]) => [name, t.toHost()])));
    }
    return runs;
  } finally {
    await session.release();
  }
}
