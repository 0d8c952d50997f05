import { InternalError } from '../../../errors.js';
import { allocStorage, toNumbers } from '../../../ir/dtype.js';
import { BINARY_OPS, UNARY_OPS, schemas } from '../../../ir/ops/elementwise.js';
import type { HostTensor } from '../../../ir/tensor.js';
import { BINARY_FNS, type BinaryFn } from '../elementwise-binary.js';
import { UNARY_FNS } from '../elementwise-unary.js';
import type { CpuKernel } from '../kernel.js';
import { broadcastIndex } from '../math-broadcast.js';
import { fromF64, inferConcrete, toF64, withStorage } from '../math-infer.js';

/**
 * CPU kernels of the elementwise family: every unary and binary op from the two tables, variadic
 * Sum/Mean/Min/Max, Where and Clip. Broadcasting is handled once, by index maps (math-broadcast.ts).
 */

function unaryKernel(op: string): CpuKernel {
  const make = UNARY_FNS[op];
  if (!make) throw new InternalError(`Unary op ${op} has a schema but no CPU function.`);
  return (inputs, node, ctx) => {
    const [o] = inferConcrete(schemas[op], node, inputs, ctx);
    const f = make(node);
    const v = toF64(inputs[0]!);
    for (let i = 0; i < v.length; i++) v[i] = f(v[i]!);
    return [fromF64(o!, v)];
  };
}

/** out[i] = f(a[ia(i)], b[ib(i)]) over the broadcast output. */
function broadcastBinary(a: HostTensor, b: HostTensor, outShape: number[], n: number, f: BinaryFn): Float64Array {
  const av = toF64(a);
  const bv = toF64(b);
  const ia = broadcastIndex(a.shape, outShape);
  const ib = broadcastIndex(b.shape, outShape);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = f(av[ia ? ia[i]! : i]!, bv[ib ? ib[i]! : i]!);
  return out;
}

function binaryKernel(op: string): CpuKernel {
  const make = BINARY_FNS[op];
  if (!make) throw new InternalError(`Binary op ${op} has a schema but no CPU function.`);
  return (inputs, node, ctx) => {
    const [o] = inferConcrete(schemas[op], node, inputs, ctx);
    const a = inputs[0]!;
    const f = make(node, a.dtype);
    const n = o!.shape.reduce((p, d) => p * d, 1);
    return [fromF64(o!, broadcastBinary(a, inputs[1]!, o!.shape, n, f))];
  };
}

/** Sum/Mean/Min/Max over 1..N broadcast inputs, folded left to right. */
function variadicKernel(op: 'Sum' | 'Mean' | 'Min' | 'Max'): CpuKernel {
  // Min/Max propagate NaN, as numpy.minimum/maximum and onnxruntime do.
  const fold: BinaryFn =
    op === 'Min' ? (a, b) => (a < b || a !== a ? a : b) : op === 'Max' ? (a, b) => (a > b || a !== a ? a : b) : (a, b) => a + b;
  return (inputs, node, ctx) => {
    const [o] = inferConcrete(schemas[op], node, inputs, ctx);
    const n = o!.shape.reduce((p, d) => p * d, 1);
    const acc = new Float64Array(n);
    inputs.forEach((t, k) => {
      const v = toF64(t!);
      const map = broadcastIndex(t!.shape, o!.shape);
      for (let i = 0; i < n; i++) {
        const x = v[map ? map[i]! : i]!;
        acc[i] = k === 0 ? x : fold(acc[i]!, x);
      }
    });
    if (op === 'Mean') for (let i = 0; i < n; i++) acc[i] = acc[i]! / inputs.length;
    return [fromF64(o!, acc)];
  };
}

/** Where copies stored elements as they are, so it works for every type (strings and 64-bit integers included). */
const where: CpuKernel = (inputs, node, ctx) => {
  const [o] = inferConcrete(schemas.Where, node, inputs, ctx);
  const [c, x, y] = inputs as [HostTensor, HostTensor, HostTensor];
  const n = o!.shape.reduce((p, d) => p * d, 1);
  const ic = broadcastIndex(c.shape, o!.shape);
  const ix = broadcastIndex(x.shape, o!.shape);
  const iy = broadcastIndex(y.shape, o!.shape);
  const out = allocStorage(o!.dtype, n) as unknown[];
  const cd = c.data as Uint8Array;
  const xd = x.data as ArrayLike<unknown>;
  const yd = y.data as ArrayLike<unknown>;
  for (let i = 0; i < n; i++) out[i] = cd[ic ? ic[i]! : i] ? xd[ix ? ix[i]! : i] : yd[iy ? iy[i]! : i];
  return [withStorage(o!, out as unknown as HostTensor['data'])];
};

/** Clip-13: min(max(x, lo), hi); when lo > hi every element becomes hi, as the spec says. */
const clip: CpuKernel = (inputs, node, ctx) => {
  const [o] = inferConcrete(schemas.Clip, node, inputs, ctx);
  const lo = inputs[1] ? toNumbers(inputs[1].dtype, inputs[1].data)[0]! : -Infinity;
  const hi = inputs[2] ? toNumbers(inputs[2].dtype, inputs[2].data)[0]! : Infinity;
  const v = toF64(inputs[0]!);
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    v[i] = x < lo ? (lo > hi ? hi : lo) : x > hi ? hi : x; // NaN passes through unchanged
  }
  return [fromF64(o!, v)];
};

export const kernels: Record<string, CpuKernel> = {
  ...Object.fromEntries(Object.keys(UNARY_OPS).map((op) => [op, unaryKernel(op)])),
  ...Object.fromEntries(Object.keys(BINARY_OPS).map((op) => [op, binaryKernel(op)])),
  Sum: variadicKernel('Sum'),
  Mean: variadicKernel('Mean'),
  Min: variadicKernel('Min'),
  Max: variadicKernel('Max'),
  Where: where,
  Clip: clip,
};
