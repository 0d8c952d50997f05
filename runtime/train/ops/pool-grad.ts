import { ShapeError } from '../../errors.js';
import { attrInt, type Node } from '../../ir/graph.js';
import { concreteWindow, readWindowAttrs } from '../../ir/ops/conv-geometry.js';
import type { OpSchema } from '../../ir/ops/schema.js';
import { sizeOf, type HostTensor } from '../../ir/tensor.js';
import { OUTSIDE, tapTable } from '../../backends/cpu/conv-taps.js';
import type { CpuKernel } from '../../backends/cpu/kernel.js';
import { fromF64, toF64 } from '../../backends/cpu/math-infer.js';
import { needFloat, sameShape, shapeFromInput, shapeValues } from './common.js';

/**
 * Gradients of the windowed pools, with the forward node's attributes (the same tap tables as the forward, so
 * padding, dilation and ceil_mode agree by construction):
 *   AveragePoolGrad(dY [N, C, O..], x_shape) -> dX: each output spreads dY / count over the taps it averaged, with
 *     count as AveragePool-19 counts it (count_include_pad).
 *   MaxPoolGrad(dY [N, C, O..], X) -> dX: each output's gradient goes to the tap that won the forward max, chosen
 *     by the forward kernel's rule (the first maximum in row-major window order; a NaN wins). Recomputing the
 *     argmax from X avoids requiring the optional Indices output.
 */

export const averagePoolGradSchema: OpSchema = {
  op: 'AveragePoolGrad',
  inputs: [2, 2],
  outputs: [1, 1],
  infer(ctx) {
    const dy = needFloat(ctx, 0, 'dY');
    return [{ dtype: dy.dtype, shape: shapeFromInput(ctx, 1, 'x_shape') }];
  },
};

export const maxPoolGradSchema: OpSchema = {
  op: 'MaxPoolGrad',
  inputs: [2, 2],
  outputs: [1, 1],
  infer(ctx) {
    const dy = needFloat(ctx, 0, 'dY');
    const x = needFloat(ctx, 1, 'X');
    return [{ dtype: dy.dtype, shape: sameShape(x) }];
  },
};

function poolTaps(node: Node, xShape: number[], dyShape: number[]) {
  const inSpatial = xShape.slice(2);
  const w = readWindowAttrs(node, inSpatial.length);
  const win = concreteWindow(inSpatial, w);
  const want = [xShape[0]!, xShape[1]!, ...win.out];
  if (dyShape.length !== want.length || dyShape.some((d, i) => d !== want[i])) {
    throw new ShapeError(`${node.op}: dY has shape [${dyShape.join(', ')}] but the forward pool output is [${want.join(', ')}].`);
  }
  const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);
  return {
    taps: tapTable({ src: win.out, dst: inSpatial, kernel: w.kernel, strides: w.strides, dilations: w.dilations, padsBegin: win.padsBegin, padsEnd: win.padsEnd }),
    planes: xShape[0]! * xShape[1]!,
    P: prod(win.out),
    Q: prod(inSpatial),
    T: prod(w.kernel),
  };
}

export const averagePoolGradKernel: CpuKernel = (inputs, node, ctx) => {
  const dY = inputs[0]!;
  const xShape = shapeValues(inputs[1], node.op, 'x_shape');
  sizeOf(xShape, ctx.maxElements);
  const { taps, planes, P, Q, T } = poolTaps(node, xShape, dY.shape);
  const includePad = attrInt(node, 'count_include_pad', 0) !== 0;
  const dy = toF64(dY);
  const dx = new Float64Array(planes * Q);
  for (let pl = 0; pl < planes; pl++) {
    for (let p = 0; p < P; p++) {
      const row = p * T;
      let count = 0;
      for (let t = 0; t < T; t++) {
        const off = taps[row + t]!;
        if (off >= 0 || (includePad && off !== OUTSIDE)) count++;
      }
      const share = dy[pl * P + p]! / count;
      for (let t = 0; t < T; t++) {
        const off = taps[row + t]!;
        if (off >= 0) dx[pl * Q + off] = dx[pl * Q + off]! + share;
      }
    }
  }
  return [fromF64({ dtype: dY.dtype, shape: xShape }, dx)];
};

export const maxPoolGradKernel: CpuKernel = (inputs, node) => {
  const [dY, X] = inputs as HostTensor[];
  const { taps, planes, P, Q, T } = poolTaps(node, X!.shape, dY!.shape);
  const dy = toF64(dY!);
  const x = toF64(X!);
  const dx = new Float64Array(planes * Q);
  for (let pl = 0; pl < planes; pl++) {
    const base = pl * Q;
    for (let p = 0; p < P; p++) {
      let best = -Infinity;
      let arg = -1;
      for (let t = 0, row = p * T; t < T; t++) {
        const off = taps[row + t]!;
        if (off < 0) continue;
        const v = x[base + off]!;
        if (arg < 0 || v > best || (v !== v && best === best)) {
          best = v;
          arg = off;
        }
      }
      if (arg >= 0) dx[base + arg] = dx[base + arg]! + dy[pl * P + p]!;
    }
  }
  return [fromF64({ dtype: dY!.dtype, shape: [...X!.shape] }, dx)];
};
