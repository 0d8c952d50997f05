import { ShapeError } from '../../errors.js';
import { attrInt, type Dim } from '../graph.js';
import { broadcastShapes } from '../shape.js';
import { checkUnidirectional } from './elementwise.js';
import { checkDType, checkSameDType, dimsConflict, requireInput, requireRank } from './math-types.js';
import { defineOps, type InferContext, type OpSchema } from './schema.js';

/** Matrix products: MatMul (numpy.matmul semantics, ONNX MatMul-13) and Gemm-13. */

/** The parts of a MatMul: batch dims (broadcast), M, K, N, and which operands were 1-D (their dim is dropped). */
export interface MatMulGeometry<D extends Dim = Dim> {
  batch: D[];
  m: D;
  k: D;
  n: D;
  aVector: boolean;
  bVector: boolean;
  out: D[];
}

export function matmulGeometry(ctx: InferContext, a: readonly Dim[], b: readonly Dim[]): MatMulGeometry {
  requireRank(ctx, a, 'A', 1);
  requireRank(ctx, b, 'B', 1);
  // numpy.matmul: a 1-D A is a row vector [1, K], a 1-D B a column vector [K, 1]; the added dim is removed after.
  const aVector = a.length === 1;
  const bVector = b.length === 1;
  const a2 = aVector ? [1, a[0]!] : a;
  const b2 = bVector ? [b[0]!, 1] : b;
  const m = a2[a2.length - 2]!;
  const k = a2[a2.length - 1]!;
  const kb = b2[b2.length - 2]!;
  const n = b2[b2.length - 1]!;
  if (dimsConflict(k, kb)) {
    throw new ShapeError(`MatMul inner dimensions differ: A is [${a.join(', ')}] (K=${k}) and B is [${b.join(', ')}] (K=${kb}).`, { a: [...a], b: [...b] });
  }
  const batch = broadcastShapes(a2.slice(0, -2), b2.slice(0, -2), 'MatMul batch dimensions');
  const out = [...batch, ...(aVector ? [] : [m]), ...(bVector ? [] : [n])];
  return { batch, m, k: typeof k === 'number' ? k : kb, n, aVector, bVector, out };
}

const matmul: OpSchema = {
  op: 'MatMul',
  inputs: [2, 2],
  outputs: [1, 1],
  infer(ctx) {
    const a = requireInput(ctx, 0, 'A');
    const b = requireInput(ctx, 1, 'B');
    checkDType(ctx, 'A', a.dtype, 'numeric');
    checkSameDType(ctx, a.dtype, b.dtype, 'A and B');
    if (!a.shape || !b.shape) return [{ dtype: a.dtype }];
    return [{ dtype: a.dtype, shape: matmulGeometry(ctx, a.shape, b.shape).out }];
  },
};

/** Gemm-13: Y = alpha * A' B' + beta * C, A' = transA ? A^T : A ([M, K]), B' likewise ([K, N]), C broadcast to [M, N]. */
export function gemmDims(ctx: InferContext, a: readonly Dim[], b: readonly Dim[]): { m: Dim; k: Dim; n: Dim } {
  requireRank(ctx, a, 'A', 2, 2);
  requireRank(ctx, b, 'B', 2, 2);
  const transA = attrInt(ctx.node, 'transA', 0) !== 0;
  const transB = attrInt(ctx.node, 'transB', 0) !== 0;
  const [m, k] = transA ? [a[1]!, a[0]!] : [a[0]!, a[1]!];
  const [kb, n] = transB ? [b[1]!, b[0]!] : [b[0]!, b[1]!];
  if (dimsConflict(k, kb)) {
    throw new ShapeError(
      `Gemm inner dimensions differ: A${transA ? '^T' : ''} has K=${k} (A is [${a.join(', ')}]), B${transB ? '^T' : ''} has K=${kb} (B is [${b.join(', ')}]).`,
    );
  }
  return { m, k: typeof k === 'number' ? k : kb, n };
}

const gemm: OpSchema = {
  op: 'Gemm',
  inputs: [2, 3],
  outputs: [1, 1],
  infer(ctx) {
    const a = requireInput(ctx, 0, 'A');
    const b = requireInput(ctx, 1, 'B');
    const c = ctx.inputs[2];
    checkDType(ctx, 'A', a.dtype, 'numeric');
    checkSameDType(ctx, a.dtype, b.dtype, 'A and B');
    if (c) checkSameDType(ctx, a.dtype, c.dtype, 'A and C');
    if (!a.shape || !b.shape) return [{ dtype: a.dtype }];
    const { m, n } = gemmDims(ctx, a.shape, b.shape);
    checkUnidirectional(ctx, c?.shape, [m, n], 'C');
    return [{ dtype: a.dtype, shape: [m, n] }];
  },
};

export const schemas = defineOps(matmul, gemm);
