import { describe, expect, it } from 'vitest';
import { createLayout, allocateBuffers } from '../../runtime/train/layout.js';
import { adam, adamw, optimizerStep, rmsprop, sgd, slotCount, validateOptimizer, type OptimizerConfig } from '../../runtime/train/optimizers.js';
import { TORCH } from './torch-reference.js';

/**
 * Optimizer steps against (1) closed-form references written here per scalar element, straight from the
 * torch.optim documentation's algorithm boxes, independent of the implementation's loop structure and state
 * layout, and (2) trajectories recorded from PyTorch itself.
 */

/** Runs `steps` optimizer steps on one parameter of n elements through the flat layout; returns every iterate. */
function runFlat(cfg: OptimizerConfig, p0: number[], grads: number[][]): number[][] {
  const layout = createLayout([{ name: 'w', shape: [p0.length] }]);
  const buf = allocateBuffers(layout, slotCount(cfg));
  buf.params.set(p0);
  const out: number[][] = [];
  grads.forEach((g, k) => {
    buf.grads.fill(0);
    buf.grads.set(g);
    optimizerStep(cfg, buf, k + 1);
    out.push(Array.from(buf.params.subarray(0, p0.length)));
  });
  return out;
}

/** Hand-written references: one scalar at a time, float64, state kept in plain variables. */
function reference(cfg: OptimizerConfig, p0: number, grads: number[]): number[] {
  const out: number[] = [];
  let p = p0;
  const wd = cfg.weightDecay ?? 0;
  if (cfg.kind === 'sgd') {
    const mu = cfg.momentum ?? 0;
    const tau = cfg.dampening ?? 0;
    let b = 0;
    grads.forEach((grad, t) => {
      let g = grad + wd * p;
      if (mu !== 0) {
        b = t === 0 ? g : mu * b + (1 - tau) * g;
        g = cfg.nesterov ? g + mu * b : b;
      }
      p = p - cfg.lr * g;
      out.push(p);
    });
  } else if (cfg.kind === 'adam' || cfg.kind === 'adamw') {
    const [b1, b2] = cfg.betas ?? [0.9, 0.999];
    const eps = cfg.eps ?? 1e-8;
    let m = 0;
    let v = 0;
    grads.forEach((grad, k) => {
      const t = k + 1;
      let g = grad;
      if (cfg.kind === 'adamw') p = p * (1 - cfg.lr * wd);
      else g = g + wd * p;
      m = b1 * m + (1 - b1) * g;
      v = b2 * v + (1 - b2) * g * g;
      const mHat = m / (1 - Math.pow(b1, t));
      const vHat = v / (1 - Math.pow(b2, t));
      p = p - (cfg.lr * mHat) / (Math.sqrt(vHat) + eps);
      out.push(p);
    });
  } else if (cfg.kind === 'rmsprop') {
    const alpha = cfg.alpha ?? 0.99;
    const eps = cfg.eps ?? 1e-8;
    const mu = cfg.momentum ?? 0;
    let v = 0;
    let gAvg = 0;
    let b = 0;
    grads.forEach((grad) => {
      const g = grad + wd * p;
      v = alpha * v + (1 - alpha) * g * g;
      let vt = v;
      if (cfg.centered) {
        gAvg = alpha * gAvg + (1 - alpha) * g;
        vt = vt - gAvg * gAvg;
      }
      if (mu > 0) {
        b = mu * b + g / (Math.sqrt(vt) + eps);
        p = p - cfg.lr * b;
      } else p = p - (cfg.lr * g) / (Math.sqrt(vt) + eps);
      out.push(p);
    });
  }
  return out;
}

const p0 = [0.5, -1.25, 2, 0.03, -0.7];
const grads = [
  [0.3, -0.2, 1.5, -0.01, 0.8],
  [0.25, 0.1, -1.2, 0.02, 0.7],
  [-0.4, 0.05, 0.9, 0.0, -0.6],
  [0.1, -0.3, 0.2, 0.05, 0.4],
];

const configs: [string, OptimizerConfig][] = [
  ['SGD', sgd({ lr: 0.1 })],
  ['SGD + weight decay', sgd({ lr: 0.1, weightDecay: 0.05 })],
  ['SGD + momentum + dampening', sgd({ lr: 0.05, momentum: 0.9, dampening: 0.3 })],
  ['SGD + Nesterov + weight decay', sgd({ lr: 0.05, momentum: 0.8, nesterov: true, weightDecay: 0.01 })],
  ['Adam', adam({ lr: 0.01 })],
  ['Adam + L2 weight decay, custom betas/eps', adam({ lr: 0.02, betas: [0.8, 0.95], eps: 1e-6, weightDecay: 0.1 })],
  ['AdamW (decoupled weight decay)', adamw({ lr: 0.02, weightDecay: 0.1 })],
  ['RMSProp', rmsprop({ lr: 0.01 })],
  ['RMSProp centered + momentum + weight decay', rmsprop({ lr: 0.01, alpha: 0.9, eps: 1e-6, weightDecay: 0.05, momentum: 0.7, centered: true })],
];

describe('optimizer steps vs closed-form formulas', () => {
  for (const [name, cfg] of configs) {
    it(name, () => {
      const got = runFlat(cfg, p0, grads);
      p0.forEach((x, i) => {
        const want = reference(cfg, x, grads.map((g) => g[i]!));
        want.forEach((w, k) => expect(got[k]![i]!, `${name} step ${k + 1} element ${i}`).toBeCloseTo(w, 5));
      });
    });
  }

  it('Adam first step moves every element by about lr (bias correction)', () => {
    const got = runFlat(adam({ lr: 0.01 }), p0, [grads[0]!]);
    // m^ = g, v^ = g^2 on the first step, so the update is lr * g / (|g| + eps) = lr * sign(g) (except g ~ 0).
    [0, 1, 2, 4].forEach((i) => expect(got[0]![i]! - p0[i]!).toBeCloseTo(-0.01 * Math.sign(grads[0]![i]!), 6));
  });

  it('AdamW with zero gradient still decays the weights, Adam with L2 does not decay in the same way', () => {
    const zero = [[0, 0, 0, 0, 0]];
    const w = runFlat(adamw({ lr: 0.1, weightDecay: 0.5 }), p0, zero)[0]!;
    // Decoupled: p (1 - lr wd) with a zero Adam update (m = v = 0).
    p0.forEach((x, i) => expect(w[i]!).toBeCloseTo(x * (1 - 0.05), 6));
  });

  it('rejects invalid hyper-parameters with a typed error', () => {
    expect(() => validateOptimizer(sgd({ lr: 0.1, nesterov: true }))).toThrow(/Nesterov/);
    expect(() => validateOptimizer(adam({ lr: -1 }))).toThrow(/lr/);
    expect(() => validateOptimizer(adam({ lr: 0.1, betas: [1, 0.9] }))).toThrow(/betas/);
  });
});

describe('optimizer steps vs PyTorch', () => {
  const { p0: tp0, grads: tgrads, runs } = TORCH.optimizers;
  const toConfig = (cls: string, kw: Record<string, number | boolean | number[]>): OptimizerConfig => {
    const lr = kw.lr as number;
    const weightDecay = (kw.weight_decay as number | undefined) ?? undefined;
    switch (cls) {
      case 'SGD': return sgd({ lr, momentum: kw.momentum as number | undefined, dampening: kw.dampening as number | undefined, nesterov: kw.nesterov as boolean | undefined, weightDecay });
      case 'Adam': return adam({ lr, betas: kw.betas as [number, number] | undefined, eps: kw.eps as number | undefined, weightDecay });
      case 'AdamW': return adamw({ lr, ...(weightDecay !== undefined ? { weightDecay } : {}) });
      default: return rmsprop({ lr, alpha: kw.alpha as number | undefined, eps: kw.eps as number | undefined, weightDecay, momentum: kw.momentum as number | undefined, centered: kw.centered as boolean | undefined });
    }
  };
  for (const [name, run] of Object.entries(runs)) {
    it(`${name} (${run.cls} ${JSON.stringify(run.kwargs)}) follows torch ${TORCH.torch} for ${run.trajectory.length} steps`, () => {
      const got = runFlat(toConfig(run.cls, run.kwargs), tp0, tgrads);
      run.trajectory.forEach((want, k) => want.forEach((w, i) => expect(got[k]![i]!, `step ${k + 1} element ${i}`).toBeCloseTo(w, 5)));
    });
  }
});
