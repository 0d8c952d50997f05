import type { GpuContext } from '../../runtime/backends/webgpu/device.js';

/**
 * Fault injection on a live WebGPU device, for the fault tests (issue #14). Patches the device object's own
 * methods (Dawn's objects accept own properties), and returns a function that removes the patch.
 *
 * - injectOom: buffers matching `when` are reported as out of memory through the error scopes, exactly as a driver
 *   reports a failed allocation (createBuffer returns an object, popErrorScope('out-of-memory') yields the error).
 *   The buffer is still created (small and real), so code that destroys it on failure works as with a real OOM.
 * - loseAfterSubmit: destroys the device right after its n-th queue.submit, i.e. with that work in flight.
 */

class FakeOutOfMemoryError extends Error {}
Object.defineProperty(FakeOutOfMemoryError, 'name', { value: 'GPUOutOfMemoryError' });

export function injectOom(ctx: GpuContext, when: (desc: GPUBufferDescriptor) => boolean): { restore(): void; hits: number } {
  const d = ctx.device as GPUDevice & Record<string, unknown>;
  const create = d.createBuffer.bind(d);
  const push = d.pushErrorScope.bind(d);
  const pop = d.popErrorScope.bind(d);
  const scopes: { filter: GPUErrorFilter; oom: boolean }[] = [];
  const state = { hits: 0, restore: () => {} };
  d.createBuffer = (desc: GPUBufferDescriptor) => {
    if (!when(desc)) return create(desc);
    state.hits++;
    const s = [...scopes].reverse().find((x) => x.filter === 'out-of-memory');
    if (s) s.oom = true;
    return create({ ...desc, size: 16, mappedAtCreation: false });
  };
  d.pushErrorScope = (filter: GPUErrorFilter) => {
    scopes.push({ filter, oom: false });
    push(filter);
  };
  d.popErrorScope = async () => {
    const s = scopes.pop();
    const real = await pop();
    if (s?.oom) return new FakeOutOfMemoryError('injected: allocation failed (fault injection)') as unknown as GPUError;
    return real;
  };
  state.restore = () => {
    delete d.createBuffer;
    delete d.pushErrorScope;
    delete d.popErrorScope;
  };
  return state;
}

export function loseAfterSubmit(ctx: GpuContext, n: number): { restore(): void; submits: () => number } {
  const q = ctx.device.queue as GPUQueue & Record<string, unknown>;
  const submit = q.submit.bind(q);
  let count = 0;
  q.submit = (cbs: Iterable<GPUCommandBuffer>) => {
    submit(cbs);
    if (++count === n) ctx.device.destroy();
  };
  return { restore: () => void delete q.submit, submits: () => count };
}
