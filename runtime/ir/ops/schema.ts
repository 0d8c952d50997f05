import type { DType } from '../dtype.js';
import type { Dim, Graph, Node, ValueKind } from '../graph.js';
import type { HostTensor } from '../tensor.js';

/** What shape inference knows about one input of a node. */
export interface InferInput {
  dtype: DType;
  /** undefined: rank unknown. */
  shape?: Dim[];
  /** The value, when it is a constant (an initializer or a folded result): lets Reshape, Slice... infer exactly. */
  value?: HostTensor;
  /** undefined: a tensor; else a sequence or optional, dtype and shape describing its elements (graph.ts ValueKind). */
  kind?: ValueKind;
}

export interface InferredOutput {
  dtype: DType;
  shape?: Dim[];
  /** undefined: a tensor (graph.ts ValueKind). */
  kind?: ValueKind;
}

export interface InferContext {
  node: Node;
  /** undefined where an optional input is omitted ('' in node.inputs). */
  inputs: (InferInput | undefined)[];
  /** A fresh symbolic dimension, for output dims that depend on runtime values. */
  symbol(hint: string): string;
  /**
   * Control flow (If/Loop/Scan, ops/control-flow.ts): infers a body graph whose inputs have the given types, with
   * the values visible at this node as its outer scope; returns the body's output types in order. Absent where the
   * caller has no scope to offer (the importer's best-effort pass over nodes as they are rewritten): control-flow
   * schemas then throw, leaving the outputs to the inference that runs after validation.
   */
  inferBody?(body: Graph, inputs: InferInput[]): InferredOutput[];
}

/**
 * The IR-level definition of an op: arity and shape/dtype inference. Semantics are the newest ONNX opset's.
 * `infer` must work on symbolic dims and must throw ShapeError/DTypeError for inputs that can never be valid.
 * Kernels call the same `infer` on concrete shapes to size their outputs, so there is one source of truth.
 */
export interface OpSchema {
  op: string;
  /** [min, max] inputs, counting omitted optional ones. */
  inputs: [number, number];
  /** [min, max] outputs. */
  outputs: [number, number];
  infer(ctx: InferContext): InferredOutput[];
}

export function defineOps(...schemas: OpSchema[]): Record<string, OpSchema> {
  const out: Record<string, OpSchema> = {};
  for (const s of schemas) out[s.op] = s;
  return out;
}
