import { ShapeError } from '../../errors.js';
import { broadcastShapes } from '../../ir/shape.js';
import { sizeOf } from '../../ir/tensor.js';
import type { CpuKernel } from '../../backends/cpu/kernel.js';
import { broadcastIndex } from '../../backends/cpu/math-broadcast.js';
import { fromF64, toF64 } from '../../backends/cpu/math-infer.js';
import type { OpSchema } from '../../ir/ops/schema.js';
import { need, shapeFromInput, shapeValues } from './common.js';

/**
 * SumToShape(X, shape) -> Y [shape]: the adjoint of numpy broadcasting. Every element of X is added into the
 * element of Y that broadcasting `shape` to X's shape would have read it from. Gradient rules use ReduceSum where
 * the broadcast axes are known when the backward graph is built; this op covers the remaining case, where a
 * symbolic dim may or may not be 1 at run time.
 */
export const sumToShapeSchema: OpSchema = {
  op: 'SumToShape',
  inputs: [2, 2],
  outputs: [1, 1],
  infer(ctx) {
    const x = need(ctx, 0, 'X');
    const shape = shapeFromInput(ctx, 1, 'shape');
    if (x.shape && shape) {
      // The target must broadcast to X (unidirectionally): broadcasting both must give X's shape back.
      const b = broadcastShapes(shape, x.shape, 'SumToShape target and X');
      if (b.length !== x.shape.length) throw new ShapeError(`SumToShape target [${shape.join(', ')}] has a higher rank than X [${x.shape.join(', ')}].`);
    }
    return [{ dtype: x.dtype, shape }];
  },
};

export const sumToShapeKernel: CpuKernel = (inputs, node, ctx) => {
  const X = inputs[0]!;
  const target = shapeValues(inputs[1], node.op, 'shape');
  const n = sizeOf(target, ctx.maxElements);
  const out = broadcastShapes(target, X.shape, 'SumToShape target and X');
  if (out.length !== X.shape.length || out.some((d, i) => d !== X.shape[i])) {
    throw new ShapeError(`SumToShape: [${target.join(', ')}] does not broadcast to X's shape [${X.shape.join(', ')}].`);
  }
  const x = toF64(X);
  const idx = broadcastIndex(target, X.shape);
  const y = new Float64Array(n);
  for (let i = 0; i < x.length; i++) {
    const j = idx ? idx[i]! : i;
    y[j] = y[j]! + x[i]!;
  }
  return [fromF64({ dtype: X.dtype, shape: target }, y)];
};
