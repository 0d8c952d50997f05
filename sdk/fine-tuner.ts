import { exportOnnx, type ExportOptions } from '../importers/onnx/index.js';
import { DisposedTensorError, DTypeError, InvalidArgumentError, SessionReleasedError, ShapeError } from '../runtime/errors.js';
import type { Graph } from '../runtime/ir/graph.js';
import type { LossSpec } from '../runtime/train/losses.js';
import { slotCount, type OptimizerConfig } from '../runtime/train/optimizers.js';
import { createTrainingProgram, type TrainingProgram } from '../runtime/train/program.js';
import type { LrSchedule } from '../runtime/train/schedules.js';
import { splitGraph, type SplitResult } from '../runtime/train/split.js';
import type { Trainer, TrainerState } from '../runtime/train/trainer.js';
import { createTrainer, createTrunkRunner, type TrunkRunner } from './fine-tuner/backend.js';
import { checkCompatible, decodeCheckpoint, encodeCheckpoint, layoutHeader, modelFingerprint, type CheckpointHeader } from './fine-tuner/checkpoint.js';
import { byteSize, concatRows, onCpu } from './fine-tuner/data.js';
import { EarlyStopping } from './fine-tuner/early-stopping.js';
import { Feeder } from './fine-tuner/feeder.js';
import { checkTrainFrom, findHead, replaceHead } from './fine-tuner/head.js';
import { MetricSum } from './fine-tuner/metrics.js';
import {
  checkCallOptions, checkCreateOptions, checkFitOptions, lossSpec, type Dataset, type EpochMetrics, type EvaluationMetrics, type ExampleInputs,
  type FineTunerOptions, type FitOptions, type FitResult, type TunerCallOptions,
} from './fine-tuner/options.js';
import { Turn } from './fine-tuner/turn.js';
import type { Lane, TaskPriority } from '../runtime/scheduler/index.js';
import { shuffledOrder } from './fine-tuner/random.js';
import { sessionInternals, type SessionInternals } from './internal.js';
import type { InferenceSession } from './session.js';
import { Tensor } from './tensor.js';

/**
 * Fine-tunes the last layers of a session's model on the user's device (docs/fine-tuning.md):
 *
 *   const tuner = await FineTuner.create(session, { trainFrom: 'fc', loss: 'cross_entropy', optimizer: adam({ lr: 1e-3 }) });
 *   await tuner.fit({ inputs, labels }, { epochs: 5, batchSize: 32, onProgress });
 *   const bytes = await tuner.exportOnnx();
 *
 * The model is split at `trainFrom` into a frozen trunk (inference; its outputs cached per example) and a trainable
 * tail (runtime/train: reverse-mode autodiff, flat parameter layout, the optimizer of choice) that trains on the
 * session's backend. Deterministic for a given seed; non-finite steps are skipped and reported.
 *
 * Scheduled like the session's runs (docs/workers.md): the tuner has its own lane on the session's scheduler (the
 * thread's, or a worker's), at 'background' priority by default, and every call that uses the device queues there.
 * fit() takes the device one step at a time (Turn), so a session's run issued during a fit runs between two steps.
 * A lane of its own, not the session's: a 'latest-only' session would otherwise drop waiting steps, and a
 * session's maxPending would count them.
 */
export class FineTuner {
  /** The cut, and what trains and stays frozen there (with the reason). */
  readonly trainFrom: string;
  readonly trainable: readonly string[];
  readonly frozen: readonly { name: string; reason: string }[];
  /** The model output the loss reads. */
  readonly output: string;
  readonly #internals: SessionInternals;
  /** The training graph (the session's model with BatchNorm and Dropout kept, and the new head when asked): exportOnnx writes it with trained weights. */
  readonly #graph: Graph;
  readonly #program: TrainingProgram;
  readonly #spec: LossSpec;
  readonly #optimizer: OptimizerConfig;
  readonly #cache: boolean;
  readonly #trunk: TrunkRunner;
  readonly #feeder: Feeder;
  /**
   * The clip settings the current trainer was created with (it reads the values every step; whether norm clipping
   * happens at all is fixed at creation on WebGPU, so fit() rebuilds the trainer when that changes).
   */
  #clip: { value?: number; norm?: number };
  readonly #baseClip: { value?: number; norm?: number };
  #schedule: LrSchedule | undefined;
  #trainer: Trainer | undefined;
  #seed: number;
  #epochs = 0;
  /** Batches done of the epoch fit() was in when it stopped early (an exception, a kill): resumed by the next fit(). */
  #position: NonNullable<CheckpointHeader['epochPosition']> | undefined;
  #busy = false;
  /** This tuner's queue on the session's scheduler, and its default priority. */
  readonly #lane: Lane;
  readonly #priority: TaskPriority;
  #fingerprint: CheckpointHeader['fingerprint'] | undefined;

  private constructor(init: {
    internals: SessionInternals; graph: Graph; split: SplitResult; trunk: TrunkRunner; program: TrainingProgram; spec: LossSpec; trainFrom: string; output: string;
    optimizer: OptimizerConfig; seed: number; cache: boolean; clip: { value?: number; norm?: number }; lane: Lane; priority: TaskPriority;
  }) {
    this.#internals = init.internals;
    this.#lane = init.lane;
    this.#priority = init.priority;
    this.#graph = init.graph;
    this.#program = init.program;
    this.#spec = init.spec;
    this.#optimizer = init.optimizer;
    this.#seed = init.seed;
    this.#cache = init.cache;
    this.#baseClip = { ...init.clip };
    this.#clip = { ...init.clip };
    this.trainFrom = init.trainFrom;
    this.output = init.output;
    this.trainable = Object.freeze([...init.program.params]);
    this.frozen = Object.freeze(init.split.frozen.map((f) => ({ ...f })));
    const shape = init.program.evaluate.values[init.output]?.shape;
    const classes = init.spec.kind === 'cross-entropy' && typeof shape?.[1] === 'number' ? shape[1] : undefined;
    this.#trunk = init.trunk;
    this.#feeder = new Feeder(init.trunk, init.program, init.spec, init.output, classes);
  }

  /**
   * Prepares training on `session`'s model; the session must stay alive while the tuner is used. The preparation
   * (trunk and trainer pipelines) is queued at the tuner's priority like the rest of its work.
   */
  static async create(session: InferenceSession, options: FineTunerOptions): Promise<FineTuner> {
    const internals = sessionInternals(session);
    checkCreateOptions(options);
    const priority = options.priority ?? 'background';
    const lane = internals.scheduler.lane({ name: 'fine-tuner', priority });
    try {
      return await lane.submit(() => FineTuner.#create(internals, options, lane, priority));
    } catch (e) {
      void lane.dispose();
      throw e;
    }
  }

  static async #create(internals: SessionInternals, options: FineTunerOptions, lane: Lane, priority: TaskPriority): Promise<FineTuner> {
    if (internals.released()) throw new SessionReleasedError();
    const { optimizer, seed } = checkCreateOptions(options);
    const spec = lossSpec(options.loss);
    let graph = internals.trainingGraph();
    const output = options.output ?? graph.outputs[0]!.name;
    if (!graph.outputs.some((o) => o.name === output)) {
      throw new InvalidArgumentError(`Unknown output '${output}'. This model's outputs are ${graph.outputs.map((o) => `'${o.name}'`).join(', ')}.`, { output });
    }
    let trainFrom = options.trainFrom;
    let headWeights: string[] = [];
    if (options.newHead) {
      const head = findHead(graph, output);
      graph = replaceHead(graph, head, options.newHead.classes, options.newHead.seed ?? seed);
      trainFrom ??= head.node;
      headWeights = [head.weight, ...(head.bias ? [head.bias] : [])];
    }
    checkTrainFrom(graph, trainFrom!);
    const split = excludeConstants(splitGraph(graph, trainFrom!), graph, internals.modelConstants, headWeights);
    if (!split.tail.outputs.some((o) => o.name === output)) {
      throw new InvalidArgumentError(`The output '${output}' does not depend on anything after trainFrom '${trainFrom}'; nothing there could train it.`, { trainFrom, output });
    }
    const missingHead = headWeights.filter((w) => !split.trainable.includes(w));
    if (missingHead.length) {
      throw new InvalidArgumentError(`trainFrom '${trainFrom}' leaves the new head's ${missingHead.join(', ')} frozen at random values; start training at or before the head node.`, { trainFrom });
    }
    if (!split.trainable.length) {
      const why = split.frozen.map((f) => `'${f.name}': ${f.reason}`).join('; ');
      throw new InvalidArgumentError(`Nothing trains after trainFrom '${trainFrom}'${why ? ` (${why})` : ': the tail has no float32 weights'}. Start training earlier.`, { trainFrom });
    }
    const program = createTrainingProgram(split.tail, { loss: { ...spec, output }, trainable: split.trainable });
    const trunk = await createTrunkRunner(internals, split.trunk);
    const tuner = new FineTuner({ internals, graph, split, trunk, program, spec, trainFrom: trainFrom!, output, optimizer, seed, cache: options.cacheFeatures ?? true, clip: options.clip ?? {}, lane, priority });
    try {
      tuner.#trainer = await tuner.#newTrainer(seed, tuner.#clip);
    } catch (e) {
      trunk.dispose();
      throw e;
    }
    return tuner;
  }

  #newTrainer(seed: number, clip: { value?: number; norm?: number }): Promise<Trainer> {
    return createTrainer(this.#internals, this.#program, {
      optimizer: this.#optimizer,
      schedule: (t) => (this.#schedule ? this.#schedule(t) : this.#optimizer.lr),
      clip,
      seed,
      maxElements: this.#internals.maxElements,
    });
  }

  /** Replaces the trainer by one with another seed or clip configuration, carrying the whole state over. */
  async #rebuild(seed: number, clip: { value?: number; norm?: number }, state?: TrainerState): Promise<Trainer> {
    const old = this.#live();
    const carried = state ?? (await old.saveState());
    const fresh = await this.#newTrainer(seed, clip);
    try {
      await fresh.loadState(carried);
      // dispose() during the awaits above: do not bring the tuner back to life (dispose frees `old` itself).
      if (this.#trainer !== old) throw new DisposedTensorError('FineTuner');
    } catch (e) {
      fresh.dispose();
      throw e;
    }
    old.dispose();
    this.#trainer = fresh;
    this.#seed = seed;
    this.#clip = clip;
    return fresh;
  }

  /** Optimizer steps applied since creation (restored by loadCheckpoint). */
  get stepCount(): number {
    return this.#live().stepCount;
  }

  /** Epochs completed since creation (restored by loadCheckpoint); indexes the shuffle stream. */
  get epochCount(): number {
    this.#live();
    return this.#epochs;
  }

  #live(): Trainer {
    if (!this.#trainer) throw new DisposedTensorError('FineTuner');
    if (this.#internals.released()) throw new SessionReleasedError();
    return this.#trainer;
  }

  #exclusive(what: string): Trainer {
    const t = this.#live();
    if (this.#busy) throw new InvalidArgumentError(`${what} cannot run while fit() is running; await it first.`);
    return t;
  }

  /**
   * Trains on `data` for `epochs` epochs of shuffled mini-batches. Returns per-epoch metrics; steps whose loss or
   * gradients are not finite are skipped (weights and optimizer state untouched), reported and counted.
   */
  async fit(data: Dataset, options: FitOptions = {}): Promise<FitResult> {
    this.#exclusive('fit()');
    const o = checkFitOptions(options, options.validation !== undefined);
    const turn = this.#turn(options);
    await turn.acquire();
    let trainer: Trainer;
    try {
      // Checked again once the device is ours: the session may have been released, or another fit() (or a
      // setWeights or loadCheckpoint queued before this call) started while this one waited.
      trainer = this.#exclusive('fit()');
    } catch (e) {
      turn.letGo();
      throw e;
    }
    this.#busy = true;
    try {
      const train = await this.#feeder.prepare(await onCpu(data), 'data', this.#cache);
      if (!train.labels) throw new InvalidArgumentError('fit needs labels: pass { inputs, labels }.');
      const validation = options.validation ? await this.#feeder.prepare(await onCpu(options.validation), 'validation', this.#cache) : undefined;
      const batches = o.dropLast ? Math.floor(train.count / o.batchSize) : Math.ceil(train.count / o.batchSize);
      if (!batches) throw new InvalidArgumentError(`dropLast with batchSize ${o.batchSize} leaves no batch of ${train.count} examples.`);
      const norm = options.clipGradNorm ?? this.#baseClip.norm;
      if ((norm === undefined) !== (this.#clip.norm === undefined)) trainer = await this.#rebuild(this.#seed, { ...this.#baseClip, norm });
      else this.#clip.norm = norm;
      this.#schedule = options.lrSchedule;

      const result: FitResult = {
        epochs: 0, steps: 0, skippedSteps: 0, stoppedEarly: false, history: [],
        cachedFeatureBytes: [train, validation].reduce((b, p) => b + (p?.cached ? byteSize(Object.values(p.columns)) : 0), 0),
      };
      const early = o.early ? new EarlyStopping(o.early) : undefined;
      let bestState: TrainerState | undefined;
      // An epoch interrupted part-way (by a checkpoint saved mid-epoch and loaded, or a fit that threw) resumes at
      // its next batch, in the same shuffled order, as this call's first epoch: the batches match an uninterrupted run.
      const resume = this.#position;
      if (resume && (resume.batchSize !== o.batchSize || resume.count !== train.count || resume.batches !== batches)) {
        throw new InvalidArgumentError(
          `This tuner stopped at batch ${resume.batch} of ${resume.batches} of an epoch over ${resume.count} examples in batches of ${resume.batchSize}; ` +
            `fit() must continue it with the same data and batchSize (got ${train.count} examples, batchSize ${o.batchSize}), or call restartEpoch() first.`,
          { position: resume },
        );
      }
      for (let epoch = 0; epoch < o.epochs; epoch++) {
        const order = o.shuffle ? shuffledOrder(train.count, this.#seed, this.#epochs) : Array.from({ length: train.count }, (_, i) => i);
        const sum = new MetricSum();
        const metrics: EpochMetrics = { epoch, loss: NaN, steps: 0, skippedSteps: 0 };
        for (let b = epoch === 0 && resume ? resume.batch : 0; b < batches; b++) {
          const idx = order.slice(b * o.batchSize, (b + 1) * o.batchSize);
          const report = await trainer.trainStep(await this.#feeder.batch(train, idx));
          // Counted as soon as the step is applied, so a checkpoint saved from onProgress (or after an exception
          // there) knows exactly which batch comes next; the epoch counts as done with its last step.
          if (b + 1 < batches) this.#position = { batch: b + 1, batches, batchSize: o.batchSize, count: train.count };
          else {
            this.#position = undefined;
            this.#epochs++;
          }
          if (report.skipped) metrics.skippedSteps++;
          else {
            metrics.steps++;
            sum.addLoss(report.loss, idx.length);
          }
          // The device is given back after every step, so waiting requests of higher priority run now.
          await turn.yield(options.onProgress && (() => options.onProgress!({ type: 'step', epoch, batch: b, batches, ...report })));
          trainer = this.#live();
        }
        metrics.loss = sum.loss;
        if (validation) {
          const v = await this.#feeder.evaluate(trainer, validation, o.batchSize);
          metrics.valLoss = v.loss;
          if (v.accuracy !== undefined) metrics.valAccuracy = v.accuracy;
        }
        result.epochs++;
        result.steps += metrics.steps;
        result.skippedSteps += metrics.skippedSteps;
        result.history.push(metrics);
        await turn.yield(options.onProgress && (() => options.onProgress!({ type: 'epoch', epochs: o.epochs, ...metrics })));
        trainer = this.#live();
        const verdict = early?.update(metrics);
        if (verdict === 'improved' && o.early!.restoreBest) bestState = await trainer.saveState();
        if (verdict === 'stop') {
          result.stoppedEarly = epoch < o.epochs - 1;
          break;
        }
      }
      if (early?.bestEpoch !== undefined) result.bestEpoch = early.bestEpoch;
      if (bestState) await trainer.loadState(bestState);
      return result;
    } finally {
      turn.letGo();
      this.#busy = false;
      this.#schedule = undefined;
    }
  }

  /** A hold on this tuner's lane for one call (its priority and signal). */
  #turn(o: TunerCallOptions): Turn {
    return new Turn(this.#lane, o.priority ?? this.#priority, o.signal, () => (this.#trainer ? new SessionReleasedError() : new DisposedTensorError('FineTuner')));
  }

  /** Runs `work` as one request in this tuner's lane; it starts by checking the tuner and its session are alive. */
  async #queued<T>(o: TunerCallOptions, work: (trainer: Trainer) => Promise<T> | T): Promise<T> {
    this.#live();
    checkCallOptions(o);
    const turn = this.#turn(o);
    await turn.acquire();
    try {
      return await work(this.#live());
    } finally {
      turn.letGo();
    }
  }

  /** Mean loss (and accuracy for classification) over a labelled dataset, in inference mode; changes nothing. */
  async evaluate(data: Dataset, options: { batchSize?: number } & TunerCallOptions = {}): Promise<EvaluationMetrics> {
    const batchSize = positive(options.batchSize ?? 256, 'batchSize');
    return this.#queued(options, async (trainer) => {
      const p = await this.#feeder.prepare(await onCpu(data), 'data', false);
      if (!p.labels) throw new InvalidArgumentError('evaluate needs labels: pass { inputs, labels }.');
      return this.#feeder.evaluate(trainer, p, batchSize);
    });
  }

  /** The model outputs computed after the cut (the loss output among them), for `inputs`, with the current weights. */
  async predict(inputs: ExampleInputs, options: { batchSize?: number } & TunerCallOptions = {}): Promise<Record<string, Tensor>> {
    const batchSize = positive(options.batchSize ?? 256, 'batchSize');
    return this.#queued(options, async (trainer) => {
      const parts = await this.#feeder.predict(trainer, await this.#feeder.prepare({ inputs: await onCpu(inputs) }, 'inputs', false), batchSize);
      return Object.fromEntries(Object.entries(parts).map(([k, ts]) => [k, Tensor.fromHost(concatRows(ts))]));
    });
  }

  /** Copies of the trainable weights, by initializer name. */
  async getWeights(): Promise<Record<string, Tensor>> {
    const params = await this.#queued({}, (t) => t.parameters());
    return Object.fromEntries(Object.entries(params).map(([k, t]) => [k, Tensor.fromHost(t)]));
  }

  /** Overwrites some or all trainable weights (float32, same shapes); optimizer state and counters are kept. */
  async setWeights(weights: Record<string, Tensor>): Promise<void> {
    this.#exclusive('setWeights()');
    if (!weights || typeof weights !== 'object') throw new InvalidArgumentError('setWeights expects { name: tensor }.');
    await this.#queued({}, (trainer) => this.#setWeights(trainer, weights));
  }

  async #setWeights(trainer: Trainer, weights: Record<string, Tensor>): Promise<void> {
    this.#exclusive('setWeights()');
    const { layout } = this.#program;
    const state = await trainer.saveState();
    for (const [name, t] of Object.entries(weights)) {
      const e = layout.byName[name];
      if (!e) throw new InvalidArgumentError(`'${name}' is not a trainable weight of this tuner; trainable: ${this.trainable.map((n) => `'${n}'`).join(', ')}.`, { name });
      if (!(t instanceof Tensor)) throw new InvalidArgumentError(`Weight '${name}' must be a Tensor.`);
      const h = t.toHost();
      if (h.dtype !== 'float32') throw new DTypeError(`Weight '${name}' must be float32, got ${h.dtype}.`);
      if (h.shape.length !== e.shape.length || h.shape.some((d, i) => d !== e.shape[i])) {
        throw new ShapeError(`Weight '${name}' has shape [${e.shape.join(', ')}], got [${h.shape.join(', ')}].`, { name, expected: e.shape, got: h.shape });
      }
      state.params.set(h.data as Float32Array, e.offset);
    }
    await trainer.loadState(state);
  }

  /**
   * The model as ONNX bytes with the trained weights: the session's inference graph (trunk + tail, with the new
   * head when one was asked for) and every trainable initializer replaced by its current value.
   */
  async exportOnnx(options: ExportOptions = {}): Promise<Uint8Array> {
    const params = await this.#queued({}, (t) => t.parameters());
    const graph: Graph = { ...this.#graph, initializers: { ...this.#graph.initializers, ...params } };
    return exportOnnx(graph, { producer: 'edgekit-finetune', ...options });
  }

  #header(state: TrainerState): CheckpointHeader {
    this.#fingerprint ??= modelFingerprint(this.#graph, this.#program.params);
    return {
      format: 'edgekit-finetune-checkpoint',
      fingerprint: this.#fingerprint,
      trainFrom: this.trainFrom,
      output: this.output,
      loss: this.#spec.kind,
      layout: layoutHeader(this.#program.layout),
      optimizer: { kind: this.#optimizer.kind, slots: slotCount(this.#optimizer) },
      step: state.step,
      attempts: state.attempts,
      epochs: this.#epochs,
      seed: this.#seed,
      ...(this.#position ? { epochPosition: { ...this.#position } } : {}),
    };
  }

  /** Everything needed to resume exactly: weights, optimizer state, counters, and a header naming the program. */
  async saveCheckpoint(): Promise<Uint8Array> {
    return this.#queued({}, async (t) => {
      const state = await t.saveState();
      return encodeCheckpoint(this.#header(state), state);
    });
  }

  /**
   * Restores a saveCheckpoint() result: afterwards fit continues exactly as the saved tuner would have (same
   * weights, optimizer moments, step and epoch counters, seed). A checkpoint of another model, cut, head or
   * optimizer kind is rejected with an InvalidArgumentError before anything changes.
   */
  async loadCheckpoint(bytes: Uint8Array): Promise<void> {
    this.#exclusive('loadCheckpoint()');
    const { header, state } = decodeCheckpoint(bytes);
    checkCompatible(header, this.#header({ params: new Float32Array(0), slots: [], step: 0, attempts: 0 }));
    await this.#queued({}, (trainer) => this.#loadCheckpoint(trainer, header, state));
  }

  async #loadCheckpoint(trainer: Trainer, header: CheckpointHeader, state: TrainerState): Promise<void> {
    this.#exclusive('loadCheckpoint()');
    // Dropout masks are seeded by the trainer: resume with the checkpoint's seed.
    if (header.seed !== this.#seed) await this.#rebuild(header.seed, this.#clip, state);
    else await trainer.loadState(state);
    this.#epochs = header.epochs;
    this.#position = header.epochPosition?.batch ? { ...header.epochPosition } : undefined;
  }

  /** Where an interrupted epoch stopped ({ batch, batches }), or undefined between epochs. */
  get epochPosition(): { batch: number; batches: number } | undefined {
    return this.#position ? { batch: this.#position.batch, batches: this.#position.batches } : undefined;
  }

  /** Forgets an interrupted epoch's position: the next fit() starts a fresh epoch (the shuffle stream moves on). */
  restartEpoch(): void {
    this.#exclusive('restartEpoch()');
    if (this.#position) this.#epochs++;
    this.#position = undefined;
  }

  /**
   * Frees the trainer's memory; idempotent. The session is not released. Work of this tuner still waiting for the
   * device rejects with DisposedTensorError (a fit stops before its next step); a request running now finishes
   * first, and the memory is freed right after it.
   */
  dispose(): void {
    const trainer = this.#trainer;
    if (!trainer) return;
    this.#trainer = undefined;
    const free = () => {
      this.#trunk.dispose();
      trainer.dispose();
    };
    const running = this.#lane.busy;
    const drained = this.#lane.dispose();
    if (running) void drained.then(free);
    else free();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

function positive(v: number, what: string): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new InvalidArgumentError(`${what} must be a positive integer, got ${v}.`);
  return v;
}

/**
 * Only weights train: an initializer that is a constant of the model (a Constant node's value, a bound or epsilon an
 * op adapter added) or a single number (a threshold, scale or exponent; the new head is always trained) stays frozen,
 * so training never changes what the model computes beyond its weights.
 */
function excludeConstants(split: SplitResult, graph: Graph, constants: ReadonlySet<string>, keep: readonly string[]): SplitResult {
  const why = (w: string) =>
    keep.includes(w) ? undefined
    : constants.has(w) ? 'a constant of the model (a Constant node or an operator parameter), not a weight'
    : graph.initializers[w]!.data.length === 1 ? 'a single number (a threshold, scale or exponent), not a weight'
    : undefined;
  const out = split.trainable.filter((w) => why(w));
  if (!out.length) return split;
  return { ...split, trainable: split.trainable.filter((w) => !why(w)), frozen: [...split.frozen, ...out.map((name) => ({ name, reason: why(name)! }))] };
}
