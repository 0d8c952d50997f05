import type { DType } from '../../../ir/dtype.js';
import { attrFloat, attrString, type Node } from '../../../ir/graph.js';
import { QUANT_RANGE, roundHalfEven } from '../../../ir/ops/quantize.js';
import { tensorToNumbers } from '../../../ir/tensor.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, type GpuKernel, type GpuTensorInfo, type ProgramSpec } from '../program.js';
import type { ShaderBuilder } from '../wgsl/builder.js';
import { dotHelpers, int8Offset, scalarTypeOf } from './quant-dot.js';
import { divHelper } from './quantize.js';

/**
 * The int8 residual Add of a rewritten QDQ group (fuse-qdq-add.ts): DequantizeLinear(a_q), DequantizeLinear(b_q) ->
 * Add (-> Relu) -> QuantizeLinear as one dispatch. IR op 'QdqAdd' exists only in the graph the GPU plans, with inputs
 *   a_q, a_scale, a_zero_point, b_q, b_scale, b_zero_point, y_scale, y_zero_point
 * (every scale and zero point a per-tensor constant, read on the host at plan time and passed as uniforms) and
 * attributes clip_min / clip_max (a fused Relu is clip_min = 0), as QdqConv's.
 *
 * - Bit-exact with the chain it replaces as the WebGPU kernels compute it (kernels/quantize.ts and the f32 Add):
 *   a = f32(a_q - a_zp) * a_scale and b alike (one f32 rounding each, i32 difference exact), s = a + b in f32, then
 *   y = clamp(round_half_even(div_rn(s, y_scale)) + y_zp, lo, hi) with the correctly rounded division (divHelper)
 *   and NaN stored as 0, as saturateExpr does. The clamp range [lo, hi] is the type's, narrowed by the activation:
 *   quantization is monotone, so Q(clip(s, m, M)) = clamp(Q(s), Q(m), Q(M)) exactly (Relu: lo = max(lo, y_zp)).
 * - One invocation computes one word of 4 channels at one position (n, c4, s) of the logical [N, C, ...spatial]
 *   tensor (rank < 2: N = 1 and C = the size), so it serves every mix of layouts (the packed int8 layout "c4",
 *   docs/quantization.md):
 *   each of a, b and y is either packed (attribute a_layout / b_layout / y_layout = 'c4': a uint32 value of shape
 *   [N, ceil(C / 4), ...spatial], channel 4 c4 + j in byte j as an int8-domain code, its quantized type in
 *   a_qtype / b_qtype / y_qtype) or one code per word (no attribute, the value's own int8/uint8 dtype). The layouts
 *   are in the pipeline key: a plan-time choice, never a branch in the shader.
 * - Lanes past C compute too: an unpacked input reads its zero point there and a packed one holds it, so the lane
 *   dequantizes to 0 and quantizes to y_zp (which lies in [lo, hi]: the Relu bound is y_zp itself), the padding a
 *   packed y must hold; an unpacked y stores only channels below C. C comes from an unpacked operand's shape; when
 *   all three are packed it is not needed, every lane of every word is computed that way.
 * - The scales must be positive and finite (fuse-qdq-add.ts fuses no other group): a zero or infinite scale would
 *   make the padding lanes NaN instead of y_zp.
 */

const WG = 64;

export const QDQ_ADD = 'QdqAdd';

/** One operand as the kernel reads or writes it. */
interface Operand {
  /** Packed four int8-domain codes per u32 ('c4'), else one code per word. */
  packed: boolean;
  /** The quantized type: the value's dtype, or the *_qtype attribute of a packed value. */
  qtype: DType;
  /** [N, ceil(C / 4), ...spatial]: the words the kernel walks. */
  words: number[];
  /** The logical channel count, known for an unpacked operand only. */
  C?: number;
}

function operand(node: Node, name: 'a' | 'b' | 'y', t: GpuTensorInfo): Operand {
  const layout = attrString(node, `${name}_layout`);
  if (layout !== undefined) {
    if (layout !== 'c4') throw new GpuUnsupported(`${node.op}: ${name}_layout '${layout}' (only 'c4' is known)`);
    const qtype = attrString(node, `${name}_qtype`);
    if (qtype !== 'int8' && qtype !== 'uint8') throw new GpuUnsupported(`${node.op}: packed ${name} needs ${name}_qtype 'int8' or 'uint8', not ${qtype}`);
    if (t.dtype !== 'uint32' || t.shape.length < 2) throw new GpuUnsupported(`${node.op}: packed ${name} must be uint32 of rank >= 2, not ${t.dtype} [${t.shape.join(', ')}]`);
    return { packed: true, qtype, words: t.shape };
  }
  if (t.dtype !== 'int8' && t.dtype !== 'uint8') throw new GpuUnsupported(`${node.op}: ${name} is ${t.dtype}; int8 or uint8 expected`);
  const s = t.shape.length >= 2 ? t.shape : [1, t.shape[0] ?? 1];
  return { packed: false, qtype: t.dtype, words: [s[0]!, Math.ceil(s[1]! / 4), ...s.slice(2)], C: s[1]! };
}

/** A per-tensor constant scale or zero point (an absent zero point is 0). */
function scalar(node: Node, t: GpuTensorInfo | undefined, what: string, dflt?: number): number {
  if (!t) {
    if (dflt === undefined) throw new GpuUnsupported(`${node.op}: ${what} is required`);
    return dflt;
  }
  if (!t.value) throw new GpuUnsupported(`${node.op}: ${what} must be a constant`);
  const v = tensorToNumbers(t.value);
  if (v.length !== 1) throw new GpuUnsupported(`${node.op}: ${what} must be per tensor, not ${v.length} values`);
  return v[0]!;
}

const UNIFORMS = [
  ...['size', 'S', 'C4', 'C'].map((name) => ({ name, type: 'u32' as const })),
  { name: 'sa', type: 'f32' as const }, { name: 'za', type: 'i32' as const }, { name: 'sb', type: 'f32' as const }, { name: 'zb', type: 'i32' as const },
  ...['sy', 'zy', 'q_lo', 'q_hi'].map((name) => ({ name, type: 'f32' as const })),
];

const form = (o: Operand) => `${o.packed ? 'c4-' : ''}${o.qtype}`;

function addProgram(a: Operand, b: Operand, y: Operand, storage: { a: GpuTensorInfo; b: GpuTensorInfo; y: GpuTensorInfo }, uniforms: Record<string, number>): ProgramSpec {
  const size = sizeOfShape(y.words);
  return {
    key: `qdq-add:${form(a)}:${form(b)}:${form(y)}`,
    bindings: [{ name: 'a', type: storage.a.storage }, { name: 'b', type: storage.b.storage }, { name: 'y', type: storage.y.storage }],
    uniforms: UNIFORMS,
    workgroupSize: [WG, 1, 1],
    source(s: ShaderBuilder) {
      // The packed words move by shifts only (no dot product here), so the portable helpers serve every device.
      if (a.packed || b.packed || y.packed) dotHelpers(s, 'unpacked');
      const div = divHelper(s);
      // `<name>_codes`: the int8-domain codes of the word's four lanes; an unpacked operand reads lanes past C as its
      // zero point (so they dequantize to 0).
      for (const [name, o] of [['a', a], ['b', b]] as const) {
        s.helper(o.packed
          ? `fn ${name}_codes(index: u32, base: u32, c0: u32) -> vec4<i32> {
  return unpack_i8(${s.load(name, 'index')});
}`
          : `fn ${name}_codes(index: u32, base: u32, c0: u32) -> vec4<i32> {
  var v = vec4<i32>(u.z${name});
  ${[0, 1, 2, 3].map((j) => `if (c0 + ${j}u < u.C) { v[${j}] = i32(${s.load(name, `base + (c0 + ${j}u) * u.S`)}) - ${int8Offset(o.qtype)}; }`).join('\n  ')}
  return v;
}`);
      }
      const store = y.packed
        ? s.store('y', 'index', `pack_i8(vec4<i32>(q) - vec4<i32>(${int8Offset(y.qtype)}))`)
        : [0, 1, 2, 3].map((j) => `if (c0 + ${j}u < u.C) { ${s.store('y', `base + (c0 + ${j}u) * u.S`, `${scalarTypeOf(y.qtype)}(q[${j}])`)} }`).join('\n  ');
      s.main(`${s.linearIndex('u.size')}
  let sp = index % u.S;
  let c4 = (index / u.S) % u.C4;
  let n = index / (u.S * u.C4);
  let c0 = c4 * 4u;
  let base = n * u.C * u.S + sp;
  // Zero points in the int8 domain, as the codes: the difference is q - zp, exact in i32.
  let xa = vec4<f32>(a_codes(index, base, c0) - vec4<i32>(u.za)) * u.sa;
  let xb = vec4<f32>(b_codes(index, base, c0) - vec4<i32>(u.zb)) * u.sb;
  let t = xa + xb;
  let v = vec4<f32>(${div}(t.x, u.sy), ${div}(t.y, u.sy), ${div}(t.z, u.sy), ${div}(t.w, u.sy));
  let q = select(clamp(round(v) + u.zy, vec4<f32>(u.q_lo), vec4<f32>(u.q_hi)), vec4<f32>(0.0), v != v);
  ${store}`);
    },
    run: () => ({ workgroups: dispatchLinear(size, WG), uniforms: { size, ...uniforms } }),
  };
}

const sameWords = (p: Operand, q: Operand) => p.words.length === q.words.length && p.words.every((d, i) => d === q.words[i]);

const qdqAdd: GpuKernel = {
  // Every scale and zero point is read on the host; only a_q and b_q are bound.
  hostInputs: [1, 2, 4, 5, 6, 7],
  plan(node, inputs, [yInfo]) {
    const [ai, as, az, bi, bs, bz, ys, yz] = inputs;
    if (!ai || !bi || !yInfo) throw new GpuUnsupported(`${node.op}: a, b and y are required`);
    const a = operand(node, 'a', ai);
    const b = operand(node, 'b', bi);
    const y = operand(node, 'y', yInfo);
    const Cs = [a.C, b.C, y.C].filter((c): c is number => c !== undefined);
    if (!sameWords(a, y) || !sameWords(b, y) || Cs.some((c) => c !== Cs[0])) {
      throw new GpuUnsupported(`${node.op}: a [${ai.shape.join(', ')}], b [${bi.shape.join(', ')}] and y [${yInfo.shape.join(', ')}] must have one shape (no broadcasting)`);
    }
    if (sizeOfShape(y.words) === 0) return { calls: [] };
    const sa = scalar(node, as, 'a_scale');
    const sb = scalar(node, bs, 'b_scale');
    const sy = scalar(node, ys, 'y_scale');
    for (const [v, what] of [[sa, 'a_scale'], [sb, 'b_scale'], [sy, 'y_scale']] as const) {
      if (!(v > 0 && Number.isFinite(v))) throw new GpuUnsupported(`${node.op}: ${what} ${v} must be positive and finite`);
    }
    const zy = scalar(node, yz, 'y_zero_point', 0);
    const [tlo, thi] = QUANT_RANGE[y.qtype]!;
    // The activation as the clamp range, as qdq-gemm.ts computes it: Q(bound) in y's type.
    const q = (v: number) => roundHalfEven(Math.fround(v / sy)) + zy;
    const min = attrFloat(node, 'clip_min', -Infinity);
    const max = attrFloat(node, 'clip_max', Infinity);
    const lo = Number.isFinite(min) ? Math.min(thi, Math.max(tlo, q(min))) : tlo;
    const hi = Number.isFinite(max) ? Math.max(tlo, Math.min(thi, q(max))) : thi;
    // C of an unpacked operand; all packed: every lane is computed (the file comment), so C = 4 C4.
    const C = Cs[0] ?? 4 * y.words[1]!;
    const uniforms = {
      S: sizeOfShape(y.words.slice(2)), C4: y.words[1]!, C,
      sa, za: scalar(node, az, 'a_zero_point', 0) - int8Offset(a.qtype),
      sb, zb: scalar(node, bz, 'b_zero_point', 0) - int8Offset(b.qtype),
      sy, zy, q_lo: lo, q_hi: hi,
    };
    const program = addProgram(a, b, y, { a: ai, b: bi, y: yInfo }, uniforms);
    return { calls: [{ program, tensors: [{ input: 0 }, { input: 3 }, { output: 0 }] }] };
  },
};

export const kernels: Record<string, GpuKernel> = { [QDQ_ADD]: qdqAdd };
