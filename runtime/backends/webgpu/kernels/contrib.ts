import { attrFloat, attrInt } from '../../../ir/graph.js';
import { msOp, rotaryGeometry } from '../../../ir/ops/contrib.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, type GpuKernel, type GpuTensorInfo, type ProgramSpec } from '../program.js';
import { computeTypeOf } from '../storage.js';
import { convert } from '../wgsl/builder.js';
import { mathHelper } from '../wgsl/math.js';
import { elementwiseProgram, kindOf } from './elementwise.js';
import type { EwOp, ExprCtx } from './elementwise-ops.js';
import { kernels as normKernels } from './contrib-norm.js';

/**
 * com.microsoft transformer ops on WebGPU (formulas: cpu/kernels/contrib.ts). The GELU family and BiasAdd are
 * entries of the elementwise program (elementwise.ts: broadcasting of the [H] bias, vec4, f16 or f32), defined
 * here because their IR names carry the domain. BiasSplitGelu and RotaryEmbedding are one invocation per output
 * element; the normalizations live in contrib-norm.ts.
 */

const FLOAT = ['f'] as const;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** x + bias when the node has a bias operand (the variant says so; the key follows). */
const biased = ({ v }: ExprCtx, variant: string): string => (variant === 'bias' ? `(${v[0]} + ${v[1]})` : v[0]);
const hasBias = (n: { inputs: string[] }) => (n.inputs[1] ? 'bias' : '');

/** 0.5 x erfc(-x / sqrt 2): Gelu without the cancellation of 1 + erf(x / sqrt 2) for x < 0. */
const geluExact = (e: ExprCtx, h: string) => `${e.c(0.5)} * ${h} * ${e.fn('erfc')}(${h} * ${e.c(-Math.SQRT1_2)})`;
const geluTanh = (e: ExprCtx, h: string) => `${e.c(0.5)} * ${h} * (${e.c(1)} + ${e.fn('tanh')}(${e.c(SQRT_2_OVER_PI)} * (${h} + ${e.c(0.044715)} * ${h} * ${h} * ${h})))`;

const EW: Record<string, EwOp> = {
  Gelu: { kinds: FLOAT, arity: [1, 1], expr: (e) => geluExact(e, e.v[0]) },
  QuickGelu: {
    kinds: FLOAT,
    arity: [1, 1],
    params: { alpha: (n) => attrFloat(n, 'alpha', 1.702) },
    expr: (e) => `${e.v[0]} * ${e.fn('sigmoid')}(${e.p('alpha')} * ${e.v[0]})`,
  },
  FastGelu: { kinds: FLOAT, arity: [1, 2], variant: hasBias, expr: (e, variant) => geluTanh(e, biased(e, variant)) },
  BiasGelu: { kinds: FLOAT, arity: [2, 2], variant: () => 'bias', expr: (e) => geluExact(e, biased(e, 'bias')) },
  BiasAdd: { kinds: FLOAT, arity: [3, 3], expr: ({ v }) => `${v[0]} + ${v[1]} + ${v[2]}` },
};

function floatOnly(op: string, ts: (GpuTensorInfo | undefined)[]): void {
  for (const t of ts) if (t && kindOf(t.dtype) !== 'f') throw new GpuUnsupported(`${op} on ${t.dtype} has no WebGPU kernel`);
}

function ewKernel(op: string, def: EwOp): GpuKernel {
  const name = msOp(op);
  return {
    plan(node, inputs, [y]) {
      const present = inputs.map((t, i) => ({ t, i })).filter((x): x is { t: GpuTensorInfo; i: number } => !!x.t);
      floatOnly(name, present.map((x) => x.t));
      if (sizeOfShape(y!.shape) === 0) return { calls: [] };
      const params: Record<string, number> = {};
      for (const [k, f] of Object.entries(def.params ?? {})) params[k] = f(node);
      const program = elementwiseProgram(name, def, def.variant?.(node) ?? '', present.map((x) => x.t), y!, params);
      return { calls: [{ program, tensors: [...present.map((x) => ({ input: x.i })), { output: 0 }] }] };
    },
  };
}

const WG = 64;

/** BiasSplitGelu: y[row, i] = (x[row, i] + bias[i]) * Gelu(x[row, half + i] + bias[half + i]), in f32. */
function biasSplitGeluProgram(x: GpuTensorInfo, bias: GpuTensorInfo, y: GpuTensorInfo): ProgramSpec {
  const size = sizeOfShape(y.shape);
  const half = y.shape[2]!;
  return {
    key: 'ms-bias-split-gelu',
    bindings: [{ name: 'x', type: x.storage }, { name: 'bias', type: bias.storage }, { name: 'y', type: y.storage }],
    uniforms: [{ name: 'size', type: 'u32' }, { name: 'half', type: 'u32' }],
    workgroupSize: [WG, 1, 1],
    source(b) {
      const erfc = mathHelper(b, 'erfc', 'f32');
      const f = (name: string, i: string) => b.loadAs(name, i, 'f32');
      b.main(`${b.linearIndex('u.size')}
  let i = index % u.half;
  let at = (index / u.half) * 2u * u.half + i;
  let left = ${f('x', 'at')} + ${f('bias', 'i')};
  let right = ${f('x', 'at + u.half')} + ${f('bias', 'i + u.half')};
  ${b.store('y', 'index', convert(computeTypeOf(y.storage), 'f32', `left * 0.5 * right * ${erfc}(right * ${-Math.SQRT1_2})`))}`);
    },
    run() {
      return { workgroups: dispatchLinear(size, WG), uniforms: { size, half } };
    },
  };
}

const biasSplitGelu: GpuKernel = {
  plan(_node, [x, bias], [y]) {
    floatOnly(msOp('BiasSplitGelu'), [x, bias]);
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    return { calls: [{ program: biasSplitGeluProgram(x!, bias!, y!), tensors: [{ input: 0 }, { input: 1 }, { output: 0 }] }] };
  },
};

interface RotarySpec {
  x: GpuTensorInfo;
  pos: GpuTensorInfo;
  cos: GpuTensorInfo;
  sin: GpuTensorInfo;
  y: GpuTensorInfo;
  /** [B, S, N*H] (true) or [B, N, S, H]. */
  bsnh: boolean;
  /** position_ids is one start offset (position = p + s) rather than [B, S]. */
  offset: boolean;
  interleaved: boolean;
  values: Record<string, number>;
}

/**
 * RotaryEmbedding, one invocation per output element: its (b, s, n, h) from the flat index by layout, the pair
 * partner j of h, and row p of the caches. A position outside the caches writes NaN (the CPU backend throws; a
 * shader cannot).
 */
function rotaryProgram(s: RotarySpec): ProgramSpec {
  const size = sizeOfShape(s.y.shape);
  return {
    key: `ms-rotary:${s.bsnh ? 'bsnh' : 'bnsh'}:${s.offset ? 'offset' : 'ids'}:${s.interleaved ? 'interleaved' : 'half'}`,
    bindings: [
      { name: 'x', type: s.x.storage }, { name: 'pos', type: s.pos.storage }, { name: 'cos_cache', type: s.cos.storage },
      { name: 'sin_cache', type: s.sin.storage }, { name: 'y', type: s.y.storage },
    ],
    uniforms: ['size', 'heads', 'head_size', 'seq', 'rotary_dim', 'max_pos'].map((name) => ({ name, type: 'u32' as const })),
    workgroupSize: [WG, 1, 1],
    source(b) {
      b.helper(`fn f32_nan() -> f32 {
  var bits = 0x7fc00000u; // a var, so the bitcast is not a constant expression
  return bitcast<f32>(bits);
}`);
      const f = (name: string, i: string) => b.loadAs(name, i, 'f32');
      const [sIdx, bIdx] = s.bsnh
        ? ['(t / u.heads) % u.seq', 't / (u.heads * u.seq)']
        : ['t % u.seq', 't / (u.seq * u.heads)'];
      const half = 'u.rotary_dim / 2u';
      const c = s.interleaved ? 'h / 2u' : `h % (${half})`;
      const first = s.interleaved ? 'h % 2u == 0u' : `h < ${half}`;
      const partner = s.interleaved ? 'select(h - 1u, h + 1u, first)' : `select(h - ${half}, h + ${half}, first)`;
      const p = s.offset ? `${b.load('pos', '0u')} + i32(s)` : `${b.load('pos', 'bi * u.seq + s')}`;
      const T = computeTypeOf(s.y.storage);
      b.main(`${b.linearIndex('u.size')}
  let h = index % u.head_size;
  let t = index / u.head_size;
  if (h >= u.rotary_dim) {
    ${b.store('y', 'index', convert(T, computeTypeOf(s.x.storage), b.load('x', 'index')))}
    return;
  }
  let s = ${sIdx};
  let bi = ${bIdx};
  let p = i32(${p});
  let first = ${first};
  let j = index - h + ${partner};
  var value = f32_nan();
  if (p >= 0 && p < i32(u.max_pos)) {
    let k = u32(p) * (${half}) + ${c};
    value = ${f('x', 'index')} * ${f('cos_cache', 'k')} + select(1.0, -1.0, first) * ${f('x', 'j')} * ${f('sin_cache', 'k')};
  }
  ${b.store('y', 'index', convert(T, 'f32', 'value'))}`);
    },
    run() {
      return { workgroups: dispatchLinear(size, WG), uniforms: { size, ...s.values } };
    },
  };
}

const rotary: GpuKernel = {
  plan(node, [x, pos, cos, sin], [y]) {
    floatOnly(msOp('RotaryEmbedding'), [x, cos, sin]);
    const g = rotaryGeometry(node.op, x!.shape, cos!.shape, attrInt(node, 'num_heads', 0), attrInt(node, 'rotary_embedding_dim', 0))!;
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    const bsnh = x!.shape.length === 3;
    const spec: RotarySpec = {
      x: x!, pos: pos!, cos: cos!, sin: sin!, y: y!,
      bsnh,
      offset: pos!.shape.length < 2,
      interleaved: attrInt(node, 'interleaved', 0) !== 0,
      values: { heads: g.heads, head_size: g.headSize, seq: bsnh ? x!.shape[1]! : x!.shape[2]!, rotary_dim: g.rotaryDim, max_pos: cos!.shape[0]! },
    };
    return { calls: [{ program: rotaryProgram(spec), tensors: [{ input: 0 }, { input: 1 }, { input: 2 }, { input: 3 }, { output: 0 }] }] };
  },
};

export const kernels: Record<string, GpuKernel> = {
  ...Object.fromEntries(Object.entries(EW).map(([op, def]) => [msOp(op), ewKernel(op, def)])),
  [msOp('BiasSplitGelu')]: biasSplitGelu,
  [msOp('RotaryEmbedding')]: rotary,
  ...normKernels,
};
