import { attrFloat, attrInt } from '../../../ir/graph.js';
import { schemas } from '../../../ir/ops/matmul.js';
import { sizeOf } from '../../../ir/tensor.js';
import type { CpuKernel } from '../kernel.js';
import { broadcastIndex } from '../math-broadcast.js';
import { fromF64, inferConcrete, toF64 } from '../math-infer.js';

/**
 * MatMul and Gemm on the CPU. Products accumulate in float64 and round once to the output type, so float32
 * results are at least as accurate as any float32-accumulating runtime.
 */

/**
 * out[m, n] += alpha * sum_k a[m, k] * b[k, n] for one matrix pair, with element strides so transposed operands
 * need no copy. Loop order m, k, n keeps the innermost loop contiguous in `out` (and in b unless transposed).
 * Zero multipliers are skipped only when b is all finite, where 0 * b[k, n] adds nothing (0 * inf would be NaN).
 */
function gemmInto(
  out: Float64Array, outOff: number,
  a: Float64Array, aOff: number, aRowStride: number, aColStride: number,
  b: Float64Array, bOff: number, bRowStride: number, bColStride: number,
  M: number, K: number, N: number, alpha: number, skipZeros: boolean,
): void {
  for (let m = 0; m < M; m++) {
    const o = outOff + m * N;
    for (let k = 0; k < K; k++) {
      const av = alpha * a[aOff + m * aRowStride + k * aColStride]!;
      if (skipZeros && av === 0) continue;
      const bRow = bOff + k * bRowStride;
      for (let n = 0; n < N; n++) out[o + n] = out[o + n]! + av * b[bRow + n * bColStride]!;
    }
  }
}

function allFinite(v: Float64Array): boolean {
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i]!)) return false;
  return true;
}

const matmul: CpuKernel = (inputs, node, ctx) => {
  const [o] = inferConcrete(schemas.MatMul, node, inputs, ctx);
  const [A, B] = [inputs[0]!, inputs[1]!];
  // Promote 1-D operands as numpy.matmul does: [K] -> [1, K] for A, [K] -> [K, 1] for B.
  const as = A.shape.length === 1 ? [1, A.shape[0]!] : A.shape;
  const bs = B.shape.length === 1 ? [B.shape[0]!, 1] : B.shape;
  const M = as[as.length - 2]!;
  const K = as[as.length - 1]!;
  const N = bs[bs.length - 1]!;
  const aBatch = as.slice(0, -2);
  const bBatch = bs.slice(0, -2);
  const batchShape = o!.shape.slice(0, o!.shape.length - (A.shape.length === 1 ? 0 : 1) - (B.shape.length === 1 ? 0 : 1));
  const batches = sizeOf(batchShape);
  const ia = broadcastIndex(aBatch, batchShape);
  const ib = broadcastIndex(bBatch, batchShape);
  const a = toF64(A);
  const b = toF64(B);
  const out = new Float64Array(batches * M * N);
  const bFinite = allFinite(b);
  for (let i = 0; i < batches; i++) {
    const ai = ia ? ia[i]! : i;
    const bi = ib ? ib[i]! : i;
    gemmInto(out, i * M * N, a, ai * M * K, K, 1, b, bi * K * N, N, 1, M, K, N, 1, bFinite);
  }
  return [fromF64(o!, out)];
};

const gemm: CpuKernel = (inputs, node, ctx) => {
  const [o] = inferConcrete(schemas.Gemm, node, inputs, ctx);
  const [A, B, C] = inputs;
  const transA = attrInt(node, 'transA', 0) !== 0;
  const transB = attrInt(node, 'transB', 0) !== 0;
  const alpha = attrFloat(node, 'alpha', 1);
  const beta = attrFloat(node, 'beta', 1);
  const [M, N] = o!.shape as [number, number];
  const K = transA ? A!.shape[0]! : A!.shape[1]!;
  const out = new Float64Array(M * N);
  if (C && beta !== 0) {
    const c = toF64(C);
    const ic = broadcastIndex(C.shape, [M, N]);
    for (let i = 0; i < M * N; i++) out[i] = beta * c[ic ? ic[i]! : i]!;
  }
  const a = toF64(A!);
  const b = toF64(B!);
  // A is [M, K] (or [K, M] transposed), B is [K, N] (or [N, K]): express both as (row, col) strides.
  gemmInto(out, 0, a, 0, transA ? 1 : K, transA ? M : 1, b, 0, transB ? 1 : N, transB ? K : 1, M, K, N, alpha, allFinite(b));
  return [fromF64(o!, out)];
};

export const kernels: Record<string, CpuKernel> = { MatMul: matmul, Gemm: gemm };
