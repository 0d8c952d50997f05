import { runNodeCpu } from '../../backends/cpu/executor.js';
import { attrInt, type Graph, type Node } from '../graph.js';
import { isConcrete } from '../shape.js';
import { hasSubgraphs } from './subgraph-names.js';
import { schemas as SEQUENCE_SCHEMAS } from '../ops/sequences.js';
import { DEFAULT_MAX_ELEMENTS, sizeOf, tensorFromNumbers, type HostTensor } from '../tensor.js';

/** Ops whose result is not a pure function of their inputs: never folded. */
const IMPURE = new Set(['Dropout', 'RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Multinomial', 'Bernoulli']);

/**
 * DequantizeLinear of constant (quantized) weights is kept as written: folded, the weights would be stored as float32
 * (4x the bytes of int8, 8x of int4), and the WebGPU plan could no longer see the QDQ groups it runs as int8 kernels
 * (backends/webgpu/fuse-qdq.ts). onnxruntime keeps these nodes for the same reason.
 */
const KEEP_QUANTIZED = new Set(['DequantizeLinear']);

/** A folded result may be larger than its inputs only up to this many elements (don't bloat the model). */
const GROWTH_LIMIT = 1 << 16;

/**
 * Evaluates, on the CPU reference, every node whose inputs are all constants, and turns Shape/Size of values whose
 * shape inference knows concretely into constants. Results become initializers. Run after inferShapes; with input
 * shapes bound (plan time) this removes the Shape→Gather→Unsqueeze→Concat→Reshape chains exporters emit, so int64
 * shape arithmetic never reaches a GPU kernel. Returns the number of nodes folded.
 */
export function foldConstants(g: Graph, maxElements = DEFAULT_MAX_ELEMENTS): number {
  let folded = 0;
  const keep: Node[] = [];
  for (const n of g.nodes) {
    // Control-flow nodes are not folded here: their bodies read outer values (passes/control-flow.ts lowers them).
    // Sequence and optional ops make no tensors to store as initializers (passes/sequences.ts resolves them).
    const result = n.domain === '' && !IMPURE.has(n.op) && !KEEP_QUANTIZED.has(n.op) && !hasSubgraphs(n) && !(n.op in SEQUENCE_SCHEMAS) ? tryFold(g, n, maxElements) : undefined;
    if (!result) {
      keep.push(n);
      continue;
    }
    n.outputs.forEach((name, i) => {
      if (name && result[i]) g.initializers[name] = result[i]!;
    });
    folded++;
  }
  g.nodes = keep;
  // A graph output that became a constant still needs to be produced: it is an initializer, which the executors
  // return as-is.
  return folded;
}

function tryFold(g: Graph, n: Node, maxElements: number): HostTensor[] | undefined {
  if (n.op === 'Shape' || n.op === 'Size') {
    const info = g.values[n.inputs[0]!];
    if (!info || !isConcrete(info.shape)) return undefined;
    if (n.op === 'Size') return [tensorFromNumbers('int64', [], [sizeOf(info.shape)])];
    const r = info.shape.length;
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
    const dims = info.shape.slice(clamp(attrInt(n, 'start', 0)), clamp(attrInt(n, 'end', r)));
    return [tensorFromNumbers('int64', [dims.length], dims)];
  }
  if (n.inputs.length === 0 && n.op !== 'Constant') return undefined;
  const inputs: (HostTensor | undefined)[] = [];
  let inputElements = 0;
  for (const v of n.inputs) {
    if (v === '') {
      inputs.push(undefined);
      continue;
    }
    const t = g.initializers[v];
    if (!t) return undefined;
    inputs.push(t);
    inputElements += t.data.length;
  }
  // Predict the output size from shape inference before computing it.
  let outElements = 0;
  for (const o of n.outputs) {
    const info = o ? g.values[o] : undefined;
    if (!info || !isConcrete(info.shape)) return undefined;
    outElements += info.shape.reduce((a, b) => a * b, 1);
  }
  if (outElements > Math.max(inputElements, GROWTH_LIMIT)) return undefined;
  return runNodeCpu(n, inputs, { maxElements });
}
