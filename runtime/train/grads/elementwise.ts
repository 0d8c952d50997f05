import type { GradRule } from './rule.js';

/**
 * Add, Sub, Mul, Div (multidirectional broadcasting, "Broadcasting in ONNX") and Neg. Each operand's gradient is
 * the elementwise partial derivative times dY, summed over the axes that operand was broadcast along (ctx.sumTo).
 * Summing before negating (Sub) keeps the extra op on the smaller tensor.
 */

const add: GradRule = {
  differentiable: [0, 1],
  saves: {},
  backward(ctx) {
    const dy = ctx.dy()!;
    const yS = ctx.outputShape(0);
    return [0, 1].map((i) => (ctx.wants(i) ? ctx.sumTo(dy, yS, i) : undefined));
  },
};

const sub: GradRule = {
  differentiable: [0, 1],
  saves: {},
  backward(ctx) {
    const dy = ctx.dy()!;
    const yS = ctx.outputShape(0);
    return [
      ctx.wants(0) ? ctx.sumTo(dy, yS, 0) : undefined,
      ctx.wants(1) ? ctx.emit('Neg', [ctx.sumTo(dy, yS, 1)])[0] : undefined,
    ];
  },
};

/** d(ab)/da = b, d(ab)/db = a. */
const mul: GradRule = {
  differentiable: [0, 1],
  saves: { inputs: [0, 1] },
  backward(ctx) {
    const dy = ctx.dy()!;
    const yS = ctx.outputShape(0);
    return [0, 1].map((i) => (ctx.wants(i) ? ctx.sumTo(ctx.emit('Mul', [dy, ctx.input(1 - i)])[0]!, yS, i) : undefined));
  },
};

/** d(a/b)/da = 1/b; d(a/b)/db = -a/b^2 = -y/b, which reuses the output instead of keeping a. */
const div: GradRule = {
  differentiable: [0, 1],
  saves: { inputs: [1], outputs: [0] },
  backward(ctx) {
    const dy = ctx.dy()!;
    const yS = ctx.outputShape(0);
    const b = ctx.wants(0) || ctx.wants(1) ? ctx.input(1) : '';
    const grads: (string | undefined)[] = [undefined, undefined];
    if (ctx.wants(0)) grads[0] = ctx.sumTo(ctx.emit('Div', [dy, b])[0]!, yS, 0);
    if (ctx.wants(1)) {
      const t = ctx.emit('Div', [ctx.emit('Mul', [dy, ctx.output(0)])[0]!, b])[0]!;
      grads[1] = ctx.emit('Neg', [ctx.sumTo(t, yS, 1)])[0]!;
    }
    return grads;
  },
};

const neg: GradRule = {
  differentiable: [0],
  saves: {},
  backward: (ctx) => [ctx.emit('Neg', [ctx.dy()!])[0]!],
};

export const rules: Record<string, GradRule> = { Add: add, Sub: sub, Mul: mul, Div: div, Neg: neg };
