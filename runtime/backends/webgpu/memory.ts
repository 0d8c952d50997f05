import { DeviceError, InternalError, OutOfMemoryError } from '../../errors.js';
import { BufferUsage, MAP_MODE_READ, type GpuContext } from './device.js';

/**
 * GPU memory: the ONLY code that creates or destroys GPUBuffers. It counts every byte (live and peak, for leak tests
 * and report()), pools released buffers by size class so steady-state runs allocate nothing (and destroys those no
 * acquisition has wanted for a while: MAX_IDLE_ACQUISITIONS), and defers a release
 * until the GPU work submitted before it has completed (a buffer still read by queued work must not be reused or
 * destroyed under it).
 */

export const STORAGE_USAGE = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;
export const UNIFORM_USAGE = BufferUsage.UNIFORM | BufferUsage.COPY_DST;
export const READBACK_USAGE = BufferUsage.MAP_READ | BufferUsage.COPY_DST;

/** A buffer handed out by GpuMemory. `size` is the size class (>= the bytes asked for). */
export interface GpuBufferLease {
  readonly buffer: GPUBuffer;
  readonly size: number;
  readonly usage: number;
  released: boolean;
  /** Sized exactly (weights): never pooled, destroyed once the GPU is done with it. */
  readonly exact?: boolean;
}

export interface MemoryStats {
  /** Bytes of all GPUBuffers that exist now (leased, pooled or waiting for the GPU). */
  liveBytes: number;
  /** Highest liveBytes so far (reset with resetPeak()). */
  peakBytes: number;
  /** Bytes currently leased to callers. */
  leasedBytes: number;
  /** Bytes kept in the pool for reuse. */
  pooledBytes: number;
  buffers: number;
  /** Bytes copied from the GPU to the host so far (every readback goes through encodeReadback). */
  readbackBytes: number;
  /**
   * Bytes of GPU-resident run inputs copied into a plan's own buffers so far (a fed buffer that can be bound as it
   * is costs nothing: see GpuGraphPlan.execute).
   */
  inputCopyBytes: number;
  /** Bytes of kept (GPU-resident) run outputs copied out of a plan's buffers so far (0 when written in place). */
  outputCopyBytes: number;
}

/** Size classes: 256-byte granularity up to 4 KiB, then four steps per power of two (at most 25 % slack). */
export function sizeClass(bytes: number): number {
  const b = Math.max(16, Math.ceil(bytes / 16) * 16);
  if (b <= 4096) return Math.ceil(b / 256) * 256;
  const step = 2 ** (Math.floor(Math.log2(b)) - 2);
  return Math.ceil(b / step) * step;
}

/**
 * A pooled buffer not handed out again within this many acquisitions is destroyed. Steady-state loops reuse their
 * buffers every run (a decode step acquires about 15), so only dead size classes age out: a generation whose KV
 * cache grows into larger size classes leaves each smaller class's buffers behind for good (on a 1024-token context,
 * several caches' worth), and a pool that kept them up to maxPooledBytes would hold that memory for nothing.
 */
export const MAX_IDLE_ACQUISITIONS = 64;

export class GpuMemory {
  /** Free buffers by `usage:size`, each with the acquisition count when it was pooled (newest last). */
  private readonly pool = new Map<string, { buffer: GPUBuffer; since: number }[]>();
  private acquisitions = 0;
  /** The smallest `since` in the pool (Infinity when empty), so most acquisitions skip the age scan. */
  private oldestPooled = Infinity;
  private pending = new Set<Promise<void>>();
  private live = 0;
  private peak = 0;
  private leased = 0;
  private pooled = 0;
  private count = 0;
  private readBytes = 0;
  private inCopyBytes = 0;
  private outCopyBytes = 0;

  constructor(
    private readonly ctx: GpuContext,
    /** Pooled bytes beyond this are destroyed instead of kept. */
    private readonly maxPooledBytes = 256 * 2 ** 20,
    /** Pooled buffers idle for more acquisitions than this are destroyed (MAX_IDLE_ACQUISITIONS). */
    private readonly maxIdleAcquisitions = MAX_IDLE_ACQUISITIONS,
  ) {}

  stats(): MemoryStats {
    return { liveBytes: this.live, peakBytes: this.peak, leasedBytes: this.leased, pooledBytes: this.pooled, buffers: this.count, readbackBytes: this.readBytes, inputCopyBytes: this.inCopyBytes, outputCopyBytes: this.outCopyBytes };
  }

  /** Counts GPU-to-GPU copies of run inputs and kept outputs (stats().inputCopyBytes / outputCopyBytes). */
  countCopy(input: number, output: number): void {
    this.inCopyBytes += input;
    this.outCopyBytes += output;
  }

  resetPeak(): void {
    this.peak = this.live;
  }

  /**
   * A buffer of at least `bytes` (reused from the pool when one of its size class is free). `exact` buffers (weights,
   * which live as long as their model) are sized to the byte, skipping the size classes' up-to-25 % slack, and are
   * destroyed rather than pooled when released.
   */
  acquire(bytes: number, usage: number = STORAGE_USAGE, label = 'edgekit', exact = false): GpuBufferLease {
    this.ctx.assertAlive();
    const size = exact ? Math.max(16, Math.ceil(bytes / 16) * 16) : sizeClass(bytes);
    const max = this.ctx.limits.maxBufferSize;
    if (size > max) {
      throw new DeviceError('LIMIT_EXCEEDED', `A GPU buffer of ${bytes} bytes exceeds this device's maxBufferSize (${max}). Use a smaller input or batch.`, { limit: 'maxBufferSize', needed: bytes, available: max });
    }
    const key = `${usage}:${size}`;
    this.acquisitions++;
    if (this.acquisitions - this.oldestPooled > this.maxIdleAcquisitions) this.evictIdle();
    const free = exact ? undefined : this.pool.get(key);
    let buffer = free?.pop()?.buffer;
    if (buffer) {
      this.pooled -= size;
    } else {
      buffer = this.ctx.device.createBuffer({ size, usage, label });
      this.live += size;
      this.count++;
      this.peak = Math.max(this.peak, this.live);
    }
    this.leased += size;
    return { buffer, size, usage, released: false, exact };
  }

  /** acquire() inside an out-of-memory error scope: a failed allocation throws OutOfMemoryError here. */
  async acquireChecked(bytes: number, usage: number = STORAGE_USAGE, label = 'edgekit', exact = false): Promise<GpuBufferLease> {
    const d = this.ctx.device;
    d.pushErrorScope('out-of-memory');
    const lease = this.acquire(bytes, usage, label, exact);
    const err = await this.ctx.guard(d.popErrorScope());
    if (err) {
      this.destroyLease(lease);
      throw new OutOfMemoryError(`The GPU could not allocate ${bytes} bytes: ${err.message}. Use a smaller model, batch or input.`, { bytes });
    }
    return lease;
  }

  /**
   * Gives a lease back. Idempotent. The buffer returns to the pool only after the GPU finished all work submitted
   * so far (queue.onSubmittedWorkDone), so queued dispatches still reading it stay correct.
   */
  release(lease: GpuBufferLease): void {
    if (lease.released) return;
    lease.released = true;
    this.leased -= lease.size;
    if (this.ctx.lost) {
      this.destroyBuffer(lease.buffer, lease.size);
      return;
    }
    const p = this.ctx.device.queue
      .onSubmittedWorkDone()
      .then(
        () => this.toPool(lease),
        () => this.destroyBuffer(lease.buffer, lease.size),
      )
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  /**
   * Gives a lease back without pooling it: the buffer is destroyed once the work submitted so far is done. For
   * buffers made inside an error scope that reported out-of-memory: which of them failed is unknown, and a failed
   * (invalid) buffer handed out again by the pool would break every later plan that got it. Idempotent.
   */
  discard(lease: GpuBufferLease): void {
    if (lease.released) return;
    lease.released = true;
    this.leased -= lease.size;
    if (this.ctx.lost) {
      this.destroyBuffer(lease.buffer, lease.size);
      return;
    }
    const destroy = () => this.destroyBuffer(lease.buffer, lease.size);
    const p = this.ctx.device.queue.onSubmittedWorkDone().then(destroy, destroy).finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  private toPool(lease: GpuBufferLease): void {
    if (lease.exact || this.ctx.lost || this.pooled + lease.size > this.maxPooledBytes) {
      this.destroyBuffer(lease.buffer, lease.size);
      return;
    }
    const key = `${lease.usage}:${lease.size}`;
    let list = this.pool.get(key);
    if (!list) this.pool.set(key, (list = []));
    list.push({ buffer: lease.buffer, since: this.acquisitions });
    this.oldestPooled = Math.min(this.oldestPooled, this.acquisitions);
    this.pooled += lease.size;
  }

  /** Destroys the pooled buffers idle for more than maxIdleAcquisitions acquisitions. */
  private evictIdle(): void {
    let oldest = Infinity;
    for (const [key, list] of this.pool) {
      const size = Number(key.split(':')[1]);
      const keep = list.filter((e) => {
        if (this.acquisitions - e.since <= this.maxIdleAcquisitions) return true;
        this.destroyBuffer(e.buffer, size);
        this.pooled -= size;
        return false;
      });
      if (keep.length) {
        this.pool.set(key, keep);
        oldest = Math.min(oldest, keep[0]!.since);
      } else this.pool.delete(key);
    }
    this.oldestPooled = oldest;
  }

  private destroyLease(lease: GpuBufferLease): void {
    if (!lease.released) this.leased -= lease.size;
    lease.released = true;
    this.destroyBuffer(lease.buffer, lease.size);
  }

  private destroyBuffer(buffer: GPUBuffer, size: number): void {
    buffer.destroy();
    this.live -= size;
    this.count--;
  }

  /** Waits until every deferred release has reached the pool. */
  async settle(): Promise<void> {
    while (this.pending.size) await Promise.all([...this.pending]);
  }

  /** Destroys every pooled buffer (after settle()): liveBytes then counts only leased buffers. */
  async trim(): Promise<void> {
    await this.settle();
    for (const [key, list] of this.pool) {
      const size = Number(key.split(':')[1]);
      for (const e of list) this.destroyBuffer(e.buffer, size);
    }
    this.pool.clear();
    this.pooled = 0;
    this.oldestPooled = Infinity;
  }

  /** Writes bytes into a buffer; WebGPU wants 4-byte multiples, so a ragged tail is zero-padded. */
  upload(buffer: GPUBuffer, offset: number, data: ArrayBufferView): void {
    this.ctx.assertAlive();
    if (offset % 4) throw new InternalError(`upload offset ${offset} is not a multiple of 4`);
    let bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.byteLength % 4 || bytes.byteOffset % 4) {
      const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
      padded.set(bytes);
      bytes = padded;
    }
    if (bytes.byteLength) this.ctx.device.queue.writeBuffer(buffer, offset, bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /**
   * Encodes a copy of [offset, offset + bytes) into a MAP_READ staging buffer; `finish()` (after the encoder was
   * submitted) maps it and returns the bytes. The executor uses this to read results in the same submit.
   */
  encodeReadback(encoder: GPUCommandEncoder, src: GPUBuffer, offset: number, bytes: number): (() => Promise<Uint8Array>) & { discard(): void } {
    const padded = Math.max(4, Math.ceil(bytes / 4) * 4);
    const staging = this.acquire(padded, READBACK_USAGE, 'edgekit-readback');
    this.readBytes += bytes;
    encoder.copyBufferToBuffer(src, offset, staging.buffer, 0, padded);
    // discard(): the run failed before its results were wanted (an out-of-memory scope); finish() is never called.
    const discard = () => this.discard(staging);
    return Object.assign(async () => {
      try {
        await this.ctx.guard(staging.buffer.mapAsync(MAP_MODE_READ, 0, padded));
        const out = new Uint8Array(bytes);
        out.set(new Uint8Array(staging.buffer.getMappedRange(0, padded), 0, bytes));
        staging.buffer.unmap();
        return out;
      } finally {
        if (this.ctx.lost) this.destroyLease(staging);
        else this.release(staging);
      }
    }, { discard });
  }

  /** Reads bytes back on its own submit (tests and one-off reads; runs read back through the executor). */
  async readback(src: GPUBuffer, offset: number, bytes: number): Promise<Uint8Array> {
    this.ctx.assertAlive();
    const encoder = this.ctx.device.createCommandEncoder();
    const finish = this.encodeReadback(encoder, src, offset, bytes);
    this.ctx.device.queue.submit([encoder.finish()]);
    return finish();
  }
}
