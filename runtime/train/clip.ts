import { InvalidArgumentError } from '../errors.js';

/**
 * Gradient clipping over the flat gradient section (layout.ts), PyTorch semantics:
 * - by value (torch.nn.utils.clip_grad_value_): every element clamped to [-clip, clip];
 * - by global norm (torch.nn.utils.clip_grad_norm_, 2-norm): total = ||g||_2 over all parameters together;
 *   g *= min(1, maxNorm / (total + 1e-6)).
 * The padding of the layout holds zeros and changes neither.
 */
export function clipByValue(grads: Float32Array, clip: number): void {
  if (!(clip > 0)) throw new InvalidArgumentError(`Gradient clip value must be > 0, got ${clip}.`);
  for (let i = 0; i < grads.length; i++) grads[i] = Math.min(clip, Math.max(-clip, grads[i]!));
}

export function globalNorm(grads: Float32Array): number {
  let s = 0;
  for (let i = 0; i < grads.length; i++) s += grads[i]! * grads[i]!;
  return Math.sqrt(s);
}

/** Returns the norm before clipping (what PyTorch returns). */
export function clipByGlobalNorm(grads: Float32Array, maxNorm: number): number {
  if (!(maxNorm > 0)) throw new InvalidArgumentError(`Gradient max norm must be > 0, got ${maxNorm}.`);
  const total = globalNorm(grads);
  const coef = Math.min(1, maxNorm / (total + 1e-6));
  if (coef < 1) for (let i = 0; i < grads.length; i++) grads[i] = grads[i]! * coef;
  return total;
}
