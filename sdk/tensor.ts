import { DisposedTensorError, DTypeError, InvalidArgumentError, ShapeError } from '../runtime/errors.js';
import { isDType, storageMatches, type DType, type TensorStorage } from '../runtime/ir/dtype.js';
import type { HostTensor } from '../runtime/ir/tensor.js';
import type { GpuTensorRef } from '../runtime/backends/webgpu/executor.js';
import type { GpuBufferLease, GpuMemory } from '../runtime/backends/webgpu/memory.js';
import { decodeFromGpu, storageBytes } from '../runtime/backends/webgpu/storage.js';
import { imageDims, pendingImage, type ImageSource, type ImageTensorOptions, type PendingImage } from './vision/image.js';

const GPU_TOKEN: unique symbol = Symbol('edgekit.gpuTensor');
const IMAGE_TOKEN: unique symbol = Symbol('edgekit.imageTensor');

/** @internal a GPU-resident tensor's buffer, owned by the Tensor until dispose(). */
interface GpuData {
  ref: GpuTensorRef & { lease: GpuBufferLease };
  memory: GpuMemory;
}

/** The element types a public Tensor may have (onnxruntime-web's names). */
export type TensorType = DType;
export type TensorData = TensorStorage;
/** 'image': a frame from Tensor.fromImage, converted on the GPU when a run takes it. */
export type TensorLocation = 'cpu' | 'gpu-buffer' | 'image';

const ARRAY_TYPES: [new (n: number) => TensorStorage, DType][] = [
  [Float32Array, 'float32'], [Float64Array, 'float64'], [Int32Array, 'int32'], [BigInt64Array, 'int64'],
  [Uint8Array, 'uint8'], [Int8Array, 'int8'], [Uint16Array, 'uint16'], [Int16Array, 'int16'], [Uint32Array, 'uint32'],
  [BigUint64Array, 'uint64'],
];

function fromPlainArray(type: DType, values: readonly (number | bigint | boolean | string)[]): TensorStorage {
  switch (type) {
    case 'float32': return Float32Array.from(values as number[], Number);
    case 'float64': return Float64Array.from(values as number[], Number);
    case 'int32': return Int32Array.from(values as number[], Number);
    case 'uint32': return Uint32Array.from(values as number[], Number);
    case 'int16': return Int16Array.from(values as number[], Number);
    case 'uint16': return Uint16Array.from(values as number[], Number);
    case 'int8': return Int8Array.from(values as number[], Number);
    case 'uint8': return Uint8Array.from(values as number[], Number);
    case 'bool': return Uint8Array.from(values as boolean[], (v) => (v ? 1 : 0));
    case 'int64': return BigInt64Array.from(values as (number | bigint)[], (v) => BigInt(v));
    case 'uint64': return BigUint64Array.from(values as (number | bigint)[], (v) => BigInt(v));
    case 'string': return (values as unknown[]).map(String);
    default:
      throw new DTypeError(`A plain array cannot hold ${type} data; pass a Uint16Array of ${type} bits.`);
  }
}

/**
 * A tensor, with onnxruntime-web's constructor forms and fields:
 *   new Tensor('float32', data, dims)   new Tensor(float32Array, dims)   new Tensor('int64', [1, 2, 3])
 * `dispose()` releases the data (idempotent); `using t = new Tensor(...)` disposes at scope end.
 */
export class Tensor {
  readonly type: TensorType;
  readonly dims: readonly number[];
  readonly size: number;
  #data: TensorStorage | undefined;
  #gpu: GpuData | undefined;
  #gpuDisposed = false;
  #image: PendingImage | undefined;
  #isImage = false;

  constructor(type: TensorType, data: TensorData | readonly (number | bigint | boolean | string)[], dims?: readonly number[]);
  constructor(data: TensorData, dims?: readonly number[]);
  /** @internal */
  constructor(token: typeof GPU_TOKEN, gpu: GpuData);
  /** @internal */
  constructor(token: typeof IMAGE_TOKEN, image: PendingImage);
  constructor(a: unknown, b?: unknown, c?: unknown) {
    if (a === IMAGE_TOKEN) {
      const p = b as PendingImage;
      this.type = 'float32';
      this.dims = Object.freeze(imageDims(p));
      this.size = this.dims.reduce((x, y) => x * y, 1);
      this.#image = p;
      this.#isImage = true;
      return;
    }
    if (a === GPU_TOKEN) {
      const g = b as GpuData;
      this.type = g.ref.dtype;
      this.dims = Object.freeze([...g.ref.shape]);
      this.size = g.ref.shape.reduce((x, y) => x * y, 1);
      this.#gpu = g;
      return;
    }
    let type: DType;
    let data: TensorStorage;
    let dims: readonly number[] | undefined;
    if (typeof a === 'string') {
      if (!isDType(a)) throw new DTypeError(`Unknown tensor type '${a}'. Use one of float32, float16, int32, int64, uint8, int8, bool, ...`);
      type = a;
      if (Array.isArray(b) && type !== 'string') data = fromPlainArray(type, b);
      else if (storageMatches(type, b)) data = b as TensorStorage;
      else throw new DTypeError(`Tensor data for type '${type}' must be ${expectedStorage(type)}, got ${describe(b)}.`);
      dims = c as readonly number[] | undefined;
    } else {
      const match = ARRAY_TYPES.find(([C]) => a instanceof C);
      if (!match) throw new DTypeError(`Cannot infer a tensor type from ${describe(a)}; pass the type first: new Tensor('float32', data, dims).`);
      type = match[1];
      data = a as TensorStorage;
      dims = b as readonly number[] | undefined;
    }
    dims ??= [data.length];
    if (!Array.isArray(dims) || dims.some((d) => !Number.isInteger(d) || d < 0)) {
      throw new ShapeError(`Tensor dims must be non-negative integers, got ${JSON.stringify(dims)}.`);
    }
    const size = dims.reduce((x, y) => x * y, 1);
    if (size !== data.length) {
      throw new ShapeError(`Tensor data has ${data.length} elements but dims [${dims.join(', ')}] need ${size}.`);
    }
    this.type = type;
    this.dims = Object.freeze([...dims]);
    this.size = size;
    this.#data = data;
  }

  /** 'cpu', or 'gpu-buffer' for outputs of run(feeds, { outputLocation: 'gpu-buffer' }) (onnxruntime-web's names). */
  get location(): TensorLocation {
    if (this.#isImage) return 'image';
    return this.#gpu || this.#gpuDisposed ? 'gpu-buffer' : 'cpu';
  }

  /**
   * The elements, row-major. Throws DisposedTensorError after dispose(), and InvalidArgumentError for a tensor on
   * the GPU (reading it needs a GPU round trip: use `await tensor.getData()`).
   */
  get data(): TensorData {
    if (this.#isImage) {
      if (!this.#image) throw new DisposedTensorError();
      throw new InvalidArgumentError('This tensor is an image (Tensor.fromImage): it becomes pixels on the GPU when a run takes it; it has no data here.');
    }
    if (this.location === 'gpu-buffer') {
      if (!this.#gpu) throw new DisposedTensorError();
      throw new InvalidArgumentError('This tensor lives on the GPU; read it with `await tensor.getData()`.');
    }
    if (!this.#data) throw new DisposedTensorError();
    return this.#data;
  }

  /** The GPUBuffer of a 'gpu-buffer' tensor (storage: f32/i32/u32 per element; see runtime/backends/webgpu/storage.ts). */
  get gpuBuffer(): GPUBuffer {
    if (!this.#gpu) {
      if (this.#gpuDisposed) throw new DisposedTensorError();
      throw new InvalidArgumentError('This tensor is on the CPU; it has no GPU buffer.');
    }
    return this.#gpu.ref.buffer;
  }

  get disposed(): boolean {
    if (this.#isImage) return !this.#image;
    return this.location === 'gpu-buffer' ? !this.#gpu : this.#data === undefined;
  }

  /**
   * The elements. For a GPU tensor this downloads them (one copy and map); with `releaseData` the GPU buffer is
   * then released and the tensor becomes unusable, like onnxruntime-web's getData(true).
   */
  async getData(releaseData = false): Promise<TensorData> {
    if (this.#isImage) return this.data; // throws: an image is converted by a run
    if (this.location === 'cpu') return this.data;
    const g = this.#gpu;
    if (!g) throw new DisposedTensorError();
    const { ref, memory } = g;
    const bytes = await memory.readback(ref.buffer, ref.offset, storageBytes(ref.storage, this.size));
    const data = decodeFromGpu(bytes, ref.storage, ref.dtype, [...ref.shape]).data;
    if (releaseData) this.dispose();
    return data;
  }

  /** Releases the data (a GPU tensor's buffer goes back to EdgeKit's pool once the GPU is done with it). Idempotent. */
  dispose(): void {
    this.#data = undefined;
    this.#image = undefined;
    if (this.#gpu) {
      this.#gpu.memory.release(this.#gpu.ref.lease);
      this.#gpu = undefined;
      this.#gpuDisposed = true;
    }
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /**
   * A camera frame or picture as a model input: `Tensor.fromImage(bitmap, { size: 224, mean: [0.485, 0.456, 0.406],
   * std: [0.229, 0.224, 0.225] })` is a float32 [1, 3, 224, 224] tensor (NCHW; `layout: 'NHWC'` gives
   * [1, 224, 224, 3]) of RGB values scaled to [0, 1], resized bilinearly and normalized as (v - mean) / std.
   * Nothing is read here: the run that takes it copies the frame to the GPU and converts it there in one dispatch
   * (sdk/vision/image.ts). The source must stay open until that run starts; EdgeKit never closes a source the
   * caller owns. A worker session transfers ImageBitmaps and VideoFrames to its worker (see WorkerRunOptions.copy),
   * which closes them once converted.
   */
  static fromImage(source: ImageSource, options: ImageTensorOptions = {}): Tensor {
    return new Tensor(IMAGE_TOKEN, pendingImage(source, options));
  }

  /** @internal the pending image of a Tensor.fromImage tensor (DisposedTensorError once disposed). */
  pendingImage(): PendingImage | undefined {
    if (!this.#isImage) return undefined;
    if (!this.#image) throw new DisposedTensorError();
    return this.#image;
  }

  /** @internal a GPU tensor's buffer as a run feed (no copy to the host). */
  gpuFeed(): (GpuTensorRef & { onGpu: true }) | undefined {
    if (this.#isImage) throw new InvalidArgumentError('An image tensor (Tensor.fromImage) is converted by InferenceSession.run; it cannot be fed here.');
    if (this.location === 'cpu') return undefined;
    if (!this.#gpu) throw new DisposedTensorError();
    const { buffer, offset, storage, dtype, shape } = this.#gpu.ref;
    return { buffer, offset, storage, dtype, shape, onGpu: true };
  }

  /** @internal the memory manager a GPU tensor belongs to (a feed must come from the same device). */
  gpuMemory(): GpuMemory | undefined {
    return this.#gpu?.memory;
  }

  /** @internal wraps a GPU output; the Tensor owns the lease. */
  static fromGpu(ref: GpuTensorRef & { lease: GpuBufferLease }, memory: GpuMemory): Tensor {
    return new Tensor(GPU_TOKEN, { ref, memory });
  }

  /** @internal the runtime's view; no copy. */
  toHost(): HostTensor {
    return { dtype: this.type, shape: [...this.dims], data: this.data };
  }

  /** @internal wraps a runtime tensor without copying. */
  static fromHost(t: HostTensor): Tensor {
    return new Tensor(t.dtype, t.data, t.shape);
  }
}

function expectedStorage(t: DType): string {
  switch (t) {
    case 'float16': case 'bfloat16': return 'a Uint16Array (raw bits)';
    case 'bool': return 'a Uint8Array of 0/1 or an array of booleans';
    case 'string': return 'an array of strings';
    case 'int64': return 'a BigInt64Array (or a plain array of numbers)';
    case 'uint64': return 'a BigUint64Array';
    default: return `a ${ARRAY_TYPES.find(([, d]) => d === t)?.[0].name ?? 'typed array'} (or a plain array of numbers)`;
  }
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'an object';
  return typeof v;
}

export function assertTensor(v: unknown, name: string): Tensor {
  if (!(v instanceof Tensor)) throw new InvalidArgumentError(`Feed '${name}' must be an EdgeKit Tensor, got ${describe(v)}.`);
  return v;
}
