import { InvalidArgumentError, ShapeError } from '../../errors.js';
import { isFloat, type DType } from '../dtype.js';
import { attrInt, attrString, type Dim } from '../graph.js';
import { broadcastMany, broadcastShapes } from '../shape.js';
import { checkDType, checkSameDType, dimsConflict, requireInput, type TypeClass } from './math-types.js';
import { defineOps, type InferContext, type InferredOutput, type OpSchema } from './schema.js';

/**
 * Elementwise ops: unary, binary with multidirectional broadcasting ("Broadcasting in ONNX", docs/Broadcasting.md),
 * variadic Sum/Mean/Min/Max, Where and Clip. The two tables below are the IR half of "one table per kind":
 * the CPU half (the arithmetic) lives in runtime/backends/cpu/elementwise-unary.ts and elementwise-binary.ts and is
 * checked to have exactly the same keys.
 */

export interface UnaryInfo {
  /** Allowed input element types (the op's `T` constraint). */
  types: TypeClass;
  /** Output element type when it is not the input's. */
  out?: DType;
}

/** Unary ops by name: their type constraint. Semantics: the newest ONNX opset of each op. */
export const UNARY_OPS: Readonly<Record<string, UnaryInfo>> = {
  Relu: { types: 'signed' }, LeakyRelu: { types: 'float' }, Elu: { types: 'float' }, Selu: { types: 'float' },
  Celu: { types: 'float' }, ThresholdedRelu: { types: 'float' }, Shrink: { types: 'numeric' },
  Sigmoid: { types: 'float' }, HardSigmoid: { types: 'float' }, HardSwish: { types: 'float' },
  Tanh: { types: 'float' }, Softplus: { types: 'float' }, Softsign: { types: 'float' }, Mish: { types: 'float' },
  Gelu: { types: 'float' }, Erf: { types: 'numeric' },
  Exp: { types: 'float' }, Log: { types: 'float' }, Sqrt: { types: 'float' }, Reciprocal: { types: 'float' },
  Neg: { types: 'signed' }, Abs: { types: 'numeric' }, Sign: { types: 'numeric' },
  Floor: { types: 'float' }, Ceil: { types: 'float' }, Round: { types: 'float' },
  Sin: { types: 'float' }, Cos: { types: 'float' }, Tan: { types: 'float' },
  Asin: { types: 'float' }, Acos: { types: 'float' }, Atan: { types: 'float' },
  Sinh: { types: 'float' }, Cosh: { types: 'float' },
  Asinh: { types: 'float' }, Acosh: { types: 'float' }, Atanh: { types: 'float' },
  Not: { types: 'bool' },
  IsNaN: { types: 'float', out: 'bool' }, IsInf: { types: 'float', out: 'bool' },
};

export interface BinaryInfo {
  /** Allowed type of the first operand (and of the second, unless `rhs` says otherwise). */
  types: TypeClass;
  /** The second operand's own constraint (Pow's exponent); when absent both operands share one type. */
  rhs?: TypeClass;
  /** Output element type when it is not the first operand's. */
  out?: DType;
  /** Unidirectional broadcasting: the second operand broadcasts to the first, the output has the first's shape. */
  unidirectional?: boolean;
}

/** Binary ops by name. */
export const BINARY_OPS: Readonly<Record<string, BinaryInfo>> = {
  Add: { types: 'numeric' }, Sub: { types: 'numeric' }, Mul: { types: 'numeric' }, Div: { types: 'numeric' },
  Mod: { types: 'numeric' },
  BitShift: { types: 'unsigned' },
  Pow: { types: 'numeric', rhs: 'numeric' },
  PRelu: { types: 'numeric', unidirectional: true },
  Equal: { types: 'numericOrBool', out: 'bool' },
  Less: { types: 'numeric', out: 'bool' }, Greater: { types: 'numeric', out: 'bool' },
  LessOrEqual: { types: 'numeric', out: 'bool' }, GreaterOrEqual: { types: 'numeric', out: 'bool' },
  And: { types: 'bool', out: 'bool' }, Or: { types: 'bool', out: 'bool' }, Xor: { types: 'bool', out: 'bool' },
};

/** Broadcast shape of several operands; unknown rank anywhere gives an unknown output rank. */
export function broadcastOptional(shapes: (Dim[] | undefined)[], what: string): Dim[] | undefined {
  if (shapes.some((s) => !s)) return undefined;
  return broadcastMany(shapes as Dim[][], what);
}

/** Checks that `from` broadcasts to `to` without changing it (ONNX unidirectional broadcasting). */
export function checkUnidirectional(ctx: InferContext, from: readonly Dim[] | undefined, to: readonly Dim[] | undefined, what: string): void {
  if (!from || !to) return;
  const ok = from.length <= to.length && from.every((d, i) => {
    const t = to[to.length - from.length + i]!;
    return d === 1 || !dimsConflict(d, t);
  });
  if (!ok) {
    throw new ShapeError(
      `${ctx.node.op} ${what} of shape [${from.join(', ')}] must broadcast to [${to.join(', ')}] (unidirectional broadcasting).`,
      { from: [...from], to: [...to] },
    );
  }
}

function unarySchema(op: string, info: UnaryInfo): OpSchema {
  return {
    op,
    inputs: [1, 1],
    outputs: [1, 1],
    infer(ctx) {
      const x = requireInput(ctx, 0, 'X');
      checkDType(ctx, 'input', x.dtype, info.types);
      return [{ dtype: info.out ?? x.dtype, shape: x.shape && [...x.shape] }];
    },
  };
}

function binarySchema(op: string, info: BinaryInfo): OpSchema {
  return {
    op,
    inputs: [2, 2],
    outputs: [1, 1],
    infer(ctx) {
      const a = requireInput(ctx, 0, 'A');
      const b = requireInput(ctx, 1, 'B');
      checkDType(ctx, 'first input', a.dtype, info.types);
      if (info.rhs) checkDType(ctx, 'second input', b.dtype, info.rhs);
      else checkSameDType(ctx, a.dtype, b.dtype, 'both inputs');
      if (op === 'BitShift' && !['LEFT', 'RIGHT'].includes(attrString(ctx.node, 'direction', ''))) {
        throw new InvalidArgumentError(`BitShift direction must be LEFT or RIGHT, got '${attrString(ctx.node, 'direction', '')}'.`);
      }
      if (op === 'Mod' && attrInt(ctx.node, 'fmod', 0) !== 1 && isFloat(a.dtype)) {
        throw new InvalidArgumentError('Mod on floating-point inputs needs fmod=1 (ONNX Mod-13 defines fmod=0 for integers only).');
      }
      let shape: Dim[] | undefined;
      if (info.unidirectional) {
        checkUnidirectional(ctx, b.shape, a.shape, 'slope');
        shape = a.shape && [...a.shape];
      } else {
        shape = a.shape && b.shape ? broadcastShapes(a.shape, b.shape, `${op} inputs`) : undefined;
      }
      return [{ dtype: info.out ?? a.dtype, shape }];
    },
  };
}

/** Sum/Mean (float only in ONNX-13) and Min/Max (any numeric): 1..N inputs, broadcast together. */
function variadicSchema(op: string, types: TypeClass): OpSchema {
  return {
    op,
    inputs: [1, Infinity],
    outputs: [1, 1],
    infer(ctx) {
      if (ctx.inputs.length < 1) throw new InvalidArgumentError(`${op} needs at least one input.`);
      const xs = ctx.inputs.map((_, i) => requireInput(ctx, i, `data_${i}`));
      checkDType(ctx, 'input', xs[0]!.dtype, types);
      for (const x of xs) checkSameDType(ctx, xs[0]!.dtype, x.dtype, 'all inputs');
      return [{ dtype: xs[0]!.dtype, shape: broadcastOptional(xs.map((x) => x.shape), `${op} inputs`) }];
    },
  };
}

/** Where(condition, X, Y), ONNX-16: three-way broadcasting; X and Y of any one type. */
const where: OpSchema = {
  op: 'Where',
  inputs: [3, 3],
  outputs: [1, 1],
  infer(ctx) {
    const c = requireInput(ctx, 0, 'condition');
    const x = requireInput(ctx, 1, 'X');
    const y = requireInput(ctx, 2, 'Y');
    checkDType(ctx, 'condition', c.dtype, 'bool');
    checkSameDType(ctx, x.dtype, y.dtype, 'X and Y');
    return [{ dtype: x.dtype, shape: broadcastOptional([c.shape, x.shape, y.shape], 'Where inputs') }];
  },
};

/** Clip(input, min?, max?), ONNX-13: min and max are optional scalars of the input's type. */
const clip: OpSchema = {
  op: 'Clip',
  inputs: [1, 3],
  outputs: [1, 1],
  infer(ctx): InferredOutput[] {
    const x = requireInput(ctx, 0, 'input');
    checkDType(ctx, 'input', x.dtype, 'numeric');
    for (const i of [1, 2]) {
      const b = ctx.inputs[i];
      if (!b) continue;
      checkSameDType(ctx, x.dtype, b.dtype, i === 1 ? 'input and min' : 'input and max');
      // A scalar; a one-element 1-D tensor is accepted too, as onnxruntime does.
      const scalarLike = !b.shape || b.shape.length === 0 || (b.shape.length === 1 && !dimsConflict(b.shape[0]!, 1));
      if (!scalarLike) throw new ShapeError(`Clip ${i === 1 ? 'min' : 'max'} must be a scalar, got shape [${b.shape!.join(', ')}].`);
    }
    return [{ dtype: x.dtype, shape: x.shape && [...x.shape] }];
  },
};

export const schemas = defineOps(
  ...Object.entries(UNARY_OPS).map(([op, info]) => unarySchema(op, info)),
  ...Object.entries(BINARY_OPS).map(([op, info]) => binarySchema(op, info)),
  variadicSchema('Sum', 'float'),
  variadicSchema('Mean', 'float'),
  variadicSchema('Min', 'numeric'),
  variadicSchema('Max', 'numeric'),
  where,
  clip,
);
