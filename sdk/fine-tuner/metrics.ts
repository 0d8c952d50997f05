import { tensorToNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import type { LossSpec } from '../../runtime/train/losses.js';

/**
 * Correct predictions in one batch, and how many were judged:
 * - cross-entropy: argmax over the class axis (axis 1 of [N, C, ...]) against the class id, per position
 *   (against the argmax of the target for probability targets); ties go to the lowest class, as torch.argmax;
 * - bce-with-logits: per element, logit > 0 against target >= 0.5;
 * - mse: none (undefined).
 */
export function countCorrect(spec: LossSpec, logits: HostTensor, target: HostTensor): { correct: number; total: number } | undefined {
  if (spec.kind === 'mse') return undefined;
  const y = tensorToNumbers(logits);
  const t = tensorToNumbers(target);
  if (spec.kind === 'bce-with-logits') {
    let correct = 0;
    for (let i = 0; i < y.length; i++) correct += (y[i]! > 0) === (t[i]! >= 0.5) ? 1 : 0;
    return { correct, total: y.length };
  }
  const [n, c] = logits.shape as [number, number];
  const inner = n && c ? y.length / (n * c) : 0;
  const argmax = (v: Float64Array, b: number, s: number) => {
    let best = 0;
    for (let k = 1; k < c; k++) if (v[(b * c + k) * inner + s]! > v[(b * c + best) * inner + s]!) best = k;
    return best;
  };
  const probs = spec.targets === 'probabilities';
  let correct = 0;
  for (let b = 0; b < n; b++) {
    for (let s = 0; s < inner; s++) correct += argmax(y, b, s) === (probs ? argmax(t, b, s) : t[b * inner + s]!) ? 1 : 0;
  }
  return { correct, total: n * inner };
}

/** Running sums for a loss averaged over examples and an accuracy averaged over judged predictions. */
export class MetricSum {
  private lossSum = 0;
  private rows = 0;
  private correct = 0;
  private judged = 0;
  private hasAccuracy = false;

  addLoss(loss: number, rows: number): void {
    this.lossSum += loss * rows;
    this.rows += rows;
  }

  addCorrect(c: { correct: number; total: number } | undefined): void {
    if (!c) return;
    this.hasAccuracy = true;
    this.correct += c.correct;
    this.judged += c.total;
  }

  get loss(): number {
    return this.rows ? this.lossSum / this.rows : NaN;
  }

  get accuracy(): number | undefined {
    return this.hasAccuracy && this.judged ? this.correct / this.judged : undefined;
  }
}
