import type { DType } from '../../../ir/dtype.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, type GpuKernel, type GpuTensorInfo, type ProgramSpec } from '../program.js';
import { computeTypeOf, gpuSupportsDType, type ComputeType } from '../storage.js';
import type { ShaderBuilder } from '../wgsl/builder.js';

/**
 * Cast-21 and CastLike-21 between the element types the GPU stores (storage.ts), following the CPU reference
 * (backends/cpu/data-cast.ts): float -> integer truncates toward zero, integers narrower than 32 bits wrap
 * (int8 -> sign-extended low byte), float -> bool is x != 0 (NaN -> true), and a float16 result kept in f32
 * storage (no shader-f16) is rounded to float16 here so later kernels see the values the CPU would.
 * Out-of-range float -> integer is undefined in ONNX; the GPU saturates where the CPU wraps.
 */

const WORKGROUP = 64;

/** Bits of a narrow integer dtype (wrapped to after conversion); undefined for 32-bit and wider. */
const NARROW: Partial<Record<DType, number>> = { int8: 8, int16: 16, uint8: 8, uint16: 16 };

function roundF16Helper(b: ShaderBuilder): string {
  b.helper(`// Rounds to the nearest float16 (kept in f32): pack2x16float is undefined past f16's range, so overflow and NaN are explicit.
fn round_to_f16(x: f32) -> f32 {
  let bits = bitcast<u32>(x);
  if ((bits & 0x7fffffffu) > 0x7f800000u) { return x; }
  if (abs(x) >= 65520.0) { return bitcast<f32>((bits & 0x80000000u) | 0x7f800000u); }
  return unpack2x16float(pack2x16float(vec2<f32>(x, 0.0))).x;
}`);
  return 'round_to_f16';
}

/** WGSL converting `x` of compute type S (holding a `from` value) to the representation of `to` in compute type T. */
export function castExpr(b: ShaderBuilder, x: string, S: ComputeType, to: DType, T: ComputeType): string {
  const isFloatS = S === 'f32' || S === 'f16';
  if (to === 'bool') return `select(0u, 1u, ${x} != ${S}(0))`;
  if (to === 'float32') return `f32(${x})`;
  if (to === 'float16') return T === 'f16' ? `f16(${x})` : `${roundF16Helper(b)}(f32(${x}))`;
  const bits = NARROW[to];
  if (T === 'i32') {
    const v = isFloatS ? `i32(${x})` : S === 'u32' ? `bitcast<i32>(${x})` : x;
    return bits ? `((${v} << ${32 - bits}u) >> ${32 - bits}u)` : v;
  }
  // Unsigned targets: negative floats wrap through i32 as the CPU's truncate-and-wrap does.
  const v = isFloatS ? `select(u32(${x}), bitcast<u32>(i32(${x})), ${x} < ${S}(0))` : S === 'i32' ? `bitcast<u32>(${x})` : x;
  return bits ? `(${v} & ${(2 ** bits - 1).toString()}u)` : v;
}

function castProgram(x: GpuTensorInfo, y: GpuTensorInfo): ProgramSpec {
  const size = sizeOfShape(y.shape);
  const S = computeTypeOf(x.storage);
  const T = computeTypeOf(y.storage);
  return {
    key: `cast:${y.dtype}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'y', type: y.storage }],
    uniforms: [{ name: 'size', type: 'u32' }],
    workgroupSize: [WORKGROUP, 1, 1],
    source(b) {
      b.main(`${b.linearIndex('u.size')}
  let value = ${b.load('x', 'index')};
  ${b.store('y', 'index', castExpr(b, 'value', S, y.dtype, T))}`);
    },
    run() {
      return { workgroups: dispatchLinear(size, WORKGROUP), uniforms: { size } };
    },
  };
}

const cast = (hostInputs: number[]): GpuKernel => ({
  hostInputs,
  plan(node, [x], [y]) {
    if (!gpuSupportsDType(y!.dtype)) throw new GpuUnsupported(`Cast to ${y!.dtype} has no WebGPU kernel`);
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    return { calls: [{ program: castProgram(x!, y!), tensors: [{ input: 0 }, { output: 0 }] }] };
  },
});

// CastLike reads only its second input's dtype, which the plan knows: not a host input, which would make a computed
// `like` (torch's type_as(q)) a value read back at a stage boundary (staged-plan.ts) for nothing.
export const kernels: Record<string, GpuKernel> = { Cast: cast([]), CastLike: cast([]) };
