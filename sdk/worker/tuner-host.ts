import type { Remote } from 'comlink';
import { releaseProxy, transfer } from 'comlink';
import type { Lane } from '../../runtime/scheduler/index.js';
import type { TaskPriority } from '../../runtime/scheduler/index.js';
import { FineTuner } from '../fine-tuner.js';
import type { Dataset, EvaluationMetrics, FineTunerOptions, FitOptions, FitProgress, FitResult } from '../fine-tuner/options.js';
import type { ExportOptions } from '../../importers/onnx/index.js';
import type { InferenceSession } from '../session.js';
import type { Tensor } from '../tensor.js';
import { decodeTree, encodeValue, type WireTree, type WireValue } from './wire.js';

/** A worker tuner's counters, sent back after every call that can change them (the client's getters read them). */
export interface TunerStatus {
  trainable: string[];
  stepCount: number;
  epochCount: number;
  epochPosition: { batch: number; batches: number } | undefined;
}

/** The caller's onProgress; in the worker a comlink proxy, so each call is a round trip fit awaits. */
export type ProgressCallback = (e: FitProgress) => unknown;

export interface WireFitOptions {
  options: WireTree;
  priority?: TaskPriority;
  requestId?: number;
}

/**
 * Holds the session's lane for one unit of training work and lets go of it at every progress event, so fit() runs
 * as a sequence of scheduled units (one per step, plus an epoch's validation) and other requests run in between.
 */
class StepGate {
  #release: (() => void) | undefined;
  constructor(readonly lane: Lane, readonly priority: TaskPriority, readonly signal: AbortSignal | undefined) {}

  acquire(): Promise<void> {
    return new Promise<void>((granted, refused) => {
      this.lane
        .submit(() => new Promise<void>((done) => ((this.#release = done), granted())), { priority: this.priority, signal: this.signal })
        .catch(refused); // once granted, a later rejection (signal while holding) changes nothing: the next acquire sees it
    });
  }

  letGo(): void {
    const r = this.#release;
    this.#release = undefined;
    r?.();
  }
}

/** A FineTuner in the worker, on a hosted session and its lane. */
export class HostedTuner {
  private constructor(readonly tuner: FineTuner, readonly lane: Lane) {}

  static async create(session: InferenceSession, lane: Lane, options: FineTunerOptions): Promise<HostedTuner> {
    return new HostedTuner(await lane.submit(() => FineTuner.create(session, options)), lane);
  }

  async fit(data: WireTree, o: WireFitOptions, onProgress: ProgressCallback | undefined, signal: AbortSignal | undefined): Promise<FitResult> {
    const gate = new StepGate(this.lane, o.priority ?? 'background', signal);
    const options = decodeTree(o.options) as FitOptions;
    await gate.acquire();
    try {
      return await this.tuner.fit(decodeTree(data) as Dataset, {
        ...options,
        onProgress: async (e) => {
          gate.letGo();
          if (onProgress) await onProgress(e);
          await gate.acquire();
        },
      });
    } finally {
      gate.letGo();
      // A comlink proxy of the caller's callback: free its channel.
      (onProgress as Partial<Remote<ProgressCallback>> | undefined)?.[releaseProxy]?.();
    }
  }

  evaluate(data: WireTree, batchSize: number | undefined, priority: TaskPriority | undefined): Promise<EvaluationMetrics> {
    return this.lane.submit(() => this.tuner.evaluate(decodeTree(data) as Dataset, { batchSize }), { priority });
  }

  async predict(inputs: WireTree, batchSize: number | undefined, priority: TaskPriority | undefined): Promise<Record<string, WireValue>> {
    const out = await this.lane.submit(() => this.tuner.predict(decodeTree(inputs) as Dataset['inputs'], { batchSize }), {
      priority,
      onDiscard: (r) => Object.values(r).forEach((t) => t.dispose()),
    });
    const buffers = new Set<ArrayBuffer>();
    const wire: Record<string, WireValue> = {};
    // Copied: a prediction may alias the tuner's weights, which must stay here.
    for (const [k, v] of Object.entries(out)) wire[k] = encodeValue(v, k, buffers, true);
    return transfer(wire, [...buffers]);
  }

  async exportOnnx(options: ExportOptions): Promise<Uint8Array> {
    const bytes = await this.lane.submit(() => this.tuner.exportOnnx(options));
    return transfer(bytes, [bytes.buffer as ArrayBuffer]);
  }

  status(): TunerStatus {
    const t = this.tuner;
    return { trainable: [...t.trainable], stepCount: t.stepCount, epochCount: t.epochCount, epochPosition: t.epochPosition };
  }

  async getWeights(): Promise<Record<string, WireValue>> {
    const out = await this.lane.submit(() => this.tuner.getWeights(), { onDiscard: (r) => Object.values(r).forEach((t) => t.dispose()) });
    const buffers = new Set<ArrayBuffer>();
    const wire: Record<string, WireValue> = {};
    // getWeights returns fresh host copies: transferred, not copied again.
    for (const [k, v] of Object.entries(out)) wire[k] = encodeValue(v, k, buffers, false);
    return transfer(wire, [...buffers]);
  }

  async setWeights(weights: WireTree): Promise<TunerStatus> {
    await this.lane.submit(() => this.tuner.setWeights(decodeTree(weights) as Record<string, Tensor>));
    return this.status();
  }

  async saveCheckpoint(): Promise<Uint8Array> {
    const bytes = await this.lane.submit(() => this.tuner.saveCheckpoint());
    return transfer(bytes, [bytes.buffer as ArrayBuffer]);
  }

  async loadCheckpoint(bytes: Uint8Array): Promise<TunerStatus> {
    await this.lane.submit(() => this.tuner.loadCheckpoint(bytes));
    return this.status();
  }

  async restartEpoch(): Promise<TunerStatus> {
    await this.lane.submit(async () => this.tuner.restartEpoch());
    return this.status();
  }

  async dispose(): Promise<void> {
    // After whatever of this tuner is running or waiting its turn.
    await this.lane.submit(() => this.tuner.dispose(), { priority: 'background' }).catch(() => this.tuner.dispose());
  }
}
