import { describe, expect, it } from 'vitest';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { allClose, argmaxRows, relativeError } from '../helpers/compare.js';

/** The closeness rules every conformance and model test relies on, checked on hand-computed cases. */

const f32 = (shape: number[], v: number[]): HostTensor => ({ dtype: 'float32', shape, data: Float32Array.from(v) });

describe('allClose (ONNX backend-test rule: |a - e| <= atol + rtol * |e|)', () => {
  it('accepts differences inside rtol 1e-3 / atol 1e-7 and rejects those outside', () => {
    expect(allClose(f32([2], [1000.9, 0]), f32([2], [1000, 0])).ok).toBe(true); // 0.9 <= 1e-7 + 1.0
    expect(allClose(f32([1], [1001.01]), f32([1], [1000])).ok).toBe(false); // 1.01 > 1.0000001
    expect(allClose(f32([1], [5e-8]), f32([1], [0])).ok).toBe(true); // atol alone
    expect(allClose(f32([1], [2e-7]), f32([1], [0])).ok).toBe(false);
  });

  it('treats NaN as equal to NaN and requires infinities to match exactly', () => {
    expect(allClose(f32([2], [NaN, Infinity]), f32([2], [NaN, Infinity])).ok).toBe(true);
    expect(allClose(f32([1], [NaN]), f32([1], [0])).ok).toBe(false);
    expect(allClose(f32([1], [0]), f32([1], [NaN])).ok).toBe(false);
    expect(allClose(f32([1], [-Infinity]), f32([1], [Infinity])).ok).toBe(false);
    expect(allClose(f32([1], [3.4e38]), f32([1], [Infinity])).ok).toBe(false);
  });

  it('requires equal dtypes and shapes, and names the worst element', () => {
    const r = allClose(f32([2, 2], [1, 2, 3, 4.5]), f32([2, 2], [1, 2, 3, 4]));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.message).toContain('[1, 1]');
    expect(allClose(f32([4], [1, 2, 3, 4]), f32([2, 2], [1, 2, 3, 4])).ok).toBe(false);
    expect(allClose(f32([], [1]), f32([1], [1])).ok).toBe(false);
    const d: HostTensor = { dtype: 'float64', shape: [1], data: Float64Array.from([1]) };
    expect(allClose(d, f32([1], [1])).ok).toBe(false);
  });

  it('compares integers, int64, bools and strings exactly', () => {
    const i32 = (v: number[]): HostTensor => ({ dtype: 'int32', shape: [v.length], data: Int32Array.from(v) });
    expect(allClose(i32([1000, 7]), i32([1000, 7])).ok).toBe(true);
    expect(allClose(i32([1001]), i32([1000])).ok).toBe(false); // inside rtol, but integers are exact
    const i64 = (v: bigint[]): HostTensor => ({ dtype: 'int64', shape: [v.length], data: BigInt64Array.from(v) });
    expect(allClose(i64([2n ** 60n]), i64([2n ** 60n])).ok).toBe(true);
    expect(allClose(i64([2n ** 60n + 1n]), i64([2n ** 60n])).ok).toBe(false); // beyond 2^53: still exact
    const b = (v: number[]): HostTensor => ({ dtype: 'bool', shape: [v.length], data: Uint8Array.from(v) });
    expect(allClose(b([1, 0]), b([1, 1])).ok).toBe(false);
    const s = (v: string[]): HostTensor => ({ dtype: 'string', shape: [v.length], data: v });
    expect(allClose(s(['a', 'b']), s(['a', 'b'])).ok).toBe(true);
    expect(allClose(s(['a', 'B']), s(['a', 'b'])).ok).toBe(false);
  });

  it('compares float16 by value, not by bits', () => {
    // 0x3c00 = 1.0, 0x3c01 = 1 + 2^-10 (relative difference 9.8e-4 < 1e-3), 0x3c02 = 1 + 2^-9.
    const h = (bits: number[]): HostTensor => ({ dtype: 'float16', shape: [bits.length], data: Uint16Array.from(bits) });
    expect(allClose(h([0x3c01]), h([0x3c00])).ok).toBe(true);
    expect(allClose(h([0x3c02]), h([0x3c00])).ok).toBe(false);
  });
});

describe('relativeError = max|a - b| / max|b|', () => {
  it('uses the largest reference magnitude, so small reference elements do not blow it up', () => {
    expect(relativeError(f32([3], [10, 0.001, -3]), f32([3], [10, 0, -2]))).toBeCloseTo(0.1, 12); // 1 / 10
    expect(relativeError(f32([2], [1, 2]), f32([2], [1, 2]))).toBe(0);
    expect(relativeError(f32([1], [NaN]), f32([1], [1]))).toBe(Infinity);
    expect(relativeError(f32([1], [1]), f32([1], [0]))).toBe(Infinity);
    expect(() => relativeError(f32([2], [1, 2]), f32([1, 2], [1, 2]))).toThrow();
  });
});

describe('argmaxRows', () => {
  it('returns the first maximum of each row', () => {
    expect(argmaxRows(f32([3, 3], [0, 2, 1, 5, 5, 0, -1, -2, -0.5]))).toEqual([1, 0, 2]);
  });
});
