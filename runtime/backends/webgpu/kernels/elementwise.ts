import { InternalError } from '../../../errors.js';
import type { DType } from '../../../ir/dtype.js';
import type { Node } from '../../../ir/graph.js';
import { broadcastMany } from '../../../ir/shape.js';
import {
  dispatchLinear, GpuUnsupported, sizeOfShape,
  type GpuKernel, type GpuTensorInfo, type KernelEnv, type KernelPlan, type ProgramCall, type ProgramSpec, type TensorSlot,
} from '../program.js';
import { computeTypeOf, storageFor, type ComputeType } from '../storage.js';
import type { BindingDecl, ShaderBuilder, UniformDecl } from '../wgsl/builder.js';
import { mathHelper } from '../wgsl/math.js';
import { planBroadcast } from './broadcast.js';
import { EW_OPS, type EwOp, type ExprCtx, type Kind } from './elementwise-ops.js';

/**
 * Every elementwise op through one program: N operands broadcast to the output, one WGSL expression from the
 * table (elementwise-ops.ts). Broadcasting is planned on the host (broadcast.ts); the shader sees only the collapsed
 * rank. When the collapsed last dim is a multiple of 4, each invocation handles a vec4: operands spanning that dim
 * load vec4s, operands broadcast over it load one scalar and splat it.
 */

const WORKGROUP = 64;
const NAMES = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];

export function kindOf(d: DType): Kind {
  if (d === 'bool') return 'b';
  if (d === 'float32' || d === 'float16') return 'f';
  return d.startsWith('uint') ? 'u' : 'i';
}

export interface EwOperand {
  info: GpuTensorInfo;
  slot: TensorSlot;
}

/** One elementwise dispatch: `operands` (broadcast) -> `out`. */
export function elementwiseProgram(
  op: string,
  def: EwOp,
  variant: string,
  operands: readonly GpuTensorInfo[],
  out: GpuTensorInfo,
  params: Readonly<Record<string, number>>,
): ProgramSpec {
  const bc = planBroadcast(out.shape, operands.map((o) => o.shape));
  const rank = bc.shape.length;
  const valueIdx = def.condFirst ? 1 : 0;
  const S = computeTypeOf(operands[valueIdx]!.storage);
  const last = bc.shape[rank - 1]!;
  const vec = last % 4 === 0 && !def.scalarOnly?.(S);
  const flat = rank === 1 && bc.fullLast.every(Boolean);
  const modes = bc.fullLast.map((f) => (vec && f ? 'v' : 's')).join('');
  const names = operands.map((_, i) => NAMES[i]!);
  const bindings: BindingDecl[] = [
    ...operands.map((o, i) => ({ name: names[i]!, type: o.storage, vec: (vec && bc.fullLast[i] ? 4 : 1) as 1 | 4 })),
    { name: 'y', type: out.storage, vec: vec ? 4 : 1 },
  ];
  const paramNames = Object.keys(params);
  const uniforms: UniformDecl[] = [
    { name: 'size', type: 'u32' },
    ...(flat ? [] : [{ name: 'out_shape', type: 'u32' as const, length: rank }, ...names.map((n) => ({ name: `${n}_strides`, type: 'u32' as const, length: rank }))]),
    ...paramNames.map((p) => ({ name: p, type: 'f32' as const })),
  ];
  const invocations = vec ? sizeOfShape(out.shape) / 4 : sizeOfShape(out.shape);
  return {
    key: `ew:${op}${variant ? `:${variant}` : ''}:r${rank}${flat ? ':flat' : ''}:${modes}`,
    bindings,
    uniforms,
    workgroupSize: [WORKGROUP, 1, 1],
    source(b) {
      const T = vec ? `vec4<${S}>` : S;
      const OT = b.valueType('y');
      const lines = [b.linearIndex('u.size')];
      if (!flat) lines.push(`let coords = ${b.coordsFn('out_coords', 'out_shape', rank)}(index${vec ? ' * 4u' : ''});`);
      names.forEach((n, i) => {
        const full = bc.fullLast[i]!;
        const off = flat ? 'index' : b.offset('coords', `${n}_strides`, rank);
        let value: string;
        if (vec && full) value = b.load(n, flat ? off : `(${off}) / 4u`);
        else if (vec) value = `vec4<${b.scalarType(n)}>(${b.load(n, off)})`;
        else value = b.load(n, off);
        lines.push(`let ${n}_value = ${value};`);
      });
      const ctx: ExprCtx = {
        v: names.map((n) => `${n}_value`) as ExprCtx["v"],
        T,
        S,
        OT,
        vec,
        c: (x) => `${T}(${typeof x === 'number' ? literal(x) : x})`,
        p: (name) => `${T}(u.${name})`,
        fn: (name) => mathHelper(b, name, T),
        bool: (cond) => `select(${OT}(0u), ${OT}(1u), ${cond})`,
        as: (i) => (b.valueType(names[i]!) === T ? `${names[i]}_value` : `${T}(${names[i]}_value)`),
      };
      lines.push(b.store('y', 'index', def.expr(ctx, variant)));
      b.main(lines.join('\n  '));
    },
    run() {
      const uniformValues: Record<string, number | number[]> = { size: invocations, ...params };
      if (!flat) {
        uniformValues.out_shape = bc.shape;
        names.forEach((n, i) => (uniformValues[`${n}_strides`] = bc.strides[i]!));
      }
      return { workgroups: dispatchLinear(invocations, WORKGROUP), uniforms: uniformValues };
    },
  };
}

/**
 * The WGSL expression of a unary table op applied to `x` of type T (used by the matmul/conv epilogues to fuse an
 * activation). `param(name)` names where the op's attribute values live (uniform fields of the caller's program).
 */
export function unaryExpr(b: ShaderBuilder, op: string, variant: string, x: string, S: ComputeType, param: (name: string) => string): string {
  const def = EW_OPS[op];
  if (!def || def.arity[0] !== 1 || def.boolOut) throw new InternalError(`'${op}' is not a unary elementwise op`);
  const T = S;
  const ctx: ExprCtx = {
    v: [x, '', ''],
    T,
    S,
    OT: T,
    vec: false,
    c: (v) => `${T}(${typeof v === 'number' ? literal(v) : v})`,
    p: (name) => `${T}(${param(name)})`,
    fn: (name) => mathHelper(b, name, T),
    bool: (cond) => `select(${T}(0), ${T}(1), ${cond})`,
    as: () => x,
  };
  return def.expr(ctx, variant);
}

export function literal(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toPrecision(17).replace(/0+(e|$)/, '$1');
}

function checkKinds(op: string, def: EwOp, operands: readonly GpuTensorInfo[]): void {
  const values = def.condFirst ? operands.slice(1) : operands;
  for (const [i, o] of values.entries()) {
    const k = kindOf(o.dtype);
    if (!def.kinds.includes(k) && !(def.mixed && i > 0 && k !== 'b')) {
      throw new GpuUnsupported(`${op} on ${o.dtype} has no WebGPU kernel`);
    }
  }
}

/** The GPU kernel of one table entry; variadic ops beyond 7 operands are chained through scratch tensors. */
function elementwiseKernel(op: string, def: EwOp): GpuKernel {
  return {
    plan(node: Node, inputs, outputs, env: KernelEnv): KernelPlan {
      const present = inputs.map((t, i) => ({ t, i })).filter((x): x is { t: GpuTensorInfo; i: number } => !!x.t);
      checkKinds(op, def, present.map((x) => x.t));
      const variant = def.variant?.(node) ?? '';
      const params: Record<string, number> = {};
      for (const [k, f] of Object.entries(def.params ?? {})) params[k] = f(node);
      const out = outputs[0]!;
      const max = def.arity[1];
      if (present.length <= max) {
        const call: ProgramCall = {
          program: elementwiseProgram(op, def, variant, present.map((x) => x.t), out, params),
          tensors: [...present.map((x) => ({ input: x.i })), { output: 0 }],
        };
        return { calls: [call] };
      }
      // Chain: the running result (a scratch tensor) is operand 0 of every later step; Mean divides only at the end.
      const sumDef = op === 'Mean' ? EW_OPS.Sum! : def;
      const calls: ProgramCall[] = [];
      const scratch: GpuTensorInfo[] = [];
      let acc: { t: GpuTensorInfo; slot: TensorSlot } | undefined;
      let next = 0;
      while (next < present.length) {
        const take = present.slice(next, next + (acc ? max - 1 : max));
        next += take.length;
        const operands = [...(acc ? [acc] : []), ...take.map((x) => ({ t: x.t, slot: { input: x.i } as TensorSlot }))];
        const lastStep = next >= present.length;
        let target: { t: GpuTensorInfo; slot: TensorSlot };
        if (lastStep) target = { t: out, slot: { output: 0 } };
        else {
          const shape = broadcastMany(operands.map((o) => o.t.shape)) as number[];
          const t: GpuTensorInfo = { dtype: out.dtype, shape, storage: storageFor(out.dtype, env.f16, false) };
          scratch.push(t);
          target = { t, slot: { scratch: scratch.length - 1 } };
        }
        const stepDef = lastStep ? def : sumDef;
        const stepOp = lastStep ? op : op === 'Mean' ? 'Sum' : op;
        const stepParams = lastStep || op !== 'Mean' ? params : {};
        calls.push({
          program: elementwiseProgram(stepOp, stepDef, variant, operands.map((o) => o.t), target.t, stepParams),
          tensors: [...operands.map((o) => o.slot), target.slot],
        });
        acc = target;
      }
      return { calls, scratch };
    },
  };
}

export const kernels: Record<string, GpuKernel> = Object.fromEntries(Object.entries(EW_OPS).map(([op, def]) => [op, elementwiseKernel(op, def)]));
