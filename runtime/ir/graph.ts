import type { DType } from './dtype.js';
import type { HostTensor } from './tensor.js';

/**
 * The IR: a plain, serializable graph. Op names and semantics are those of the newest ONNX opset of the default
 * domain (the importer rewrites older opsets into that form, e.g. Squeeze axes become an input as in opset 13+).
 * Nodes are kept in a topological order; every pass preserves that.
 */

/** A dimension: a number, or a symbol (a name from the model like 'batch', or one inference made up). */
export type Dim = number | string;

export interface ValueInfo {
  name: string;
  dtype: DType;
  /** undefined: rank unknown. */
  shape?: Dim[];
  /** undefined: a tensor. See ValueKind (ir/value.ts holds the helpers). */
  kind?: ValueKind;
}

/**
 * What a value holds (ONNX TypeProto): a tensor (the default), a sequence of tensors, or an optional of either. For
 * a sequence `dtype` is every element's type and `shape` the dims all its elements share (undefined when unknown);
 * for an optional they describe what it holds when it is not empty.
 */
export type ValueKind = 'tensor' | 'sequence' | 'optional-tensor' | 'optional-sequence';

/** A value's full type, e.g. the `type` attribute of ONNX Optional. */
export interface ValueType {
  kind?: ValueKind;
  dtype: DType;
  shape?: Dim[];
}

export type Attr =
  | { type: 'float'; value: number }
  | { type: 'int'; value: number }
  | { type: 'string'; value: string }
  | { type: 'tensor'; value: HostTensor }
  | { type: 'graph'; value: Graph }
  | { type: 'floats'; value: number[] }
  | { type: 'ints'; value: number[] }
  | { type: 'strings'; value: string[] }
  | { type: 'tensors'; value: HostTensor[] }
  | { type: 'graphs'; value: Graph[] }
  | { type: 'type'; value: ValueType };

export interface Node {
  name: string;
  op: string;
  /** '' is the default ONNX domain. */
  domain: string;
  /** Value names; '' marks an omitted optional input. */
  inputs: string[];
  outputs: string[];
  attrs: Record<string, Attr>;
}

export interface Graph {
  name: string;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  /** Constant tensors by value name (weights, folded constants). */
  initializers: Record<string, HostTensor>;
  nodes: Node[];
  /** Inferred type of every value, filled by shape inference. */
  values: Record<string, ValueInfo>;
  /** Names visible from an enclosing graph that a subgraph body reads (If/Loop/Scan bodies). */
  outerScope?: string[];
}

export function emptyGraph(name = 'main'): Graph {
  return { name, inputs: [], outputs: [], initializers: {}, nodes: [], values: {} };
}

// ---- attribute accessors: kernels and passes read attributes only through these ----

export function attrInt(node: Node, name: string, dflt: number): number;
export function attrInt(node: Node, name: string): number | undefined;
export function attrInt(node: Node, name: string, dflt?: number): number | undefined {
  const a = node.attrs[name];
  return a && (a.type === 'int' || a.type === 'float') ? a.value : dflt;
}

export function attrFloat(node: Node, name: string, dflt: number): number;
export function attrFloat(node: Node, name: string): number | undefined;
export function attrFloat(node: Node, name: string, dflt?: number): number | undefined {
  const a = node.attrs[name];
  return a && (a.type === 'float' || a.type === 'int') ? a.value : dflt;
}

export function attrString(node: Node, name: string, dflt: string): string;
export function attrString(node: Node, name: string): string | undefined;
export function attrString(node: Node, name: string, dflt?: string): string | undefined {
  const a = node.attrs[name];
  return a && a.type === 'string' ? a.value : dflt;
}

export function attrInts(node: Node, name: string, dflt: number[]): number[];
export function attrInts(node: Node, name: string): number[] | undefined;
export function attrInts(node: Node, name: string, dflt?: number[]): number[] | undefined {
  const a = node.attrs[name];
  return a && (a.type === 'ints' || a.type === 'floats') ? a.value : dflt;
}

export function attrFloats(node: Node, name: string, dflt: number[]): number[];
export function attrFloats(node: Node, name: string): number[] | undefined;
export function attrFloats(node: Node, name: string, dflt?: number[]): number[] | undefined {
  const a = node.attrs[name];
  return a && (a.type === 'floats' || a.type === 'ints') ? a.value : dflt;
}

export function attrTensor(node: Node, name: string): HostTensor | undefined {
  const a = node.attrs[name];
  return a && a.type === 'tensor' ? a.value : undefined;
}

/** Human-readable dump, for debugging and `edgekit inspect`. */
export function printGraph(g: Graph): string {
  const fmt = (v: ValueInfo | undefined) => (v ? `${v.dtype}[${v.shape ? v.shape.join(',') : '?'}]` : '?');
  const lines = [`graph ${g.name}`];
  for (const i of g.inputs) lines.push(`  input  ${i.name}: ${fmt(i)}`);
  for (const [k, t] of Object.entries(g.initializers)) lines.push(`  const  ${k}: ${t.dtype}[${t.shape.join(',')}]`);
  for (const n of g.nodes) {
    const attrs = Object.entries(n.attrs)
      .map(([k, a]) => `${k}=${a.type === 'tensor' ? 'tensor' : a.type === 'graph' || a.type === 'graphs' ? 'graph' : JSON.stringify(a.value)}`)
      .join(' ');
    lines.push(`  ${n.outputs.join(', ')} = ${n.domain ? n.domain + '::' : ''}${n.op}(${n.inputs.join(', ')})${attrs ? ' {' + attrs + '}' : ''}  # ${n.name}`);
  }
  for (const o of g.outputs) lines.push(`  output ${o.name}: ${fmt(g.values[o.name] ?? o)}`);
  return lines.join('\n');
}
