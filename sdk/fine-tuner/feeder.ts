import { InvalidArgumentError } from '../../runtime/errors.js';
import { tensorToNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import type { LossSpec } from '../../runtime/train/losses.js';
import type { TrainingProgram } from '../../runtime/train/program.js';
import type { Trainer } from '../../runtime/train/trainer.js';
import { runTrunk, type TrunkRunner } from './backend.js';
import { gatherRows, inputColumns, labelColumn, sliceRows } from './data.js';
import { countCorrect, MetricSum } from './metrics.js';
import type { EvaluationMetrics, ExampleInputs, ExampleLabels } from './options.js';

/** A validated dataset, ready for batching. */
export interface Prepared {
  count: number;
  /** Batch-first columns: the trunk's outputs (the tail's inputs) when `cached`, the model inputs otherwise. */
  columns: Record<string, HostTensor>;
  cached: boolean;
  labels?: HostTensor;
}

/**
 * Turns datasets into the tail's feeds: validation against the model, the trunk run (once per example when
 * cached, per batch otherwise), row gathers for mini-batches, and the metric loop over a prepared set.
 */
export class Feeder {
  constructor(
    private readonly trunk: TrunkRunner,
    private readonly program: TrainingProgram,
    private readonly spec: LossSpec,
    private readonly output: string,
    private readonly classes: number | undefined,
  ) {}

  async prepare(data: { inputs: ExampleInputs; labels?: ExampleLabels }, what: string, cache: boolean): Promise<Prepared> {
    if (!data || typeof data !== 'object') throw new InvalidArgumentError(`${what} must be { inputs, labels }.`);
    const cols = inputColumns(data.inputs, this.trunk.trunk.inputs, `${what}.inputs`);
    const target = this.program.evaluate.inputs.find((i) => i.name === this.program.target)!;
    const labels = data.labels === undefined ? undefined : labelColumn(data.labels, target, cols.count, this.classes, `${what}.labels`);
    const columns = cache ? await runTrunk(this.trunk, cols.data, cols.count) : cols.data;
    return { count: cols.count, columns, cached: cache, ...(labels ? { labels } : {}) };
  }

  /** The tail's feeds (plus the target when labelled) for rows `idx`. */
  batch(p: Prepared, idx: readonly number[]): Promise<Record<string, HostTensor>> {
    return this.feeds(p, (t) => gatherRows(t, idx), idx.length);
  }

  /** The same for the contiguous rows [start, end), as views where the columns allow. */
  range(p: Prepared, start: number, end: number): Promise<Record<string, HostTensor>> {
    return this.feeds(p, (t) => sliceRows(t, start, end), end - start);
  }

  private async feeds(p: Prepared, pick: (t: HostTensor) => HostTensor, n: number): Promise<Record<string, HostTensor>> {
    const raw = Object.fromEntries(Object.entries(p.columns).map(([k, t]) => [k, pick(t)]));
    const feeds = p.cached ? raw : await runTrunk(this.trunk, raw, n, n);
    if (p.labels) feeds[this.program.target] = pick(p.labels);
    return feeds;
  }

  /** Mean loss over the examples (and accuracy for classification), in inference mode. */
  async evaluate(trainer: Trainer, p: Prepared, batchSize: number): Promise<EvaluationMetrics> {
    const sum = new MetricSum();
    for (let start = 0; start < p.count; start += batchSize) {
      const end = Math.min(p.count, start + batchSize);
      const feeds = await this.range(p, start, end);
      const out = await trainer.evaluate(feeds);
      sum.addLoss(tensorToNumbers(out[this.program.loss]!)[0]!, end - start);
      sum.addCorrect(countCorrect(this.spec, out[this.output]!, feeds[this.program.target]!));
    }
    const accuracy = sum.accuracy;
    return { loss: sum.loss, ...(accuracy !== undefined ? { accuracy } : {}), count: p.count };
  }

  /** Model outputs for every example, concatenated along the batch axis. */
  async predict(trainer: Trainer, p: Prepared, batchSize: number): Promise<Record<string, HostTensor[]>> {
    const parts: Record<string, HostTensor[]> = {};
    for (let start = 0; start < p.count; start += batchSize) {
      const out = await trainer.evaluate(await this.range(p, start, Math.min(p.count, start + batchSize)));
      for (const [k, t] of Object.entries(out)) (parts[k] ??= []).push(t);
    }
    return parts;
  }
}
