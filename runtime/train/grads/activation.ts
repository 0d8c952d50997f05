import { attrFloat, attrInt, attrString } from '../../ir/graph.js';
import { TRAIN_DOMAIN } from '../ops/common.js';
import { A, type GradRule } from './rule.js';

/**
 * Activations. Where the derivative is a function of the output, the rule keeps the output (Relu, Sigmoid, Tanh,
 * Softmax), so the input can be freed or overwritten in place by the forward plan.
 */

/** Relu: dX = dY where Y > 0, else 0 (the subgradient 0 at x = 0, as PyTorch). */
const relu: GradRule = {
  differentiable: [0],
  saves: { outputs: [0] },
  backward(ctx) {
    const dt = ctx.inputDType(0);
    const mask = ctx.emit('Greater', [ctx.output(0), ctx.scalar(0, dt)])[0]!;
    return [ctx.emit('Where', [mask, ctx.dy()!, ctx.scalar(0, dt)])[0]!];
  },
};

/** LeakyRelu-16: y = x for x >= 0, alpha x otherwise, so dX = dY where X >= 0, else alpha dY. */
const leakyRelu: GradRule = {
  differentiable: [0],
  saves: { inputs: [0] },
  backward(ctx) {
    const dt = ctx.inputDType(0);
    const dy = ctx.dy()!;
    const alpha = attrFloat(ctx.node, 'alpha', 0.01);
    const mask = ctx.emit('GreaterOrEqual', [ctx.input(0), ctx.scalar(0, dt)])[0]!;
    const scaled = ctx.emit('Mul', [dy, ctx.scalar(alpha, dt)])[0]!;
    return [ctx.emit('Where', [mask, dy, scaled])[0]!];
  },
};

/** Sigmoid: dX = dY y (1 - y). */
const sigmoid: GradRule = {
  differentiable: [0],
  saves: { outputs: [0] },
  backward(ctx) {
    const y = ctx.output(0);
    const oneMinus = ctx.emit('Sub', [ctx.scalar(1, ctx.inputDType(0)), y])[0]!;
    const d = ctx.emit('Mul', [y, oneMinus])[0]!;
    return [ctx.emit('Mul', [ctx.dy()!, d])[0]!];
  },
};

/** Tanh: dX = dY (1 - y^2). */
const tanh: GradRule = {
  differentiable: [0],
  saves: { outputs: [0] },
  backward(ctx) {
    const y = ctx.output(0);
    const sq = ctx.emit('Mul', [y, y])[0]!;
    const d = ctx.emit('Sub', [ctx.scalar(1, ctx.inputDType(0)), sq])[0]!;
    return [ctx.emit('Mul', [ctx.dy()!, d])[0]!];
  },
};

/** Gelu-20 (exact or tanh form): a dedicated op, see ops/activation-grad.ts. */
const gelu: GradRule = {
  differentiable: [0],
  saves: { inputs: [0] },
  backward: (ctx) => [
    ctx.emit('GeluGrad', [ctx.dy()!, ctx.input(0)], { approximate: A.string(attrString(ctx.node, 'approximate', 'none')) }, { domain: TRAIN_DOMAIN })[0]!,
  ],
};

/** Softmax-13 / LogSoftmax-13 along `axis` (default -1): SoftmaxGrad from the output. */
function softmaxRule(log: boolean): GradRule {
  return {
    differentiable: [0],
    saves: { outputs: [0] },
    backward: (ctx) => [
      ctx.emit('SoftmaxGrad', [ctx.dy()!, ctx.output(0)], { axis: A.int(attrInt(ctx.node, 'axis', -1)), log: A.int(log ? 1 : 0) }, { domain: TRAIN_DOMAIN })[0]!,
    ],
  };
}

/**
 * Clip-13 (ReLU6 is Clip(x, 0, 6)): dX = dY where min <= x <= max, else 0 — PyTorch's clamp backward, which passes
 * the gradient at the bounds themselves. min and max (omitted = unbounded) get no gradient: they are thresholds.
 */
const clip: GradRule = {
  differentiable: [0],
  saves: { inputs: [0, 1, 2] },
  backward(ctx) {
    const x = ctx.input(0);
    let inside: string | undefined;
    if (ctx.hasInput(1)) inside = ctx.emit('GreaterOrEqual', [x, ctx.input(1)])[0]!;
    if (ctx.hasInput(2)) {
      const below = ctx.emit('LessOrEqual', [x, ctx.input(2)])[0]!;
      inside = inside ? ctx.emit('And', [inside, below])[0]! : below;
    }
    if (!inside) return [ctx.dy()!];
    return [ctx.emit('Where', [inside, ctx.dy()!, ctx.scalar(0, ctx.inputDType(0))])[0]!];
  },
};

export const rules: Record<string, GradRule> = {
  Relu: relu,
  Clip: clip,
  LeakyRelu: leakyRelu,
  Sigmoid: sigmoid,
  Tanh: tanh,
  Gelu: gelu,
  Softmax: softmaxRule(false),
  LogSoftmax: softmaxRule(true),
};
