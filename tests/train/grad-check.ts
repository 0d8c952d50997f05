import { expect } from 'vitest';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Dim, Graph, Node } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, tensorToNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { validateAndSort } from '../../runtime/ir/validate.js';
import { buildBackward, type BackwardGraphs } from '../../runtime/train/autodiff.js';
import { inferTrainShapes } from '../../runtime/train/infer.js';
import { runTrainGraphCpu } from '../../runtime/train/run-cpu.js';
import { Rng, randomTensor } from '../helpers/random.js';

/**
 * Finite-difference gradient checks. The graph under test gets a projection loss L = sum(Y * R) with a fixed random
 * R (so every element of Y matters, with a different weight); autodiff's gradients, computed in float32, are
 * compared with central differences (L(x + h) - L(x - h)) / 2h evaluated on a float64 copy of the forward graph
 * (every float32 input, initializer and Constant widened), where h = 1e-6 leaves truncation and rounding errors
 * far below the float32 error of the analytic side. Tolerance: |analytic - numeric| <= 1e-3 |numeric| + 1e-4 max|numeric| + 1e-6.
 */
export interface GradCase {
  /** Graph inputs: name -> [declared shape (may hold symbols), value]. */
  inputs?: Record<string, [Dim[], HostTensor]>;
  /** Initializers to differentiate (trainable parameters). */
  params?: Record<string, HostTensor>;
  /** Frozen initializers (axes, shapes, statistics). */
  consts?: Record<string, HostTensor>;
  nodes: Node[];
  /** Value the projection loss is applied to; or, with `lossIsOutput`, the loss itself. */
  output: string;
  lossIsOutput?: boolean;
  /** Values to check; default every float graph input and every param. */
  wrt?: string[];
  seed?: number;
}

export interface GradCheckResult {
  graphs: BackwardGraphs;
  analytic: Record<string, Float64Array>;
  numeric: Record<string, Float64Array>;
  worst: number;
}

const isF = (d: DType) => d === 'float32' || d === 'float64';

function baseGraph(c: GradCase, rng: Rng): { g: Graph; loss: string } {
  const g: Graph = {
    name: 'gradcheck',
    inputs: Object.entries(c.inputs ?? {}).map(([name, [shape, t]]) => ({ name, dtype: t.dtype, shape })),
    outputs: [],
    initializers: { ...(c.consts ?? {}), ...(c.params ?? {}) },
    nodes: [...c.nodes],
    values: {},
  };
  if (c.lossIsOutput) {
    g.outputs = [{ name: c.output, dtype: 'float32' }];
    return { g, loss: c.output };
  }
  const probe = inferTrainShapes(validateAndSort({ ...g, outputs: [{ name: c.output, dtype: 'float32' }] }));
  const info = probe.values[c.output]!;
  const shape = (info.shape ?? []).map((d, i) => (typeof d === 'number' ? d : concreteDim(c, c.output, i)));
  g.initializers.__R = randomTensor(rng, info.dtype, shape as number[]);
  g.nodes.push(
    { name: 'proj_mul', op: 'Mul', domain: '', inputs: [c.output, '__R'], outputs: ['__YR'], attrs: {} },
    { name: 'proj_sum', op: 'ReduceSum', domain: '', inputs: ['__YR'], outputs: ['__loss'], attrs: { keepdims: { type: 'int', value: 0 } } },
  );
  g.outputs = [{ name: '__loss', dtype: info.dtype }];
  return { g, loss: '__loss' };
}

/** Runs the forward once with concrete feeds to learn a symbolic dim of the projected output. */
function concreteDim(c: GradCase, value: string, axis: number): number {
  const g: Graph = {
    name: 'probe',
    inputs: Object.entries(c.inputs ?? {}).map(([name, [shape, t]]) => ({ name, dtype: t.dtype, shape })),
    outputs: [{ name: value, dtype: 'float32' }],
    initializers: { ...(c.consts ?? {}), ...(c.params ?? {}) },
    nodes: [...c.nodes],
    values: {},
  };
  const feeds = Object.fromEntries(Object.entries(c.inputs ?? {}).map(([k, [, t]]) => [k, t]));
  return runTrainGraphCpu(validateAndSort(g), feeds, [value])[value]!.shape[axis]!;
}

function widen(t: HostTensor): HostTensor {
  return t.dtype === 'float32' ? tensorFromNumbers('float64', t.shape, tensorToNumbers(t)) : t;
}

/** The forward graph in float64: inputs, initializers and Constant values widened. */
function widenGraph(g: Graph): Graph {
  return {
    ...g,
    inputs: g.inputs.map((i) => ({ ...i, dtype: i.dtype === 'float32' ? 'float64' : i.dtype })),
    initializers: Object.fromEntries(Object.entries(g.initializers).map(([k, t]) => [k, widen(t)])),
    nodes: g.nodes.map((n) => {
      const v = n.attrs.value;
      return n.op === 'Constant' && v?.type === 'tensor' ? { ...n, attrs: { ...n.attrs, value: { type: 'tensor', value: widen(v.value) } } } : n;
    }),
  };
}

export function checkGradients(c: GradCase): GradCheckResult {
  const rng = new Rng(c.seed ?? 1234);
  const { g, loss } = baseGraph(c, rng);
  const feeds: Record<string, HostTensor> = Object.fromEntries(Object.entries(c.inputs ?? {}).map(([k, [, t]]) => [k, t]));
  const wrt = c.wrt ?? [...Object.keys(c.inputs ?? {}).filter((k) => isF(feeds[k]!.dtype)), ...Object.keys(c.params ?? {})];
  const graphs = buildBackward(g, { loss, wrt });

  // Analytic: float32 forward, then the backward graph on the saved values.
  const fwdOut = runTrainGraphCpu(graphs.forward, feeds);
  const bwdFeeds = Object.fromEntries(graphs.saved.map((v) => [v, fwdOut[v] ?? feeds[v]!]));
  const bwdOut = runTrainGraphCpu(graphs.backward, bwdFeeds);
  const analytic: Record<string, Float64Array> = {};
  for (const w of wrt) {
    const t = bwdOut[graphs.grads[w]!]!;
    const ref = feeds[w] ?? g.initializers[w]!;
    expect(t.shape, `gradient shape of ${w}`).toEqual(ref.shape);
    expect(t.dtype, `gradient dtype of ${w}`).toBe(ref.dtype);
    analytic[w] = tensorToNumbers(t);
  }

  // Numeric: central differences in float64.
  const g64 = validateAndSort(widenGraph(g));
  const feeds64 = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, widen(t)]));
  const lossAt = (): number => tensorToNumbers(runTrainGraphCpu(g64, feeds64, [loss])[loss]!)[0]!;
  const numeric: Record<string, Float64Array> = {};
  let worst = 0;
  for (const w of wrt) {
    const t = (feeds64[w] ?? g64.initializers[w])!;
    const data = t.data as Float64Array;
    const num = new Float64Array(data.length);
    for (let j = 0; j < data.length; j++) {
      const x0 = data[j]!;
      const h = 1e-6 * Math.max(1, Math.abs(x0));
      data[j] = x0 + h;
      const up = lossAt();
      data[j] = x0 - h;
      const down = lossAt();
      data[j] = x0;
      num[j] = (up - down) / (2 * h);
    }
    numeric[w] = num;
    const scale = num.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const a = analytic[w]!;
    for (let j = 0; j < num.length; j++) {
      const err = Math.abs(a[j]! - num[j]!);
      const tol = 1e-3 * Math.abs(num[j]!) + 1e-4 * scale + 1e-6;
      worst = Math.max(worst, err / tol);
      if (!(err <= tol)) {
        expect.fail(`d loss / d ${w}[${j}]: autodiff ${a[j]} vs finite differences ${num[j]} (|diff| ${err.toExponential(2)} > tol ${tol.toExponential(2)})`);
      }
    }
  }
  return { graphs, analytic, numeric, worst };
}

export const n = (op: string, inputs: string[], outputs: string[], attrs: Node['attrs'] = {}, domain = ''): Node => ({
  name: `${op}_${outputs[0]}`, op, domain, inputs, outputs, attrs,
});

/** Random float32 tensor with every |value| >= `gap` (keeps inputs off kinks such as Relu's 0). */
export function awayFrom0(rng: Rng, shape: number[], gap = 0.1, hi = 1): HostTensor {
  const count = shape.reduce((a, b) => a * b, 1);
  const v = Array.from({ length: count }, () => (rng.next() < 0.5 ? -1 : 1) * rng.uniform(gap, hi));
  return tensorFromNumbers('float32', shape, v);
}

export { Rng, randomTensor };
