import { DisposedTensorError, InvalidArgumentError } from '../../runtime/errors.js';
import type { Tensor, TensorData, TensorLocation, TensorType } from '../tensor.js';
import type { SessionValue } from '../values.js';
import { call, type Connection } from './connection.js';

/**
 * A tensor that stays in the worker: a run's output kept on the GPU there (preferredOutputLocation 'gpu-buffer').
 * Feed it to the next run of any session on the same worker without its data crossing; read it with getData().
 * It owns the worker-side tensor: dispose() frees it (idempotent; `using` works), nothing is freed by garbage
 * collection.
 */
export class RemoteTensor {
  readonly type: TensorType;
  readonly dims: readonly number[];
  readonly size: number;
  readonly location: TensorLocation = 'gpu-buffer';
  readonly #c: Connection;
  readonly #handle: number;
  #disposed = false;

  /** @internal made by WorkerSession.run */
  constructor(c: Connection, handle: number, type: TensorType, dims: readonly number[]) {
    this.#c = c;
    this.#handle = handle;
    this.type = type;
    this.dims = Object.freeze([...dims]);
    this.size = dims.reduce((a, b) => a * b, 1);
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** Copies the data to this thread. `releaseData` also disposes the worker's tensor afterwards. */
  async getData(releaseData = false): Promise<TensorData> {
    if (this.#disposed) throw new DisposedTensorError('worker tensor');
    const data = await call(this.#c, () => this.#c.remote.readHandle(this.#handle) as Promise<TensorData>);
    if (releaseData) this.dispose();
    return data;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    call(this.#c, () => this.#c.remote.disposeHandle(this.#handle)).catch(() => undefined); // a gone worker freed it
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** @internal its id in the worker, checked to belong to that worker. */
  handleFor(c: Connection, name: string): number {
    if (this.#disposed) throw new DisposedTensorError('worker tensor');
    if (c !== this.#c) throw new InvalidArgumentError(`Input '${name}' is a tensor kept in another worker; read it with getData() and feed a Tensor.`, { input: name });
    return this.#handle;
  }
}

/** What a worker session's run returns: SessionValue, with RemoteTensor where an output was kept in the worker. */
export type WorkerValue = SessionValue | RemoteTensor | (Tensor | RemoteTensor)[];
