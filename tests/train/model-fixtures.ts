import type { Graph, Node } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { Rng } from '../helpers/random.js';

/** Small models for the split and training tests. */

export function linear(rng: Rng, out: number, inp: number, name: string): Record<string, HostTensor> {
  const k = 1 / Math.sqrt(inp); // torch.nn.Linear's default init range
  return {
    [`${name}.weight`]: tensorFromNumbers('float32', [out, inp], Array.from({ length: out * inp }, () => rng.uniform(-k, k))),
    [`${name}.bias`]: tensorFromNumbers('float32', [out], Array.from({ length: out }, () => rng.uniform(-k, k))),
  };
}

const gemm = (name: string, x: string, y: string): Node => ({
  name, op: 'Gemm', domain: '', inputs: [x, `${name}.weight`, `${name}.bias`], outputs: [y], attrs: { transB: { type: 'int', value: 1 } },
});

/** x [N, 2] -> fc1 (Gemm) -> h -> Relu -> r [-> Dropout -> d] -> fc2 (Gemm) -> logits [N, classes]. */
export function mlp(seed: number, opts: { hidden?: number; classes?: number; dropout?: number } = {}): Graph {
  const rng = new Rng(seed);
  const hidden = opts.hidden ?? 8;
  const classes = opts.classes ?? 2;
  const nodes: Node[] = [gemm('fc1', 'x', 'h'), { name: 'relu', op: 'Relu', domain: '', inputs: ['h'], outputs: ['r'], attrs: {} }];
  const initializers = { ...linear(rng, hidden, 2, 'fc1'), ...linear(rng, classes, hidden, 'fc2') };
  let last = 'r';
  if (opts.dropout !== undefined) {
    initializers['drop.ratio'] = tensorFromNumbers('float32', [], [opts.dropout]);
    nodes.push({ name: 'drop', op: 'Dropout', domain: '', inputs: ['r', 'drop.ratio'], outputs: ['d'], attrs: {} });
    last = 'd';
  }
  nodes.push(gemm('fc2', last, 'logits'));
  return {
    name: 'mlp',
    inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 2] }],
    outputs: [{ name: 'logits', dtype: 'float32' }],
    initializers,
    nodes,
    values: {},
  };
}

/** A linearly separable toy problem: label 1 when 0.8 x0 - 0.6 x1 > 0.1, points drawn uniformly in [-1, 1]^2. */
export function toyData(seed: number, count: number): { x: HostTensor; labels: HostTensor } {
  const rng = new Rng(seed);
  const xs: number[] = [];
  const ys: number[] = [];
  for (let i = 0; i < count; i++) {
    const a = rng.uniform(-1, 1);
    const b = rng.uniform(-1, 1);
    xs.push(a, b);
    ys.push(0.8 * a - 0.6 * b > 0.1 ? 1 : 0);
  }
  return { x: tensorFromNumbers('float32', [count, 2], xs), labels: tensorFromNumbers('int64', [count], ys) };
}
