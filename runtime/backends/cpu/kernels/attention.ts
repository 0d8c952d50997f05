import { attrFloat, attrInt } from '../../../ir/graph.js';
import { attentionGeometry, attentionScale, qkOutputMode, schemas } from '../../../ir/ops/attention.js';
import type { HostTensor } from '../../../ir/tensor.js';
import type { CpuKernel } from '../kernel.js';
import { broadcastStrides } from '../math-broadcast.js';
import { fromF64, inferConcrete, toF64 } from '../math-infer.js';

/**
 * CPU reference for Attention (runtime/ir/ops/attention.ts): the textbook form, in float64, with the whole score
 * row of each query in memory. Per query (b, h, i) and key j < T:
 *   s_j = scale * q . k_j;  s_j = softcap * tanh(s_j / softcap) when softcap > 0;
 *   s_j += float mask, or s_j = -inf where a bool mask is false or (is_causal and j > i + P);
 *   y = sum_j softmax(s)_j v_j, and y = 0 when every s_j is -inf.
 * Keys and values come from present = concat(past, new) along the sequence.
 */

/** concat(past, new) as [B, Hkv, T, D] in float64, reading new through its layout (3-D [B, S, H*D] or 4-D). */
function present(past: HostTensor | undefined, x: HostTensor, b: number, h: number, p: number, s: number, d: number): Float64Array {
  const t = p + s;
  const out = new Float64Array(b * h * t * d);
  const pv = past && toF64(past);
  const xv = toF64(x);
  const packed = x.shape.length === 3;
  for (let bi = 0; bi < b; bi++) {
    for (let hi = 0; hi < h; hi++) {
      for (let ti = 0; ti < t; ti++) {
        const o = ((bi * h + hi) * t + ti) * d;
        for (let di = 0; di < d; di++) {
          if (ti < p) out[o + di] = pv![((bi * h + hi) * p + ti) * d + di]!;
          else {
            const si = ti - p;
            out[o + di] = xv[packed ? (bi * s + si) * h * d + hi * d + di : ((bi * h + hi) * s + si) * d + di]!;
          }
        }
      }
    }
  }
  return out;
}

const attention: CpuKernel = (inputs, node, ctx) => {
  const outs = inferConcrete(schemas.Attention, node, inputs, ctx);
  const [Q, K, V, M, PK, PV] = inputs;
  const g = attentionGeometry(node, Q!.shape, K!.shape, V!.shape, PK?.shape);
  const { batch: B, qHeads: Hq, kvHeads: Hkv, qSeq: Sq, kvSeq: Skv, past: P, total: T, headSize: D, vHeadSize: Dv, packed } = g;
  const scale = attentionScale(node, D);
  const softcap = attrFloat(node, 'softcap', 0);
  const causal = attrInt(node, 'is_causal', 0) !== 0;
  // Not an ONNX attribute: set only on nodes the WebGPU attention fusion makes (fuse-attention.ts), where a false
  // bool mask entry sets the score to this value, as the Where(mask, S, fill) it replaces did.
  const fill = attrFloat(node, 'mask_fill');
  const wantQk = !!node.outputs[3];
  const mode = wantQk ? qkOutputMode(node) : 0;
  const q = toF64(Q!);
  const keys = present(PK, K!, B, Hkv, P, Skv, D);
  const values = present(PV, V!, B, Hkv, P, Skv, Dv);
  const mask = M && toF64(M);
  const mStrides = M && broadcastStrides(M.shape, [B, Hq, Sq, T]);
  const y = new Float64Array(B * Hq * Sq * Dv);
  const qk = new Float64Array(wantQk ? B * Hq * Sq * T : 0);
  const group = Hq / Hkv;
  const s = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const kvBase = (b * Hkv + Math.floor(h / group)) * T;
      for (let i = 0; i < Sq; i++) {
        const qOff = packed ? (b * Sq + i) * Hq * D + h * D : ((b * Hq + h) * Sq + i) * D;
        const row = ((b * Hq + h) * Sq + i) * T;
        let max = -Infinity;
        for (let j = 0; j < T; j++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qOff + d]! * keys[(kvBase + j) * D + d]!;
          let v = dot * scale;
          if (wantQk && mode === 0) qk[row + j] = v;
          if (softcap > 0) v = softcap * Math.tanh(v / softcap);
          if (mask) {
            const m = mask[b * mStrides![0]! + h * mStrides![1]! + i * mStrides![2]! + j * mStrides![3]!]!;
            if (M!.dtype === 'bool') v = m ? v : fill ?? -Infinity;
            else v += m;
          }
          if (causal && j > i + P) v = -Infinity;
          s[j] = v;
          if (v > max) max = v;
        }
        let l = 0;
        for (let j = 0; j < T; j++) {
          s[j] = max === -Infinity ? 0 : Math.exp(s[j]! - max);
          l += s[j]!;
        }
        const yOff = packed ? (b * Sq + i) * Hq * Dv + h * Dv : ((b * Hq + h) * Sq + i) * Dv;
        for (let j = 0; j < T; j++) {
          const w = l > 0 ? s[j]! / l : 0;
          if (wantQk && mode === 3) qk[row + j] = w;
          if (w === 0) continue;
          for (let d = 0; d < Dv; d++) y[yOff + d] = y[yOff + d]! + w * values[(kvBase + j) * Dv + d]!;
        }
      }
    }
  }
  const result = [fromF64(outs[0]!, y)];
  if (outs[1]) result.push(fromF64(outs[1], keys));
  if (outs[2]) result.push(fromF64(outs[2], values));
  if (outs[3]) result.push(fromF64(outs[3], qk));
  return result;
};

export const kernels: Record<string, CpuKernel> = { Attention: attention };
