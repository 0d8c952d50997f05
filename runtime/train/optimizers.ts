import { InvalidArgumentError } from '../errors.js';
import type { TrainBuffers } from './layout.js';

/**
 * Optimizers over the flat layout (layout.ts): one pass over every element, reading params[i], grads[i] and the
 * state slots at i. The formulas are PyTorch's, as written in the torch.optim documentation ("Algorithm" boxes of
 * torch.optim.SGD, Adam, AdamW, RMSprop), including where each applies weight decay:
 * - SGD, Adam, RMSprop: L2 regularization, added to the gradient (g += weight_decay * param) before anything else.
 * - AdamW: decoupled weight decay, param *= 1 - lr * weight_decay, before the Adam update (Loshchilov & Hutter).
 * Arithmetic is float64 per element, stored back as float32. `step` counts optimizer steps from 1 (bias
 * corrections; SGD's first momentum step). `maximize`, `amsgrad` and `foreach` variants are not provided.
 */
export interface SgdConfig { kind: 'sgd'; lr: number; momentum?: number; dampening?: number; nesterov?: boolean; weightDecay?: number }
export interface AdamConfig { kind: 'adam' | 'adamw'; lr: number; betas?: [number, number]; eps?: number; weightDecay?: number }
export interface RmsPropConfig { kind: 'rmsprop'; lr: number; alpha?: number; eps?: number; weightDecay?: number; momentum?: number; centered?: boolean }
export type OptimizerConfig = SgdConfig | AdamConfig | RmsPropConfig;

/** torch.optim defaults: SGD lr 1e-3; Adam/AdamW lr 1e-3, betas (0.9, 0.999), eps 1e-8, AdamW weight decay 1e-2; RMSprop lr 1e-2, alpha 0.99, eps 1e-8. */
export const sgd = (o: Partial<Omit<SgdConfig, 'kind'>> = {}): SgdConfig => ({ kind: 'sgd', lr: 1e-3, ...o });
export const adam = (o: Partial<Omit<AdamConfig, 'kind'>> = {}): AdamConfig => ({ kind: 'adam', lr: 1e-3, ...o });
export const adamw = (o: Partial<Omit<AdamConfig, 'kind'>> = {}): AdamConfig => ({ kind: 'adamw', lr: 1e-3, weightDecay: 1e-2, ...o });
export const rmsprop = (o: Partial<Omit<RmsPropConfig, 'kind'>> = {}): RmsPropConfig => ({ kind: 'rmsprop', lr: 1e-2, ...o });

/** How many state sections the optimizer needs in the flat buffer. */
export function slotCount(cfg: OptimizerConfig): number {
  switch (cfg.kind) {
    case 'sgd': return (cfg.momentum ?? 0) !== 0 ? 1 : 0;
    case 'adam': case 'adamw': return 2;
    case 'rmsprop': return 1 + ((cfg.momentum ?? 0) > 0 ? 1 : 0) + (cfg.centered ? 1 : 0);
  }
}

export function validateOptimizer(cfg: OptimizerConfig): void {
  const bad = (msg: string) => { throw new InvalidArgumentError(`${cfg.kind}: ${msg}`, { optimizer: cfg.kind }); };
  if (!(cfg.lr >= 0)) bad(`lr must be >= 0, got ${cfg.lr}.`);
  if (!((cfg.weightDecay ?? 0) >= 0)) bad(`weightDecay must be >= 0, got ${cfg.weightDecay}.`);
  if (cfg.kind === 'sgd') {
    if (!((cfg.momentum ?? 0) >= 0)) bad(`momentum must be >= 0, got ${cfg.momentum}.`);
    if (cfg.nesterov && (!(cfg.momentum! > 0) || (cfg.dampening ?? 0) !== 0)) bad('Nesterov momentum requires momentum > 0 and dampening 0 (as torch.optim.SGD).');
  } else if (cfg.kind === 'rmsprop') {
    if (!((cfg.alpha ?? 0.99) >= 0)) bad(`alpha must be >= 0, got ${cfg.alpha}.`);
  } else {
    const [b1, b2] = cfg.betas ?? [0.9, 0.999];
    if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1)) bad(`betas must lie in [0, 1), got [${b1}, ${b2}].`);
  }
}

/** Applies one optimizer step in place. `lr` is the scheduled rate for this step; `step` counts from 1. */
export function optimizerStep(cfg: OptimizerConfig, buf: TrainBuffers, step: number, lr = cfg.lr): void {
  const { params: p, grads: g, slots } = buf;
  const n = p.length;
  const wd = cfg.weightDecay ?? 0;
  switch (cfg.kind) {
    case 'sgd': {
      const mu = cfg.momentum ?? 0;
      const damp = cfg.dampening ?? 0;
      const b = slots[0];
      for (let i = 0; i < n; i++) {
        let d = g[i]! + wd * p[i]!;
        if (mu !== 0) {
          const bi = step > 1 ? mu * b![i]! + (1 - damp) * d : d;
          b![i] = bi;
          d = cfg.nesterov ? d + mu * bi : bi;
        }
        p[i] = p[i]! - lr * d;
      }
      return;
    }
    case 'adam':
    case 'adamw': {
      const [b1, b2] = cfg.betas ?? [0.9, 0.999];
      const eps = cfg.eps ?? 1e-8;
      const bc1 = 1 - b1 ** step;
      const bc2 = 1 - b2 ** step;
      const [m, v] = slots as [Float32Array, Float32Array];
      const decoupled = cfg.kind === 'adamw';
      for (let i = 0; i < n; i++) {
        let pi = p[i]!;
        let d = g[i]!;
        if (decoupled) pi -= lr * wd * pi;
        else d += wd * pi;
        const mi = b1 * m[i]! + (1 - b1) * d;
        const vi = b2 * v[i]! + (1 - b2) * d * d;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps);
      }
      return;
    }
    case 'rmsprop': {
      const alpha = cfg.alpha ?? 0.99;
      const eps = cfg.eps ?? 1e-8;
      const mu = cfg.momentum ?? 0;
      const [sq, ...rest] = slots as Float32Array[];
      const buf = mu > 0 ? rest.shift() : undefined;
      const avg = cfg.centered ? rest.shift() : undefined;
      for (let i = 0; i < n; i++) {
        const d = g[i]! + wd * p[i]!;
        const vi = alpha * sq![i]! + (1 - alpha) * d * d;
        sq![i] = vi;
        let denomSq = vi;
        if (avg) {
          const ai = alpha * avg[i]! + (1 - alpha) * d;
          avg[i] = ai;
          denomSq = vi - ai * ai;
        }
        const upd = d / (Math.sqrt(denomSq) + eps);
        if (buf) {
          const bi = mu * buf[i]! + upd;
          buf[i] = bi;
          p[i] = p[i]! - lr * bi;
        } else p[i] = p[i]! - lr * upd;
      }
      return;
    }
  }
}
