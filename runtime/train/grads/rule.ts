import type { DType } from '../../ir/dtype.js';
import type { Attr, Dim, Node } from '../../ir/graph.js';
import type { HostTensor } from '../../ir/tensor.js';

/**
 * A gradient rule: how one forward op turns the gradients of its outputs into gradients of its inputs, written as
 * IR nodes (graph-to-graph reverse mode), so any backend that runs the ops runs training and every gradient is a
 * named, inspectable value.
 *
 * A rule declares up front
 * - which inputs can carry a gradient (`differentiable`; e.g. not Reshape's shape, not BatchNorm's statistics),
 *   which also decides what split.ts offers as trainable;
 * - which forward tensors it keeps for the backward pass (`saves`). The context enforces the declaration: reading
 *   an undeclared forward tensor throws, so the declaration is what a memory plan may trust. Shapes, dtypes and
 *   constant values (Reshape's target, Reduce axes) are build-time facts and cost nothing at run time.
 */
export interface GradRule {
  /** Input positions that can carry a gradient; 'all' for variadic ops (Concat). */
  differentiable: readonly number[] | 'all';
  saves: { inputs?: readonly number[]; outputs?: readonly number[] };
  /** Emits the backward nodes; returns one gradient value name per forward input (undefined: none). */
  backward(ctx: GradContext): (string | undefined)[];
}

export interface EmitOptions {
  /** '' (default) or 'edgekit.train'. */
  domain?: string;
  /** How many outputs to name, or which ones (false leaves an optional output unnamed). Default 1. */
  outputs?: number | readonly boolean[];
}

export interface GradContext {
  readonly node: Node;
  /** The gradient flowing into forward output i (default 0); undefined when no gradient reaches it. */
  dy(i?: number): string | undefined;
  /** Whether forward input i needs a gradient (rules skip the work for inputs that do not). */
  wants(i: number): boolean;
  /** Saved forward input i (must be listed in saves.inputs). */
  input(i: number): string;
  /** Saved forward output i (must be listed in saves.outputs); names an unnamed optional output if needed. */
  output(i: number): string;
  /** Whether the forward node has input i ('' marks an omitted optional input). */
  hasInput(i: number): boolean;
  /** Inferred shape of forward input/output i; throws when the rank is unknown. */
  inputShape(i: number): Dim[];
  outputShape(i: number): Dim[];
  inputDType(i: number): DType;
  /** The value of forward input i when it is a constant (an initializer that is not trained). */
  constantInput(i: number): HostTensor | undefined;
  /** Emits one backward node; returns its output names ('' for outputs left unnamed). */
  emit(op: string, inputs: readonly string[], attrs?: Record<string, Attr>, opts?: EmitOptions): string[];
  /** A scalar constant of `dtype` (shape []), shared across the backward graph. */
  scalar(value: number, dtype: DType): string;
  /** A 1-D int64 constant (axes, perms, sizes). */
  ints(values: readonly number[]): string;
  /**
   * The int64 shape of forward input i: a constant when its dims are known when the graph is built, otherwise a
   * Shape node added to the forward graph and saved (a few int64s, never the tensor).
   */
  shapeOf(i: number): string;
  /** Sums a gradient of shape `gradShape` down to the (broadcast) shape of forward input i. */
  sumTo(grad: string, gradShape: readonly Dim[], i: number): string;
}

export function isDifferentiable(rule: GradRule, input: number): boolean {
  return rule.differentiable === 'all' || rule.differentiable.includes(input);
}

/** Shorthand for attributes in rules. */
export const A = {
  int: (value: number): Attr => ({ type: 'int', value }),
  float: (value: number): Attr => ({ type: 'float', value }),
  ints: (value: number[]): Attr => ({ type: 'ints', value }),
  string: (value: string): Attr => ({ type: 'string', value }),
};
