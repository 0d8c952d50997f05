import { describe, expect, it } from 'vitest';
import { f16BitsToF32, f32ToF16Bits, f32ToBf16Bits, bf16BitsToF32 } from '../../runtime/ir/dtype.js';

describe('float16 codec', () => {
  it('round-trips representable values and rounds to nearest even', () => {
    for (const v of [0, 1, -2, 0.5, 65504, 6.103515625e-5, 5.960464477539063e-8]) expect(f16BitsToF32(f32ToF16Bits(v))).toBe(v);
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // rounds up to +inf
    expect(f16BitsToF32(f32ToF16Bits(1 + 2 ** -11))).toBe(1); // tie -> even
    expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN)))).toBe(true);
    expect(bf16BitsToF32(f32ToBf16Bits(1.00390625))).toBe(1); // tie -> even
  });
});
