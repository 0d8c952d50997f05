import { attrFloat, attrInt, type Graph, type Node, type ValueInfo } from '../../ir/graph.js';
import { allocStorage } from '../../ir/dtype.js';
import { msOp } from '../../ir/ops/contrib.js';
import type { HostTensor } from '../../ir/tensor.js';
import { fusionAttrs, GraphView } from './fusion-graph.js';

/**
 * 4-bit weights stay 4-bit on the GPU (issue #11 §1). onnxruntime's 4-bit QDQ quantizer writes a transformer weight
 * as DequantizeLinear(int4/uint4 constant w, scale, zero point) -> MatMul | Gemm with a float x. Run as written, the
 * DequantizeLinear kernel (kernels/quantize.ts) would hold w one code per 32-bit word (4 bytes per value, as many as
 * float32) and write a float32 copy of W into the arena on every run; fuse-qdq.ts does not take these groups (its x
 * is not a DequantizeLinear, or w is blocked, or it would pack the codes as int8, a byte each). This pass rewrites
 * each such pair into com.microsoft MatMulNBits (bits 4; kernels/matmul-nbits.ts), whose B keeps eight codes per u32
 * and is dequantized in registers inside the GEMM: resident weights are 1/8 of float32 plus the scales, and no float
 * copy of W exists anywhere on the GPU. Like the other fusions it rewrites only the graph the GPU runs; the CPU
 * backend runs the model as written and is the reference.
 *
 * MatMulNBits (runtime/ir/ops/quantize-contrib.ts) wants W^T as B [N, k_blocks, blob_size] (codes along K, element 2i
 * in the low nibble of byte i), scales [N * k_blocks] and unsigned codes with zero points packed two per byte, one
 * row per n. It is built here at plan time, once per weight (memoized on the initializers, so every plan of a session
 * shares one upload):
 *   - signed int4 maps to unsigned by +8 on codes and zero points ((q + 8) - (zp + 8) = q - zp, exactly);
 *   - an absent zero point is 0 (uint4) or 0 + 8 (int4), and the zero point input is left out when every block's is 8
 *     (MatMulNBits' default);
 *   - the DequantizeLinear scale may be per tensor, per output column (axis N) or blocked along K with any block_size
 *     that a power of two from 16 to 256 divides: MatMulNBits' block (chosen by blockFor) then lies inside one of
 *     the model's blocks, or repeats the per-tensor / per-column scale, so every weight keeps its exact scale and
 *     zero point. The codes past K in the last block are the block's zero point (their weight is exactly 0).
 * Forms left as written (then run by fuse-qdq.ts or the DequantizeLinear kernel): w not a 4-bit constant
 * (storage_bits = 4, set by the importer, importers/onnx/ops/quantize.ts), a non-constant scale or zero point, a
 * per-axis scale along K, blocks along N, a block_size no power of two from 16 to 256 divides, a dequantized weight
 * read by anything else or being a graph output, a Gemm with transA, alpha or beta other than 1, x of another type
 * than float32 or float16 (the scale's).
 *
 * Gemm's C becomes MatMulNBits' bias when it is a row ([N] or [1, N]); another C (a scalar, [M, 1], [M, N]) stays
 * as an Add after the product. MatMul -> Add(constant row bias) folds the bias in the same way. x may be anything,
 * including a DequantizeLinear of a quantized activation: that DequantizeLinear stays, and a QDQ group
 * DQ(x_q) -> MatMul(DQ(w4)) -> QuantizeLinear then runs as DequantizeLinear -> MatMulNBits -> QuantizeLinear, the
 * float computation onnxruntime's reference does (it runs before fuse-qdq.ts, which would pack the codes as int8).
 */

/** MatMulNBits' block sizes, largest first. */
const BLOCKS = [256, 128, 64, 32, 16];

/** MatMulNBits' packed operands for one weight, as uploaded. */
interface Packed {
  nb: number;
  kBlocks: number;
  b: HostTensor; // uint8 [N, k_blocks, nb / 2]
  scales: HostTensor; // the scale's dtype, [N * k_blocks]
  zeros?: HostTensor; // uint8 [N * ceil(k_blocks / 2)], absent when every zero point is 8
}

/** Where w's scale and zero point live, per (n, k). */
interface Layout {
  K: number;
  N: number;
  /** w is [N, K] (Gemm transB) rather than [K, N]. */
  transposed: boolean;
  /** 0: one scale; 1: one per column n; else the model's block along K. */
  kind: 'tensor' | 'axis' | 'block';
  block: number;
}

/**
 * MatMulNBits' block for a layout: among the powers of two 16..256 that put every block inside one of the model's
 * (any for per tensor / per axis), the one with the fewest resident bytes per column (codes with the last block's
 * padding, plus a 4-byte scale per block); ties go to the larger block.
 */
function blockFor(l: Layout): number | undefined {
  let best: number | undefined;
  let bytes = Infinity;
  for (const nb of BLOCKS) {
    if (l.kind === 'block' && l.block % nb !== 0) continue;
    const kb = Math.ceil(l.K / nb);
    const b = kb * (nb / 2 + 4);
    if (b < bytes) [best, bytes] = [nb, b];
  }
  return best;
}

/** B, scales and zero points for MatMulNBits (the file comment), or undefined when a code is not 4-bit. */
function pack(q: HostTensor, s: HostTensor, zp: HostTensor | undefined, l: Layout, nb: number): Packed | undefined {
  const { K, N } = l;
  const kBlocks = Math.ceil(K / nb);
  const blob = nb / 2;
  const off = q.dtype === 'int8' ? 8 : 0;
  const sBlocks = l.kind === 'block' ? Math.ceil(K / l.block) : 1;
  // Index of the model's scale (and zero point) of column n, MatMulNBits block kb.
  const at = (n: number, kb: number): number => {
    if (l.kind === 'tensor') return 0;
    if (l.kind === 'axis') return n;
    const j = Math.floor((kb * nb) / l.block);
    return l.transposed ? n * sBlocks + j : j * N + n; // scale [N, K / block] or [K / block, N]
  };
  const scales = allocStorage(s.dtype, N * kBlocks) as Float32Array | Uint16Array;
  const zeros = new Uint8Array(N * kBlocks);
  for (let n = 0; n < N; n++) {
    for (let kb = 0; kb < kBlocks; kb++) {
      const i = at(n, kb);
      const z = (zp ? Number(zp.data[i]) : 0) + off;
      if (!(z >= 0 && z <= 15)) return undefined;
      scales[n * kBlocks + kb] = (s.data as Float32Array | Uint16Array)[i]!;
      zeros[n * kBlocks + kb] = z;
    }
  }
  const rowBytes = kBlocks * blob;
  const b = new Uint8Array(N * rowBytes);
  const codes = q.data as Int8Array | Uint8Array;
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < kBlocks * nb; k++) {
      // k / nb * blob + (k % nb) / 2 is k / 2: a block's codes follow the previous block's.
      const u = k < K ? codes[l.transposed ? n * K + k : k * N + n]! + off : zeros[n * kBlocks + Math.floor(k / nb)]!;
      if (!(u >= 0 && u <= 15)) return undefined;
      b[n * rowBytes + (k >> 1)] = b[n * rowBytes + (k >> 1)]! | (u << ((k & 1) * 4));
    }
  }
  const packed: Packed = {
    nb,
    kBlocks,
    b: { dtype: 'uint8', shape: [N, kBlocks, blob], data: b },
    scales: { dtype: s.dtype, shape: [N * kBlocks], data: scales },
  };
  if (zeros.every((z) => z === 8)) return packed;
  const zpRow = Math.ceil(kBlocks / 2);
  const z = new Uint8Array(N * zpRow);
  for (let n = 0; n < N; n++) {
    for (let kb = 0; kb < kBlocks; kb++) z[n * zpRow + (kb >> 1)] = z[n * zpRow + (kb >> 1)]! | (zeros[n * kBlocks + kb]! << ((kb & 1) * 4));
  }
  return { ...packed, zeros: { dtype: 'uint8', shape: [N * zpRow], data: z } };
}

/** Packed operands memoized per quantized weight, scale and zero point (a re-specialized plan shares the upload). */
const memo = new WeakMap<HostTensor, { s: HostTensor; zp?: HostTensor; key: string; packed: Packed | undefined }[]>();

function packedFor(q: HostTensor, s: HostTensor, zp: HostTensor | undefined, l: Layout, nb: number): Packed | undefined {
  const key = `${l.transposed}:${l.kind}:${l.block}:${nb}`;
  const list = memo.get(q) ?? [];
  let hit = list.find((e) => e.s === s && e.zp === zp && e.key === key);
  if (!hit) {
    hit = { s, zp, key, packed: pack(q, s, zp, l, nb) };
    memo.set(q, [...list, hit]);
  }
  return hit.packed;
}

/** The layout of DequantizeLinear `dq`'s scale over its [K, N] (or [N, K]) weight, or undefined when not fusable. */
function layoutOf(dq: Node, q: HostTensor, s: HostTensor, transposed: boolean): Layout | undefined {
  const [K, N] = (transposed ? [q.shape[1], q.shape[0]] : q.shape) as [number, number];
  const block = attrInt(dq, 'block_size', 0);
  const rawAxis = attrInt(dq, 'axis', 1);
  const axis = rawAxis < 0 ? rawAxis + 2 : rawAxis;
  const [kAxis, nAxis] = transposed ? [1, 0] : [0, 1];
  if (block === 0 && s.data.length === 1) return { K, N, transposed, kind: 'tensor', block: 0 };
  if (block === 0) return axis === nAxis && s.data.length === N ? { K, N, transposed, kind: 'axis', block: 0 } : undefined;
  const want = transposed ? [N, Math.ceil(K / block)] : [Math.ceil(K / block), N];
  if (axis !== kAxis || s.shape.length !== 2 || s.shape[0] !== want[0] || s.shape[1] !== want[1]) return undefined;
  return { K, N, transposed, kind: 'block', block };
}

/** One rewrite: the nodes it removes, the nodes it puts in place of the last, the constants and values it adds. */
interface Rewrite {
  removed: Node[];
  nodes: Node[];
  initializers: Record<string, HostTensor>;
  values: Record<string, ValueInfo>;
}

/** The rewrite of product `p` (MatMul | Gemm) reading a 4-bit DequantizeLinear weight, or undefined. */
function rewriteAt(view: GraphView, p: Node): Rewrite | undefined {
  if (p.domain !== '' || (p.op !== 'MatMul' && p.op !== 'Gemm') || p.outputs.length !== 1) return undefined;
  const [x, w, c] = p.inputs;
  const dq = view.made(w, 'DequantizeLinear');
  if (!dq || attrInt(dq, 'storage_bits', 0) !== 4 || view.only(w) !== p) return undefined;
  const g = view.g;
  const [q, s, zp] = [dq.inputs[0]!, dq.inputs[1]!, dq.inputs[2]].map((v) => (v ? g.initializers[v] : undefined));
  if (!q || !s || (dq.inputs[2] && !zp) || q.shape.length !== 2 || (q.dtype !== 'int8' && q.dtype !== 'uint8')) return undefined;
  const dtype = view.info(x!)?.dtype;
  if ((dtype !== 'float32' && dtype !== 'float16') || s.dtype !== dtype) return undefined;
  const gemm = p.op === 'Gemm';
  if (gemm && (attrInt(p, 'transA', 0) !== 0 || attrFloat(p, 'alpha', 1) !== 1 || (c && attrFloat(p, 'beta', 1) !== 1))) return undefined;
  const l = layoutOf(dq, q, s, gemm && attrInt(p, 'transB', 0) !== 0);
  const xs = view.shape(x);
  if (!l || !xs || xs.length < 1 || (gemm && xs.length !== 2) || xs[xs.length - 1] !== l.K) return undefined;
  const nb = blockFor(l);
  const packed = nb === undefined ? undefined : packedFor(q, s, zp, l, nb);
  if (!packed) return undefined;

  // The bias: Gemm's row C, or MatMul -> Add(row bias); any other C stays as an Add after the product.
  const y = p.outputs[0]!;
  const isRow = (v: string | undefined) => {
    const sh = view.shape(v);
    return !!sh && view.info(v!)?.dtype === dtype && sh[sh.length - 1] === l.N && sh.length <= 2 && sh.slice(0, -1).every((d) => d === 1);
  };
  const removed = [dq, p];
  let out = y;
  let bias = gemm && c && isRow(c) ? c : undefined;
  let after: Node | undefined;
  if (gemm && c && !bias) {
    out = `${y}/matmul-nbits`;
    after = { name: `${p.name}/bias`, op: 'Add', domain: '', inputs: [out, c], outputs: [y], attrs: {} };
  } else if (!gemm) {
    const add = view.only(y);
    const other = add?.op === 'Add' && add.domain === '' && add.inputs.length === 2 ? (add.inputs[0] === y ? add.inputs[1] : add.inputs[0]) : undefined;
    const so = add && view.shape(add.outputs[0]);
    // A constant row bias, and the Add must not broadcast the product (a [1, N] bias over a 1-D product would).
    if (other && Object.hasOwn(g.initializers, other) && isRow(other) && so && so.length === view.shape(y)?.length) {
      bias = other;
      removed.push(add!);
      out = add!.outputs[0]!;
    }
  }
  const base = `edgekit/nbits/${dq.outputs[0]}`;
  const initializers: Record<string, HostTensor> = { [`${base}/B`]: packed.b, [`${base}/scales`]: packed.scales };
  if (packed.zeros) initializers[`${base}/zero_points`] = packed.zeros;
  const inputs = [x!, `${base}/B`, `${base}/scales`, packed.zeros ? `${base}/zero_points` : '', '', bias ?? ''];
  while (inputs[inputs.length - 1] === '') inputs.pop();
  const node: Node = {
    name: `${p.name}/nbits`,
    op: msOp('MatMulNBits'),
    domain: '',
    inputs,
    outputs: [out],
    attrs: {
      K: { type: 'int', value: l.K },
      N: { type: 'int', value: l.N },
      bits: { type: 'int', value: 4 },
      block_size: { type: 'int', value: packed.nb },
      ...fusionAttrs('int4', removed),
    },
  };
  const values: Record<string, ValueInfo> = {};
  for (const [k, t] of Object.entries(initializers)) values[k] = { name: k, dtype: t.dtype, shape: [...t.shape] };
  if (after) values[out] = { ...view.info(y)!, name: out };
  return { removed, nodes: after ? [node, after] : [node], initializers, values };
}

/** The graph with every 4-bit DequantizeLinear weight of a MatMul / Gemm read by MatMulNBits; `g` itself when none. */
export function fuseInt4Weights(g: Graph): Graph {
  const view = new GraphView(g);
  const rewrites = g.nodes.map((n) => rewriteAt(view, n)).filter((r): r is Rewrite => !!r);
  if (!rewrites.length) return g;
  // Each rewrite's nodes take the place of its last removed node (the product or its Add): x and the bias are
  // computed by then, and the constants need no producer.
  const index = new Map(g.nodes.map((n, i) => [n, i]));
  const place = new Map<Node, Node[]>();
  const dropped = new Set<Node>();
  for (const r of rewrites) {
    for (const n of r.removed) dropped.add(n);
    place.set(r.removed.reduce((a, b) => (index.get(a)! > index.get(b)! ? a : b)), r.nodes);
  }
  const nodes = g.nodes.flatMap((n) => place.get(n) ?? (dropped.has(n) ? [] : [n]));
  return {
    ...g,
    nodes,
    initializers: Object.assign({ ...g.initializers }, ...rewrites.map((r) => r.initializers)),
    values: Object.assign({ ...g.values }, ...rewrites.map((r) => r.values)),
  };
}
