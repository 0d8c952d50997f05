import { AllocationLimitError, ShapeError } from '../errors.js';
import { allocStorage, fromNumbers, toNumbers, type DType, type TensorStorage } from './dtype.js';

/**
 * A tensor in host memory: the currency of the importer, the IR (initializers, constants) and the CPU backend.
 * Plain data: dtype, concrete shape, and storage of the class `dtype` prescribes (see dtype.ts).
 */
export interface HostTensor {
  dtype: DType;
  shape: number[];
  data: TensorStorage;
}

/** Largest element count EdgeKit will allocate for one tensor unless the session raises it. */
export const DEFAULT_MAX_ELEMENTS = 2 ** 30;

/** Element count of a concrete shape; throws a typed error for negative, fractional or overflowing dims. */
export function sizeOf(shape: readonly number[], maxElements = Number.MAX_SAFE_INTEGER): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new ShapeError(`Invalid dimension ${d} in shape [${shape.join(', ')}].`);
    n *= d;
    if (n > maxElements) {
      throw new AllocationLimitError(
        `A tensor of shape [${shape.join(', ')}] would hold more than ${maxElements} elements; ` +
          'this looks like a malformed model or input. Raise the session option maxTensorElements if it is intended.',
        { shape: [...shape], maxElements },
      );
    }
  }
  return n;
}

export function hostTensor(dtype: DType, shape: number[], data?: TensorStorage): HostTensor {
  const n = sizeOf(shape);
  const storage = data ?? allocStorage(dtype, n);
  if (storage.length !== n) {
    throw new ShapeError(`Tensor data has ${storage.length} elements but shape [${shape.join(', ')}] needs ${n}.`);
  }
  return { dtype, shape: [...shape], data: storage };
}

/** A tensor built from JS numbers with Cast semantics (see dtype.fromNumbers). */
export function tensorFromNumbers(dtype: DType, shape: number[], values: ArrayLike<number>): HostTensor {
  return hostTensor(dtype, shape, fromNumbers(dtype, values));
}

export function tensorToNumbers(t: HostTensor): Float64Array {
  return toNumbers(t.dtype, t.data);
}

export function scalar(dtype: DType, v: number): HostTensor {
  return tensorFromNumbers(dtype, [], [v]);
}

/** Row-major strides of a shape. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}
