import type { OpAdapter } from './adapter.js';
import { MAX_OPSET } from './direct.js';

/**
 * The random generators in their IR form: RandomUniform/RandomNormal(-Like) and Multinomial have had one version
 * since opset 1 and 7; Bernoulli-15 (opset 22 only added types).
 */
export const RANDOM_ADAPTERS: OpAdapter[] = [
  { op: 'RandomUniform', since: 1, until: MAX_OPSET },
  { op: 'RandomNormal', since: 1, until: MAX_OPSET },
  { op: 'RandomUniformLike', since: 1, until: MAX_OPSET },
  { op: 'RandomNormalLike', since: 1, until: MAX_OPSET },
  { op: 'Multinomial', since: 7, until: MAX_OPSET },
  { op: 'Bernoulli', since: 15, until: MAX_OPSET },
];
