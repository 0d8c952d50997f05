import { UnsupportedOpError } from '../../errors.js';
import { toNumbers } from '../../ir/dtype.js';
import { attrInt } from '../../ir/graph.js';
import { resolveReduceAxes } from '../../ir/ops/reduce.js';
import { divideByCount } from './helpers.js';
import type { GradContext, GradRule } from './rule.js';

/**
 * ReduceSum-13 / ReduceMean-18: dX = dY with the reduced axes put back (Unsqueeze when keepdims=0) and broadcast to
 * X's shape (Expand); ReduceMean also divides by the number of reduced elements. The axes must be a constant (an
 * initializer) or absent, as every exported model has them.
 */
function reduceRule(mean: boolean): GradRule {
  return {
    differentiable: [0],
    saves: {},
    backward(ctx: GradContext) {
      const rank = ctx.inputShape(0).length;
      let given: number[] = [];
      if (ctx.hasInput(1)) {
        const t = ctx.constantInput(1);
        if (!t) {
          throw new UnsupportedOpError([{ op: ctx.node.op, domain: '', opset: 18, node: ctx.node.name, reason: 'no gradient when the axes are computed at run time' }]);
        }
        given = Array.from(toNumbers(t.dtype, t.data));
      }
      const axes = resolveReduceAxes(ctx.node, given, rank).sort((a, b) => a - b);
      let dy = ctx.dy()!;
      if (axes.length === 0) return [dy];
      if (attrInt(ctx.node, 'keepdims', 1) === 0) dy = ctx.emit('Unsqueeze', [dy, ctx.ints(axes)])[0]!;
      const spread = ctx.emit('Expand', [dy, ctx.shapeOf(0)])[0]!;
      return [mean ? divideByCount(ctx, spread, 0, axes) : spread];
    },
  };
}

export const rules: Record<string, GradRule> = { ReduceSum: reduceRule(false), ReduceMean: reduceRule(true) };
