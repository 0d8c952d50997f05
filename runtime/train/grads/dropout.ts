import { toNumbers } from '../../ir/dtype.js';
import type { GradContext, GradRule } from './rule.js';

/**
 * Dropout-22 and the training op SeededDropout: y = x * mask / (1 - ratio), so dX = dY * mask / (1 - ratio).
 * A default-domain Dropout without training_mode (or with a constant false one, or ratio 0) is the identity, and so
 * is its gradient. In training mode the rule keeps the mask output (bool, 1 byte per element) rather than X.
 */
function maskedGrad(ctx: GradContext): string {
  const dy = ctx.dy()!;
  const dt = ctx.inputDType(0);
  const ratio = ctx.hasInput(1) ? ctx.constantInput(1) : undefined;
  let scaled: string;
  if (!ctx.hasInput(1) || ratio) {
    const r = ratio ? toNumbers(ratio.dtype, ratio.data)[0]! : 0.5;
    // ratio 1 drops everything: the Where below selects 0 for every element, the scale is never used.
    scaled = ctx.emit('Mul', [dy, ctx.scalar(r < 1 ? 1 / (1 - r) : 0, dt)])[0]!;
  } else {
    const keep = ctx.emit('Sub', [ctx.scalar(1, dt), ctx.input(1)])[0]!;
    scaled = ctx.emit('Div', [dy, ctx.emit('CastLike', [keep, dy])[0]!])[0]!;
  }
  return ctx.emit('Where', [ctx.output(1), scaled, ctx.scalar(0, dt)])[0]!;
}

function isInference(ctx: GradContext): boolean {
  const ratio = ctx.hasInput(1) ? ctx.constantInput(1) : undefined;
  if (ratio && toNumbers(ratio.dtype, ratio.data)[0] === 0) return true;
  if (!ctx.hasInput(2)) return true;
  const t = ctx.constantInput(2);
  return !!t && (t.data as Uint8Array)[0] === 0;
}

const dropout: GradRule = {
  differentiable: [0],
  saves: { inputs: [1], outputs: [1] },
  backward: (ctx) => [isInference(ctx) ? ctx.dy()! : maskedGrad(ctx)],
};

const seededDropout: GradRule = {
  differentiable: [0],
  saves: { inputs: [1], outputs: [1] },
  backward(ctx) {
    const ratio = ctx.hasInput(1) ? ctx.constantInput(1) : undefined;
    if (ratio && toNumbers(ratio.dtype, ratio.data)[0] === 0) return [ctx.dy()!];
    return [maskedGrad(ctx)];
  },
};

export const rules: Record<string, GradRule> = { Dropout: dropout };
export const trainRules: Record<string, GradRule> = { SeededDropout: seededDropout };
