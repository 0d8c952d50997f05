import { TRAIN_DOMAIN } from '../ops/common.js';
import type { GradRule } from './rule.js';

/** The loss ops (ops/losses.ts): the gradient w.r.t. the logits only; targets are data, never trained. */
function lossRule(gradOp: string): GradRule {
  return {
    differentiable: [0],
    saves: { inputs: [0, 1] },
    backward: (ctx) => [ctx.emit(gradOp, [ctx.dy()!, ctx.input(0), ctx.input(1)], { ...ctx.node.attrs }, { domain: TRAIN_DOMAIN })[0]!],
  };
}

export const trainRules: Record<string, GradRule> = {
  CrossEntropyLoss: lossRule('CrossEntropyLossGrad'),
  BCEWithLogitsLoss: lossRule('BCEWithLogitsLossGrad'),
};
