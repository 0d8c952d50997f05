import { InvalidArgumentError, errorFromPlain, errorToPlain } from '../../runtime/errors.js';
import type { TaskPriority } from '../../runtime/scheduler/index.js';
import type { SessionOptions, ValueMetadata, Backend, OutputLocation } from '../session.js';
import { Tensor, type TensorData, type TensorType } from '../tensor.js';
import type { ImageTensorOptions } from '../vision/image.js';
import type { SessionValue } from '../values.js';

/**
 * What crosses the worker boundary: tensors as `{ type, dims, data }` (data's buffer in the transfer list unless
 * copied), sequences as arrays, optionals as null, and errors as `{ edgekitError: errorToPlain(e) }` so the other
 * side re-creates the same class (comlink alone keeps only message and name).
 */
export interface WireTensor {
  type: TensorType;
  dims: number[];
  data: TensorData;
}
/** A tensor kept in the worker (a GPU output), by id: `type` and `dims` travel so the client can describe it. */
export interface WireHandle {
  handle: number;
  type: TensorType;
  dims: number[];
}
/**
 * An image tensor (Tensor.fromImage): the frame itself crosses (an ImageBitmap or VideoFrame transferred, or
 * cloned with `copy`; ImageData cloned) with its options, and the worker converts it on its GPU, then closes it.
 */
export interface WireImage {
  image: ImageBitmap | VideoFrame | ImageData;
  options: ImageTensorOptions;
}
export type WireElement = WireTensor | WireHandle | WireImage;
export type WireValue = WireElement | WireElement[] | null;

export function isWireImage(w: unknown): w is WireImage {
  return typeof w === 'object' && w !== null && 'image' in w && 'options' in w;
}

/** The frame of an image tensor for the wire; ImageBitmaps and VideoFrames join `transfer` unless `copy`. */
export function encodeImage(t: Tensor, name: string, transfer: Set<Transferable>, copy: boolean): WireImage {
  const p = t.pendingImage()!;
  const src = p.source as unknown;
  const movable = (typeof ImageBitmap !== 'undefined' && src instanceof ImageBitmap) || (typeof VideoFrame !== 'undefined' && src instanceof VideoFrame);
  if (!movable && !(typeof ImageData !== 'undefined' && src instanceof ImageData)) {
    throw new InvalidArgumentError(
      `'${name}' is an image tensor whose source cannot be sent to a worker; make an ImageBitmap first (await createImageBitmap(source)) or pass a VideoFrame.`,
      { input: name },
    );
  }
  if (movable && !copy) transfer.add(src as Transferable);
  return { image: src as WireImage['image'], options: p.options };
}

export function isWireHandle(w: unknown): w is WireHandle {
  return typeof w === 'object' && w !== null && typeof (w as WireHandle).handle === 'number';
}

export interface WireError {
  edgekitError: ReturnType<typeof errorToPlain>;
}

/** A worker session's queue options: the same as a main-thread session's (sdk/queue.ts), on the worker's scheduler. */
export type { QueueOptions } from '../queue.js';

/** SessionOptions, less `scheduler`: a worker's sessions share the worker's scheduler (createWorker's options). */
export type WorkerSessionOptions = Omit<SessionOptions, 'scheduler'>;

export interface SessionInfo {
  id: number;
  backend: Backend;
  inputNames: string[];
  outputNames: string[];
  inputMetadata: ValueMetadata[];
  outputMetadata: ValueMetadata[];
}

export interface WireRunOptions {
  outputs?: string[];
  preferredOutputLocation?: OutputLocation | Record<string, OutputLocation>;
  priority?: TaskPriority;
  /** Set when the caller passed a signal: `cancel(requestId)` aborts it. */
  requestId?: number;
}

export function toWireError(e: unknown): WireError {
  return { edgekitError: errorToPlain(e) };
}

export function fromWireError(e: unknown): unknown {
  if (typeof e === 'object' && e !== null && 'edgekitError' in e) {
    const back = errorFromPlain((e as WireError).edgekitError);
    return back;
  }
  return e;
}

function isTransferable(buffer: ArrayBufferLike): buffer is ArrayBuffer {
  return typeof SharedArrayBuffer === 'undefined' || !(buffer instanceof SharedArrayBuffer);
}

/**
 * A tensor for the wire. Its buffer joins `transfer` (detaching it on this side) unless `copy`, or unless `keep`
 * says the buffer must stay (a model weight an output aliases). Strings are always copied.
 */
export function encodeTensor(t: Tensor, name: string, transfer: Set<ArrayBuffer>, copy: boolean, keep?: (b: ArrayBufferLike) => boolean): WireTensor {
  if (t.location === 'image') throw new InvalidArgumentError(`'${name}' is an image tensor (Tensor.fromImage); only a worker session's run takes one.`, { input: name });
  if (t.location !== 'cpu') {
    throw new InvalidArgumentError(`'${name}' is a GPU tensor; a worker session takes CPU tensors (await tensor.getData() and make a CPU Tensor).`, { input: name });
  }
  let data = t.data;
  if (Array.isArray(data)) return { type: t.type, dims: [...t.dims], data: [...data] };
  const view = data as Exclude<TensorData, string[]>;
  if (copy || !isTransferable(view.buffer) || keep?.(view.buffer)) data = view.slice() as TensorData;
  const buffer = (data as Exclude<TensorData, string[]>).buffer;
  if (isTransferable(buffer)) transfer.add(buffer);
  return { type: t.type, dims: [...t.dims], data };
}

export function encodeValue(v: SessionValue, name: string, transfer: Set<ArrayBuffer>, copy: boolean, keep?: (b: ArrayBufferLike) => boolean): WireValue {
  if (v === null) return null;
  if (Array.isArray(v)) return v.map((t, i) => encodeTensor(t, `${name}[${i}]`, transfer, copy, keep));
  if (!(v instanceof Tensor)) throw new InvalidArgumentError(`Feed '${name}' must be an EdgeKit Tensor, an array of Tensors or null.`, { input: name });
  return encodeTensor(v, name, transfer, copy, keep);
}

export function decodeValue(w: WireValue): SessionValue {
  return decodeWith<never>(w) as SessionValue;
}

/** Wire to values; `handle` resolves kept tensors (the worker: its table; the client: RemoteTensor). */
export function decodeWith<H>(w: WireValue, handle?: (h: WireHandle) => H): SessionValue | H | (Tensor | H)[] {
  const one = (e: WireElement): Tensor | H => {
    if (isWireImage(e)) return Tensor.fromImage(e.image, e.options);
    if (isWireHandle(e)) {
      if (!handle) throw new InvalidArgumentError('A kept tensor cannot be used here; read it with getData() and pass a Tensor.');
      return handle(e);
    }
    return new Tensor((e as WireTensor).type, (e as WireTensor).data, (e as WireTensor).dims);
  };
  if (w === null) return null;
  if (Array.isArray(w)) return w.map(one);
  return one(w);
}

/** A tensor inside a nested value (datasets: tensors, arrays of tensors, records of them, plain numbers). */
export interface WireTreeTensor {
  wireTensor: WireTensor;
}
export type WireTree = WireTreeTensor | number | string | boolean | null | WireTree[] | { [k: string]: WireTree };

/** Encodes every Tensor found in arrays and plain records (a dataset, fit options); other values pass as they are. */
export function encodeTree(v: unknown, path: string, transfer: Set<ArrayBuffer>, copy: boolean): WireTree {
  if (v instanceof Tensor) return { wireTensor: encodeTensor(v, path, transfer, copy) };
  if (Array.isArray(v)) return v.map((x, i) => encodeTree(x, `${path}[${i}]`, transfer, copy));
  if (typeof v === 'object' && v !== null) {
    if (ArrayBuffer.isView(v)) return v as unknown as WireTree;
    const out: Record<string, WireTree> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = encodeTree(x, `${path}.${k}`, transfer, copy);
    return out;
  }
  if (typeof v === 'function') throw new InvalidArgumentError(`'${path}' is a function, which cannot be sent to a worker.`, { option: path });
  return v as WireTree;
}

export function decodeTree(w: WireTree): unknown {
  if (Array.isArray(w)) return w.map(decodeTree);
  if (typeof w === 'object' && w !== null) {
    if (ArrayBuffer.isView(w)) return w;
    if ('wireTensor' in w && typeof w.wireTensor === 'object') {
      const t = (w as WireTreeTensor).wireTensor;
      return new Tensor(t.type, t.data, t.dims);
    }
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(w)) out[k] = decodeTree(x);
    return out;
  }
  return w;
}
