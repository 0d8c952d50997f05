import type { EpochMetrics, ResolvedFit } from './options.js';

/**
 * Keras-style early stopping: an epoch improves when its metric beats the best so far by more than minDelta
 * (lower for losses, higher for val_accuracy); after `patience` epochs in a row without improvement, stop.
 * A non-finite metric (every step skipped) never improves.
 */
export class EarlyStopping {
  best: number | undefined;
  bestEpoch: number | undefined;
  private wait = 0;

  constructor(private readonly cfg: NonNullable<ResolvedFit['early']>) {}

  /** 'improved' (a new best), 'wait', or 'stop'. */
  update(m: EpochMetrics): 'improved' | 'wait' | 'stop' {
    const { metric, minDelta, patience } = this.cfg;
    const value = metric === 'val_loss' ? m.valLoss ?? NaN : metric === 'val_accuracy' ? m.valAccuracy ?? NaN : m.loss;
    const better = metric === 'val_accuracy' ? (b: number) => value > b + minDelta : (b: number) => value < b - minDelta;
    if (Number.isFinite(value) && (this.best === undefined || better(this.best))) {
      this.best = value;
      this.bestEpoch = m.epoch;
      this.wait = 0;
      return 'improved';
    }
    return ++this.wait >= patience ? 'stop' : 'wait';
  }
}
