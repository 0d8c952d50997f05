import type { DType } from '../../ir/dtype.js';
import { allocStorage, type TensorStorage } from '../../ir/dtype.js';

/**
 * The arithmetic of the Reduce* ops over an index map (input element -> output element). Each op is an initial
 * value, a per-element step and a final step, so an empty reduction yields the ONNX-18 identity element:
 * Sum/L1/L2/SumSquare 0, Prod 1, Max -inf, Min +inf, Mean NaN (0/0), LogSum and LogSumExp -inf.
 * NaN follows numpy (which the ONNX reference implementation uses): it propagates through every reduction,
 * ReduceMax/ReduceMin included.
 */
export function reduceValues(op: string, x: Float64Array, map: Int32Array | undefined, outCount: number, count: number): Float64Array {
  const acc = new Float64Array(outCount);
  const at = (i: number) => (map ? map[i]! : i);
  const n = x.length;
  switch (op) {
    case 'ReduceSum':
    case 'ReduceMean':
    case 'ReduceLogSum':
      for (let i = 0; i < n; i++) {
        const j = at(i);
        acc[j] = acc[j]! + x[i]!;
      }
      if (op === 'ReduceMean') for (let j = 0; j < outCount; j++) acc[j] = acc[j]! / count;
      if (op === 'ReduceLogSum') for (let j = 0; j < outCount; j++) acc[j] = Math.log(acc[j]!);
      return acc;
    case 'ReduceProd':
      acc.fill(1);
      for (let i = 0; i < n; i++) {
        const j = at(i);
        acc[j] = acc[j]! * x[i]!;
      }
      return acc;
    case 'ReduceMax':
    case 'ReduceMin': {
      const max = op === 'ReduceMax';
      acc.fill(max ? -Infinity : Infinity);
      // NaN propagates (as numpy's max/min do): once a NaN is in, no comparison replaces it.
      for (let i = 0; i < n; i++) {
        const j = at(i);
        const v = x[i]!;
        const a = acc[j]!;
        if (v !== v || (max ? v > a : v < a)) acc[j] = a !== a ? a : v;
      }
      return acc;
    }
    case 'ReduceL1':
      for (let i = 0; i < n; i++) {
        const j = at(i);
        acc[j] = acc[j]! + Math.abs(x[i]!);
      }
      return acc;
    case 'ReduceL2':
    case 'ReduceSumSquare':
      for (let i = 0; i < n; i++) {
        const j = at(i);
        acc[j] = acc[j]! + x[i]! * x[i]!;
      }
      if (op === 'ReduceL2') for (let j = 0; j < outCount; j++) acc[j] = Math.sqrt(acc[j]!);
      return acc;
    case 'ReduceLogSumExp': {
      // log(sum exp(x)) = m + log(sum exp(x - m)) with m the maximum: no overflow for large x. A NaN anywhere
      // makes the result NaN (m is NaN then, as ReduceMax computes it); m = +inf gives +inf, m = -inf (all
      // elements -inf, or none) gives -inf.
      const m = reduceValues('ReduceMax', x, map, outCount, count);
      for (let i = 0; i < n; i++) {
        const j = at(i);
        acc[j] = acc[j]! + (Number.isFinite(m[j]!) ? Math.exp(x[i]! - m[j]!) : 0);
      }
      for (let j = 0; j < outCount; j++) acc[j] = Number.isFinite(m[j]!) ? m[j]! + Math.log(acc[j]!) : m[j]!;
      return acc;
    }
    default:
      throw new Error(`unknown reduction ${op}`);
  }
}

/** Lowest and highest value of an integer or bool type, stored exactly (64-bit types as BigInt). */
export function typeLimitStorage(dtype: DType, n: number, which: 'min' | 'max'): TensorStorage | undefined {
  const out = allocStorage(dtype, n);
  const limits: Partial<Record<DType, [number | bigint, number | bigint]>> = {
    bool: [0, 1], int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535],
    int32: [-2147483648, 2147483647], uint32: [0, 4294967295],
    int64: [-(2n ** 63n), 2n ** 63n - 1n], uint64: [0n, 2n ** 64n - 1n],
  };
  const l = limits[dtype];
  if (!l) return undefined;
  (out as unknown as { fill(v: number | bigint): void }).fill(which === 'min' ? l[0] : l[1]);
  return out;
}
