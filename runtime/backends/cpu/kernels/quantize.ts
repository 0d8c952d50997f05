import { InternalError } from '../../../errors.js';
import type { Node } from '../../../ir/graph.js';
import { QUANT_RANGE, quantLayout, quantRange, roundHalfEven, scaleIndex, schemas } from '../../../ir/ops/quantize.js';
import { hostTensor, tensorFromNumbers, type HostTensor } from '../../../ir/tensor.js';
import type { CpuKernel, CpuKernelContext } from '../kernel.js';
import { fromF64, inferConcrete, toF64 } from '../math-infer.js';
import { kernels as convKernels } from './conv.js';
import { kernels as matmulKernels } from './matmul.js';

/**
 * Linear quantization on the CPU (ONNX QuantizeLinear-21, DequantizeLinear-21, DynamicQuantizeLinear-11,
 * MatMulInteger-10, ConvInteger-10, QLinearMatMul-21, QLinearConv-10). Divisions and products of scales are
 * rounded to float32 as the spec's float32 arithmetic does; integer products accumulate exactly (float64 holds every
 * int8 dot product of fewer than 2^37 terms), then requantize with round half to even and saturation.
 */

const f32 = Math.fround;

function layoutOf(node: Node, x: HostTensor, s: HostTensor, zp: HostTensor | undefined) {
  const l = quantLayout({ node, inputs: [], symbol: () => '' }, x.shape, s.shape, zp && { dtype: zp.dtype, shape: zp.shape });
  if (!l) throw new InternalError(`${node.op}: no scale layout for concrete shapes.`);
  return l;
}

const quantizeLinear: CpuKernel = (inputs, node, ctx) => {
  const [o] = inferConcrete(schemas.QuantizeLinear, node, inputs, ctx);
  const [X, S, Z] = inputs as [HostTensor, HostTensor, HostTensor | undefined];
  const l = layoutOf(node, X, S, Z);
  const [lo, hi] = quantRange(node, o!.dtype);
  const x = toF64(X);
  const s = toF64(S);
  const z = Z ? toF64(Z) : undefined;
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const j = scaleIndex(l, i);
    const q = roundHalfEven(f32(x[i]! / s[j]!)) + (z ? z[j]! : 0);
    y[i] = Number.isNaN(q) ? 0 : Math.min(hi, Math.max(lo, q));
  }
  return [fromF64(o!, y)];
};

const dequantizeLinear: CpuKernel = (inputs, node, ctx) => {
  const [o] = inferConcrete(schemas.DequantizeLinear, node, inputs, ctx);
  const [X, S, Z] = inputs as [HostTensor, HostTensor, HostTensor | undefined];
  const l = layoutOf(node, X, S, Z);
  const x = toF64(X);
  const s = toF64(S);
  const z = Z ? toF64(Z) : undefined;
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const j = scaleIndex(l, i);
    y[i] = (x[i]! - (z ? z[j]! : 0)) * s[j]!;
  }
  return [fromF64(o!, y)];
};

/**
 * DynamicQuantizeLinear-11: the range [min(0, min x), max(0, max x)] maps onto [0, 255]; scale = range / 255,
 * zero point = saturate(round(-min / scale)), y = saturate(round(x / scale) + zero point). An all-zero x has no
 * range; its scale is 1 (onnxruntime's choice; the spec's formula would divide by zero) and every q is 0.
 */
export function dynamicQuantParams(min: number, max: number): { scale: number; zeroPoint: number } {
  const lo = f32(Math.min(0, min));
  const hi = f32(Math.max(0, max));
  const range = f32(hi - lo);
  const scale = range === 0 ? 1 : f32(range / 255);
  const zeroPoint = Math.min(255, Math.max(0, roundHalfEven(f32(0 - f32(lo / scale)))));
  return { scale, zeroPoint };
}

const dynamicQuantizeLinear: CpuKernel = (inputs, node, ctx) => {
  const [o] = inferConcrete(schemas.DynamicQuantizeLinear, node, inputs, ctx);
  const x = toF64(inputs[0]!);
  let min = Infinity;
  let max = -Infinity;
  for (const v of x) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const { scale, zeroPoint } = dynamicQuantParams(x.length ? min : 0, x.length ? max : 0);
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const q = roundHalfEven(f32(x[i]! / scale)) + zeroPoint;
    y[i] = Math.min(255, Math.max(0, q));
  }
  return [fromF64(o!, y), tensorFromNumbers('float32', [], [scale]), tensorFromNumbers('uint8', [], [zeroPoint])];
};

/** values - zero point, as float64, the zero point indexed by `at(i)` (0 for a scalar). */
function centered(t: HostTensor, zp: HostTensor | undefined, at: (i: number) => number): HostTensor {
  const v = toF64(t);
  if (zp) {
    const z = toF64(zp);
    const scalar = z.length === 1;
    for (let i = 0; i < v.length; i++) v[i] = v[i]! - z[scalar ? 0 : at(i)]!;
  }
  return hostTensor('float64', t.shape, v);
}

/** (A - a_zp) @ (B - b_zp) as exact float64 values, through the float MatMul reference. */
function integerMatMul(A: HostTensor, B: HostTensor, azp: HostTensor | undefined, bzp: HostTensor | undefined, node: Node, ctx: CpuKernelContext): HostTensor {
  const K = A.shape[A.shape.length - 1]!;
  const M = A.shape.length >= 2 ? A.shape[A.shape.length - 2]! : 1;
  const N = B.shape.length >= 2 ? B.shape[B.shape.length - 1]! : 1;
  const a = centered(A, azp, (i) => Math.floor(i / K) % M);
  const b = centered(B, bzp, (i) => i % N);
  return matmulKernels.MatMul!([a, b], { ...node, op: 'MatMul', attrs: {} }, ctx)[0]!;
}

/** conv(x - x_zp, w - w_zp) as exact float64 values, through the float Conv reference. */
function integerConv(X: HostTensor, W: HostTensor, xzp: HostTensor | undefined, wzp: HostTensor | undefined, node: Node, ctx: CpuKernelContext): HostTensor {
  const perChannel = W.shape.slice(1).reduce((a, b) => a * b, 1);
  const x = centered(X, xzp, () => 0);
  const w = centered(W, wzp, (i) => Math.floor(i / perChannel));
  return convKernels.Conv!([x, w], { ...node, op: 'Conv' }, ctx)[0]!;
}

const matmulInteger: CpuKernel = (inputs, node, ctx) => {
  const [o] = inferConcrete(schemas.MatMulInteger, node, inputs, ctx);
  const acc = integerMatMul(inputs[0]!, inputs[1]!, inputs[2], inputs[3], node, ctx);
  return [fromF64(o!, acc.data as Float64Array)];
};

const convInteger: CpuKernel = (inputs, node, ctx) => {
  const [o] = inferConcrete(schemas.ConvInteger, node, inputs, ctx);
  const acc = integerConv(inputs[0]!, inputs[1]!, inputs[2], inputs[3], node, ctx);
  return [fromF64(o!, acc.data as Float64Array)];
};

/** y = saturate(round(acc * multiplier) + zero point), the requantization of the QLinear ops. */
function requantize(acc: ArrayLike<number>, lo: number, hi: number, mult: (i: number) => number, zp: (i: number) => number): Float64Array {
  const y = new Float64Array(acc.length);
  for (let i = 0; i < acc.length; i++) y[i] = Math.min(hi, Math.max(lo, roundHalfEven(f32(acc[i]! * mult(i))) + zp(i)));
  return y;
}

/** A scalar or per-index parameter: element `idx` of a 1-D tensor, or its only element. */
const param = (v: Float64Array) => (idx: number) => v[v.length === 1 ? 0 : idx]!;

const qlinearMatMul: CpuKernel = (inputs, node, ctx) => {
  const [o] = inferConcrete(schemas.QLinearMatMul, node, inputs, ctx);
  const [A, AS, AZ, B, BS, BZ, YS, YZ] = inputs as HostTensor[];
  const acc = integerMatMul(A!, B!, AZ, BZ, node, ctx);
  const N = B!.shape.length >= 2 ? B!.shape[B!.shape.length - 1]! : 1;
  const M = A!.shape.length >= 2 ? A!.shape[A!.shape.length - 2]! : 1;
  const [as, bs, ys, yz] = [param(toF64(AS!)), param(toF64(BS!)), param(toF64(YS!)), param(toF64(YZ!))];
  const row = (i: number) => Math.floor(i / N) % M;
  const [lo, hi] = QUANT_RANGE[o!.dtype]!;
  const mult = (i: number) => f32(f32(as(row(i)) * bs(i % N)) / ys(row(i)));
  return [fromF64(o!, requantize(acc.data as Float64Array, lo, hi, mult, (i) => yz(row(i))))];
};

const qlinearConv: CpuKernel = (inputs, node, ctx) => {
  const [o] = inferConcrete(schemas.QLinearConv, node, inputs, ctx);
  const [X, XS, XZ, W, WS, WZ, YS, YZ, Bias] = inputs as HostTensor[];
  const acc = integerConv(X!, W!, XZ, WZ, node, ctx).data as Float64Array;
  const M = W!.shape[0]!;
  const P = o!.shape.slice(2).reduce((a, b) => a * b, 1);
  const channel = (i: number) => Math.floor(i / P) % M;
  if (Bias) {
    const b = toF64(Bias);
    for (let i = 0; i < acc.length; i++) acc[i] = acc[i]! + b[channel(i)]!;
  }
  const [xs, ws, ys, yz] = [param(toF64(XS!)), param(toF64(WS!)), param(toF64(YS!)), param(toF64(YZ!))];
  const [lo, hi] = QUANT_RANGE[o!.dtype]!;
  const mult = (i: number) => f32(f32(xs(0) * ws(channel(i))) / ys(0));
  return [fromF64(o!, requantize(acc, lo, hi, mult, () => yz(0)))];
};

export const kernels: Record<string, CpuKernel> = {
  QuantizeLinear: quantizeLinear,
  DequantizeLinear: dequantizeLinear,
  DynamicQuantizeLinear: dynamicQuantizeLinear,
  MatMulInteger: matmulInteger,
  ConvInteger: convInteger,
  QLinearMatMul: qlinearMatMul,
  QLinearConv: qlinearConv,
};
