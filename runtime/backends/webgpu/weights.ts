import type { HostTensor } from '../../ir/tensor.js';
import type { GpuBufferLease, GpuMemory } from './memory.js';
import { encodeForGpu, storageBytes, type StorageType } from './storage.js';

/**
 * A model's weights on the GPU, uploaded once and shared by every plan of the model (one plan per input-shape
 * signature): keyed by the initializer tensor itself (identity), so a plan made from a re-specialized graph reuses
 * the buffers of the initializers it shares with the others, and only constants folded for that shape get their own.
 * The session owns the store and disposes it with itself.
 */
export class GpuWeightStore {
  private readonly entries = new Map<HostTensor, Map<StorageType, GpuBufferLease>>();
  private total = 0;
  private disposed = false;

  constructor(private readonly memory: GpuMemory) {}

  /**
   * The buffer holding `t` in storage `s`, uploading it on first use. Called while a plan is built, inside its
   * out-of-memory error scope (GpuGraphPlan.create), so the allocation itself is unchecked.
   */
  async get(t: HostTensor, s: StorageType, label: string): Promise<{ buffer: GPUBuffer; offset: number; size: number }> {
    let byStorage = this.entries.get(t);
    let lease = byStorage?.get(s);
    const size = Math.max(4, Math.ceil(storageBytes(s, t.data.length) / 4) * 4);
    if (!lease) {
      lease = this.memory.acquire(size, undefined, label, true);
      if (this.disposed) {
        this.memory.release(lease);
        throw new Error('weight store disposed while uploading');
      }
      this.memory.upload(lease.buffer, 0, encodeForGpu(t, s));
      if (!byStorage) this.entries.set(t, (byStorage = new Map()));
      byStorage.set(s, lease);
      this.total += size;
    }
    return { buffer: lease.buffer, offset: 0, size };
  }

  /** Bytes of weights resident on the GPU. */
  get bytes(): number {
    return this.total;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const m of this.entries.values()) for (const l of m.values()) this.memory.release(l);
    this.entries.clear();
    this.total = 0;
  }
}
