import { ModelFormatError } from '../../runtime/errors.js';
import type { Attr, Graph } from '../../runtime/ir/graph.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { P, toNum, utf8, utf8Encode, type PAttr, type PGraph, type PTensor } from './proto.js';
import { tensorToProto } from './tensor.js';

const T = P.AttributeProto.AttributeType;

/** Hooks the attribute decoder needs for nested payloads (tensor payloads and subgraphs decode in graph.ts). */
export interface AttrDecodeHooks {
  tensor(t: PTensor): HostTensor;
  graph(g: PGraph): Graph;
}

/**
 * AttributeProto → IR Attr. Old models leave `type` unset; then the populated field decides (the order matters
 * only for empty lists, which become an empty `ints`).
 */
export function decodeAttribute(a: PAttr, hooks: AttrDecodeHooks, where: string): Attr {
  const type = a.type || inferType(a);
  switch (type) {
    case T.FLOAT: return { type: 'float', value: a.f ?? 0 };
    case T.INT: return { type: 'int', value: toNum(a.i) };
    case T.STRING: return { type: 'string', value: utf8.decode(a.s ?? new Uint8Array()) };
    case T.TENSOR: return { type: 'tensor', value: hooks.tensor(a.t ?? {}) };
    case T.GRAPH: return { type: 'graph', value: hooks.graph(a.g ?? {}) };
    case T.FLOATS: return { type: 'floats', value: [...(a.floats ?? [])] };
    case T.INTS: return { type: 'ints', value: (a.ints ?? []).map((v) => toNum(v)) };
    case T.STRINGS: return { type: 'strings', value: (a.strings ?? []).map((s) => utf8.decode(s)) };
    case T.TENSORS: return { type: 'tensors', value: (a.tensors ?? []).map((t) => hooks.tensor(t)) };
    case T.GRAPHS: return { type: 'graphs', value: (a.graphs ?? []).map((g) => hooks.graph(g)) };
    default:
      throw new ModelFormatError(`${where}: attribute '${a.name}' has type ${type} (sparse tensors and type protos are not supported).`, { attribute: a.name });
  }
}

function inferType(a: PAttr): number {
  if (a.floats?.length) return T.FLOATS;
  if (a.ints?.length) return T.INTS;
  if (a.strings?.length) return T.STRINGS;
  if (a.tensors?.length) return T.TENSORS;
  if (a.graphs?.length) return T.GRAPHS;
  if (a.t) return T.TENSOR;
  if (a.g) return T.GRAPH;
  if (a.s && a.s.length) return T.STRING;
  if (a.i !== undefined && a.i !== null && toNum(a.i) !== 0) return T.INT;
  if (a.f) return T.FLOAT;
  return T.INTS;
}

/** IR Attr → AttributeProto, for the exporter. */
export function encodeAttribute(name: string, a: Attr, graph: (g: Graph) => PGraph): PAttr {
  switch (a.type) {
    case 'float': return { name, type: T.FLOAT, f: a.value };
    case 'int': return { name, type: T.INT, i: a.value };
    case 'string': return { name, type: T.STRING, s: utf8Encode.encode(a.value) };
    case 'tensor': return { name, type: T.TENSOR, t: tensorToProto('', a.value) };
    case 'graph': return { name, type: T.GRAPH, g: graph(a.value) };
    case 'floats': return { name, type: T.FLOATS, floats: a.value };
    case 'ints': return { name, type: T.INTS, ints: a.value };
    case 'strings': return { name, type: T.STRINGS, strings: a.value.map((s) => utf8Encode.encode(s)) };
    case 'tensors': return { name, type: T.TENSORS, tensors: a.value.map((t) => tensorToProto('', t)) };
    case 'graphs': return { name, type: T.GRAPHS, graphs: a.value.map(graph) };
  }
}
