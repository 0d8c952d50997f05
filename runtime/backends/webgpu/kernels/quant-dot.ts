import type { DType } from '../../../ir/dtype.js';
import { hostTensor, type HostTensor } from '../../../ir/tensor.js';
import { findGpu } from '../device.js';
import type { ShaderBuilder } from '../wgsl/builder.js';

/**
 * The int8 dot product of the quantized kernels (quant-matmul.ts). Four int8 values are packed per u32 and multiplied
 * with WGSL's dot4I8Packed where the implementation has the `packed_4x8_integer_dot_product` language feature, else
 * unpacked by shifts and multiplied as vec4<i32> (the same result, exactly). Operands of uint8 type are moved into
 * the int8 domain by subtracting 128 from values and zero points alike, which leaves (q - zero_point) unchanged, so
 * one signed dot product serves int8 x int8, uint8 x uint8 and the mixed pairs.
 *
 * The path is a plan-time choice (never a branch inside a kernel) and part of the pipeline key. WGSL language
 * features belong to the GPU object, not the device: the device's GpuContext records them when it is created
 * (GpuContext.wgslFeatures) and plans pass the answer to kernels as KernelEnv.packedDot. Callers without a plan's
 * environment fall back to detectQuantDotPath() / navigator.gpu, then to the portable unpacked path.
 * setQuantDotPath() pins a path (tests run both).
 */

export type QuantDotPath = 'packed' | 'unpacked';
export const PACKED_DOT_FEATURE = 'packed_4x8_integer_dot_product';

let pinned: QuantDotPath | undefined;
let detected: boolean | undefined;

/** Pins the dot-product path for kernels planned from now on; undefined returns to detection. */
export function setQuantDotPath(path: QuantDotPath | undefined): void {
  pinned = path;
}

/** Learns whether the WGSL implementation has packed_4x8_integer_dot_product; returns the path kernels will use. */
export async function detectQuantDotPath(): Promise<QuantDotPath> {
  const gpu = await findGpu();
  detected = Boolean(gpu.wgslLanguageFeatures?.has(PACKED_DOT_FEATURE));
  return quantDotPath();
}

/** The path int8 kernels take: a pinned one (tests), else the device's answer (KernelEnv.packedDot), else navigator.gpu's. */
export function quantDotPath(packedDot?: boolean): QuantDotPath {
  if (pinned) return pinned;
  if (packedDot !== undefined) return packedDot ? 'packed' : 'unpacked';
  if (detected === undefined) {
    const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
    if (nav?.gpu?.wgslLanguageFeatures) detected = nav.gpu.wgslLanguageFeatures.has(PACKED_DOT_FEATURE);
  }
  return detected ? 'packed' : 'unpacked';
}

/**
 * The path for a plan's environment (KernelEnv): packed where the implementation has the language feature, except
 * on a CPU adapter (SwiftShader, KernelEnv.cpuAdapter): there dot4I8Packed is emulated (both words unpacked, four
 * multiplies), and the unpacked path, which keeps x unpacked as loaded and unpacks each weight word once for several
 * pixels, ran mobilenet_v2's int8 convs in about half the time (docs/quantization.md). A pinned path still wins.
 */
export function planQuantDotPath(env: { packedDot?: boolean; cpuAdapter?: boolean }): QuantDotPath {
  return quantDotPath(env.packedDot === undefined ? undefined : env.packedDot && !env.cpuAdapter);
}

/** The amount subtracted to move a value of `dtype` into the int8 domain. */
export const int8Offset = (dtype: DType): number => (dtype === 'uint8' ? 128 : 0);

/** WGSL scalar type a quantized dtype is stored as (storage.ts). */
export const scalarTypeOf = (dtype: DType): 'i32' | 'u32' => (dtype.startsWith('u') ? 'u32' : 'i32');

export function int32Constant(shape: number[], data: Int32Array): HostTensor {
  return hostTensor('int32', shape, data);
}

/**
 * Adds `pack_i8(v: vec4<i32>) -> u32` (low byte of each lane, lane 0 lowest) and `dot4_i8(a: u32, b: u32) -> i32`
 * for a path.
 */
export function dotHelpers(b: ShaderBuilder, path: QuantDotPath): void {
  if (path === 'packed') {
    b.helper(`fn pack_i8(v: vec4<i32>) -> u32 {
  return pack4xI8(v);
}`);
    b.helper(`fn dot4_i8(a: u32, b: u32) -> i32 {
  return dot4I8Packed(a, b);
}`);
    return;
  }
  b.helper(`fn pack_i8(v: vec4<i32>) -> u32 {
  let w = bitcast<vec4<u32>>(v) & vec4<u32>(0xffu);
  return w.x | (w.y << 8u) | (w.z << 16u) | (w.w << 24u);
}`);
  b.helper(`fn unpack_i8(a: u32) -> vec4<i32> {
  let s = bitcast<i32>(a);
  return vec4<i32>((s << 24u) >> 24u, (s << 16u) >> 24u, (s << 8u) >> 24u, s >> 24u);
}`);
  b.helper(`fn dot4_i8(a: u32, b: u32) -> i32 {
  return dot(unpack_i8(a), unpack_i8(b));
}`);
}
