import { InvalidArgumentError } from '../errors.js';
import type { Graph, Node, ValueInfo } from '../ir/graph.js';
import { validateAndSort } from '../ir/validate.js';
import { gradRuleFor, isDifferentiable } from './grads/index.js';
import { inferTrainShapes } from './infer.js';

/**
 * Splits a model at a cut into a frozen trunk and a trainable tail (fine-tuning the last layers):
 *
 * - `cut` names a NODE: that node and everything downstream of it form the tail (the node's own weights train:
 *   `trainFrom: 'fc'` trains fc). It names an INITIALIZER: its consumers and everything downstream form the tail.
 *   It names a VALUE (a node output or graph input): its consumers and everything downstream form the tail, so the
 *   producer stays frozen ("cut at the first Gemm's output"). Names are tried in that order.
 * - Tail inputs ("cut activations") are the values tail nodes read that the tail does not compute and that are not
 *   initializers: usually just the cut value, plus any skip connection that jumps over the cut. The trunk computes
 *   exactly those (inputs -> cut activations) and is run as inference; its results can be cached per example.
 * - Tail outputs are the model outputs the tail computes; outputs only the trunk computes are dropped.
 * - Trainable: float32 initializers the tail reads at a differentiable position (per the gradient rules: not a
 *   Reshape shape, not BatchNorm statistics) whose gradient can reach them, i.e. every node between them and the
 *   outputs has a gradient rule. Initializers the trunk reads too (tied weights) stay frozen, since training them
 *   would silently change the frozen trunk. `frozen` lists the float32 tail initializers left out and why.
 */
export interface SplitResult {
  trunk: Graph;
  tail: Graph;
  trainable: string[];
  frozen: { name: string; reason: string }[];
}

export function splitGraph(model: Graph, cut: string): SplitResult {
  const g = inferTrainShapes(validateAndSort(model));
  const seeds = cutSeeds(g, cut);
  const inTail = new Set<Node>();
  const tailValues = new Set<string>();
  for (const node of g.nodes) {
    if (seeds.has(node) || node.inputs.some((v) => v && tailValues.has(v))) {
      inTail.add(node);
      for (const o of node.outputs) if (o) tailValues.add(o);
    }
  }
  const tailNodes = g.nodes.filter((n) => inTail.has(n));
  const outputs = g.outputs.filter((o) => tailValues.has(o.name));
  if (!outputs.length) throw new InvalidArgumentError(`Nothing after the cut '${cut}' leads to a model output; cut earlier.`);

  const cutValues: string[] = [];
  for (const node of tailNodes) {
    for (const v of node.inputs) if (v && !tailValues.has(v) && !(v in g.initializers) && !cutValues.includes(v)) cutValues.push(v);
  }
  const info = (v: string): ValueInfo => ({ ...(g.values[v] ?? { dtype: 'float32' }), name: v });
  const pick = (names: Iterable<string>) => Object.fromEntries([...names].filter((k) => k in g.initializers).map((k) => [k, g.initializers[k]!]));

  // Trunk: the nodes the cut activations depend on.
  const needed = new Set(cutValues);
  const trunkNodes: Node[] = [];
  for (let k = g.nodes.length - 1; k >= 0; k--) {
    const node = g.nodes[k]!;
    if (inTail.has(node) || !node.outputs.some((o) => o && needed.has(o))) continue;
    trunkNodes.unshift(node);
    for (const v of node.inputs) if (v) needed.add(v);
  }
  const trunkReads = new Set(trunkNodes.flatMap((n) => n.inputs));
  const trunk: Graph = {
    name: `${g.name}_trunk`,
    inputs: g.inputs.filter((i) => needed.has(i.name)),
    outputs: cutValues.map(info),
    initializers: pick(trunkReads),
    nodes: trunkNodes,
    values: {},
  };
  const tail: Graph = {
    name: `${g.name}_tail`,
    inputs: cutValues.map(info),
    outputs: outputs.map((o) => info(o.name)),
    initializers: pick(new Set(tailNodes.flatMap((n) => n.inputs))),
    nodes: tailNodes,
    values: {},
  };
  const { trainable, frozen } = trainableInitializers(tail, trunkReads);
  return { trunk: inferTrainShapes(trunk), tail: inferTrainShapes(tail), trainable, frozen };
}

function cutSeeds(g: Graph, cut: string): Set<Node> {
  const byName = g.nodes.find((n) => n.name === cut);
  if (byName) return new Set([byName]);
  const readers = g.nodes.filter((n) => n.inputs.includes(cut));
  const known = cut in g.initializers || g.inputs.some((i) => i.name === cut) || g.nodes.some((n) => n.outputs.includes(cut));
  if (!known) {
    throw new InvalidArgumentError(`The cut '${cut}' is not a node, initializer or value of the model; 'edgekit inspect' lists node and value names.`, { cut });
  }
  if (!readers.length) throw new InvalidArgumentError(`Nothing reads '${cut}', so there is nothing to train after it.`, { cut });
  return new Set(readers);
}

/**
 * Which float32 initializers of the tail can train. A value's gradient is computable when every node that reads it
 * at a differentiable position, and leads on to an output, has a gradient rule and computable output gradients;
 * evaluated in reverse topological order.
 */
export function trainableInitializers(tail: Graph, trunkReads: ReadonlySet<string> = new Set()): { trainable: string[]; frozen: { name: string; reason: string }[] } {
  const outputs = new Set(tail.outputs.map((o) => o.name));
  const reachesOut = new Set<string>(outputs);
  const blocked = new Map<string, string>(); // value -> why its gradient cannot be computed
  for (let k = tail.nodes.length - 1; k >= 0; k--) {
    const node = tail.nodes[k]!;
    const live = node.outputs.filter((o) => o && reachesOut.has(o));
    if (!live.length) continue;
    const rule = gradRuleFor(node);
    const why = !rule ? `${node.op} node '${node.name}' has no gradient rule` : live.map((o) => blocked.get(o)).find(Boolean);
    node.inputs.forEach((v, i) => {
      if (!v) return;
      reachesOut.add(v);
      if (rule && !isDifferentiable(rule, i)) return;
      if (why && !blocked.has(v)) blocked.set(v, why);
    });
  }
  const trainable: string[] = [];
  const frozen: { name: string; reason: string }[] = [];
  for (const [name, t] of Object.entries(tail.initializers)) {
    if (t.dtype !== 'float32') continue;
    const diffRead = tail.nodes.some((n) => {
      const rule = gradRuleFor(n);
      return n.inputs.some((v, i) => v === name && (!rule || isDifferentiable(rule, i)));
    });
    if (!diffRead) frozen.push({ name, reason: 'only read where no gradient is defined (a shape, statistics, axes)' });
    else if (!reachesOut.has(name)) frozen.push({ name, reason: 'does not affect any output' });
    else if (blocked.has(name)) frozen.push({ name, reason: blocked.get(name)! });
    else if (trunkReads.has(name)) frozen.push({ name, reason: 'also used by the frozen trunk (tied weight)' });
    else trainable.push(name);
  }
  return { trainable, frozen };
}
