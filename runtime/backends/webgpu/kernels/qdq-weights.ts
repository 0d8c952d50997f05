import { attrInt, type Node } from '../../../ir/graph.js';
import { hostTensor, tensorToNumbers, type HostTensor } from '../../../ir/tensor.js';
import type { ProgramSpec } from '../program.js';
import { int8Offset } from './quant-dot.js';

/**
 * How the int8 kernels (qdq-gemm.ts, qdq-depthwise.ts) hold a QdqConv / QdqMatMul weight on the GPU.
 *
 * Every kernel addresses its weight as rows of "quads": four codes (four input channels, or four depthwise
 * channels) of the int8 domain, one row per output channel (a depthwise conv: per four channels). With 8 bits a quad
 * is one u32 word. A weight that the model stores in 4 bits (its DequantizeLinear has storage_bits = 4, which
 * fuse-qdq.ts carries to the fused node as w_bits = 4: int4 / uint4 Conv weights, as onnxruntime's quantizer writes
 * with weight_type QInt4 / QUInt4) keeps its 4 bits there: two quads per word, quad q of a row in the low (q even) or
 * high half of word q / 2, code j of the quad in bits 4 j .. 4 j + 3, each row padded to a whole word. Resident bytes
 * are then 1/8 of float32 instead of 1/4. The kernels unpack a quad into vec4<i32> with two shifts per lane, as they
 * unpack an int8 word, and the codes, the sums and the accumulators are the 8-bit form's: the outputs are bit-identical.
 *
 * The int8 domain of a 4-bit weight: int4 codes as they are (-8..7); uint4 codes less 8 (not 128 as for uint8), with
 * its zero points less 8 too. Any offset applied to codes and zero points alike leaves every (w - zw) unchanged.
 */
export interface WeightForm {
  bits: 4 | 8;
  /** Subtracted from the model's codes and weight zero points to get int8-domain codes. */
  offset: number;
}

/**
 * The form of node's constant weight w: 4 bits when the node says w_bits = 4 and every code is in the 4-bit range of
 * its dtype (int8 -8..7, uint8 0..15; always so for a weight decoded from an int4 / uint4 payload), else 8.
 */
export function weightForm(node: Node, w: HostTensor): WeightForm {
  if (attrInt(node, 'w_bits', 8) === 4 && (w.dtype === 'int8' || w.dtype === 'uint8')) {
    const [lo, hi] = w.dtype === 'int8' ? [-8, 7] : [0, 15];
    const v = w.data as Int8Array | Uint8Array;
    let ok = true;
    for (let i = 0; i < v.length && ok; i++) ok = v[i]! >= lo && v[i]! <= hi;
    if (ok) return { bits: 4, offset: w.dtype === 'uint8' ? 8 : 0 };
  }
  return { bits: 8, offset: int8Offset(w.dtype) };
}

export const formKey = (f: WeightForm) => (f.bits === 4 ? `:w4o${f.offset}` : '');

/** The codes of w as int8-domain numbers (the model's codes less the form's offset). */
export function weightCodes(w: HostTensor, f: WeightForm): Float64Array {
  const v = tensorToNumbers(w);
  if (f.offset) for (let i = 0; i < v.length; i++) v[i]! -= f.offset;
  return v;
}

/** A packed weight as the weight store holds it (storeForm) and each row's sum of its int8-domain codes (weightSums). */
export interface PackedWeight {
  store: HostTensor;
  sums: number[];
}

/**
 * Packs w as `rows` rows of `rowQuads` quads (four int8-domain codes per u32), written by `fill` from the codes
 * (weightCodes; `quads` zeroed, code j of a quad in byte j), then in form f, memoized per initializer, key and form.
 */
export function packRows(w: HostTensor, f: WeightForm, key: string, rows: number, rowQuads: number, fill: (codes: Float64Array, quads: Uint32Array) => void): PackedWeight {
  const full = `${key}${formKey(f)}`;
  let byKey = packedWeights.get(w);
  const hit = byKey?.get(full);
  if (hit) return hit;
  const quads = new Uint32Array(rows * rowQuads);
  fill(weightCodes(w, f), quads);
  const packed = { store: storeForm(quads, rows, rowQuads, f), sums: weightSums(quads, rows) };
  if (!byKey) packedWeights.set(w, (byKey = new Map()));
  byKey.set(full, packed);
  return packed;
}

/** Packed weights per initializer, layout and form, so every plan of a session shares one weight-store upload. */
const packedWeights = new WeakMap<HostTensor, Map<string, PackedWeight>>();

/**
 * Each output channel's sum of its int8-domain weight codes (a row of quads, padding 0), computed once at plan
 * time: the kernels then need no per-k sum of w. |sum| <= K * 128 < 2^23 (checkK), exact in f32.
 */
function weightSums(words: Uint32Array, rows: number): number[] {
  const per = words.length / rows;
  const sums = new Array<number>(rows).fill(0);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let i = r * per; i < (r + 1) * per; i++) {
      const v = words[i]!;
      s += ((v << 24) >> 24) + ((v << 16) >> 24) + ((v << 8) >> 24) + (v >> 24);
    }
    sums[r] = s;
  }
  return sums;
}

/** Words per row of a 4-bit weight of `rowQuads` quads. */
export const rowWords4 = (rowQuads: number) => Math.ceil(rowQuads / 2);

/**
 * The weight store's tensor for packed quads (`quads`: rows x rowQuads int8 words, each byte an int8-domain code):
 * as they are for 8 bits; two quads per word for 4 bits (the layout in the file comment).
 */
export function storeForm(quads: Uint32Array, rows: number, rowQuads: number, f: WeightForm): HostTensor {
  if (f.bits === 8) return hostTensor('uint32', [quads.length], quads);
  const per = rowWords4(rowQuads);
  const words = new Uint32Array(rows * per);
  for (let r = 0; r < rows; r++) {
    for (let q = 0; q < rowQuads; q++) {
      const v = quads[r * rowQuads + q]!;
      let half = 0;
      for (let j = 0; j < 4; j++) half |= ((v >>> (8 * j)) & 0xf) << (4 * j);
      words[r * per + (q >> 1)]! |= half << (16 * (q & 1));
    }
  }
  return hostTensor('uint32', [words.length], words);
}

/**
 * WGSL reading a kernel's weight quads in form f. `stride(q8)`: the row stride in words, given the 8-bit form's
 * (rowQuads); the 4-bit form's is the uniform WR (rowWords4; `uniforms` declares it). `quad(base, q)`: quad q of
 * the row starting at word `base`, as vec4<i32>; `word(base, q)`: the same four codes as one packed int8 word.
 */
export function weightReader(s: Parameters<ProgramSpec['source']>[0], f: WeightForm): {
  stride: (q8: string) => string;
  quad: (base: string, q: string) => string;
  word: (base: string, q: string) => string;
} {
  if (f.bits === 8) {
    return { stride: (q8) => q8, quad: (base, q) => `unpack_i8(w[${base} + ${q}])`, word: (base, q) => `w[${base} + ${q}]` };
  }
  // Half h of word v holds the quad; code j sits at bits 16 h + 4 j: shifted to the top, then arithmetically down.
  s.helper(`fn w4_quad(v: u32, h: u32) -> vec4<i32> {
  return bitcast<vec4<i32>>(vec4<u32>(v) << (vec4<u32>(28u, 24u, 20u, 16u) - vec4<u32>(h * 16u))) >> vec4<u32>(28u);
}`);
  const quad = (base: string, q: string) => `w4_quad(w[${base} + ((${q}) >> 1u)], (${q}) & 1u)`;
  return { stride: () => 'u.WR', quad, word: (base, q) => `pack_i8(${quad(base, q)})` };
}

/** The uniform a 4-bit weight's kernels add (WR, words per row); none for 8 bits. */
export const weightUniforms = (f: WeightForm) => (f.bits === 4 ? [{ name: 'WR', type: 'u32' as const }] : []);
export const weightUniformValues = (f: WeightForm, rowQuads: number): Record<string, number> => (f.bits === 4 ? { WR: rowWords4(rowQuads) } : {});
