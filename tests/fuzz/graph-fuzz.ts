import type { Attr } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { encodeModel, type ModelNode } from '../helpers/onnx-model.js';
import { Rng } from '../helpers/random.js';

/**
 * Random valid graphs for runtime fuzzing (issue #14): short chains of supported ops over random shapes, with
 * broadcasting operands, attribute values drawn from each op's valid range, and float32/int32 data. Many chains
 * are packed side by side into one model (each its own input and output), so one session load covers dozens of
 * graphs; the test runs the same model on the CPU reference and on WebGPU and compares chain by chain.
 *
 * Ops with a discontinuity (Floor, Sign, comparisons...) only take graph inputs, never a computed value: a 1-ulp
 * difference upstream must not flip their result. Inputs stay in [-2, 2], so Exp and Pow stay finite.
 */

type Shape = number[];
interface Val {
  name: string;
  shape: Shape;
  dtype: 'float32' | 'int32';
  /** Produced by an op (not a graph input or initializer). */
  computed: boolean;
}

export interface Chain {
  input: string;
  inputTensor: HostTensor;
  output: string;
  ops: string[];
}

export interface GraphBatch {
  bytes: Uint8Array;
  feeds: Record<string, HostTensor>;
  chains: Chain[];
}

const int = (v: number): Attr => ({ type: 'int', value: v });
const float = (v: number): Attr => ({ type: 'float', value: v });
const ints = (v: number[]): Attr => ({ type: 'ints', value: v });
const size = (s: Shape) => s.reduce((a, b) => a * b, 1);

class Builder {
  nodes: ModelNode[] = [];
  inits: Record<string, HostTensor> = {};
  private n = 0;
  constructor(readonly r: Rng, readonly prefix: string) {}
  fresh(hint: string): string {
    return `${this.prefix}_${hint}${this.n++}`;
  }
  constF32(shape: Shape, lo = -2, hi = 2): Val {
    const name = this.fresh('c');
    this.inits[name] = tensorFromNumbers('float32', shape, Array.from({ length: size(shape) }, () => Math.round(this.r.uniform(lo, hi) * 64) / 64));
    return { name, shape, dtype: 'float32', computed: false };
  }
  constI64(values: number[]): string {
    const name = this.fresh('k');
    this.inits[name] = tensorFromNumbers('int64', [values.length], values);
    return name;
  }
  op(op: string, inputs: string[], attrs: Record<string, Attr>, shape: Shape, dtype: Val['dtype'] = 'float32'): Val {
    const out = this.fresh(op.toLowerCase());
    this.nodes.push({ op, inputs, outputs: [out], attrs });
    return { name: out, shape, dtype, computed: true };
  }
}

/** A shape that broadcasts to `s`: some leading dims dropped, some dims set to 1. */
function broadcastShape(r: Rng, s: Shape): Shape {
  const drop = r.int(0, s.length);
  return s.slice(drop).map((d) => (r.next() < 0.3 ? 1 : d));
}

type OpGen = (b: Builder, x: Val) => Val | undefined;

const UNARY: [string, (r: Rng) => Record<string, Attr>][] = [
  ['Relu', () => ({})], ['Sigmoid', () => ({})], ['Tanh', () => ({})], ['Abs', () => ({})], ['Neg', () => ({})],
  ['LeakyRelu', (r) => ({ alpha: float(r.pick([0.01, 0.2, 1.5])) })], ['Elu', (r) => ({ alpha: float(r.pick([1, 0.5])) })],
  ['HardSigmoid', (r) => ({ alpha: float(r.pick([0.2, 0.5])), beta: float(r.pick([0.5, 0.1])) })], ['HardSwish', () => ({})],
  ['Softplus', () => ({})], ['Softsign', () => ({})], ['Erf', () => ({})], ['Sin', () => ({})], ['Cos', () => ({})],
  ['Celu', (r) => ({ alpha: float(r.pick([1, 2])) })], ['Selu', () => ({})], ['Gelu', (r) => ({ approximate: { type: 'string', value: r.pick(['none', 'tanh']) } })],
  ['Exp', () => ({})], ['Atan', () => ({})], ['Mish', () => ({})],
];
const DISCONTINUOUS = ['Floor', 'Ceil', 'Round', 'Sign'];
const BINARY = ['Add', 'Sub', 'Mul', 'Max', 'Min'];

const GENS: Record<string, OpGen> = {
  unary(b, x) {
    if (x.dtype !== 'float32') return undefined;
    const [op, attrs] = b.r.pick(UNARY);
    return b.op(op, [x.name], attrs(b.r), x.shape);
  },
  discontinuous(b, x) {
    if (x.computed || x.dtype !== 'float32') return undefined;
    return b.op(b.r.pick(DISCONTINUOUS), [x.name], {}, x.shape);
  },
  binary(b, x) {
    if (x.dtype !== 'float32') return undefined;
    const y = b.constF32(broadcastShape(b.r, x.shape));
    const [a, c] = b.r.next() < 0.5 ? [x.name, y.name] : [y.name, x.name];
    return b.op(b.r.pick(BINARY), [a, c], {}, x.shape);
  },
  div(b, x) {
    if (x.dtype !== 'float32') return undefined;
    const y = b.constF32(broadcastShape(b.r, x.shape), 0.5, 2);
    return b.op('Div', [x.name, y.name], {}, x.shape);
  },
  clip(b, x) {
    if (x.dtype !== 'float32') return undefined;
    const lo = b.constF32([], -1, 0);
    const hi = b.constF32([], 0.25, 1.5);
    return b.op('Clip', [x.name, lo.name, hi.name], {}, x.shape);
  },
  softmax(b, x) {
    if (x.dtype !== 'float32' || !x.shape.length) return undefined;
    const axis = b.r.int(-x.shape.length, x.shape.length - 1);
    return b.op(b.r.pick(['Softmax', 'LogSoftmax']), [x.name], { axis: int(axis) }, x.shape);
  },
  reduce(b, x) {
    if (x.dtype !== 'float32' || !x.shape.length) return undefined;
    const rank = x.shape.length;
    const axes = [...new Set(Array.from({ length: b.r.int(1, rank) }, () => b.r.int(0, rank - 1)))].sort();
    const keep = b.r.int(0, 1);
    const out = x.shape.flatMap((d, i) => (axes.includes(i) ? (keep ? [1] : []) : [d]));
    const op = b.r.pick(['ReduceSum', 'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceL2', 'ReduceLogSumExp']);
    return b.op(op, [x.name, b.constI64(axes.map((a) => (b.r.next() < 0.5 ? a - rank : a)))], { keepdims: int(keep) }, out);
  },
  transpose(b, x) {
    if (x.shape.length < 2) return undefined;
    const perm = x.shape.map((_, i) => i);
    for (let i = perm.length - 1; i > 0; i--) {
      const j = b.r.int(0, i);
      [perm[i], perm[j]] = [perm[j]!, perm[i]!];
    }
    return b.op('Transpose', [x.name], { perm: ints(perm) }, perm.map((p) => x.shape[p]!), x.dtype);
  },
  reshape(b, x) {
    const n = size(x.shape);
    const shape = b.r.next() < 0.5 ? [n] : [1, n];
    return b.op('Reshape', [x.name, b.constI64(b.r.next() < 0.5 ? shape : shape.map((d, i) => (i === shape.length - 1 ? -1 : d)))], {}, shape, x.dtype);
  },
  unsqueeze(b, x) {
    if (x.shape.length >= 4) return undefined;
    const axis = b.r.int(0, x.shape.length);
    const out = [...x.shape.slice(0, axis), 1, ...x.shape.slice(axis)];
    return b.op('Unsqueeze', [x.name, b.constI64([axis])], {}, out, x.dtype);
  },
  matmul(b, x) {
    if (x.dtype !== 'float32' || x.shape.length < 1) return undefined;
    const k = x.shape[x.shape.length - 1]!;
    const n = b.r.int(1, 6);
    const w = b.constF32(b.r.next() < 0.3 && x.shape.length >= 3 ? [x.shape[x.shape.length - 3]!, k, n] : [k, n], -0.5, 0.5);
    const out = x.shape.length === 1 ? [n] : [...x.shape.slice(0, -1), n];
    if (w.shape.length === 3) out.splice(out.length - 3, 1, Math.max(x.shape[x.shape.length - 3]!, w.shape[0]!));
    return b.op('MatMul', [x.name, w.name], {}, out);
  },
  gemm(b, x) {
    if (x.dtype !== 'float32' || x.shape.length !== 2) return undefined;
    const [m, k] = x.shape as [number, number];
    const n = b.r.int(1, 5);
    const transB = b.r.int(0, 1);
    const w = b.constF32(transB ? [n, k] : [k, n], -0.5, 0.5);
    const c = b.constF32(b.r.pick([[n], [1, n], [m, n], []]));
    return b.op('Gemm', [x.name, w.name, c.name], { transB: int(transB), alpha: float(b.r.pick([1, 0.5])), beta: float(b.r.pick([1, 2])) }, [m, n]);
  },
  concat(b, x) {
    if (!x.shape.length || x.dtype !== 'float32') return undefined;
    const axis = b.r.int(0, x.shape.length - 1);
    const other = [...x.shape];
    other[axis] = b.r.int(1, 3);
    const y = b.constF32(other);
    const out = [...x.shape];
    out[axis] = x.shape[axis]! + other[axis]!;
    return b.op('Concat', [x.name, y.name], { axis: int(b.r.next() < 0.5 ? axis : axis - x.shape.length) }, out);
  },
  conv(b, x) {
    if (x.dtype !== 'float32' || x.shape.length !== 4) return undefined;
    const [n, c, h, w] = x.shape as [number, number, number, number];
    const k = b.r.int(1, Math.min(3, h, w));
    const pad = b.r.int(0, k - 1);
    const stride = b.r.int(1, 2);
    const m = b.r.int(1, 4);
    const wt = b.constF32([m, c, k, k], -0.5, 0.5);
    const bias = b.constF32([m]);
    const oh = Math.floor((h + 2 * pad - k) / stride) + 1;
    const ow = Math.floor((w + 2 * pad - k) / stride) + 1;
    return b.op('Conv', [x.name, wt.name, bias.name], { kernel_shape: ints([k, k]), pads: ints([pad, pad, pad, pad]), strides: ints([stride, stride]) }, [n, m, oh, ow]);
  },
  pool(b, x) {
    if (x.dtype !== 'float32' || x.shape.length !== 4) return undefined;
    const [n, c, h, w] = x.shape as [number, number, number, number];
    const k = b.r.int(1, Math.min(3, h, w));
    const stride = b.r.int(1, 2);
    const op = b.r.pick(['MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool']);
    if (op.startsWith('Global')) return b.op(op, [x.name], {}, [n, c, 1, 1]);
    return b.op(op, [x.name], { kernel_shape: ints([k, k]), strides: ints([stride, stride]) }, [n, c, Math.floor((h - k) / stride) + 1, Math.floor((w - k) / stride) + 1]);
  },
  norm(b, x) {
    if (x.dtype !== 'float32' || x.shape.length < 2) return undefined;
    if (b.r.next() < 0.5) {
      const c = x.shape[1]!;
      const scale = b.constF32([c], 0.5, 1.5);
      const bias = b.constF32([c]);
      const mean = b.constF32([c], -0.5, 0.5);
      const v = b.constF32([c], 0.5, 2);
      return b.op('BatchNormalization', [x.name, scale.name, bias.name, mean.name, v.name], { epsilon: float(1e-5) }, x.shape);
    }
    const last = x.shape[x.shape.length - 1]!;
    const scale = b.constF32([last], 0.5, 1.5);
    const bias = b.constF32([last]);
    return b.op('LayerNormalization', [x.name, scale.name, bias.name], { axis: int(-1), epsilon: float(1e-5) }, x.shape);
  },
  castInt(b, x) {
    // Through int32 and back: Cast truncates toward zero; only on inputs (a computed value may sit on a boundary).
    if (x.computed || x.dtype !== 'float32') return undefined;
    const i = b.op('Cast', [x.name], { to: int(6) }, x.shape, 'int32');
    const ys = broadcastShape(b.r, x.shape);
    const y = b.fresh('ik');
    b.inits[y] = tensorFromNumbers('int32', ys, Array.from({ length: size(ys) }, () => b.r.int(-3, 3)));
    const s = b.op(b.r.pick(['Add', 'Mul', 'Sub', 'Max', 'Min']), [i.name, y], {}, x.shape, 'int32');
    return b.op('Cast', [s.name], { to: int(1) }, x.shape);
  },
  compare(b, x) {
    if (x.computed || x.dtype !== 'float32') return undefined;
    const y = b.constF32(broadcastShape(b.r, x.shape));
    const c = b.op(b.r.pick(['Less', 'Greater', 'Equal', 'LessOrEqual']), [x.name, y.name], {}, x.shape);
    const z = b.constF32([]);
    return b.op('Where', [c.name, x.name, z.name], {}, x.shape);
  },
};
const GEN_NAMES = Object.keys(GENS);

function randomShape(r: Rng): Shape {
  const rank = r.pick([1, 2, 2, 3, 4, 4]);
  return Array.from({ length: rank }, (_, i) => (rank === 4 && i >= 2 ? r.int(2, 7) : r.int(1, 6)));
}

/** `count` chains packed into one model; chain i's ops depend only on (seed, i). */
export function makeBatch(seed: number, first: number, count: number): GraphBatch {
  const nodes: ModelNode[] = [];
  const inits: Record<string, HostTensor> = {};
  const feeds: Record<string, HostTensor> = {};
  const chains: Chain[] = [];
  for (let c = first; c < first + count; c++) {
    const r = new Rng((seed * 0x2545f491 + c * 0x9e3779b9) >>> 0);
    const b = new Builder(r, `g${c}`);
    const shape = randomShape(r);
    const input = `g${c}_x`;
    const inputTensor = tensorFromNumbers('float32', shape, Array.from({ length: size(shape) }, () => Math.round(r.uniform(-2, 2) * 1000) / 1000));
    let x: Val = { name: input, shape, dtype: 'float32', computed: false };
    for (let k = r.int(1, 4), tries = 0; k > 0 && tries < 40; tries++) {
      const y = GENS[r.pick(GEN_NAMES)]!(b, x);
      if (!y) continue;
      x = y;
      k--;
    }
    if (x.name === input) x = b.op('Identity', [input], {}, shape);
    if (x.dtype !== 'float32') x = b.op('Cast', [x.name], { to: int(1) }, x.shape);
    const output = `g${c}_y`;
    b.nodes.push({ op: 'Identity', inputs: [x.name], outputs: [output] });
    nodes.push(...b.nodes);
    Object.assign(inits, b.inits);
    feeds[input] = inputTensor;
    chains.push({ input, inputTensor, output, ops: b.nodes.slice(0, -1).map((n) => n.op) });
  }
  const bytes = encodeModel({ nodes, inputs: feeds, outputs: chains.map((c) => c.output), initializers: inits, opsets: { '': 20 } });
  return { bytes, feeds, chains };
}

/** The single chain `c` of a batch as its own model (to find which chain a failing batch owes its error to). */
export function singleChain(seed: number, c: number): GraphBatch {
  return makeBatch(seed, c, 1);
}

/** Max mismatch of two float outputs under |a - b| <= atol + rtol |b|; NaN must meet NaN, infinities their equal. */
export function mismatch(a: ArrayLike<number>, b: ArrayLike<number>, rtol = 2e-3, atol = 2e-4): string | undefined {
  if (a.length !== b.length) return `length ${a.length} vs ${b.length}`;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (Number.isNaN(x) || Number.isNaN(y)) {
      if (Number.isNaN(x) !== Number.isNaN(y)) return `element ${i}: ${x} vs ${y}`;
      continue;
    }
    if (x === y) continue;
    if (!(Math.abs(x - y) <= atol + rtol * Math.abs(y))) return `element ${i}: ${x} vs ${y}`;
  }
  return undefined;
}
