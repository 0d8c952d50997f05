import { UnsupportedOpError } from '../../errors.js';
import { attrFloat, attrInt } from '../../ir/graph.js';
import { TRAIN_DOMAIN } from '../ops/common.js';
import { nonChannelAxes } from './helpers.js';
import { A, type GradRule } from './rule.js';

/**
 * BatchNormalization-15 with frozen statistics: fine-tuning runs BatchNorm as in inference (the pretrained running
 * mean/var normalize; they are constants, not parameters), while scale and B train. A node with training_mode=1
 * (batch statistics) is refused: its gradient also flows through the batch mean/var, which is not implemented.
 * When only B needs a gradient, a ReduceSum suffices and X is not kept.
 */
const batchNorm: GradRule = {
  differentiable: [0, 1, 2],
  saves: { inputs: [0, 1, 3, 4] },
  backward(ctx) {
    if (attrInt(ctx.node, 'training_mode', 0) !== 0) {
      throw new UnsupportedOpError(
        [{ op: 'BatchNormalization', domain: '', opset: 15, node: ctx.node.name, reason: 'no gradient with training_mode=1 (batch statistics)' }],
        'Fine-tuning keeps BatchNormalization statistics frozen: export the model in eval mode (training_mode=0).',
      );
    }
    const dy = ctx.dy()!;
    const [wx, ws, wb] = [0, 1, 2].map((i) => ctx.wants(i));
    if (!wx && !ws) return [undefined, undefined, ctx.emit('ReduceSum', [dy, ctx.ints(nonChannelAxes(ctx.outputShape(0).length))], { keepdims: A.int(0) })[0]!];
    const outs = ctx.emit(
      'BatchNormGrad',
      [dy, ctx.input(0), ctx.input(1), ctx.input(3), ctx.input(4)],
      { epsilon: A.float(attrFloat(ctx.node, 'epsilon', 1e-5)) },
      { domain: TRAIN_DOMAIN, outputs: [wx!, ws!, wb!] },
    );
    return outs.map((o) => o || undefined);
  },
};

/**
 * LayerNormalization-17: LayerNormGrad gives dX and dY * xhat (X-shaped); summing those to Scale's and B's
 * broadcast shapes gives dScale and dB. A gradient arriving at the Mean/InvStdDev outputs is refused (those
 * outputs are for training graphs exported by frameworks, which do not feed them to a loss).
 */
const layerNorm: GradRule = {
  differentiable: [0, 1, 2],
  saves: { inputs: [0, 1] },
  backward(ctx) {
    if (ctx.dy(1) || ctx.dy(2)) {
      throw new UnsupportedOpError([{ op: 'LayerNormalization', domain: '', opset: 17, node: ctx.node.name, reason: 'no gradient through the Mean/InvStdDev outputs' }]);
    }
    const dy = ctx.dy()!;
    const xS = ctx.inputShape(0);
    const grads: (string | undefined)[] = [undefined, undefined, undefined];
    if (ctx.wants(0) || ctx.wants(1)) {
      const [dx, dsFull] = ctx.emit(
        'LayerNormGrad',
        [dy, ctx.input(0), ctx.input(1)],
        { axis: A.int(attrInt(ctx.node, 'axis', -1)), epsilon: A.float(attrFloat(ctx.node, 'epsilon', 1e-5)) },
        { domain: TRAIN_DOMAIN, outputs: [ctx.wants(0), ctx.wants(1)] },
      );
      if (ctx.wants(0)) grads[0] = dx;
      if (ctx.wants(1)) grads[1] = ctx.sumTo(dsFull!, xS, 1);
    }
    if (ctx.wants(2)) grads[2] = ctx.sumTo(dy, xS, 2);
    return grads;
  },
};

export const rules: Record<string, GradRule> = { BatchNormalization: batchNorm, LayerNormalization: layerNorm };
