import { InvalidArgumentError } from '../../errors.js';
import { attrInt, type Dim } from '../graph.js';
import { readWindowAttrs, windowOutDim } from './conv-geometry.js';
import { checkDType, requireInput, requireRank, type TypeClass } from './math-types.js';
import { defineOps, type InferContext, type InferredOutput, type OpSchema } from './schema.js';

/**
 * Pools: MaxPool-12 (optional int64 Indices output), AveragePool-19 (dilations, count_include_pad), LpPool-18,
 * and the Global* pools. Output sizes come from the shared window geometry (conv-geometry.ts), including
 * ceil_mode's rule that the last window must start inside the input or the left padding.
 */

function windowPoolSchema(op: string, types: TypeClass, maxOutputs: number): OpSchema {
  return {
    op,
    inputs: [1, 1],
    outputs: [1, maxOutputs],
    infer(ctx: InferContext): InferredOutput[] {
      const x = requireInput(ctx, 0, 'X');
      checkDType(ctx, 'X', x.dtype, types);
      requireRank(ctx, x.shape, 'X', 3);
      if (op === 'MaxPool') {
        const order = attrInt(ctx.node, 'storage_order', 0);
        if (order !== 0 && order !== 1) throw new InvalidArgumentError(`MaxPool storage_order must be 0 (row major) or 1 (column major), got ${order}.`);
      }
      let shape: Dim[] | undefined;
      if (x.shape) {
        const spatial = x.shape.slice(2);
        const w = readWindowAttrs(ctx.node, spatial.length);
        shape = [x.shape[0]!, x.shape[1]!, ...spatial.map((d, i) => windowOutDim(d, w, i))];
      }
      const outs: InferredOutput[] = [{ dtype: x.dtype, shape }];
      if (ctx.node.outputs.length > 1) outs.push({ dtype: 'int64', shape: shape && [...shape] });
      return outs;
    },
  };
}

function globalPoolSchema(op: string): OpSchema {
  return {
    op,
    inputs: [1, 1],
    outputs: [1, 1],
    infer(ctx) {
      const x = requireInput(ctx, 0, 'X');
      checkDType(ctx, 'X', x.dtype, 'float');
      requireRank(ctx, x.shape, 'X', 2);
      // [N, C, D1..Dn] -> [N, C, 1..1]
      return [{ dtype: x.dtype, shape: x.shape && [x.shape[0]!, x.shape[1]!, ...x.shape.slice(2).map(() => 1)] }];
    },
  };
}

export const schemas = defineOps(
  windowPoolSchema('MaxPool', 'numeric', 2),
  windowPoolSchema('AveragePool', 'float', 1),
  windowPoolSchema('LpPool', 'float', 1),
  globalPoolSchema('GlobalAveragePool'),
  globalPoolSchema('GlobalMaxPool'),
  globalPoolSchema('GlobalLpPool'),
);
