import { InvalidArgumentError, ModelFormatError } from '../../runtime/errors.js';
import type { Attr, Graph } from '../../runtime/ir/graph.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { P, toNum, utf8, utf8Encode, type PAttr, type PGraph, type PSparseTensor, type PTensor } from './proto.js';
import { tensorToProto } from './tensor.js';
import { decodeValueType, encodeValueType } from './value-types.js';

const T = P.AttributeProto.AttributeType;

/** Hooks the attribute decoder needs for nested payloads (tensor payloads and subgraphs decode in graph.ts). */
export interface AttrDecodeHooks {
  tensor(t: PTensor): HostTensor;
  /** Sparse tensors are densified (the IR has no sparse tensors). */
  sparse(s: PSparseTensor): HostTensor;
  graph(g: PGraph): Graph;
}

/**
 * AttributeProto → IR Attr (ONNX IR "Attributes"). STRING payloads are bytes, read as UTF-8. Models written before
 * AttributeProto.type existed leave it unset (UNDEFINED); then the field that is present decides.
 */
export function decodeAttribute(a: PAttr, hooks: AttrDecodeHooks, where: string): Attr {
  const type = a.type || inferType(a);
  switch (type) {
    case T.FLOAT: return { type: 'float', value: a.f ?? 0 };
    case T.INT: return { type: 'int', value: toNum(a.i, `attribute '${a.name}'`) };
    case T.STRING: return { type: 'string', value: utf8.decode(a.s ?? new Uint8Array()) };
    case T.TENSOR: return { type: 'tensor', value: hooks.tensor(a.t ?? {}) };
    case T.GRAPH: return { type: 'graph', value: hooks.graph(a.g ?? {}) };
    case T.FLOATS: return { type: 'floats', value: [...(a.floats ?? [])] };
    case T.INTS: return { type: 'ints', value: (a.ints ?? []).map((v) => toNum(v, `attribute '${a.name}'`)) };
    case T.STRINGS: return { type: 'strings', value: (a.strings ?? []).map((s) => utf8.decode(s)) };
    case T.TENSORS: return { type: 'tensors', value: (a.tensors ?? []).map((t) => hooks.tensor(t)) };
    case T.GRAPHS: return { type: 'graphs', value: (a.graphs ?? []).map((g) => hooks.graph(g)) };
    case T.SPARSE_TENSOR: return { type: 'tensor', value: hooks.sparse(a.sparseTensor ?? {}) };
    case T.SPARSE_TENSORS: return { type: 'tensors', value: (a.sparseTensors ?? []).map((s) => hooks.sparse(s)) };
    // Optional's `type` (value-types.ts: tensor, sequence or optional types).
    case T.TYPE_PROTO: return { type: 'type', value: decodeValueType(a.tp, a.name ?? '', `${where}, attribute '${a.name}'`) };
    default: {
      const what = type === T.TYPE_PROTO || type === T.TYPE_PROTOS ? 'a type' : `type ${type}`;
      throw new ModelFormatError(`${where}: attribute '${a.name}' holds ${what}, which EdgeKit does not support.`, { attribute: a.name });
    }
  }
}

const has = (a: PAttr, field: keyof PAttr) => Object.prototype.hasOwnProperty.call(a, field) && a[field] !== null && a[field] !== undefined;

/** The type an untyped attribute has: the one field present (protobufjs sets own properties only for those). */
function inferType(a: PAttr): number {
  if (a.floats?.length) return T.FLOATS;
  if (a.ints?.length) return T.INTS;
  if (a.strings?.length) return T.STRINGS;
  if (a.tensors?.length) return T.TENSORS;
  if (a.graphs?.length) return T.GRAPHS;
  if (a.sparseTensors?.length) return T.SPARSE_TENSORS;
  if (has(a, 't')) return T.TENSOR;
  if (has(a, 'g')) return T.GRAPH;
  if (has(a, 'sparseTensor')) return T.SPARSE_TENSOR;
  if (has(a, 's')) return T.STRING;
  if (has(a, 'i')) return T.INT;
  if (has(a, 'f')) return T.FLOAT;
  if (has(a, 'tp')) return T.TYPE_PROTO;
  // Nothing present: an empty list (all repeated fields look alike when empty).
  return T.INTS;
}

/**
 * A JS number for an int64 field. Beyond 2^53 (INT64_MAX sentinels that passed through a double) protobufjs would
 * wrap 2^63 to INT64_MIN, so such values go as decimal strings, saturated to the int64 range.
 */
function int64(v: number): number | string {
  if (Number.isSafeInteger(v)) return v;
  if (!Number.isFinite(v)) throw new InvalidArgumentError(`Cannot export the non-finite integer attribute value ${v}.`);
  const b = BigInt(Math.trunc(v));
  const max = (1n << 63n) - 1n;
  return String(b > max ? max : b < -max - 1n ? -max - 1n : b);
}

/** IR Attr → AttributeProto, for the exporter. */
export function encodeAttribute(name: string, a: Attr, graph: (g: Graph) => PGraph): PAttr {
  switch (a.type) {
    case 'float': return { name, type: T.FLOAT, f: a.value };
    case 'int': return { name, type: T.INT, i: int64(a.value) };
    case 'string': return { name, type: T.STRING, s: utf8Encode.encode(a.value) };
    case 'tensor': return { name, type: T.TENSOR, t: tensorToProto('', a.value) };
    case 'graph': return { name, type: T.GRAPH, g: graph(a.value) };
    case 'floats': return { name, type: T.FLOATS, floats: a.value };
    case 'ints': return { name, type: T.INTS, ints: a.value.map(int64) };
    case 'strings': return { name, type: T.STRINGS, strings: a.value.map((s) => utf8Encode.encode(s)) };
    case 'tensors': return { name, type: T.TENSORS, tensors: a.value.map((t) => tensorToProto('', t)) };
    case 'graphs': return { name, type: T.GRAPHS, graphs: a.value.map(graph) };
    case 'type': return { name, type: T.TYPE_PROTO, tp: encodeValueType(a.value) };
  }
}
