import { describe, expect, it } from 'vitest';
import { clipByGlobalNorm, clipByValue, globalNorm } from '../../runtime/train/clip.js';
import { constantLr, cosineLr, stepLr, warmup } from '../../runtime/train/schedules.js';
import { TORCH } from './torch-reference.js';

describe('learning-rate schedules', () => {
  it('constant', () => expect([0, 5, 100].map(constantLr(0.3))).toEqual([0.3, 0.3, 0.3]));

  it('step decay: lr * gamma^floor(t / stepSize), as torch StepLR', () => {
    const s = stepLr(0.1, { stepSize: 3, gamma: 0.5 });
    expect([0, 2, 3, 5, 6, 9].map(s)).toEqual([0.1, 0.1, 0.05, 0.05, 0.025, 0.0125]);
    TORCH.schedules.step.forEach((w, t) => expect(s(t)).toBeCloseTo(w, 12));
  });

  it('cosine annealing to a floor, as torch CosineAnnealingLR, then held at the floor', () => {
    const s = cosineLr(0.1, { totalSteps: 10, minLr: 0.01 });
    expect(s(0)).toBe(0.1);
    expect(s(5)).toBeCloseTo(0.055, 12); // halfway: the mean of the two
    TORCH.schedules.cosine.slice(0, 11).forEach((w, t) => expect(s(t), `step ${t}`).toBeCloseTo(w, 12));
    expect(s(11)).toBeCloseTo(0.01, 12);
    expect(s(50)).toBeCloseTo(0.01, 12);
  });

  it('linear warm-up then cosine, as torch SequentialLR(LinearLR, CosineAnnealingLR)', () => {
    const s = warmup(cosineLr(0.1, { totalSteps: 8 }), { steps: 4, startFactor: 0.25 });
    expect(s(0)).toBeCloseTo(0.025, 12);
    expect(s(4)).toBeCloseTo(0.1, 12);
    TORCH.schedules.warmup_cosine.forEach((w, t) => expect(s(t), `step ${t}`).toBeCloseTo(w, 12));
  });
});

describe('gradient clipping', () => {
  it('by value clamps every element', () => {
    const g = Float32Array.from([0.5, -3, 2, -0.1, 0]);
    clipByValue(g, 1);
    expect(Array.from(g)).toEqual([0.5, -1, 1, Math.fround(-0.1), 0]);
  });

  it('by global norm scales by maxNorm / (norm + 1e-6) when above, as torch clip_grad_norm_', () => {
    const g = Float32Array.from([3, 4]); // norm 5
    expect(clipByGlobalNorm(g, 1)).toBeCloseTo(5, 6);
    expect(g[0]!).toBeCloseTo((3 * 1) / (5 + 1e-6), 6);
    expect(g[1]!).toBeCloseTo((4 * 1) / (5 + 1e-6), 6);
    expect(globalNorm(g)).toBeCloseTo(1, 5);

    const t = Float32Array.from(TORCH.clip.grads);
    expect(clipByGlobalNorm(t, TORCH.clip.max_norm)).toBeCloseTo(TORCH.clip.norm, 5);
    TORCH.clip.clipped.forEach((w, i) => expect(t[i]!).toBeCloseTo(w, 5));
  });

  it('leaves gradients below the norm untouched', () => {
    const g = Float32Array.from([0.3, 0.4]);
    expect(clipByGlobalNorm(g, 1)).toBeCloseTo(0.5, 6);
    expect(Array.from(g)).toEqual([Math.fround(0.3), Math.fround(0.4)]);
  });
});
