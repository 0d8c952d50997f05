import { InvalidArgumentError } from '../../runtime/errors.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr, Graph, Node } from '../../runtime/ir/graph.js';
import { isFourBit } from '../../runtime/ir/ops/quantize.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import type { PTensor } from './proto.js';

/**
 * 4-bit quantization written back as standard ONNX (issue #11). The IR holds int4 / uint4 values unpacked as int8 /
 * uint8 and marks the quantization nodes that work on them with the non-standard attribute `storage_bits = 4`
 * (runtime/ir/ops/quantize.ts); onnxruntime refuses that attribute, and writing the constants as int8 would change
 * the file's types. So before the exporter encodes a graph it asks `fourBitForm` which values are 4-bit, and writes
 * those as ONNX INT4 (22, from int8) / UINT4 (21, from uint8):
 * - a DequantizeLinear with storage_bits = 4 reads a 4-bit x and zero point; a QuantizeLinear that is 4-bit
 *   (storage_bits = 4 or output_dtype 21/22) reads a 4-bit zero point and writes a 4-bit output, which by the
 *   spec's type inference is what makes it 4-bit; without a zero point it gets output_dtype instead. A
 *   DequantizeLinear reading a 4-bit x (from such a QuantizeLinear) reads its zero point as 4-bit too, as x and the
 *   zero point share one type.
 * - the ops that carry int4 unchanged since opset 21 (Identity, Reshape, Transpose, Squeeze, Unsqueeze, Flatten)
 *   pass a 4-bit data input on to their output.
 * - an initializer is 4-bit when one of its readers above needs it so (it is then written packed, two values per
 *   byte, element 2i in the low nibble: onnx.proto TensorProto, "int4 ... packed"). Every other reader of a 4-bit
 *   value (an op without int4 in its type constraints, a DequantizeLinear whose x is 8-bit) reads it through an
 *   inserted Cast to int8 / uint8, and a 4-bit reader of an 8-bit value through a Cast to int4 / uint4: both exact,
 *   as the values lie in the 4-bit range. A subgraph output that is 4-bit is cast to 8 bits, because the outer
 *   graph reads the node's outputs as 8-bit; the main graph's outputs keep their 4-bit type.
 * storage_bits is never written. Graph inputs stay as the IR declares them (the importer keeps no record of an int4
 * input; it is an int8 tensor at the API, docs/quantization.md).
 *
 * Below opset 21 ONNX has no 4-bit types, and exportOnnx only gets there when the caller asks for that opset, so
 * the exporter does not raise it: a 4-bit DequantizeLinear constant is then written as int8 / uint8 values, which
 * dequantize exactly as before, and a 4-bit QuantizeLinear, whose saturation to the 4-bit range no older
 * QuantizeLinear can express, is refused with an InvalidArgumentError.
 */

/** The first opset with INT4 / UINT4 (QuantizeLinear-21, DequantizeLinear-21, Cast-21, ...). */
export const FOUR_BIT_OPSET = 21;

/** Ops whose data input (0) may be int4 / uint4 at opset 21 and whose output takes its type. */
const PASS_THROUGH = new Set(['Identity', 'Reshape', 'Transpose', 'Squeeze', 'Unsqueeze', 'Flatten']);

/** ONNX data type codes: 4-bit and 8-bit, by the IR dtype that holds them. */
const FOUR_CODE: Partial<Record<DType, number>> = { uint8: 21, int8: 22 };
const EIGHT_CODE: Record<number, number> = { 21: 2, 22: 3 };

export interface FourBitForm {
  /** The graph to encode: storage_bits dropped, Casts inserted where a reader needs another width. */
  graph: Graph;
  /** ONNX data type (21 or 22) of every 4-bit value, of this graph and its subgraphs. */
  codes: Map<string, number>;
}

/** Whether a node works on 4-bit values in the IR's sense (runtime/ir/ops/quantize.ts). */
const storageBits = (n: Node) => n.attrs.storage_bits?.type === 'int' && n.attrs.storage_bits.value === 4;
const fourBitQuantize = (n: Node) => !n.domain && n.op === 'QuantizeLinear' && isFourBit(n);
const fourBitDequantize = (n: Node) => !n.domain && n.op === 'DequantizeLinear' && storageBits(n);

function withoutStorageBits(attrs: Record<string, Attr>): Record<string, Attr> {
  const { storage_bits: _dropped, ...rest } = attrs;
  return rest;
}

function subgraphs(n: Node): Graph[] {
  return Object.values(n.attrs).flatMap((a) => (a.type === 'graph' ? [a.value] : a.type === 'graphs' ? a.value : []));
}

/** Below opset 21: storage_bits dropped everywhere, a 4-bit QuantizeLinear refused (see the file comment). */
function eightBitOnly(g: Graph, opset: number): Graph {
  const nodes = g.nodes.map((n) => {
    if (fourBitQuantize(n)) {
      throw new InvalidArgumentError(`exportOnnx: QuantizeLinear '${n.name}' produces 4-bit values, which ONNX has only from opset ${FOUR_BIT_OPSET}; export at opset ${FOUR_BIT_OPSET} or newer (asked: ${opset}).`, { opset, node: n.name });
    }
    return { ...n, attrs: mapSubgraphs(withoutStorageBits(n.attrs), (s) => eightBitOnly(s, opset)) };
  });
  return { ...g, nodes };
}

function mapSubgraphs(attrs: Record<string, Attr>, f: (g: Graph) => Graph): Record<string, Attr> {
  return Object.fromEntries(Object.entries(attrs).map(([k, a]): [string, Attr] => {
    if (a.type === 'graph') return [k, { type: 'graph', value: f(a.value) }];
    if (a.type === 'graphs') return [k, { type: 'graphs', value: a.value.map(f) }];
    return [k, a];
  }));
}

/** Every value name of the graph tree, so that inserted Casts get fresh names. */
function allNames(g: Graph, into: Set<string>): Set<string> {
  for (const v of [...g.inputs, ...g.outputs]) into.add(v.name);
  for (const k of Object.keys(g.initializers)) into.add(k);
  for (const n of g.nodes) {
    for (const o of n.outputs) into.add(o);
    into.add(n.name);
    for (const s of subgraphs(n)) allNames(s, into);
  }
  return into;
}

export function fourBitForm(graph: Graph, opset: number): FourBitForm {
  const codes = new Map<string, number>();
  if (opset < FOUR_BIT_OPSET) return { graph: eightBitOnly(graph, opset), codes };
  const names = allNames(graph, new Set());
  const fresh = (base: string) => {
    let name = base;
    for (let i = 1; names.has(name); i++) name = `${base}_${i}`;
    names.add(name);
    return name;
  };
  return { graph: rewrite(graph, true, codes, fresh), codes };
}

function rewrite(g: Graph, main: boolean, codes: Map<string, number>, fresh: (base: string) => string): Graph {
  const dtypeOf = (v: string): DType | undefined => g.initializers[v]?.dtype ?? g.values[v]?.dtype ?? g.inputs.find((i) => i.name === v)?.dtype;
  const fourCode = (v: string, reader: Node): number => {
    const code = FOUR_CODE[dtypeOf(v) as DType];
    if (!code) throw new InvalidArgumentError(`exportOnnx: ${reader.op} '${reader.name}' reads '${v}' as 4-bit, but its type is ${dtypeOf(v) ?? 'unknown'}, not int8 / uint8.`, { value: v });
    return code;
  };
  /** Whether input i of n must be 4-bit (true), 8-bit (false), or takes what it is given ('any'). */
  const wants = (n: Node, i: number): boolean | 'any' => {
    if (n.domain) return false;
    if (n.op === 'QuantizeLinear') return i === 2 && fourBitQuantize(n);
    if (n.op === 'DequantizeLinear') {
      if (storageBits(n)) return i === 0 || i === 2;
      if (i === 0) return 'any';
      return i === 2 && codes.has(n.inputs[0]!);
    }
    return PASS_THROUGH.has(n.op) && i === 0 ? 'any' : false;
  };

  // Which values are 4-bit: outputs in node order (the IR is topologically sorted), initializers when a reader
  // needs them so. Both only grow (a DequantizeLinear's zero point follows its x), so this reaches a fixpoint.
  for (let changed = true; changed;) {
    changed = false;
    const mark = (v: string, code: number) => {
      if (!codes.has(v)) changed = true;
      codes.set(v, code);
    };
    for (const n of g.nodes) {
      n.inputs.forEach((v, i) => {
        if (v && g.initializers[v] && wants(n, i) === true) mark(v, fourCode(v, n));
      });
      const y = n.outputs[0];
      if (!y || n.domain) continue;
      if (fourBitQuantize(n)) mark(y, quantizeCode(n, codes, dtypeOf));
      else if (PASS_THROUGH.has(n.op) && codes.has(n.inputs[0]!)) mark(y, codes.get(n.inputs[0]!)!);
    }
  }

  const nodes: Node[] = [];
  const casts = new Map<string, string>();
  /** `v` converted to the other width by a Cast (one per value and width); `reader` names the 4-bit reader in errors. */
  const cast = (v: string, toFour: boolean, reader?: Node): string => {
    const key = `${v}\u0000${toFour}`;
    let out = casts.get(key);
    if (out === undefined) {
      const to = toFour ? fourCode(v, reader!) : EIGHT_CODE[codes.get(v)!]!;
      out = fresh(`${v}_${toFour ? (to === 22 ? 'int4' : 'uint4') : to === 3 ? 'int8' : 'uint8'}`);
      if (toFour) codes.set(out, to);
      nodes.push({ name: fresh(`Cast_${out}`), op: 'Cast', domain: '', inputs: [v], outputs: [out], attrs: { to: { type: 'int', value: to } } });
      casts.set(key, out);
    }
    return out;
  };
  for (const n of g.nodes) {
    const inputs = n.inputs.map((v, i) => {
      const want = wants(n, i);
      return !v || want === 'any' || want === codes.has(v) ? v : cast(v, want, n);
    });
    let attrs = mapSubgraphs(withoutStorageBits(n.attrs), (s) => rewrite(s, false, codes, fresh));
    // A 4-bit QuantizeLinear without a zero point says its output type by output_dtype (QuantizeLinear-21).
    if (fourBitQuantize(n) && !n.inputs[2] && n.outputs[0]) attrs = { ...attrs, output_dtype: { type: 'int', value: codes.get(n.outputs[0])! } };
    nodes.push({ ...n, inputs, attrs });
  }
  const outputs = g.outputs.map((o) => {
    if (main || !codes.has(o.name)) return o;
    const name = cast(o.name, false);
    return { ...(g.values[o.name] ?? o), name };
  });
  return { ...g, nodes, outputs };
}

/** The 4-bit code of a QuantizeLinear's output: output_dtype's, else its zero point's, else uint4 (the default uint8). */
function quantizeCode(n: Node, codes: Map<string, number>, dtypeOf: (v: string) => DType | undefined): number {
  const declared = n.attrs.output_dtype;
  if (declared?.type === 'int' && (declared.value === 21 || declared.value === 22)) return declared.value;
  const zp = n.inputs[2];
  if (!zp) return 21;
  return codes.get(zp) ?? FOUR_CODE[dtypeOf(zp) as DType] ?? 21;
}

/**
 * A 4-bit tensor (held as int8 / uint8, tensor.ts) as a TensorProto of type INT4 (22) / UINT4 (21): raw_data packs
 * two values per byte, element 2i in the low nibble, the last high nibble zero when the count is odd.
 */
export function fourBitTensorToProto(name: string, t: HostTensor, code: number): PTensor {
  const [lo, hi] = code === 22 ? [-8, 7] : [0, 15];
  const d = t.data as Int8Array | Uint8Array;
  const packed = new Uint8Array(Math.ceil(d.length / 2));
  for (let i = 0; i < d.length; i++) {
    const v = d[i]!;
    if (v < lo || v > hi) {
      throw new InvalidArgumentError(`exportOnnx: '${name}' is written as ${code === 22 ? 'int4' : 'uint4'} but holds ${v} at element ${i}, outside ${lo}..${hi}.`, { name, index: i, value: v });
    }
    packed[i >> 1]! |= (v & 15) << ((i & 1) * 4);
  }
  return { name, dims: [...t.shape], dataType: code, rawData: packed };
}
