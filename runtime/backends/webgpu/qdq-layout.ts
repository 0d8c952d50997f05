import type { Attr, Graph, Node } from '../../ir/graph.js';
import { attrInt } from '../../ir/graph.js';
import { nodeReads } from '../../ir/validate.js';
import { isFourBit } from '../../ir/ops/quantize.js';
import { QDQ_ADD } from './kernels/qdq-add.js';
import { QDQ_CONV } from './kernels/qdq-gemm.js';

/**
 * The packed int8 activation layout "c4" between the fused int8 kernels (issue #11 §4; docs/quantization.md). After
 * fuse-qdq.ts an activation flowing from one QdqConv to the next is held one code per 32-bit word (storage.ts widens
 * int8/uint8), so int8 moves as many activation bytes, and does as many loads, as float32. This pass switches such a
 * value to the c4 layout:
 *   a quantized value of logical shape [N, C, ...spatial] and type T becomes a uint32 value [N, ceil(C / 4), ...spatial];
 *   word (n, c4, s) holds channel 4 c4 + j in byte j as its int8-domain code (q - 128 for uint8, q for int8: what
 *   quant-dot.ts unpack_i8 returns), and bytes of channels >= C hold the zero point in that domain (they dequantize
 *   to 0).
 * Its producer gets y_layout = 'c4' and y_qtype = T, each reader x_layout = 'c4' and x_qtype = T (QdqAdd's inputs:
 * a_layout / b_layout with a_qtype / b_qtype; absent = one code per word of the value's own dtype).
 * kernels/qdq-gemm.ts, kernels/qdq-depthwise.ts and kernels/qdq-add.ts read and write it.
 *
 * A value is switched only when its producer and every one of its readers are in C4_OPS for that operand (an op,
 * operand index and the condition under which its kernels handle c4 on every adapter), it is not a graph input or
 * output, and its shape is static with C at axis 1. So a c4 value never leaves the GPU plan's graph, and the CPU
 * backend, which runs the model as written, never sees one. setQdqPacking(false) turns the pass off: tests compare
 * the packed plan with the unpacked one bit for bit.
 */

let enabled = true;

/** Plans made from now on pack (true, the default) or keep every activation one code per word (false; tests). */
export function setQdqPacking(on: boolean): void {
  enabled = on;
}

/**
 * Which operands of an op may be c4 (operand index -> the prefix of its layout attributes: x, y, ...), and when its
 * kernels handle c4 for the operand with that prefix.
 */
interface C4Op {
  inputs: Record<number, string>;
  outputs: Record<number, string>;
  accepts(g: Graph, n: Node, prefix: string): boolean;
}

/**
 * QdqConv: every form of kernels/qdq-gemm.ts and qdq-depthwise.ts (depthwise, direct, tiled, 1x1) reads and writes
 * c4, on CPU and GPU adapters alike. A c4 x needs whole words per group (one group, or 4 | C / group) and a c4 y a
 * block of channels that is a multiple of 4 (one group, or 4 | M / group); a depthwise conv takes both (four channels
 * per invocation).
 */
function convAccepts(g: Graph, n: Node, prefix: string): boolean {
  const w = g.initializers[n.inputs[3] ?? ''];
  if (!w || w.shape.length < 3) return false;
  const group = attrInt(n, 'group', 1);
  const [M, Cg] = w.shape as [number, number];
  const depthwise = group > 1 && Cg === 1 && M === group;
  if (group === 1 || depthwise) return true;
  return (prefix === 'x' ? Cg : M / group) % 4 === 0;
}

/**
 * QuantizeLinear (kernels/quantize.ts quantizeC4Program) writes c4 when it quantizes per tensor to 8 bits: a model's
 * float input quantized for its first conv then reaches it four channels per word (a 3-channel image: one word per
 * pixel and tap instead of three codes).
 */
function quantizeAccepts(g: Graph, n: Node): boolean {
  if (isFourBit(n)) return false;
  const s = n.inputs[1] ? g.values[n.inputs[1]]?.shape : undefined;
  return !!s && s.every((d) => d === 1);
}

const C4_OPS: Record<string, C4Op> = {
  QuantizeLinear: { inputs: {}, outputs: { 0: 'y' }, accepts: quantizeAccepts },
  [QDQ_CONV]: { inputs: { 0: 'x' }, outputs: { 0: 'y' }, accepts: convAccepts },
  // QdqAdd (fuse-qdq-add.ts, kernels/qdq-add.ts): one invocation per word of four channels, any layout mix.
  [QDQ_ADD]: { inputs: { 0: 'a', 3: 'b' }, outputs: { 0: 'y' }, accepts: () => true },
};

const QUANTIZED = new Set(['int8', 'uint8']);

/** The graph with every value the int8 kernels can pass packed switched to c4; `g` itself when none is. */
export function packQdqLayouts(g: Graph): Graph {
  if (!enabled) return g;
  const producer = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) if (o) producer.set(o, n);
  // Readers are the nodes that reach a graph output (a reverse sweep, as removeDeadCode does): a DequantizeLinear two
  // fused groups shared is left unread by the fusions and dropped by fuseForGpu after this pass, so it must not keep
  // a value unpacked. nodeReads includes what a node's subgraphs read from outside (no such node is in C4_OPS).
  const readers = new Map<string, Node[]>();
  const needed = new Set(g.outputs.map((o) => o.name));
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i]!;
    if (!n.outputs.some((o) => o && needed.has(o))) continue;
    for (const v of nodeReads(n)) {
      needed.add(v);
      readers.set(v, [...(readers.get(v) ?? []), n]);
    }
  }
  const outside = new Set([...g.inputs, ...g.outputs].map((v) => v.name));
  // Every operand of n that is v has a c4 prefix in the table, and the op accepts c4 there.
  const handles = (n: Node, v: string, output: boolean) => {
    const op = n.domain === '' ? C4_OPS[n.op] : undefined;
    if (!op) return false;
    const prefixes = output ? op.outputs : op.inputs;
    return (output ? n.outputs : n.inputs).every((name, i) => name !== v || (prefixes[i] !== undefined && op.accepts(g, n, prefixes[i]!)));
  };
  const packed = new Map<string, string>(); // value -> its quantized type
  for (const [v, p] of producer) {
    const info = g.values[v];
    const shape = info?.shape;
    if (!info || !QUANTIZED.has(info.dtype) || !shape || shape.length < 2 || !shape.every((d) => typeof d === 'number')) continue;
    if (outside.has(v) || Object.hasOwn(g.initializers, v)) continue;
    const rs = readers.get(v) ?? [];
    if (rs.length && handles(p, v, true) && rs.every((r) => handles(r, v, false))) packed.set(v, info.dtype);
  }
  if (!packed.size) return g;
  const values = { ...g.values };
  for (const v of packed.keys()) {
    const [N, C, ...spatial] = g.values[v]!.shape as number[];
    values[v] = { ...g.values[v]!, dtype: 'uint32', shape: [N!, Math.ceil(C! / 4), ...spatial] };
  }
  const attrs = (names: string[], prefixes: Record<number, string>): Record<string, Attr> => Object.fromEntries(names.flatMap((v, i) => {
    const t = packed.get(v);
    const prefix = prefixes[i];
    return t && prefix ? [[`${prefix}_layout`, { type: 'string', value: 'c4' }], [`${prefix}_qtype`, { type: 'string', value: t }]] : [];
  }));
  const nodes = g.nodes.map((n) => {
    const op = n.domain === '' ? C4_OPS[n.op] : undefined;
    const added = op ? { ...attrs(n.inputs, op.inputs), ...attrs(n.outputs, op.outputs) } : {};
    return Object.keys(added).length ? { ...n, attrs: { ...n.attrs, ...added } } : n;
  });
  return { ...g, nodes, values };
}
