import { InvalidArgumentError } from '../../runtime/errors.js';
import { attrInt, type Graph, type Node } from '../../runtime/ir/graph.js';
import { inferShapes } from '../../runtime/ir/infer.js';
import { hostTensor } from '../../runtime/ir/tensor.js';
import { headStream, uniformValues } from './random.js';

/**
 * The final classifier of a model and its replacement (FineTuner's newHead), and the checks on `trainFrom`.
 *
 * The head is the node producing the loss output: a Gemm with an initializer weight (and optional initializer
 * bias), a MatMul with an initializer weight, or an Add of an initializer bias to such a MatMul.
 */
export interface HeadInfo {
  /** The Gemm or MatMul node: the default trainFrom with newHead. */
  node: string;
  weight: string;
  bias?: string;
  /** Weight storage: [out, in] (Gemm transB=1, PyTorch Linear) or [in, out] (MatMul, Gemm transB=0). */
  outFirst: boolean;
  fanIn: number;
  classes: number;
}

const producerOf = (g: Graph, v: string) => g.nodes.find((n) => n.outputs.includes(v));
const readers = (g: Graph, v: string) => g.nodes.filter((n) => n.inputs.includes(v));

export function findHead(g: Graph, output: string): HeadInfo {
  const fail = (why: string): never => {
    throw new InvalidArgumentError(
      `newHead needs the output '${output}' to be computed by a classifier: a Gemm or MatMul (+ Add) with weights stored in the model. ${why} ` +
        "Pick the logits output with the 'output' option, or train the existing layers with trainFrom instead.",
      { output },
    );
  };
  const last = producerOf(g, output);
  if (!last) return fail(`'${output}' is not computed by any node.`);
  const weightOf = (n: Node): { name: string; shape: number[] } => {
    const w = n.inputs[1];
    const t = w ? g.initializers[w] : undefined;
    if (!w || !t || t.shape.length !== 2 || t.dtype !== 'float32') return fail(`${n.op} node '${n.name}' does not read a float32 2-D weight initializer.`);
    if (readers(g, w).length > 1) return fail(`Its weight '${w}' is shared with other nodes.`);
    return { name: w, shape: t.shape };
  };
  const biasOf = (name: string | undefined, n: Node): string | undefined => {
    if (!name) return undefined;
    if (!g.initializers[name] || g.initializers[name]!.dtype !== 'float32') return fail(`The bias '${name}' of '${n.name}' is not a float32 initializer.`);
    if (readers(g, name).length > 1) return fail(`Its bias '${name}' is shared with other nodes.`);
    return name;
  };
  if (last.op === 'Gemm') {
    const w = weightOf(last);
    const outFirst = attrInt(last, 'transB', 0) === 1;
    return { node: last.name, weight: w.name, bias: biasOf(last.inputs[2], last), outFirst, fanIn: outFirst ? w.shape[1]! : w.shape[0]!, classes: outFirst ? w.shape[0]! : w.shape[1]! };
  }
  let matmul = last.op === 'MatMul' ? last : undefined;
  let bias: string | undefined;
  if (last.op === 'Add') {
    for (const [k, v] of last.inputs.entries()) {
      const p = producerOf(g, v);
      const other = last.inputs[1 - k];
      if (p?.op === 'MatMul' && other && other in g.initializers) {
        matmul = p;
        bias = other;
      }
    }
  }
  if (!matmul) return fail(`It is computed by ${last.op} node '${last.name}'.`);
  if (readers(g, matmul.outputs[0]!).length > 1) return fail(`The MatMul output of '${matmul.name}' has other readers.`);
  const w = weightOf(matmul);
  return { node: matmul.name, weight: w.name, bias: biasOf(bias, last), outFirst: false, fanIn: w.shape[0]!, classes: w.shape[1]! };
}

/**
 * A copy of `g` with a fresh head of `classes` outputs, initialized as torch.nn.Linear.reset_parameters does:
 * kaiming_uniform_(a = sqrt(5)) gives bound = sqrt(6 / ((1 + 5) fan_in)) = 1 / sqrt(fan_in) for the weight, and
 * the bias is U(-1/sqrt(fan_in), 1/sqrt(fan_in)). Values come from the head stream (random.ts), weight elements in
 * storage order first, then the bias. A bias keeps its rank with the last dim set to `classes`.
 */
export function replaceHead(g: Graph, head: HeadInfo, classes: number, seed: number): Graph {
  const next = headStream(seed);
  const bound = 1 / Math.sqrt(head.fanIn);
  const wShape = head.outFirst ? [classes, head.fanIn] : [head.fanIn, classes];
  const initializers = { ...g.initializers, [head.weight]: hostTensor('float32', wShape, uniformValues(classes * head.fanIn, bound, next)) };
  if (head.bias) {
    const old = g.initializers[head.bias]!;
    const shape = old.shape.length ? [...old.shape.slice(0, -1).map(() => 1), classes] : [classes];
    initializers[head.bias] = hostTensor('float32', shape, uniformValues(classes, bound, next));
  }
  // Declared output shapes still name the old class count; inference recomputes them.
  const outputs = g.outputs.map((o) => ({ ...o, shape: undefined }));
  const inferred = inferShapes({ ...g, initializers, outputs, nodes: g.nodes.map((n) => ({ ...n })) });
  return { ...inferred, outputs: outputs.map((o) => ({ ...o, shape: inferred.values[o.name]?.shape })) };
}

/** Throws when `name` is not a node, initializer or value of `g`, listing the closest candidates. */
export function checkTrainFrom(g: Graph, name: string): void {
  const nodes = g.nodes.map((n) => n.name).filter(Boolean);
  const values = [...g.inputs.map((i) => i.name), ...g.nodes.flatMap((n) => n.outputs).filter(Boolean)];
  if (nodes.includes(name) || values.includes(name) || name in g.initializers) return;
  const candidates = [...new Set([...nodes, ...values])];
  const q = name.toLowerCase();
  const score = (c: string) => (c.toLowerCase().includes(q) ? 0 : 1 + editDistance(q, c.toLowerCase()));
  const best = candidates.map((c) => [c, score(c)] as const).sort((a, b) => a[1] - b[1]).slice(0, 8).map(([c]) => c);
  const ops = new Map(g.nodes.map((n) => [n.name, n.op]));
  const list = best.map((c) => `'${c}'${ops.has(c) ? ` (${ops.get(c)} node)` : ' (value)'}`).join(', ');
  throw new InvalidArgumentError(
    `trainFrom '${name}' is not a node, value or initializer of this model. Closest names: ${list}. ` +
      "Names are those of the model after load-time cleanup (Identity nodes removed, constants folded; BatchNormalization and Dropout are kept for training); " +
      'session.report() lists every node.',
    { trainFrom: name, candidates: best },
  );
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}
