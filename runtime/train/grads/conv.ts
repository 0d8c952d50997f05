import { TRAIN_DOMAIN } from '../ops/common.js';
import { nonChannelAxes } from './helpers.js';
import { A, type GradRule } from './rule.js';

/**
 * Conv-11 (1x1, depthwise and grouped convolutions included: `group` travels with the attributes).
 * dX = ConvGradInput(dY, W, shape(X)), dW = ConvGradWeight(X, dY, shape(W)), dB = sum of dY over [N, spatial..].
 * The grad ops carry the forward attributes verbatim, so auto_pad/pads/strides/dilations resolve identically.
 */
const conv: GradRule = {
  differentiable: [0, 1, 2],
  saves: { inputs: [0, 1] },
  backward(ctx) {
    const dy = ctx.dy()!;
    const attrs = { ...ctx.node.attrs };
    const grads: (string | undefined)[] = [undefined, undefined, undefined];
    if (ctx.wants(0)) grads[0] = ctx.emit('ConvGradInput', [dy, ctx.input(1), ctx.shapeOf(0)], attrs, { domain: TRAIN_DOMAIN })[0]!;
    if (ctx.wants(1)) grads[1] = ctx.emit('ConvGradWeight', [ctx.input(0), dy, ctx.shapeOf(1)], attrs, { domain: TRAIN_DOMAIN })[0]!;
    if (ctx.wants(2)) {
      grads[2] = ctx.emit('ReduceSum', [dy, ctx.ints(nonChannelAxes(ctx.outputShape(0).length))], { keepdims: A.int(0) })[0]!;
    }
    return grads;
  },
};

export const rules: Record<string, GradRule> = { Conv: conv };
