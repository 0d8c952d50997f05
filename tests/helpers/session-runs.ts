import { expect } from 'vitest';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { allClose } from './compare.js';
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

/** One run of an open session on host feeds, outputs read back to the host: the public path, as a user calls it. */
export async function runHost(session: InferenceSession, feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
  const tensors: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(feeds)) tensors[k] = new Tensor(t.dtype, t.data, t.shape);
  const out = await session.run<Record<string, Tensor>>(tensors);
  return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.toHost()]));
}

/** Same output names, dtypes and shapes, and every value within rtol = atol = tol. */
export function expectOutputsClose(got: Record<string, HostTensor>, want: Record<string, HostTensor>, what: string, tol: number): void {
  expect(Object.keys(got).sort(), what).toEqual(Object.keys(want).sort());
  for (const [name, e] of Object.entries(want)) {
    expect([got[name]!.dtype, got[name]!.shape], `${what} ${name}`).toEqual([e.dtype, e.shape]);
    const r = allClose(got[name]!, e, { rtol: tol, atol: tol });
    if (!r.ok) expect.fail(`${what} output '${name}': ${r.message}`);
  }
}
