import type { Node } from '../../../runtime/ir/graph.js';
import type { PNode } from '../proto.js';
import type { AdapterContext, OpAdapter } from './adapter.js';
import { MAX_OPSET } from './direct.js';
import { FOUR_BIT_TENSORS } from '../tensor.js';

/**
 * Linear quantization ops (issue #11 §1). The IR holds their opset-21 form; every older version is a subset of it:
 * QuantizeLinear/DequantizeLinear-10 only have per-tensor scales (the IR's `axis` default 1 never applies to a
 * scalar scale), 13 added `axis`, 19 `saturate` (float8 only, which EdgeKit has no storage for), 21 `block_size`
 * and `output_dtype`. QLinearMatMul-21 only added scale and float8 types. So the older nodes import unchanged,
 * after a structural check that they do not use what their version lacks. Opsets 22-23 import the same form (their
 * additions are float4 types, which EdgeKit has no storage for); the later attributes DequantizeLinear
 * `output_dtype` and QuantizeLinear `precision` are refused by name.
 */

const attr = (n: PNode, name: string) => (n.attribute ?? []).some((a) => a.name === name);

/** QuantizeLinear/DequantizeLinear attributes that appeared after opset 10, checked against the file's opset. */
function checkQdq(n: PNode, opset: number): string | undefined {
  if (opset < 13 && attr(n, 'axis')) return `'axis' is not an attribute of ${n.opType}-${opset} (per-axis scales need opset 13)`;
  if (opset < 21 && (attr(n, 'block_size') || attr(n, 'output_dtype'))) return `'block_size'/'output_dtype' need opset 21`;
  // Later versions' attributes: a DequantizeLinear output type other than the scale's, a separate division precision.
  if (n.opType === 'DequantizeLinear' && attr(n, 'output_dtype')) return `DequantizeLinear 'output_dtype' is not supported (the output takes the scale's type)`;
  if (attr(n, 'precision')) return `QuantizeLinear 'precision' is not supported (the division runs in the scale's type)`;
  return undefined;
}

/** `n` with storage_bits = 4 when its input `i` is a constant decoded from a 4-bit payload (tensor.ts), else `n`. */
function fourBit(n: Node, ctx: AdapterContext, i: number): Node {
  const t = n.inputs[i] ? ctx.constantValue(n.inputs[i]!) : undefined;
  return t && FOUR_BIT_TENSORS.has(t) ? { ...n, attrs: { ...n.attrs, storage_bits: { type: 'int', value: 4 } } } : n;
}

export const QUANTIZE_ADAPTERS: OpAdapter[] = [
  {
    op: 'QuantizeLinear',
    since: 10,
    until: MAX_OPSET,
    check: checkQdq,
    // A 4-bit zero point (unpacked to int8/uint8 by tensor.ts) marks a 4-bit output: saturate to its range.
    map: (n, ctx) => [fourBit(n, ctx, 2)],
    sameForm: true,
  },
  {
    op: 'DequantizeLinear',
    since: 10,
    until: MAX_OPSET,
    check: checkQdq,
    // A 4-bit constant x (a weight) is marked so the WebGPU plan can keep its nibbles packed (fuse-int4.ts).
    map: (n, ctx) => [fourBit(n, ctx, 0)],
    sameForm: true,
  },
  { op: 'DynamicQuantizeLinear', since: 11, until: MAX_OPSET },
  { op: 'MatMulInteger', since: 10, until: MAX_OPSET },
  { op: 'ConvInteger', since: 10, until: MAX_OPSET },
  { op: 'QLinearMatMul', since: 10, until: MAX_OPSET },
  { op: 'QLinearConv', since: 10, until: MAX_OPSET },
];
