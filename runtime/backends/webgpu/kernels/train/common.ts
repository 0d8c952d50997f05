import type { DType } from '../../../../ir/dtype.js';
import { GpuUnsupported, type GpuTensorInfo } from '../../program.js';
import type { ShaderBuilder } from '../../wgsl/builder.js';
import { kindOf } from '../elementwise.js';
import type { RowView } from '../rows.js';

/**
 * Helpers shared by the WebGPU kernels of the training ops (domain 'edgekit.train'). Every kernel computes in f32
 * whatever the storage (f16, packed f16 or f32), as the CPU twins compute in f64 and round once: the GPU results
 * agree with them to float32 tolerance, not bit for bit (SeededDropout's mask excepted: that one is exact).
 */

export function floatOnly(op: string, what: string, t: GpuTensorInfo | undefined): GpuTensorInfo {
  if (!t) throw new GpuUnsupported(`${op} needs its ${what} input`);
  if (kindOf(t.dtype) !== 'f') throw new GpuUnsupported(`${op} ${what} of type ${t.dtype} has no WebGPU kernel (float16/float32 only)`);
  return t;
}

export function isFloatDType(d: DType): boolean {
  return kindOf(d) === 'f';
}

/** `fn is_nan(x: f32) -> bool`, by bits (WGSL compilers may fold x != x away). */
export function nanFn(b: ShaderBuilder): string {
  b.helper(`fn is_nan(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}`);
  return 'is_nan';
}

/** A quiet NaN as an f32 expression (a var, so it is not a constant expression WGSL would reject). */
export function nanValue(b: ShaderBuilder): string {
  b.helper(`fn f32_nan() -> f32 {
  var bits = 0x7fc00000u;
  return bitcast<f32>(bits);
}`);
  return 'f32_nan()';
}

/** One row of `len` contiguous elements: a whole-tensor reduction on the row skeleton (rows.ts). */
export function singleRow(len: number): RowView {
  return { rows: 1, rowLen: len, keptShape: [1], keptStrides: [0], redShape: [len], redStrides: [1] };
}

/**
 * Window geometry of a 1-D or 2-D Conv/pool as [H, W] pairs (a 1-D window runs as 2-D with H = 1), the same
 * mapping the forward kernels use (kernels/conv.ts, kernels/pool.ts).
 */
export function twoD<T>(v: readonly T[], spatial: number, d: T): [T, T] {
  return spatial === 1 ? [d, v[0]!] : [v[0]!, v[1]!];
}
