import { InternalError } from '../../../errors.js';
import { computeTypeOf, type ComputeType, type StorageType } from '../storage.js';

/**
 * A small WGSL builder. A program declares its layout (storage bindings, uniform fields, workgroup size) as data;
 * the builder turns that into declarations and offers the helpers kernels index through: typed loads and stores,
 * coordinates from a flat index, offsets from coordinates (strides come from uniforms, so one shader serves every
 * shape of a given rank), and the bounds guard. Generated names are snake_case so the WGSL reads on its own.
 *
 * Every storage binding is `read_write`: the executor places inputs and outputs of one dispatch in sub-ranges of the
 * same arena buffer, and WebGPU forbids mixing read-only and writable usage of one buffer within a dispatch.
 */

export interface BindingDecl {
  name: string;
  type: StorageType;
  /** 4: the array holds vec4 elements (index in vec4 units). Default 1. */
  vec?: 1 | 4;
  /** The array holds atomic<i32|u32> (accessed with atomicAdd & co., not load/store). */
  atomic?: boolean;
}

export interface UniformDecl {
  name: string;
  type: 'u32' | 'i32' | 'f32';
  /** Expands to fields `name_0` ... `name_{length-1}` (shapes, strides); 0 gives none. */
  length?: number;
}

export interface ProgramLayout {
  bindings: BindingDecl[];
  uniforms: UniformDecl[];
  workgroupSize: [number, number, number];
}

export interface ShaderEnv {
  /** shader-f16 is enabled on the device. */
  f16: boolean;
}

/** The flat uniform fields of a layout in struct order: every field is 4 bytes, so field i sits at byte 4 i. */
export function uniformFields(uniforms: readonly UniformDecl[]): { name: string; type: UniformDecl['type'] }[] {
  const out: { name: string; type: UniformDecl['type'] }[] = [];
  for (const u of uniforms) {
    if (u.length === undefined) out.push({ name: u.name, type: u.type });
    else for (let i = 0; i < u.length; i++) out.push({ name: `${u.name}_${i}`, type: u.type });
  }
  return out;
}

/** WGSL type of a storage binding's array element. */
function arrayElement(b: BindingDecl): string {
  const vec = b.vec ?? 1;
  if (b.type === 'f16x2') return vec === 4 ? 'vec2<u32>' : 'u32';
  if (b.atomic) {
    if ((b.type !== 'u32' && b.type !== 'i32') || vec !== 1) throw new InternalError(`WGSL builder: atomic binding '${b.name}' must be scalar i32 or u32`);
    return `atomic<${b.type}>`;
  }
  return vec === 4 ? `vec4<${b.type}>` : b.type;
}

export class ShaderBuilder {
  private readonly bindingsByName = new Map<string, BindingDecl>();
  private readonly helpers = new Map<string, string>();
  private body = '';
  private usesF16: boolean;
  private readonly extensions = new Set<string>();

  constructor(
    readonly layout: ProgramLayout,
    readonly env: ShaderEnv,
  ) {
    for (const b of layout.bindings) this.bindingsByName.set(b.name, b);
    this.usesF16 = layout.bindings.some((b) => b.type === 'f16');
    if (this.usesF16 && !env.f16) throw new InternalError('an f16 binding was planned on a device without shader-f16');
  }

  binding(name: string): BindingDecl {
    const b = this.bindingsByName.get(name);
    if (!b) throw new InternalError(`WGSL builder: no binding '${name}'`);
    return b;
  }

  /** Scalar compute type of a binding (f16x2 computes in f32). */
  scalarType(name: string): ComputeType {
    return computeTypeOf(this.binding(name).type);
  }

  /** Value type a load of this binding produces: the compute type, or vec4 of it. */
  valueType(name: string): string {
    const b = this.binding(name);
    const t = computeTypeOf(b.type);
    return (b.vec ?? 1) === 4 ? `vec4<${t}>` : t;
  }

  /** Expression reading element `index` (vec4 units for vec4 bindings) as its compute type. */
  load(name: string, index: string): string {
    const b = this.binding(name);
    if (b.type === 'f16x2') {
      return (b.vec ?? 1) === 4
        ? `vec4<f32>(unpack2x16float(${name}[${index}].x), unpack2x16float(${name}[${index}].y))`
        : `unpack2x16float(${name}[(${index}) >> 1u])[(${index}) & 1u]`;
    }
    return `${name}[${index}]`;
  }

  /** load() converted to scalar type `t` (no conversion written when the binding already computes in `t`). */
  loadAs(name: string, index: string, t: ComputeType): string {
    return convert(t, this.scalarType(name), this.load(name, index));
  }

  /** Statement writing `value` (already of the binding's compute type) to element `index`. */
  store(name: string, index: string, value: string): string {
    const b = this.binding(name);
    if (b.type === 'f16x2') throw new InternalError(`WGSL builder: '${name}' is packed f16 and read-only`);
    return `${name}[${index}] = ${value};`;
  }

  /** +inf or -inf as an f32 expression (computed at run time: WGSL rejects infinite constant expressions). */
  infinity(negative = false): string {
    this.helper(`fn f32_infinity() -> f32 {
  var bits = 0x7f800000u; // a var, so the bitcast is not a constant expression
  return bitcast<f32>(bits);
}`);
    return negative ? '-f32_infinity()' : 'f32_infinity()';
  }

  /** A uniform field, `u.name` or `u.name_i`. */
  u(name: string, i?: number): string {
    return i === undefined ? `u.${name}` : `u.${name}_${i}`;
  }

  /** Adds a WGSL `enable` directive (an extension the device has, e.g. subgroups; the kernel's key must say so). */
  enable(extension: string): void {
    this.extensions.add(extension);
  }

  /** Adds a helper function once (keyed by its text's first line). */
  helper(code: string): void {
    const key = code.trim().split('\n')[0]!;
    if (!this.helpers.has(key)) this.helpers.set(key, code.trim());
  }

  /**
   * Defines `fn <fnName>(index: u32) -> array<u32, rank>`: row-major coordinates of a flat index in the shape held
   * in uniforms `<shape>_0..<shape>_{rank-1}`. Returns fnName.
   */
  coordsFn(fnName: string, shape: string, rank: number): string {
    const lines = [`fn ${fnName}(index: u32) -> array<u32, ${Math.max(rank, 1)}> {`, `  var c: array<u32, ${Math.max(rank, 1)}>;`];
    if (rank === 0) lines.push('  c[0] = 0u;');
    else {
      lines.push('  var rest = index;');
      for (let d = rank - 1; d > 0; d--) lines.push(`  c[${d}] = rest % ${this.u(shape, d)};`, `  rest = rest / ${this.u(shape, d)};`);
      lines.push('  c[0] = rest;');
    }
    lines.push('  return c;', '}');
    this.helper(lines.join('\n'));
    return fnName;
  }

  /** Offset expression `c[0] * u.<strides>_0 + ...` (a zero stride is a broadcast dim). */
  offset(coords: string, strides: string, rank: number): string {
    if (rank === 0) return '0u';
    return Array.from({ length: rank }, (_, d) => `${coords}[${d}] * ${this.u(strides, d)}`).join(' + ');
  }

  /** The entry point's body. Inside it: `gid`, `lid`, `wid`, `nwg` builtins, and `index` via linearIndex(). */
  main(body: string): void {
    this.body = body;
  }

  /**
   * Statement computing `index`, the flat invocation index over a grid dispatched with dispatchLinear (which folds
   * more than 65535 workgroups into y), and returning when it is past `limit`: the bounds guard.
   */
  linearIndex(limit: string): string {
    const [x] = this.layout.workgroupSize;
    return `let index = gid.x + gid.y * (nwg.x * ${x}u);\n  if (index >= ${limit}) { return; }`;
  }

  build(): string {
    const out: string[] = [];
    if (this.usesF16) out.push('enable f16;', '');
    for (const e of this.extensions) out.push(`enable ${e};`, '');
    this.layout.bindings.forEach((b, i) => {
      out.push(`@group(0) @binding(${i}) var<storage, read_write> ${b.name}: array<${arrayElement(b)}>;`);
    });
    const fields = uniformFields(this.layout.uniforms);
    out.push('', 'struct Uniforms {');
    if (!fields.length) out.push('  unused: u32,');
    for (const f of fields) out.push(`  ${f.name}: ${f.type},`);
    out.push('}', `@group(0) @binding(${this.layout.bindings.length}) var<uniform> u: Uniforms;`, '');
    for (const h of this.helpers.values()) out.push(h, '');
    const [x, y, z] = this.layout.workgroupSize;
    out.push(
      `@compute @workgroup_size(${x}, ${y}, ${z})`,
      'fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,',
      '        @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {',
      `  ${this.body.trim()}`,
      '}',
      '',
    );
    return out.join('\n');
  }
}

/** `expr` of scalar type `from` as type `to`: a conversion only where the types differ. */
export function convert(to: ComputeType, from: ComputeType, expr: string): string {
  return to === from ? expr : `${to}(${expr})`;
}

/** Packs uniform values into the layout's struct bytes (each field 4 bytes; struct rounded up to 16). */
export function packUniforms(uniforms: readonly UniformDecl[], values: Readonly<Record<string, number | readonly number[]>>): ArrayBuffer {
  const fields = uniformFields(uniforms);
  const buf = new ArrayBuffer(Math.max(16, Math.ceil((fields.length * 4) / 16) * 16));
  const view = new DataView(buf);
  let i = 0;
  for (const u of uniforms) {
    const v = values[u.name];
    const list = u.length === undefined ? [v] : (v as readonly number[] | undefined);
    if (v === undefined || !list || (u.length !== undefined && (!Array.isArray(v) || v.length !== u.length))) {
      throw new InternalError(`uniform '${u.name}' needs ${u.length === undefined ? 'a number' : `${u.length} numbers`}, got ${JSON.stringify(v)}`);
    }
    for (const x of list as number[]) {
      if (u.type === 'f32') view.setFloat32(i * 4, x, true);
      else if (u.type === 'i32') view.setInt32(i * 4, x, true);
      else view.setUint32(i * 4, x, true);
      i++;
    }
  }
  return buf;
}
