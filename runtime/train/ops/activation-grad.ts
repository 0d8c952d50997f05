import { InvalidArgumentError, ShapeError } from '../../errors.js';
import { attrInt, attrString } from '../../ir/graph.js';
import type { OpSchema } from '../../ir/ops/schema.js';
import { normalizeAxis } from '../../ir/shape.js';
import type { CpuKernel } from '../../backends/cpu/kernel.js';
import { erf } from '../../backends/cpu/math-erf.js';
import { fromF64, toF64 } from '../../backends/cpu/math-infer.js';
import { needFloat, sameShape } from './common.js';

/**
 * Gradient ops of activations whose derivative is awkward to spell with elementwise IR ops:
 *   GeluGrad(dY, X) {approximate}      -> dX  [same shape as X]
 *   SoftmaxGrad(dY, Y) {axis, log}     -> dX  [same shape as Y]
 */

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

function sameShapeBinary(op: string): OpSchema {
  return {
    op,
    inputs: [2, 2],
    outputs: [1, 1],
    infer(ctx) {
      const dy = needFloat(ctx, 0, 'dY');
      const x = needFloat(ctx, 1, op === 'GeluGrad' ? 'X' : 'Y');
      if (dy.shape && x.shape && (dy.shape.length !== x.shape.length || dy.shape.some((d, i) => typeof d === 'number' && typeof x.shape![i] === 'number' && d !== x.shape![i]))) {
        throw new ShapeError(`${op} dY [${dy.shape.join(', ')}] and its forward tensor [${x.shape.join(', ')}] must have one shape.`);
      }
      return [{ dtype: dy.dtype, shape: sameShape(x) ?? sameShape(dy) }];
    },
  };
}

export const geluGradSchema = sameShapeBinary('GeluGrad');
export const softmaxGradSchema = sameShapeBinary('SoftmaxGrad');

/**
 * d/dx Gelu (ONNX Gelu-20). Exact: y = x Phi(x), so y' = Phi(x) + x phi(x) with phi the standard normal density.
 * tanh form: y = x/2 (1 + tanh u), u = sqrt(2/pi) (x + 0.044715 x^3), so
 * y' = (1 + tanh u)/2 + x/2 (1 - tanh^2 u) sqrt(2/pi) (1 + 3 * 0.044715 x^2).
 */
export const geluGradKernel: CpuKernel = (inputs, node) => {
  const [dY, X] = inputs;
  const approx = attrString(node, 'approximate', 'none');
  if (approx !== 'none' && approx !== 'tanh') throw new InvalidArgumentError(`GeluGrad approximate must be 'none' or 'tanh', got '${approx}'.`);
  const dy = toF64(dY!);
  const x = toF64(X!);
  const dx = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    let d: number;
    if (approx === 'tanh') {
      const t = Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v));
      d = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * v * v);
    } else {
      d = 0.5 * (1 + erf(v * Math.SQRT1_2)) + v * INV_SQRT_2PI * Math.exp(-0.5 * v * v);
    }
    dx[i] = dy[i]! * d;
  }
  return [fromF64({ dtype: dY!.dtype, shape: [...X!.shape] }, dx)];
};

/**
 * Softmax-13 along `axis`: dX = Y (dY - sum_axis(dY Y)). LogSoftmax-13 (log=1): Y = log softmax, so
 * dX = dY - exp(Y) sum_axis(dY). Both follow from the Jacobian of softmax, diag(s) - s s^T.
 */
export const softmaxGradKernel: CpuKernel = (inputs, node) => {
  const [dY, Y] = inputs;
  const shape = Y!.shape;
  const axis = normalizeAxis(attrInt(node, 'axis', -1), shape.length);
  const log = attrInt(node, 'log', 0) !== 0;
  const L = shape[axis]!;
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const dy = toF64(dY!);
  const y = toF64(Y!);
  const dx = new Float64Array(y.length);
  for (let a = 0; a < outer; a++) {
    for (let i = 0; i < inner; i++) {
      const base = a * L * inner + i;
      let s = 0;
      for (let l = 0; l < L; l++) s += log ? dy[base + l * inner]! : dy[base + l * inner]! * y[base + l * inner]!;
      for (let l = 0; l < L; l++) {
        const k = base + l * inner;
        dx[k] = log ? dy[k]! - Math.exp(y[k]!) * s : y[k]! * (dy[k]! - s);
      }
    }
  }
  return [fromF64({ dtype: dY!.dtype, shape: [...shape] }, dx)];
};
