import { sizeOf } from '../../ir/tensor.js';

/**
 * Numpy-style broadcasting for the CPU kernels ("Broadcasting in ONNX"). `broadcastIndex` maps every element of
 * the output to the flat index of the input element it reads; kernels then loop over one flat range.
 */

/** Input strides aligned to the output's rank, 0 where the input broadcasts (size-1 or missing leading dims). */
export function broadcastStrides(inShape: readonly number[], outShape: readonly number[]): number[] {
  const r = outShape.length;
  const off = r - inShape.length;
  const strides = new Array<number>(r).fill(0);
  let acc = 1;
  for (let d = inShape.length - 1; d >= 0; d--) {
    const od = d + off;
    strides[od] = inShape[d] === 1 && outShape[od] !== 1 ? 0 : acc;
    acc *= inShape[d]!;
  }
  return strides;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * For each output element (row-major), the flat index into an input of shape `inShape`; undefined when the input
 * already has the output's shape (the identity map, which callers special-case for speed).
 */
export function broadcastIndex(inShape: readonly number[], outShape: readonly number[]): Int32Array | undefined {
  if (sameShape(inShape, outShape)) return undefined;
  const n = sizeOf(outShape);
  const r = outShape.length;
  const strides = broadcastStrides(inShape, outShape);
  const idx = new Int32Array(n);
  const inner = r ? outShape[r - 1]! : 1;
  const innerStride = r ? strides[r - 1]! : 0;
  const counter = new Array<number>(r).fill(0);
  let base = 0;
  for (let o = 0; o < n; o += inner) {
    for (let k = 0; k < inner; k++) idx[o + k] = base + k * innerStride;
    // Odometer over the outer dims: advance the innermost outer dim, carrying into the ones before it.
    for (let d = r - 2; d >= 0; d--) {
      counter[d]!++;
      base += strides[d]!;
      if (counter[d]! < outShape[d]!) break;
      base -= strides[d]! * counter[d]!;
      counter[d] = 0;
    }
  }
  return idx;
}
