import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr, Dim, Graph, Node } from '../../runtime/ir/graph.js';
import { inferShapes } from '../../runtime/ir/infer.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { validateAndSort } from '../../runtime/ir/validate.js';

/** Terse IR construction for tests: attributes from plain values, a sorted and shape-inferred graph out. */
export function attr(v: number | string | number[] | HostTensor, float = false): Attr {
  if (typeof v === 'string') return { type: 'string', value: v };
  if (typeof v === 'number') return float || !Number.isInteger(v) ? { type: 'float', value: v } : { type: 'int', value: v };
  if (Array.isArray(v)) return float ? { type: 'floats', value: v } : { type: 'ints', value: v };
  return { type: 'tensor', value: v };
}

export function node(op: string, inputs: string[], outputs: string[], attrs: Record<string, Attr> = {}, name?: string): Node {
  return { name: name ?? `${op}_${outputs[0]}`, op, domain: '', inputs, outputs, attrs };
}

export function buildGraph(spec: {
  inputs: [string, DType, Dim[]][];
  initializers?: Record<string, HostTensor>;
  nodes: Node[];
  outputs: string[];
}): Graph {
  const g: Graph = {
    name: 'test',
    inputs: spec.inputs.map(([name, dtype, shape]) => ({ name, dtype, shape })),
    outputs: spec.outputs.map((name) => ({ name, dtype: 'float32' as DType })),
    initializers: spec.initializers ?? {},
    nodes: spec.nodes,
    values: {},
  };
  const sorted = inferShapes(validateAndSort(g));
  sorted.outputs = sorted.outputs.map((o) => ({ ...sorted.values[o.name]!, name: o.name }));
  return sorted;
}

export const i64 = (values: number[], shape = [values.length]) => tensorFromNumbers('int64', shape, values);
export const f32 = (values: ArrayLike<number>, shape: number[]) => tensorFromNumbers('float32', shape, values);
