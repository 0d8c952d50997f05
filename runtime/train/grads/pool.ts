import { TRAIN_DOMAIN } from '../ops/common.js';
import { divideByCount } from './helpers.js';
import type { GradRule } from './rule.js';

/**
 * Pools. GlobalAveragePool: dX = dY broadcast over the spatial axes / (number of spatial positions), with IR ops
 * (Expand, Mul). AveragePool and MaxPool: dedicated ops with the forward attributes (ops/pool-grad.ts); MaxPool
 * keeps X to find the winning taps again. MaxPool's optional Indices output is int64 and carries no gradient.
 */
const globalAveragePool: GradRule = {
  differentiable: [0],
  saves: {},
  backward(ctx) {
    const rank = ctx.inputShape(0).length;
    const spread = ctx.emit('Expand', [ctx.dy()!, ctx.shapeOf(0)])[0]!;
    return [divideByCount(ctx, spread, 0, Array.from({ length: rank - 2 }, (_, k) => k + 2))];
  },
};

const averagePool: GradRule = {
  differentiable: [0],
  saves: {},
  backward: (ctx) => [ctx.emit('AveragePoolGrad', [ctx.dy()!, ctx.shapeOf(0)], { ...ctx.node.attrs }, { domain: TRAIN_DOMAIN })[0]!],
};

const maxPool: GradRule = {
  differentiable: [0],
  saves: { inputs: [0] },
  backward: (ctx) => [ctx.emit('MaxPoolGrad', [ctx.dy()!, ctx.input(0)], { ...ctx.node.attrs }, { domain: TRAIN_DOMAIN })[0]!],
};

export const rules: Record<string, GradRule> = { GlobalAveragePool: globalAveragePool, AveragePool: averagePool, MaxPool: maxPool };
