import { msOp } from '../../../ir/ops/contrib.js';
import { nbitsGeometry, schemas, type NBitsGeometry } from '../../../ir/ops/quantize-contrib.js';
import type { HostTensor } from '../../../ir/tensor.js';
import type { CpuKernel } from '../kernel.js';
import { fromF64, inferConcrete, toF64 } from '../math-infer.js';

/**
 * CPU reference for com.microsoft MatMulNBits (runtime/ir/ops/quantize-contrib.ts): B dequantized to float32 one
 * block at a time as the spec defines it, W[n, k] = (q - zp) * scale rounded to float32, then Y = A @ W^T + bias
 * accumulated in float64 and rounded once to A's type.
 */

const f32 = Math.fround;

/** Code k of row n of packed B (bytes [N, k_blocks, blob]), low bits first. */
export function nbitsCode(b: Uint8Array, g: NBitsGeometry, n: number, k: number): number {
  const row = n * g.kBlocks * g.blob;
  if (g.bits === 8) return b[row + k]!;
  const byte = b[row + (k >> 1)]!;
  return k & 1 ? byte >> 4 : byte & 15;
}

/** The zero point of block `blk` of row n: packed uint8 codes, float values, or 2^(bits - 1) when absent. */
export function nbitsZeroPoint(zp: HostTensor | undefined, g: NBitsGeometry, n: number, blk: number): number {
  if (!zp) return 2 ** (g.bits - 1);
  if (zp.dtype !== 'uint8') return toF64(zp)[n * g.kBlocks + blk]!;
  const d = zp.data as Uint8Array;
  if (g.bits === 8) return d[n * g.zpRow + blk]!;
  const byte = d[n * g.zpRow + (blk >> 1)]!;
  return blk & 1 ? byte >> 4 : byte & 15;
}

/** W [N, K] in float32 values. */
export function dequantizeNBits(b: Uint8Array, scales: Float64Array, zp: HostTensor | undefined, g: NBitsGeometry): Float64Array {
  const w = new Float64Array(g.N * g.K);
  const zpF = zp && zp.dtype !== 'uint8' ? toF64(zp) : undefined;
  for (let n = 0; n < g.N; n++) {
    for (let blk = 0; blk < g.kBlocks; blk++) {
      const s = scales[n * g.kBlocks + blk]!;
      const z = zpF ? zpF[n * g.kBlocks + blk]! : nbitsZeroPoint(zp, g, n, blk);
      for (let k = blk * g.block; k < Math.min(g.K, (blk + 1) * g.block); k++) w[n * g.K + k] = f32((nbitsCode(b, g, n, k) - z) * s);
    }
  }
  return w;
}

const matMulNBits: CpuKernel = (inputs, node, ctx) => {
  const [o] = inferConcrete(schemas[msOp('MatMulNBits')], node, inputs, ctx);
  const g = nbitsGeometry({ node, inputs: [], symbol: () => '' });
  const [A, B, S, Z, , bias] = inputs as (HostTensor | undefined)[];
  const w = dequantizeNBits(B!.data as Uint8Array, toF64(S!), Z, g);
  const a = toF64(A!);
  const c = bias ? toF64(bias) : undefined;
  const rows = a.length / g.K;
  const y = new Float64Array(rows * g.N);
  for (let m = 0; m < rows; m++) {
    for (let n = 0; n < g.N; n++) {
      let acc = 0;
      for (let k = 0; k < g.K; k++) acc += a[m * g.K + k]! * w[n * g.K + k]!;
      y[m * g.N + n] = acc + (c ? c[n]! : 0);
    }
  }
  return [fromF64(o!, y)];
};

export const kernels: Record<string, CpuKernel> = { [msOp('MatMulNBits')]: matMulNBits };
