import type { CpuKernel } from '../../backends/cpu/kernel.js';
import type { OpSchema } from '../../ir/ops/schema.js';
import { geluGradKernel, geluGradSchema, softmaxGradKernel, softmaxGradSchema } from './activation-grad.js';
import { convGradInputKernel, convGradInputSchema, convGradWeightKernel, convGradWeightSchema } from './conv-grad.js';
import { seededDropoutKernel, seededDropoutSchema } from './dropout.js';
import {
  bceWithLogitsGradKernel, bceWithLogitsGradSchema, bceWithLogitsKernel, bceWithLogitsSchema,
  crossEntropyGradKernel, crossEntropyGradSchema, crossEntropyKernel, crossEntropySchema,
} from './losses.js';
import { batchNormGradKernel, batchNormGradSchema, layerNormGradKernel, layerNormGradSchema } from './norm-grad.js';
import { averagePoolGradKernel, averagePoolGradSchema, maxPoolGradKernel, maxPoolGradSchema } from './pool-grad.js';
import { sumToShapeKernel, sumToShapeSchema } from './sum-to-shape.js';

export { TRAIN_DOMAIN } from './common.js';

/**
 * The training ops, domain 'edgekit.train': gradient ops the rules emit where no default-domain op expresses the
 * gradient naturally, the seeded training Dropout and the losses. Kept apart from OP_SCHEMAS/CPU_KERNELS until the
 * lead merges them; runtime/train/run-cpu.ts and runtime/train/infer.ts consult both maps by domain.
 */
const ops: [OpSchema, CpuKernel][] = [
  [sumToShapeSchema, sumToShapeKernel],
  [geluGradSchema, geluGradKernel],
  [softmaxGradSchema, softmaxGradKernel],
  [convGradInputSchema, convGradInputKernel],
  [convGradWeightSchema, convGradWeightKernel],
  [batchNormGradSchema, batchNormGradKernel],
  [layerNormGradSchema, layerNormGradKernel],
  [averagePoolGradSchema, averagePoolGradKernel],
  [maxPoolGradSchema, maxPoolGradKernel],
  [seededDropoutSchema, seededDropoutKernel],
  [crossEntropySchema, crossEntropyKernel],
  [crossEntropyGradSchema, crossEntropyGradKernel],
  [bceWithLogitsSchema, bceWithLogitsKernel],
  [bceWithLogitsGradSchema, bceWithLogitsGradKernel],
];

export const TRAIN_SCHEMAS: Readonly<Record<string, OpSchema>> = Object.freeze(Object.fromEntries(ops.map(([s]) => [s.op, s])));
export const TRAIN_CPU_KERNELS: Readonly<Record<string, CpuKernel>> = Object.freeze(Object.fromEntries(ops.map(([s, k]) => [s.op, k])));
