import { GpuUnsupported, type GpuTensorInfo, type Uniforms } from '../program.js';
import type { Node } from '../../../ir/graph.js';
import type { ComputeType } from '../storage.js';
import type { ShaderBuilder, UniformDecl } from '../wgsl/builder.js';
import { unaryExpr } from './elementwise.js';
import { EW_OPS } from './elementwise-ops.js';
import { mathHelper } from '../wgsl/math.js';

/**
 * The fused-activation hook of the matrix kernels (MatMul, Gemm, Conv): an activation from the elementwise table
 * applied to the accumulated value before the store, so `Conv -> Relu` is one dispatch and its intermediate never
 * exists. A fusion pass marks the producer with attributes:
 *   activation = '<unary op>' (Relu, LeakyRelu, Sigmoid, Tanh, HardSwish, Gelu, Clip...),
 *   activation_<attr> = that op's attribute (activation_alpha, activation_approximate...),
 *   for Clip: activation_min / activation_max (floats; the Clip-13 min/max inputs folded to attributes),
 *   QuickGelu (x * sigmoid(activation_alpha * x): com.microsoft QuickGelu, and SiLU with alpha 1).
 * The op (and its variant, e.g. Gelu's approximate) is part of the cache key; attribute numbers are uniforms.
 */
export interface Activation {
  op: string;
  variant: string;
  params: Readonly<Record<string, number>>;
}

/** The activation a node asks for through its `activation` attribute, if any. */
export function activationFromNode(node: Node): Activation | undefined {
  const a = node.attrs.activation;
  if (!a) return undefined;
  if (a.type !== 'string') throw new GpuUnsupported(`${node.op} attribute 'activation' must be a string`);
  const op = a.value;
  // The activation's own attributes, with the prefix removed, as if on a node of that op.
  const attrs: Node['attrs'] = {};
  for (const [k, v] of Object.entries(node.attrs)) if (k.startsWith('activation_')) attrs[k.slice('activation_'.length)] = v;
  const pseudo: Node = { name: `${node.name}/activation`, op, domain: '', inputs: ['x'], outputs: ['y'], attrs };
  if (op === 'Clip') {
    const num = (k: string, d: number) => {
      const v = attrs[k];
      return v && (v.type === 'float' || v.type === 'int') ? v.value : d;
    };
    return { op, variant: '', params: { min: num('min', -Infinity), max: num('max', Infinity) } };
  }
  // x * sigmoid(alpha x): com.microsoft QuickGelu, and SiLU as alpha = 1 (fusion-gelu.ts).
  if (op === 'QuickGelu') {
    const alpha = attrs.alpha;
    return { op, variant: '', params: { alpha: alpha && (alpha.type === 'float' || alpha.type === 'int') ? alpha.value : 1.702 } };
  }
  const def = EW_OPS[op];
  if (!def || def.arity[0] !== 1 || def.boolOut || !def.kinds.includes('f')) {
    throw new GpuUnsupported(`${node.op} cannot fuse activation '${op}' (not a float unary op of the elementwise table)`);
  }
  const params: Record<string, number> = {};
  for (const [k, f] of Object.entries(def.params ?? {})) params[k] = f(pseudo);
  return { op, variant: def.variant?.(pseudo) ?? '', params };
}

/**
 * The fused residual of a matrix kernel: fusion.ts turns `Y = Add(producer(...), R)` into the producer with
 * attribute residual=1 and R as input RESIDUAL_INPUT (earlier optional inputs padded with ''). R has Y's exact shape.
 */
export const RESIDUAL_INPUT = 3;

export function residualFromNode(node: Node, inputs: readonly (GpuTensorInfo | undefined)[], y: GpuTensorInfo): GpuTensorInfo | undefined {
  const a = node.attrs.residual;
  if (!a) return undefined;
  const r = inputs[RESIDUAL_INPUT];
  if (a.type !== 'int' || !r) throw new GpuUnsupported(`${node.op} attribute 'residual' needs input ${RESIDUAL_INPUT}`);
  if (r.shape.length !== y.shape.length || r.shape.some((d, i) => d !== y.shape[i])) {
    throw new GpuUnsupported(`${node.op} residual of shape [${r.shape.join(', ')}] does not match the output [${y.shape.join(', ')}]`);
  }
  return r;
}

/** Cache-key part: the op and variant (never the numbers). */
export function activationKey(act: Activation | undefined): string {
  return act ? `act=${act.op}${act.variant ? `:${act.variant}` : ''}` : 'act=none';
}

export function activationUniforms(act: Activation | undefined): UniformDecl[] {
  return Object.keys(act?.params ?? {}).map((p) => ({ name: `act_${p}`, type: 'f32' as const }));
}

export function activationValues(act: Activation | undefined): Uniforms {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(act?.params ?? {})) out[`act_${k}`] = v;
  return out;
}

/** WGSL expression applying `act` to `v` (of scalar type `t`); `v` itself when there is no activation. */
export function activationExpr(b: ShaderBuilder, act: Activation | undefined, v: string, t: ComputeType): string {
  if (!act) return v;
  // Fused Clip keeps NaN as the standalone one does (wgsl/math.ts clip_nan).
  if (act.op === 'Clip') return `${mathHelper(b, 'clip_nan', t)}(${v}, ${t}(u.act_min), ${t}(u.act_max))`;
  if (act.op === 'QuickGelu') return `${v} * ${mathHelper(b, 'sigmoid', t)}(${t}(u.act_alpha) * ${v})`;
  return unaryExpr(b, act.op, act.variant, v, t, (p) => `u.act_${p}`);
}
