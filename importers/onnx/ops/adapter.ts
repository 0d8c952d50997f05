import type { DType } from '../../../runtime/ir/dtype.js';
import type { Graph, Node } from '../../../runtime/ir/graph.js';
import type { HostTensor } from '../../../runtime/ir/tensor.js';
import type { PNode } from '../proto.js';

/**
 * What an op adapter may do while rewriting one ONNX node into IR nodes (newest-opset form): read the model's
 * default-domain opset, add constants, make fresh value names, and look up what the file says about a value.
 */
export interface AdapterContext {
  opset: number;
  /** Adds a constant initializer and returns its value name. */
  constant(hint: string, t: HostTensor): string;
  /** A value name not used anywhere in the graph. */
  fresh(hint: string): string;
  /**
   * The rank of a value when known: initializers, graph inputs, outputs of earlier nodes (inferred as the import
   * goes), else what the file's value_info declares; undefined when none of these says.
   */
  rankOf(value: string): number | undefined;
  /** The element type of a value, from the same sources as rankOf. */
  dtypeOf(value: string): DType | undefined;
  /** The value of a constant input (an initializer or a Constant node's output), else undefined. */
  constantValue(value: string): HostTensor | undefined;
  /** A control-flow body (If/Loop/Scan graph attribute) rewritten into IR form the same way, validated and sorted. */
  subgraph(body: Graph): Graph;
}

/**
 * One ONNX op over a range of model opsets. `map` rewrites the node (it may return several nodes); without `map`
 * the node is already in IR form for that range. `targets` names the IR ops the rewrite emits (default: `op`), so the
 * importer can check every one exists in the IR before claiming support.
 */
export interface OpAdapter {
  op: string;
  since: number;
  until: number;
  targets?: string[];
  map?: (node: Node, ctx: AdapterContext) => Node[];
  /** The rewrite only normalizes (e.g. drops empty placeholders): IR nodes are valid in this range as they are. */
  sameForm?: boolean;
  /**
   * A structural check on the file's node (attributes and outputs, no tensor payloads), run with the support check
   * before any weight is decoded: returns why this node form cannot be imported, or undefined when it can.
   */
  check?: (node: PNode, opset: number) => string | undefined;
}
