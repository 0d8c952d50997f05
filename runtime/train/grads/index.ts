import type { Node } from '../../ir/graph.js';
import { TRAIN_DOMAIN } from '../ops/common.js';
import { rules as activation } from './activation.js';
import { rules as conv } from './conv.js';
import { rules as dropout, trainRules as trainDropout } from './dropout.js';
import { rules as elementwise } from './elementwise.js';
import { trainRules as losses } from './loss.js';
import { rules as matmul } from './matmul.js';
import { rules as normalization } from './normalization.js';
import { rules as pool } from './pool.js';
import { rules as reduce } from './reduce.js';
import type { GradRule } from './rule.js';
import { rules as shape } from './shape.js';

export type { GradContext, GradRule, EmitOptions } from './rule.js';
export { isDifferentiable } from './rule.js';

/** Gradient rules of default-domain ops, by op name. */
export const GRAD_RULES: Readonly<Record<string, GradRule>> = Object.freeze({
  ...elementwise, ...activation, ...matmul, ...conv, ...normalization, ...pool, ...shape, ...dropout, ...reduce,
});

/** Gradient rules of 'edgekit.train' ops (losses, SeededDropout). */
export const TRAIN_GRAD_RULES: Readonly<Record<string, GradRule>> = Object.freeze({ ...losses, ...trainDropout });

export function gradRuleFor(node: Pick<Node, 'op' | 'domain'>): GradRule | undefined {
  if (node.domain === '') return GRAD_RULES[node.op];
  if (node.domain === TRAIN_DOMAIN) return TRAIN_GRAD_RULES[node.op];
  return undefined;
}
