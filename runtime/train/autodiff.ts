import { InvalidArgumentError, UnsupportedOpError, type UnsupportedNode } from '../errors.js';
import { isFloat, type DType } from '../ir/dtype.js';
import type { Dim, Graph, Node } from '../ir/graph.js';
import { isConcrete } from '../ir/shape.js';
import { tensorFromNumbers, type HostTensor } from '../ir/tensor.js';
import { validateAndSort } from '../ir/validate.js';
import { BackwardBuilder } from './backward-builder.js';
import { gradRuleFor, isDifferentiable } from './grads/index.js';
import { inferTrainShapes } from './infer.js';

/**
 * Reverse-mode autodiff as a graph-to-graph transform: from a forward graph (the trainable tail plus its loss) it
 * builds a BACKWARD graph whose outputs are d(loss)/d(w) for every requested value w. Being an ordinary IR graph,
 * the backward pass runs on any backend that runs its ops, can be planned like inference, and every intermediate
 * gradient is a named value one can inspect.
 *
 * How:
 * 1. Which nodes matter: a node is active when one of its differentiable inputs depends on a requested value and
 *    one of its outputs reaches the loss. Active nodes without a gradient rule are reported together, up front.
 * 2. Walk active nodes in reverse topological order. A value's gradient is complete when its node is visited,
 *    because all its consumers come later in the forward order; several contributions (fan-out) are summed with Add.
 * 3. Each rule (grads/) emits nodes through a GradContext, which records the forward tensors the rule reads. Those
 *    "saved" values become the backward graph's inputs (activations) or initializers (weights, shared by reference,
 *    so a parameter updated in place is seen by both passes), and are appended to the forward graph's outputs.
 *
 * The forward graph returned is a copy of the one given, possibly with additions: Shape nodes for dims only known
 * at run time, and names for optional outputs a rule keeps (Dropout's mask). The input graph is not modified.
 */

export interface BackwardOptions {
  /** A scalar float value of the forward graph. */
  loss: string;
  /** Values to differentiate with respect to (trainable initializers; graph inputs or intermediates also work). */
  wrt: readonly string[];
}

export interface BackwardGraphs {
  forward: Graph;
  backward: Graph;
  /** For each requested value, the backward graph output holding its gradient. */
  grads: Record<string, string>;
  /** Forward values (not initializers) the backward graph takes as inputs, in its input order. */
  saved: string[];
  /** Requested values the loss does not depend on; their gradient is zeros. */
  unreachable: string[];
}

function copyGraph(g: Graph): Graph {
  return {
    ...g,
    inputs: g.inputs.map((v) => ({ ...v })),
    outputs: g.outputs.map((v) => ({ ...v })),
    initializers: { ...g.initializers },
    nodes: g.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs], attrs: { ...n.attrs } })),
    values: { ...g.values },
  };
}

export function buildBackward(forwardIn: Graph, opts: BackwardOptions): BackwardGraphs {
  let fwd = inferTrainShapes(validateAndSort(copyGraph(forwardIn)));
  const lossInfo = fwd.values[opts.loss];
  if (!lossInfo) throw new InvalidArgumentError(`The loss '${opts.loss}' is not a value of graph '${fwd.name}'.`);
  if (!isFloat(lossInfo.dtype) || !lossInfo.shape || !isConcrete(lossInfo.shape) || lossInfo.shape.some((d) => d !== 1)) {
    throw new InvalidArgumentError(`The loss '${opts.loss}' must be a float scalar, got ${lossInfo.dtype}[${lossInfo.shape?.join(', ') ?? '?'}]; reduce it (mean or sum) first.`);
  }
  for (const w of opts.wrt) {
    const info = fwd.values[w];
    if (!info) throw new InvalidArgumentError(`Cannot differentiate with respect to '${w}': graph '${fwd.name}' has no such value.`);
    if (!isFloat(info.dtype)) throw new InvalidArgumentError(`Cannot differentiate with respect to '${w}': it is ${info.dtype}, not a float tensor.`);
  }

  // 1. Active nodes and, per node, the inputs that need a gradient.
  const requires = new Set(opts.wrt);
  const needs = new Map<Node, boolean[]>();
  for (const node of fwd.nodes) {
    const rule = gradRuleFor(node);
    const flags = node.inputs.map((v, i) => !!v && requires.has(v) && (!rule || isDifferentiable(rule, i)));
    if (!flags.some(Boolean)) continue;
    needs.set(node, flags);
    for (const o of node.outputs) if (o && isFloat(fwd.values[o]?.dtype ?? 'bool')) requires.add(o);
  }
  const reach = new Set([opts.loss]);
  const active: Node[] = [];
  for (let k = fwd.nodes.length - 1; k >= 0; k--) {
    const node = fwd.nodes[k]!;
    if (!node.outputs.some((o) => o && reach.has(o))) continue;
    for (const v of node.inputs) if (v) reach.add(v);
    if (needs.has(node)) active.push(node); // reverse topological order
  }
  const missing: UnsupportedNode[] = [...active]
    .reverse()
    .filter((n) => !gradRuleFor(n))
    .map((n) => ({ op: n.op, domain: n.domain, opset: 0, node: n.name, reason: 'no gradient rule' }));
  if (missing.length) {
    throw new UnsupportedOpError(missing, 'These ops lie between the trainable weights and the loss; move the cut past them (train fewer layers), or ask for their gradient rules.');
  }

  const b = new BackwardBuilder(fwd, new Set(opts.wrt));
  b.contribs.set(opts.loss, [b.constant(onesLike(lossInfo.dtype, lossInfo.shape), `${opts.loss}_grad_seed`)]);

  // 2. Reverse sweep.
  for (const node of active) {
    const dys = node.outputs.map((o) => (o ? b.gradOf(o) : undefined));
    if (!dys.some(Boolean)) continue;
    const rule = gradRuleFor(node)!;
    const wants = needs.get(node)!;
    const grads = rule.backward(b.context(node, rule, dys, wants));
    wants.forEach((w, i) => {
      const g = grads[i];
      if (w && g) b.contribute(node.inputs[i]!, g);
    });
  }

  // 3. Outputs: one per requested value, renamed `<value>_grad` where that is unambiguous.
  const grads: Record<string, string> = {};
  const unreachable: string[] = [];
  const taken = new Set<string>();
  for (const w of opts.wrt) {
    let g = b.gradOf(w);
    if (!g) {
      unreachable.push(w);
      g = b.zerosLike(w);
    }
    g = b.nameOutput(g, `${w}_grad`, taken);
    taken.add(g);
    grads[w] = g;
  }

  fwd = b.forward();
  const saved = [...b.saved].filter((v) => !(v in fwd.initializers));
  const fwdOutputs = new Set(fwd.outputs.map((o) => o.name));
  for (const v of saved) if (!fwdOutputs.has(v)) fwd.outputs.push({ ...fwd.values[v]!, name: v });

  const initializers: Record<string, HostTensor> = { ...b.initializers };
  for (const v of b.saved) if (v in fwd.initializers) initializers[v] = fwd.initializers[v]!;
  let backward: Graph = {
    name: `${fwd.name}_backward`,
    inputs: saved.map((v) => ({ ...fwd.values[v]!, name: v })),
    outputs: opts.wrt.map((w) => ({ name: grads[w]!, dtype: fwd.values[w]!.dtype })),
    initializers,
    nodes: b.nodes,
    values: {},
  };
  backward = inferTrainShapes(validateAndSort(backward));
  backward.outputs = backward.outputs.map((o) => ({ ...(backward.values[o.name] ?? o), name: o.name }));
  return { forward: fwd, backward, grads, saved, unreachable };
}

function onesLike(dtype: DType, shape: Dim[]): HostTensor {
  const n = (shape as number[]).reduce((a, c) => a * c, 1);
  return tensorFromNumbers(dtype, shape as number[], new Array<number>(n).fill(1));
}
