import { ShapeError } from '../../errors.js';
import { attrInt, type Node } from '../../ir/graph.js';
import { concreteWindow, readWindowAttrs } from '../../ir/ops/conv-geometry.js';
import type { OpSchema } from '../../ir/ops/schema.js';
import { sizeOf, type HostTensor } from '../../ir/tensor.js';
import { tapTable } from '../../backends/cpu/conv-taps.js';
import type { CpuKernel } from '../../backends/cpu/kernel.js';
import { fromF64, toF64 } from '../../backends/cpu/math-infer.js';
import { needFloat, shapeFromInput, shapeValues } from './common.js';

/**
 * Gradients of Conv-11 (any spatial rank, groups, dilations, strides, explicit or auto padding). Both carry the
 * forward node's attributes unchanged, so the window geometry is the forward's by construction (conv-geometry.ts):
 *   ConvGradInput(dY [N, M, O..], W [M, C/g, k..], x_shape) -> dX [N, C, D..]
 *   ConvGradWeight(X [N, C, D..], dY [N, M, O..], w_shape)  -> dW [M, C/g, k..]
 * With Y[n, m, p] = sum_{c, t} W[m, c, t] X[n, c, tap(p, t)], the adjoints are
 *   dX[n, c, q] = sum over (m, p, t) with tap(p, t) = q of dY[n, m, p] W[m, c, t]
 *   dW[m, c, t] = sum over (n, p) of dY[n, m, p] X[n, c, tap(p, t)]
 * where padding taps contribute nothing. The size of dX is an input because a strided Conv maps several input
 * sizes to one output size.
 */

function gradSchema(op: 'ConvGradInput' | 'ConvGradWeight'): OpSchema {
  return {
    op,
    inputs: [3, 3],
    outputs: [1, 1],
    infer(ctx) {
      const a = needFloat(ctx, 0, op === 'ConvGradInput' ? 'dY' : 'X');
      needFloat(ctx, 1, op === 'ConvGradInput' ? 'W' : 'dY');
      const shape = shapeFromInput(ctx, 2, op === 'ConvGradInput' ? 'x_shape' : 'w_shape');
      if (shape && shape.length < 3) throw new ShapeError(`${op} needs a shape of rank >= 3, got [${shape.join(', ')}].`);
      return [{ dtype: a.dtype, shape }];
    },
  };
}

export const convGradInputSchema = gradSchema('ConvGradInput');
export const convGradWeightSchema = gradSchema('ConvGradWeight');

interface Geometry {
  N: number; C: number; M: number; g: number; Cg: number; Mg: number;
  P: number; Q: number; T: number; taps: Int32Array;
}

function geometry(node: Node, xShape: number[], wShape: number[], dyShape: number[]): Geometry {
  const inSpatial = xShape.slice(2);
  const attrs = readWindowAttrs(node, inSpatial.length, wShape.slice(2));
  const win = concreteWindow(inSpatial, attrs);
  const [N, C] = xShape as [number, number];
  const M = wShape[0]!;
  const g = attrInt(node, 'group', 1);
  const want = [N, M, ...win.out];
  if (dyShape.length !== want.length || dyShape.some((d, i) => d !== want[i])) {
    throw new ShapeError(`${node.op}: dY has shape [${dyShape.join(', ')}] but the forward Conv output is [${want.join(', ')}].`);
  }
  if (C !== wShape[1]! * g) throw new ShapeError(`${node.op}: X has ${C} channels but W [${wShape.join(', ')}] with group ${g} expects ${wShape[1]! * g}.`);
  const taps = tapTable({ src: win.out, dst: inSpatial, kernel: attrs.kernel, strides: attrs.strides, dilations: attrs.dilations, padsBegin: win.padsBegin, padsEnd: win.padsEnd });
  const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);
  return { N, C, M, g, Cg: C / g, Mg: M / g, P: prod(win.out), Q: prod(inSpatial), T: prod(attrs.kernel), taps };
}

export const convGradInputKernel: CpuKernel = (inputs, node, ctx) => {
  const [dY, W] = inputs as HostTensor[];
  const xShape = shapeValues(inputs[2], node.op, 'x_shape');
  sizeOf(xShape, ctx.maxElements);
  const G = geometry(node, xShape, W!.shape, dY!.shape);
  const dy = toF64(dY!);
  const w = toF64(W!);
  const dx = new Float64Array(G.N * G.C * G.Q);
  for (let n = 0; n < G.N; n++) {
    for (let m = 0; m < G.M; m++) {
      const gi = Math.floor(m / G.Mg);
      const dyBase = (n * G.M + m) * G.P;
      for (let c = 0; c < G.Cg; c++) {
        const dxBase = (n * G.C + gi * G.Cg + c) * G.Q;
        const wBase = (m * G.Cg + c) * G.T;
        for (let p = 0; p < G.P; p++) {
          const v = dy[dyBase + p]!;
          for (let t = 0, row = p * G.T; t < G.T; t++) {
            const q = G.taps[row + t]!;
            if (q >= 0) dx[dxBase + q] = dx[dxBase + q]! + v * w[wBase + t]!;
          }
        }
      }
    }
  }
  return [fromF64({ dtype: dY!.dtype, shape: xShape }, dx)];
};

export const convGradWeightKernel: CpuKernel = (inputs, node, ctx) => {
  const [X, dY] = inputs as HostTensor[];
  const wShape = shapeValues(inputs[2], node.op, 'w_shape');
  sizeOf(wShape, ctx.maxElements);
  const G = geometry(node, X!.shape, wShape, dY!.shape);
  const x = toF64(X!);
  const dy = toF64(dY!);
  const dw = new Float64Array(G.M * G.Cg * G.T);
  for (let n = 0; n < G.N; n++) {
    for (let m = 0; m < G.M; m++) {
      const gi = Math.floor(m / G.Mg);
      const dyBase = (n * G.M + m) * G.P;
      for (let c = 0; c < G.Cg; c++) {
        const xBase = (n * G.C + gi * G.Cg + c) * G.Q;
        const wBase = (m * G.Cg + c) * G.T;
        for (let p = 0; p < G.P; p++) {
          const v = dy[dyBase + p]!;
          for (let t = 0, row = p * G.T; t < G.T; t++) {
            const q = G.taps[row + t]!;
            if (q >= 0) dw[wBase + t] = dw[wBase + t]! + v * x[xBase + q]!;
          }
        }
      }
    }
  }
  return [fromF64({ dtype: dY!.dtype, shape: wShape }, dw)];
};
