import { InvalidArgumentError } from '../../../errors.js';
import { isFloat, toNumbers } from '../../../ir/dtype.js';
import { attrInt } from '../../../ir/graph.js';
import { REDUCE_OPS, resolveReduceAxes, schemas } from '../../../ir/ops/reduce.js';
import { normalizeAxis } from '../../../ir/shape.js';
import { hostTensor, tensorFromNumbers, type HostTensor } from '../../../ir/tensor.js';
import type { CpuKernel } from '../kernel.js';
import { broadcastIndex } from '../math-broadcast.js';
import { fromF64, inferConcrete, toF64 } from '../math-infer.js';
import { reduceValues, typeLimitStorage } from '../reduce-core.js';

/** Reduce*-18, ArgMax/ArgMin-13, CumSum-14 and TopK-11 on the CPU. */

/** Splits a shape around one axis: [outer, axis length, inner]. */
function around(shape: readonly number[], axis: number): [number, number, number] {
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  return [outer, shape[axis]!, inner];
}

function reduceKernel(op: string): CpuKernel {
  return (inputs, node, ctx) => {
    const [o] = inferConcrete(schemas[op], node, inputs, ctx);
    const X = inputs[0]!;
    const axesValues = inputs[1] ? Array.from(toNumbers(inputs[1].dtype, inputs[1].data)) : [];
    const axes = new Set(resolveReduceAxes(node, axesValues, X.shape.length));
    // Every input element adds into the output element with the same coordinates on the kept axes: that is the
    // broadcast map from the keepdims shape back to the input shape.
    const keepShape = X.shape.map((d, i) => (axes.has(i) ? 1 : d));
    const outCount = keepShape.reduce((a, b) => a * b, 1);
    const count = X.shape.reduce((a, d, i) => (axes.has(i) ? a * d : a), 1);
    if (count === 0 && (op === 'ReduceMax' || op === 'ReduceMin') && !isFloat(X.dtype)) {
      // The empty maximum/minimum of an integer type is its lowest/highest value (ONNX Reduce*-18).
      return [hostTensor(o!.dtype, o!.shape, typeLimitStorage(X.dtype, outCount, op === 'ReduceMax' ? 'min' : 'max')!)];
    }
    const values = reduceValues(op, toF64(X), broadcastIndex(keepShape, X.shape), outCount, count);
    return [fromF64(o!, values)];
  };
}

/** ArgMax/ArgMin-13: the first extreme index, or the last with select_last_index=1. */
function argKernel(op: 'ArgMax' | 'ArgMin'): CpuKernel {
  return (inputs, node, ctx) => {
    const [o] = inferConcrete(schemas[op], node, inputs, ctx);
    const X = inputs[0]!;
    const axis = normalizeAxis(attrInt(node, 'axis', 0), X.shape.length);
    const last = attrInt(node, 'select_last_index', 0) !== 0;
    const [outer, L, inner] = around(X.shape, axis);
    const x = toF64(X);
    const out = new Float64Array(outer * inner);
    // NaN counts as the extreme value, as in numpy.argmax/argmin: the first NaN wins (the last with
    // select_last_index), and once a NaN is chosen only another NaN (with select_last_index) replaces it.
    const beats = op === 'ArgMax' ? (v: number, b: number) => (last ? v >= b : v > b) : (v: number, b: number) => (last ? v <= b : v < b);
    const better = (v: number, b: number) => (b !== b ? last && v !== v : v !== v || beats(v, b));
    for (let a = 0; a < outer; a++) {
      for (let i = 0; i < inner; i++) {
        const base = a * L * inner + i;
        let best = x[base]!;
        let arg = 0;
        for (let l = 1; l < L; l++) {
          const v = x[base + l * inner]!;
          if (better(v, best)) {
            best = v;
            arg = l;
          }
        }
        out[a * inner + i] = arg;
      }
    }
    return [tensorFromNumbers('int64', o!.shape, out)];
  };
}

/** CumSum-14: running sums along `axis`; exclusive=1 shifts by one (starting at 0), reverse=1 runs backwards. */
const cumSum: CpuKernel = (inputs, node, ctx) => {
  const [o] = inferConcrete(schemas.CumSum, node, inputs, ctx);
  const [X, A] = inputs as [HostTensor, HostTensor];
  const axis = normalizeAxis(toNumbers(A.dtype, A.data)[0]!, X.shape.length, 'CumSum axis');
  const exclusive = attrInt(node, 'exclusive', 0) !== 0;
  const reverse = attrInt(node, 'reverse', 0) !== 0;
  const [outer, L, inner] = around(X.shape, axis);
  const x = toF64(X);
  const y = new Float64Array(x.length);
  for (let a = 0; a < outer; a++) {
    for (let i = 0; i < inner; i++) {
      const base = a * L * inner + i;
      let s = 0;
      for (let step = 0; step < L; step++) {
        const l = reverse ? L - 1 - step : step;
        const at = base + l * inner;
        if (exclusive) {
          y[at] = s;
          s += x[at]!;
        } else {
          s += x[at]!;
          y[at] = s;
        }
      }
    }
  }
  return [fromF64(o!, y)];
};

/**
 * TopK-11: the K largest (largest=1) or smallest elements along `axis`, in sorted order, with their int64
 * indices; equal values keep the lower index first. sorted=0 allows any order, so sorted order is returned too.
 */
const topK: CpuKernel = (inputs, node, ctx) => {
  const [ov, oi] = inferConcrete(schemas.TopK, node, inputs, ctx);
  const [X, K] = inputs as [HostTensor, HostTensor];
  const k = toNumbers(K.dtype, K.data)[0]!;
  if (!Number.isInteger(k)) throw new InvalidArgumentError(`TopK K must be an integer, got ${k}.`);
  const axis = normalizeAxis(attrInt(node, 'axis', -1), X.shape.length);
  const largest = attrInt(node, 'largest', 1) !== 0;
  const [outer, L, inner] = around(X.shape, axis);
  const x = toF64(X);
  const vals = new Float64Array(outer * k * inner);
  const idxs = new Float64Array(outer * k * inner);
  const order = new Array<number>(L);
  const slice = new Float64Array(L);
  for (let a = 0; a < outer; a++) {
    for (let i = 0; i < inner; i++) {
      const base = a * L * inner + i;
      for (let l = 0; l < L; l++) {
        order[l] = l;
        slice[l] = x[base + l * inner]!;
      }
      // NaN sorts as the largest value (as in numpy), so it is picked first by largest=1 and last otherwise.
      const key = (l: number) => (Number.isNaN(slice[l]!) ? Infinity : slice[l]!);
      const nanFirst = (p: number, q: number) => Number(Number.isNaN(slice[q]!)) - Number(Number.isNaN(slice[p]!));
      order.sort((p, q) => {
        const d = largest ? key(q) - key(p) || nanFirst(p, q) : key(p) - key(q) || -nanFirst(p, q);
        return d || p - q;
      });
      for (let j = 0; j < k; j++) {
        const at = a * k * inner + j * inner + i;
        vals[at] = slice[order[j]!]!;
        idxs[at] = order[j]!;
      }
    }
  }
  return [fromF64(ov!, vals), tensorFromNumbers('int64', oi!.shape, idxs)];
};

export const kernels: Record<string, CpuKernel> = {
  ...Object.fromEntries(Object.keys(REDUCE_OPS).map((op) => [op, reduceKernel(op)])),
  ArgMax: argKernel('ArgMax'),
  ArgMin: argKernel('ArgMin'),
  CumSum: cumSum,
  TopK: topK,
};
