import type { GpuBufferLease, GpuMemory } from './memory.js';

/**
 * Buffers that the plans of one session share instead of each owning its own (docs/generation.md, "GPU memory").
 *
 * A session makes a plan per input-shape signature, and a generation loop makes one per past length: before this,
 * each plan leased its own activation arena, its own buffer for every graph input and output and its own kernel
 * scratch, so a decoder's memory grew with the number of cached plans (8 plans of a 6-layer decoder held 8 copies of
 * a KV cache's worth of idle input and output buffers). Everything of that kind lives only inside one run: a run
 * writes its inputs (queue writes), encodes every dispatch, the readbacks of its fetched outputs and the copies of
 * its kept outputs into ONE submit, and nothing in the arena, an input or output buffer or a scratch buffer is read
 * after that submit. WebGPU executes a queue's writes and submits in order, so two runs of different plans never
 * see each other's values as long as each run's writes and its submit are issued together (GpuGraphPlan.execute
 * issues them in one synchronous stretch). So one buffer per slot serves every plan of the session:
 *
 * - `arena`: the activation arena, sized to the largest plan's;
 * - `in:<name>` / `out:<name>`: each graph input's and output's own buffer, sized to the largest shape planned;
 * - `scratch:<node>:<i>`: a kernel's scratch.
 *
 * A slot only grows: a plan that needs more than the slot holds gets a new, larger buffer (a size class, so a decode
 * loop's slowly growing past grows its slots a few times, not every step), the old one is destroyed once the queued
 * work is done (never pooled: a pooled copy would be dead weight), and every other plan rebinds to the new buffer the
 * next time it runs (GpuGraphPlan compares its slots' buffers with `buffer(key)` before each use: one pass over its
 * bind groups, only after a growth). Buffers made by other owners (weights, the kept outputs handed to callers,
 * uniforms and constant tables, which are per plan) are not slots.
 */
export class GpuSharedBuffers {
  private readonly slots = new Map<string, GpuBufferLease>();
  /** The buffer a slot had before it grew, kept until the growth is committed (or restored by drop()). */
  private readonly previous = new Map<string, GpuBufferLease>();
  private total = 0;
  private disposed = false;

  constructor(private readonly memory: GpuMemory) {}

  /**
   * The slot's buffer, grown to at least `bytes` first. Called while a plan is built, inside its out-of-memory error
   * scope (GpuGraphPlan.create) or a run's, so the allocation itself is unchecked; `grown` says a new buffer was
   * made: the caller commits it once the scope reports no error, or drops it (back to the previous buffer) when the
   * scope reports out-of-memory.
   */
  ensure(key: string, bytes: number, label = `edgekit-${key}`): { buffer: GPUBuffer; grown: boolean } {
    if (this.disposed) throw new Error('shared GPU buffers used after their session was released');
    const cur = this.slots.get(key);
    if (cur && cur.size >= bytes) return { buffer: cur.buffer, grown: false };
    const lease = this.memory.acquire(bytes, undefined, label);
    if (cur) {
      // Grown twice before a commit: the intermediate buffer is no one's fallback.
      if (this.previous.has(key)) this.retire(cur);
      else this.previous.set(key, cur);
    }
    this.slots.set(key, lease);
    this.total += lease.size;
    return { buffer: lease.buffer, grown: true };
  }

  /** The slot's current buffer (undefined once dropped). */
  buffer(key: string): GPUBuffer | undefined {
    return this.slots.get(key)?.buffer;
  }

  /** Keeps a growth: the slot's previous buffer is released (destroyed once the queued work is done). */
  commit(key: string): void {
    const old = this.previous.get(key);
    if (!old) return;
    this.previous.delete(key);
    this.retire(old);
  }

  /**
   * Undoes a growth whose buffer may be invalid (made inside an error scope that reported out-of-memory): the slot
   * gets its previous buffer back, or is forgotten if it had none.
   */
  drop(key: string): void {
    const cur = this.slots.get(key);
    if (!cur) return;
    this.retire(cur);
    const old = this.previous.get(key);
    this.previous.delete(key);
    if (old) this.slots.set(key, old);
    else this.slots.delete(key);
  }

  private retire(lease: GpuBufferLease): void {
    this.total -= lease.size;
    this.memory.discard(lease);
  }

  /** Bytes of all slots. */
  get bytes(): number {
    return this.total;
  }

  /** Number of slots. */
  get size(): number {
    return this.slots.size;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const l of [...this.slots.values(), ...this.previous.values()]) this.memory.discard(l);
    this.slots.clear();
    this.previous.clear();
    this.total = 0;
  }
}
