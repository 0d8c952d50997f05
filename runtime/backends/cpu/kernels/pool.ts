import { attrFloat, attrInt } from '../../../ir/graph.js';
import { concreteWindow, readWindowAttrs } from '../../../ir/ops/conv-geometry.js';
import { schemas } from '../../../ir/ops/pool.js';
import { tensorFromNumbers, type HostTensor } from '../../../ir/tensor.js';
import { OUTSIDE, tapTable } from '../conv-taps.js';
import type { CpuKernel } from '../kernel.js';
import { fromF64, inferConcrete, toF64 } from '../math-infer.js';

/** Pools on the CPU through tap tables (conv-taps.ts); any number of spatial axes. */

interface PoolSetup {
  x: Float64Array;
  planes: number; // N * C
  Q: number; // input positions per plane
  P: number; // output positions per plane
  T: number; // taps per window
  taps: Int32Array;
}

function setup(X: HostTensor, node: Parameters<CpuKernel>[1], outSpatial: number[]): PoolSetup {
  const inSpatial = X.shape.slice(2);
  const w = readWindowAttrs(node, inSpatial.length);
  const win = concreteWindow(inSpatial, w);
  const taps = tapTable({ src: outSpatial, dst: inSpatial, kernel: w.kernel, strides: w.strides, dilations: w.dilations, padsBegin: win.padsBegin, padsEnd: win.padsEnd });
  return {
    x: toF64(X),
    planes: X.shape[0]! * X.shape[1]!,
    Q: inSpatial.reduce((a, b) => a * b, 1),
    P: outSpatial.reduce((a, b) => a * b, 1),
    T: w.kernel.reduce((a, b) => a * b, 1),
    taps,
  };
}

/** Column-major offset of every row-major spatial offset (MaxPool storage_order=1 indices). */
function columnMajor(spatial: number[]): Int32Array {
  const n = spatial.reduce((a, b) => a * b, 1);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let rest = i;
    let off = 0;
    let stride = 1;
    const idx: number[] = [];
    for (let a = spatial.length - 1; a >= 0; a--) {
      idx[a] = rest % spatial[a]!;
      rest = Math.floor(rest / spatial[a]!);
    }
    for (let a = 0; a < spatial.length; a++) {
      off += idx[a]! * stride;
      stride *= spatial[a]!;
    }
    out[i] = off;
  }
  return out;
}

/** MaxPool-12: padding never wins (it is -inf); ties keep the first tap in row-major window order; NaN propagates. */
const maxPool: CpuKernel = (inputs, node, ctx) => {
  const outs = inferConcrete(schemas.MaxPool, node, inputs, ctx);
  const X = inputs[0]!;
  const s = setup(X, node, outs[0]!.shape.slice(2));
  const y = new Float64Array(s.planes * s.P);
  const wantIndices = outs.length > 1;
  const ind = wantIndices ? new Float64Array(s.planes * s.P) : undefined;
  const colMajor = wantIndices && attrInt(node, 'storage_order', 0) === 1 ? columnMajor(X.shape.slice(2)) : undefined;
  for (let pl = 0; pl < s.planes; pl++) {
    const base = pl * s.Q;
    for (let p = 0; p < s.P; p++) {
      let best = -Infinity;
      let arg = -1;
      for (let t = 0, row = p * s.T; t < s.T; t++) {
        const off = s.taps[row + t]!;
        if (off < 0) continue;
        const v = s.x[base + off]!;
        // NaN wins and stays (as in numpy/PyTorch max): the result must not depend on the tap order.
        if (arg < 0 || v > best || (v !== v && best === best)) {
          best = v;
          arg = off;
        }
      }
      y[pl * s.P + p] = best;
      if (ind) ind[pl * s.P + p] = arg < 0 ? -1 : base + (colMajor ? colMajor[arg]! : arg);
    }
  }
  const result = [fromF64(outs[0]!, y)];
  if (ind) result.push(tensorFromNumbers('int64', outs[1]!.shape, ind));
  return result;
};

/**
 * AveragePool-19: the divisor counts the taps inside the input (count_include_pad=0) or inside the input and its
 * declared padding (count_include_pad=1); taps a ceil_mode window puts beyond the padding never count.
 */
const averagePool: CpuKernel = (inputs, node, ctx) => {
  const [o] = inferConcrete(schemas.AveragePool, node, inputs, ctx);
  const s = setup(inputs[0]!, node, o!.shape.slice(2));
  const includePad = attrInt(node, 'count_include_pad', 0) !== 0;
  const y = new Float64Array(s.planes * s.P);
  for (let pl = 0; pl < s.planes; pl++) {
    const base = pl * s.Q;
    for (let p = 0; p < s.P; p++) {
      let sum = 0;
      let count = 0;
      for (let t = 0, row = p * s.T; t < s.T; t++) {
        const off = s.taps[row + t]!;
        if (off >= 0) {
          sum += s.x[base + off]!;
          count++;
        } else if (includePad && off !== OUTSIDE) count++;
      }
      y[pl * s.P + p] = sum / count;
    }
  }
  return [fromF64(o!, y)];
};

/** LpPool-18: (sum over the window of |x|^p)^(1/p); padding contributes 0. */
const lpPool: CpuKernel = (inputs, node, ctx) => {
  const [o] = inferConcrete(schemas.LpPool, node, inputs, ctx);
  const s = setup(inputs[0]!, node, o!.shape.slice(2));
  const p = attrInt(node, 'p', 2);
  const y = new Float64Array(s.planes * s.P);
  for (let pl = 0; pl < s.planes; pl++) {
    const base = pl * s.Q;
    for (let q = 0; q < s.P; q++) {
      let sum = 0;
      for (let t = 0, row = q * s.T; t < s.T; t++) {
        const off = s.taps[row + t]!;
        if (off >= 0) sum += Math.abs(s.x[base + off]!) ** p;
      }
      y[pl * s.P + q] = sum ** (1 / p);
    }
  }
  return [fromF64(o!, y)];
};

/** Global pools: one reduction over all spatial positions of each [n, c] plane. */
function globalPool(op: 'GlobalAveragePool' | 'GlobalMaxPool' | 'GlobalLpPool'): CpuKernel {
  return (inputs, node, ctx) => {
    const [o] = inferConcrete(schemas[op], node, inputs, ctx);
    const X = inputs[0]!;
    const x = toF64(X);
    const planes = X.shape[0]! * X.shape[1]!;
    const Q = X.shape.slice(2).reduce((a, b) => a * b, 1);
    const p = op === 'GlobalLpPool' ? attrFloat(node, 'p', 2) : 0;
    const y = new Float64Array(planes);
    for (let pl = 0; pl < planes; pl++) {
      let acc = op === 'GlobalMaxPool' ? -Infinity : 0;
      for (let q = pl * Q; q < (pl + 1) * Q; q++) {
        const v = x[q]!;
        if (op === 'GlobalMaxPool') acc = v > acc || v !== v ? v : acc;
        else if (op === 'GlobalLpPool') acc += Math.abs(v) ** p;
        else acc += v;
      }
      y[pl] = op === 'GlobalAveragePool' ? acc / Q : op === 'GlobalLpPool' ? acc ** (1 / p) : acc;
    }
    return [fromF64(o!, y)];
  };
}

export const kernels: Record<string, CpuKernel> = {
  MaxPool: maxPool,
  AveragePool: averagePool,
  LpPool: lpPool,
  GlobalAveragePool: globalPool('GlobalAveragePool'),
  GlobalMaxPool: globalPool('GlobalMaxPool'),
  GlobalLpPool: globalPool('GlobalLpPool'),
};
