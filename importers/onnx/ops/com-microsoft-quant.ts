import { type Attr, attrInt, type Node } from '../../../runtime/ir/graph.js';
import { msOp } from '../../../runtime/ir/ops/contrib.js';
import { tensorFromNumbers, type HostTensor } from '../../../runtime/ir/tensor.js';
import { FOUR_BIT_TENSORS } from '../tensor.js';
import type { AdapterContext, OpAdapter } from './adapter.js';
import { AdapterUnsupported, helperNode, trimInputs, without } from './helpers.js';

/**
 * The quantized ops of onnxruntime's 'com.microsoft' domain (version 1; ContribOperators.md).
 *
 * MatMulNBits keeps its form (IR op 'com.microsoft.MatMulNBits', runtime/ir/ops/quantize-contrib.ts): its packed
 * weights stay packed on the GPU. Every other op here is defined by onnxruntime as standard quantization around a
 * float or integer op, and is written as exactly that, so the CPU reference and the WebGPU kernels of those ops
 * (already tested against onnxruntime) run it:
 *   QLinearAdd / QLinearMul         Q(DQ(A) + DQ(B)), Q(DQ(A) * DQ(B))
 *   QLinearSigmoid / QLinearLeakyRelu  Q(f(DQ(X)))
 *   QLinearAveragePool / QLinearGlobalAveragePool  Q(pool(DQ(X))), channels_last through Transposes
 *   QLinearConcat                   Q(Concat(DQ(X_i)))
 *   MatMulIntegerToFloat            Cast(MatMulInteger(A, B, a_zp, b_zp)) * (a_scale * b_scale) + bias
 *   DynamicQuantizeMatMul           the same after DynamicQuantizeLinear(A) (uint8, asymmetric)
 *   GatherBlockQuantized            DequantizeLinear(Gather(data), Gather(scales), Gather(zero_points)), blocked;
 *                                   a constant 4-bit table is gathered as packed words and unpacked by bit ops
 * The integer products run on the int8 kernels (quant-matmul.ts: packed dot products, i32 accumulation). The
 * elementwise and pooling forms compute in float between a dequantize and a requantize, as onnxruntime's own CPU
 * kernels do (their lookup tables and MLAS loops are built from the same float formula); onnxruntime's rounding
 * order differs at exact ties, so results agree with it within one quantization step.
 */

/** A missing zero point of a quantized output: a constant 0 of the operand's type (Q would otherwise give uint8). */
function zeroPoint(n: Node, ctx: AdapterContext, zp: string | undefined, like: string, hint: string): string {
  if (zp) return zp;
  const d = ctx.dtypeOf(like);
  if (d !== 'int8' && d !== 'uint8') throw new AdapterUnsupported(`${n.op}: ${like} has type ${d ?? 'unknown'}; int8 or uint8 expected`);
  return ctx.constant(`${n.name}_${hint}`, tensorFromNumbers(d, [], [0]));
}

function dq(n: Node, ctx: AdapterContext, x: string, s: string, zp: string | undefined, hint: string): { node: Node; out: string } {
  const out = ctx.fresh(`${n.name}_${hint}`);
  return { node: helperNode(n, `dq_${hint}`, 'DequantizeLinear', zp ? [x, s, zp] : [x, s], [out]), out };
}

function q(n: Node, ctx: AdapterContext, x: string, s: string, zp: string): Node {
  return helperNode(n, 'q', 'QuantizeLinear', [x, s, zp], [n.outputs[0]!]);
}

const input = (n: Node, i: number): string | undefined => n.inputs[i] || undefined;

/** QLinearAdd / QLinearMul: (A, A_scale, A_zp?, B, B_scale, B_zp?, C_scale, C_zp?). */
function binary(op: 'Add' | 'Mul'): OpAdapter['map'] {
  return (n, ctx) => {
    const a = dq(n, ctx, n.inputs[0]!, n.inputs[1]!, input(n, 2), 'a');
    const b = dq(n, ctx, n.inputs[3]!, n.inputs[4]!, input(n, 5), 'b');
    const c = ctx.fresh(`${n.name}_${op.toLowerCase()}`);
    return [a.node, b.node, helperNode(n, op.toLowerCase(), op, [a.out, b.out], [c]), q(n, ctx, c, n.inputs[6]!, zeroPoint(n, ctx, input(n, 7), n.inputs[0]!, 'c_zp'))];
  };
}

/** QLinearSigmoid / QLinearLeakyRelu: (X, X_scale, X_zp?, Y_scale, Y_zp?). */
function unary(op: string, attrs: (n: Node) => Record<string, Attr>): OpAdapter['map'] {
  return (n, ctx) => {
    const x = dq(n, ctx, n.inputs[0]!, n.inputs[1]!, input(n, 2), 'x');
    const y = ctx.fresh(`${n.name}_${op.toLowerCase()}`);
    return [x.node, helperNode(n, op.toLowerCase(), op, [x.out], [y], attrs(n)), q(n, ctx, y, n.inputs[3]!, zeroPoint(n, ctx, input(n, 4), n.inputs[0]!, 'y_zp'))];
  };
}

/** QLinearAveragePool / QLinearGlobalAveragePool: (X, x_scale, x_zp?, y_scale, y_zp?), channels_last moves C. */
function pool(op: 'AveragePool' | 'GlobalAveragePool'): OpAdapter['map'] {
  return (n, ctx) => {
    const x = dq(n, ctx, n.inputs[0]!, n.inputs[1]!, input(n, 2), 'x');
    const nodes: Node[] = [x.node];
    const last = attrInt(n, 'channels_last', 0) !== 0;
    let src = x.out;
    const rank = ctx.rankOf(n.inputs[0]!);
    if (last) {
      if (rank === undefined) throw new AdapterUnsupported(`${n.op} with channels_last needs X's rank in the file`);
      const toFirst = [0, rank - 1, ...Array.from({ length: rank - 2 }, (_, i) => i + 1)];
      src = ctx.fresh(`${n.name}_nchw`);
      nodes.push(helperNode(n, 'to_nchw', 'Transpose', [x.out], [src], { perm: { type: 'ints', value: toFirst } }));
    }
    let y = ctx.fresh(`${n.name}_pool`);
    nodes.push(helperNode(n, 'pool', op, [src], [y], without(n, 'channels_last')));
    if (last) {
      const back = ctx.fresh(`${n.name}_nhwc`);
      const toLast = [0, ...Array.from({ length: rank! - 2 }, (_, i) => i + 2), 1];
      nodes.push(helperNode(n, 'to_nhwc', 'Transpose', [y], [back], { perm: { type: 'ints', value: toLast } }));
      y = back;
    }
    nodes.push(q(n, ctx, y, n.inputs[3]!, zeroPoint(n, ctx, input(n, 4), n.inputs[0]!, 'y_zp')));
    return nodes;
  };
}

/** QLinearConcat: (Y_scale, Y_zp, then (X_i, X_i_scale, X_i_zp) triples), attribute axis. */
const concat: OpAdapter['map'] = (n, ctx) => {
  if ((n.inputs.length - 2) % 3 !== 0 || n.inputs.length < 5) throw new AdapterUnsupported('QLinearConcat needs Y_scale, Y_zero_point and (X, scale, zero point) triples');
  const nodes: Node[] = [];
  const parts: string[] = [];
  for (let i = 2; i < n.inputs.length; i += 3) {
    const x = dq(n, ctx, n.inputs[i]!, n.inputs[i + 1]!, input(n, i + 2), `x${(i - 2) / 3}`);
    nodes.push(x.node);
    parts.push(x.out);
  }
  const y = ctx.fresh(`${n.name}_concat`);
  nodes.push(helperNode(n, 'concat', 'Concat', parts, [y], { axis: n.attrs.axis ?? { type: 'int', value: 0 } }));
  nodes.push(q(n, ctx, y, n.inputs[0]!, zeroPoint(n, ctx, input(n, 1), n.inputs[2]!, 'y_zp')));
  return nodes;
};

/** Cast(acc) * (a_scale * b_scale) (+ bias), in the scales' float type: the tail of the two integer matrix products. */
function scaleAndBias(n: Node, ctx: AdapterContext, acc: string, aScale: string, bScale: string, bias: string | undefined): Node[] {
  const to = ctx.dtypeOf(bScale) === 'float16' ? 10 : 1;
  const accF = ctx.fresh(`${n.name}_acc_f`);
  const mult = ctx.fresh(`${n.name}_mult`);
  const scaled = bias ? ctx.fresh(`${n.name}_scaled`) : n.outputs[0]!;
  const nodes = [
    helperNode(n, 'cast', 'Cast', [acc], [accF], { to: { type: 'int', value: to } }),
    helperNode(n, 'mult', 'Mul', [aScale, bScale], [mult]),
    helperNode(n, 'scale', 'Mul', [accF, mult], [scaled]),
  ];
  if (bias) nodes.push(helperNode(n, 'bias', 'Add', [scaled, bias], [n.outputs[0]!]));
  return nodes;
}

/** MatMulIntegerToFloat: (A, B, a_scale, b_scale, a_zp?, b_zp?, bias?). */
const matMulIntegerToFloat: OpAdapter['map'] = (n, ctx) => {
  const acc = ctx.fresh(`${n.name}_acc`);
  const mm = helperNode(n, 'mmi', 'MatMulInteger', trimInputs([n.inputs[0]!, n.inputs[1]!, input(n, 4) ?? '', input(n, 5) ?? '']), [acc]);
  return [mm, ...scaleAndBias(n, ctx, acc, n.inputs[2]!, n.inputs[3]!, input(n, 6))];
};

/** DynamicQuantizeMatMul: (A, B, b_scale, b_zp?, bias?); A quantized per tensor to uint8 at run time. */
const dynamicQuantizeMatMul: OpAdapter['map'] = (n, ctx) => {
  const [aq, as, az, acc] = ['a_q', 'a_scale', 'a_zp', 'acc'].map((h) => ctx.fresh(`${n.name}_${h}`)) as [string, string, string, string];
  const dql = helperNode(n, 'dql', 'DynamicQuantizeLinear', [n.inputs[0]!], [aq, as, az]);
  const mm = helperNode(n, 'mmi', 'MatMulInteger', input(n, 3) ? [aq, n.inputs[1]!, az, n.inputs[3]!] : [aq, n.inputs[1]!, az], [acc]);
  return [dql, mm, ...scaleAndBias(n, ctx, acc, as, n.inputs[2]!, input(n, 4))];
};

/** 4-bit values of packed uint8 bytes (two per byte along the last axis, low nibble first) as one per byte. */
function unpackNibbles(t: HostTensor): HostTensor {
  const src = t.data as Uint8Array;
  const out = new Uint8Array(src.length * 2);
  for (let i = 0; i < src.length; i++) [out[2 * i], out[2 * i + 1]] = [src[i]! & 15, src[i]! >> 4];
  return tensorFromNumbers('uint8', [...t.shape.slice(0, -1), t.shape[t.shape.length - 1]! * 2], out);
}

/** 4-bit codes as uint4 (0..15, one per byte): int4 values (held as int8, tensor.ts) shifted by +8, uint4 as they are. */
function asUint4(t: HostTensor): Uint8Array {
  if (t.dtype === 'uint8') return t.data as Uint8Array;
  return Uint8Array.from(t.data as Int8Array, (v) => v + 8);
}

/**
 * Codes 0..15 of shape [..., D] as uint32 words [..., ceil(D / 8), 1]: eight per word along the last axis, code 8w + j
 * in bits 4j..4j + 3 (the trailing 1 lets BitShift broadcast the word against the eight shift amounts).
 */
function packWords(codes: Uint8Array, shape: readonly number[]): HostTensor {
  const d = shape[shape.length - 1]!;
  const w = Math.ceil(d / 8);
  const rows = codes.length / d;
  const out = new Uint32Array(rows * w);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < d; i++) out[r * w + (i >> 3)] = (out[r * w + (i >> 3)]! | (codes[r * d + i]! << ((i & 7) * 4))) >>> 0;
  }
  return { dtype: 'uint32', shape: [...shape.slice(0, -1), w, 1], data: out };
}

/**
 * The 4-bit table kept packed (see gatherBlockQuantized): the gathered rows of words unpacked to uint8 codes `out`
 * of shape [..gathered dims.., D] by BitShift right by 0, 4, .., 28 ([..., W, 8]), Mod 16, Reshape to [..., 8 W],
 * Slice to D (only when D is not a multiple of 8) and Cast to uint8.
 */
function unpackGathered(n: Node, ctx: AdapterContext, words: string, d: number, outRank: number, gather: (v: string, hint: string) => string, nodes: Node[]): string {
  const gw = gather(words, 'words');
  const [shifted, low, flat, out] = ['shifted', 'codes_u32', 'codes_flat', 'codes'].map((h) => ctx.fresh(`${n.name}_${h}`)) as [string, string, string, string];
  const shifts = ctx.constant(`${n.name}_shifts`, tensorFromNumbers('uint32', [8], [0, 4, 8, 12, 16, 20, 24, 28]));
  const sixteen = ctx.constant(`${n.name}_sixteen`, tensorFromNumbers('uint32', [], [16]));
  // 0 keeps a dim of the input (Reshape's allowzero = 0): the gathered dims, however many rows were picked.
  const shape = ctx.constant(`${n.name}_flat_shape`, tensorFromNumbers('int64', [outRank], [...new Array<number>(outRank - 1).fill(0), -1]));
  nodes.push(
    helperNode(n, 'shift', 'BitShift', [gw, shifts], [shifted], { direction: { type: 'string', value: 'RIGHT' } }),
    helperNode(n, 'mask', 'Mod', [shifted, sixteen], [low]),
    helperNode(n, 'flatten', 'Reshape', [low, shape], [flat]),
  );
  let codes = flat;
  if (d % 8) {
    codes = ctx.fresh(`${n.name}_codes_d`);
    const c = (hint: string, v: number) => ctx.constant(`${n.name}_${hint}`, tensorFromNumbers('int64', [1], [v]));
    nodes.push(helperNode(n, 'trim', 'Slice', [flat, c('trim_start', 0), c('trim_end', d), c('trim_axis', -1)], [codes]));
  }
  nodes.push(helperNode(n, 'to_u8', 'Cast', [codes], [out], { to: { type: 'int', value: 2 } }));
  return out;
}

/**
 * GatherBlockQuantized: (data, indices, scales, zero_points?), attributes gather_axis (0), quantize_axis (1), block_size
 * (128), bits (4). data is int4/uint4 (unpacked at import, tensor.ts) or uint8 holding bits = 8 values or two 4-bit
 * values per byte along the last axis (then data and zero points must be constants). Absent zero points are 0 for
 * int4 and 2^(bits - 1) for unsigned data, as onnxruntime has them. The gather goes first, so only the selected rows
 * are dequantized.
 *
 * 4-bit data that is a constant, gathered along an axis other than the last (an embedding table), stays 4-bit on
 * every backend (issue #11 §1): eight codes per uint32 word along the last axis (packWords), so the table's resident
 * bytes are 1/8 of float32 on the GPU as well (a uint8 tensor there is one value per 32-bit word). Only the gathered
 * words are unpacked (unpackGathered), by standard ops. int4 is held as uint4 codes v + 8 with zero points zp + 8
 * (absent: 8), so (v + 8) - (zp + 8) = v - zp exactly. Other 4-bit forms (gathered along the last axis, a
 * non-constant table or zero point, no zero point with non-constant scales) are unpacked to one value per byte.
 */
const gatherBlockQuantized: OpAdapter['map'] = (n, ctx) => {
  const bits = attrInt(n, 'bits', 4);
  const block = attrInt(n, 'block_size', 128);
  let [data, , scales, zp] = [n.inputs[0]!, n.inputs[1]!, n.inputs[2]!, input(n, 3)];
  const rank = ctx.rankOf(data);
  const iRank = ctx.rankOf(n.inputs[1]!);
  if (rank === undefined || iRank === undefined) throw new AdapterUnsupported('GatherBlockQuantized needs the ranks of data and indices in the file');
  const norm = (a: number) => (a < 0 ? a + rank : a);
  const g = norm(attrInt(n, 'gather_axis', 0));
  const q = norm(attrInt(n, 'quantize_axis', 1));
  if (g === q) throw new AdapterUnsupported('GatherBlockQuantized: gather_axis and quantize_axis must differ');
  if (bits !== 4 && bits !== 8) throw new AdapterUnsupported(`GatherBlockQuantized bits=${bits} (4 and 8 work)`);
  const dtype = ctx.dtypeOf(data);
  const d = ctx.constantValue(data);
  const z = zp ? ctx.constantValue(zp) : undefined;
  const fourBit = !!d && FOUR_BIT_TENSORS.has(d);
  const packed = dtype === 'uint8' && bits === 4 && !fourBit;
  if (packed && q !== rank - 1) throw new AdapterUnsupported('GatherBlockQuantized with packed uint8 data needs quantize_axis to be the last axis');
  if (packed && (!d || (zp && !z))) throw new AdapterUnsupported('GatherBlockQuantized with packed 4-bit uint8 data needs data and zero_points as constants');
  const s = ctx.constantValue(scales);
  // The 4-bit codes and zero points as uint4 (one per byte), when the table stays packed in words.
  const codes = (fourBit || packed) && g !== rank - 1 && (!zp || z) && (zp || s) ? (packed ? unpackNibbles(d!) : { ...d!, dtype: 'uint8' as const, data: asUint4(d!) }) : undefined;
  let words: string | undefined;
  if (codes) {
    words = ctx.constant(`${n.name}_data_words`, packWords(codes.data as Uint8Array, codes.shape));
    const zc = !z ? tensorFromNumbers('uint8', [...s!.shape], new Uint8Array(s!.data.length).fill(8)) : packed ? unpackNibbles(z) : { ...z, dtype: 'uint8' as const, data: asUint4(z) };
    zp = ctx.constant(`${n.name}_zp_u4`, zc);
  } else if (packed) {
    data = ctx.constant(`${n.name}_data_u4`, unpackNibbles(d!));
    if (z) zp = ctx.constant(`${n.name}_zp_u4`, unpackNibbles(z));
  }
  if (!zp && dtype === 'uint8') {
    if (!s) throw new AdapterUnsupported('GatherBlockQuantized without zero_points needs constant scales (the default zero point takes their shape)');
    const fill = bits === 4 ? 8 : 128;
    zp = ctx.constant(`${n.name}_zp_default`, tensorFromNumbers('uint8', [...s.shape], new Uint8Array(s.data.length).fill(fill)));
  }
  const nodes: Node[] = [];
  const gather = (v: string, hint: string) => {
    const out = ctx.fresh(`${n.name}_${hint}`);
    nodes.push(helperNode(n, `gather_${hint}`, 'Gather', [v, n.inputs[1]!], [out], { axis: { type: 'int', value: g } }));
    return out;
  };
  const gd = words ? unpackGathered(n, ctx, words, codes!.shape[rank - 1]!, rank + iRank - 1, gather, nodes) : gather(data, 'data');
  const gs = gather(scales, 'scales');
  const gz = zp ? gather(zp, 'zp') : '';
  const axis = q < g ? q : q + iRank - 1;
  nodes.push(helperNode(n, 'dq', 'DequantizeLinear', gz ? [gd, gs, gz] : [gd, gs], [n.outputs[0]!], {
    axis: { type: 'int', value: axis }, block_size: { type: 'int', value: block },
  }));
  return nodes;
};

const alpha = (n: Node): Record<string, Attr> => ({ alpha: n.attrs.alpha ?? { type: 'float', value: 0.01 } });

const decomposed = (op: string, targets: string[], map: OpAdapter['map']): OpAdapter => ({ op, since: 1, until: 1, targets, map });

export const COM_MICROSOFT_QUANT_ADAPTERS: OpAdapter[] = [
  {
    op: 'MatMulNBits',
    since: 1,
    until: 1,
    targets: [msOp('MatMulNBits')],
    // accuracy_level only tunes onnxruntime's CPU (it may quantize A to int8 there); EdgeKit computes in float.
    map: (n) => [{ ...n, op: msOp('MatMulNBits'), domain: '', attrs: without(n, 'accuracy_level') }],
  },
  decomposed('QLinearAdd', ['DequantizeLinear', 'Add', 'QuantizeLinear'], binary('Add')),
  decomposed('QLinearMul', ['DequantizeLinear', 'Mul', 'QuantizeLinear'], binary('Mul')),
  decomposed('QLinearSigmoid', ['DequantizeLinear', 'Sigmoid', 'QuantizeLinear'], unary('Sigmoid', () => ({}))),
  decomposed('QLinearLeakyRelu', ['DequantizeLinear', 'LeakyRelu', 'QuantizeLinear'], unary('LeakyRelu', alpha)),
  decomposed('QLinearAveragePool', ['DequantizeLinear', 'AveragePool', 'Transpose', 'QuantizeLinear'], pool('AveragePool')),
  decomposed('QLinearGlobalAveragePool', ['DequantizeLinear', 'GlobalAveragePool', 'Transpose', 'QuantizeLinear'], pool('GlobalAveragePool')),
  decomposed('QLinearConcat', ['DequantizeLinear', 'Concat', 'QuantizeLinear'], concat),
  decomposed('MatMulIntegerToFloat', ['MatMulInteger', 'Cast', 'Mul', 'Add'], matMulIntegerToFloat),
  decomposed('GatherBlockQuantized', ['Gather', 'BitShift', 'Mod', 'Reshape', 'Slice', 'Cast', 'DequantizeLinear'], gatherBlockQuantized),
  decomposed('DynamicQuantizeMatMul', ['DynamicQuantizeLinear', 'MatMulInteger', 'Cast', 'Mul', 'Add'], dynamicQuantizeMatMul),
];
