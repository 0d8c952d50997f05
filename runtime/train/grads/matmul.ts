import { attrFloat, attrInt, type Dim } from '../../ir/graph.js';
import { A, type GradRule } from './rule.js';

/**
 * MatMul (numpy matmul semantics, MatMul-13) and Gemm-13.
 * MatMul: Y = A B over the last two axes with broadcast batch axes, so dA = dY B^T and dB = A^T dY, each summed
 * over the batch axes its operand was broadcast along. 1-D operands are promoted as numpy does (A [K] -> [1, K],
 * B [K] -> [K, 1]) and the promoted axis is removed from the gradient again.
 */

const swapLast = (rank: number) => A.ints(Array.from({ length: rank }, (_, i) => (i < rank - 2 ? i : i === rank - 2 ? rank - 1 : rank - 2)));

const matmul: GradRule = {
  differentiable: [0, 1],
  saves: { inputs: [0, 1] },
  backward(ctx) {
    const dy = ctx.dy()!;
    const aS = ctx.inputShape(0);
    const bS = ctx.inputShape(1);
    const yS = ctx.outputShape(0);
    const a1 = aS.length === 1;
    const b1 = bS.length === 1;
    // dY with the promoted unit axes put back: [..., M, N].
    let dyP = dy;
    let dyS: Dim[] = yS;
    if (a1 && b1) {
      dyP = ctx.emit('Reshape', [dy, ctx.ints([1, 1])])[0]!;
      dyS = [1, 1];
    } else if (a1) {
      dyP = ctx.emit('Unsqueeze', [dy, ctx.ints([-2])])[0]!;
      dyS = [...yS.slice(0, -1), 1, yS[yS.length - 1]!];
    } else if (b1) {
      dyP = ctx.emit('Unsqueeze', [dy, ctx.ints([-1])])[0]!;
      dyS = [...yS, 1];
    }
    const batch = dyS.slice(0, -2);
    const [M, N] = [dyS[dyS.length - 2]!, dyS[dyS.length - 1]!];
    const K = aS[aS.length - 1]!;
    const grads: (string | undefined)[] = [undefined, undefined];
    if (ctx.wants(0)) {
      const b = ctx.input(1);
      const bT = b1 ? ctx.emit('Unsqueeze', [b, ctx.ints([0])])[0]! : ctx.emit('Transpose', [b], { perm: swapLast(bS.length) })[0]!;
      const da = ctx.emit('MatMul', [dyP, bT])[0]!; // [batch.., M, K]
      // For A [K] the unit M axis is a leading axis of the gradient, so summing to A's shape removes it.
      grads[0] = ctx.sumTo(da, [...batch, M, K], 0);
    }
    if (ctx.wants(1)) {
      const a = ctx.input(0);
      const aT = a1 ? ctx.emit('Unsqueeze', [a, ctx.ints([1])])[0]! : ctx.emit('Transpose', [a], { perm: swapLast(aS.length) })[0]!;
      let db = ctx.emit('MatMul', [aT, dyP])[0]!; // [batch.., K, N]
      let dbS: Dim[] = [...batch, K, N];
      if (b1) {
        db = ctx.emit('Squeeze', [db, ctx.ints([-1])])[0]!;
        dbS = [...batch, K];
      }
      grads[1] = ctx.sumTo(db, dbS, 1);
    }
    return grads;
  },
};

/**
 * Gemm-13: Y = alpha A' B' + beta C with A' = transA ? A^T : A and B' likewise. Then dA' = alpha dY B'^T and
 * dB' = alpha A'^T dY; transposing back where the operand was transposed gives four Gemm forms, each one Gemm node
 * with the right trans flags (no explicit Transpose). dC = beta dY summed to C's broadcast shape.
 */
const gemm: GradRule = {
  differentiable: [0, 1, 2],
  saves: { inputs: [0, 1] },
  backward(ctx) {
    const dy = ctx.dy()!;
    const alpha = attrFloat(ctx.node, 'alpha', 1);
    const beta = attrFloat(ctx.node, 'beta', 1);
    const tA = attrInt(ctx.node, 'transA', 0) !== 0;
    const tB = attrInt(ctx.node, 'transB', 0) !== 0;
    const gemmOf = (x: string, y: string, ta: boolean, tb: boolean) =>
      ctx.emit('Gemm', [x, y], { alpha: A.float(alpha), transA: A.int(ta ? 1 : 0), transB: A.int(tb ? 1 : 0) })[0]!;
    const grads: (string | undefined)[] = [undefined, undefined, undefined];
    if (ctx.wants(0)) {
      const b = ctx.input(1);
      // transA=0: dA = alpha dY B'^T (B'^T = B when transB, else B^T). transA=1: dA = (dA')^T = alpha B' dY^T.
      grads[0] = tA ? gemmOf(b, dy, tB, true) : gemmOf(dy, b, false, !tB);
    }
    if (ctx.wants(1)) {
      const a = ctx.input(0);
      // transB=0: dB = alpha A'^T dY. transB=1: dB = (dB')^T = alpha dY^T A'.
      grads[1] = tB ? gemmOf(dy, a, true, tA) : gemmOf(a, dy, !tA, false);
    }
    if (ctx.wants(2)) {
      const scaled = beta === 1 ? dy : ctx.emit('Mul', [dy, ctx.scalar(beta, ctx.inputDType(2))])[0]!;
      grads[2] = ctx.sumTo(scaled, ctx.outputShape(0), 2);
    }
    return grads;
  },
};

export const rules: Record<string, GradRule> = { MatMul: matmul, Gemm: gemm };

