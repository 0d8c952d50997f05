import type { Remote } from 'comlink';
import { releaseProxy, transfer } from 'comlink';
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
 * A FineTuner in the worker, on a hosted session. The tuner queues its own work on the worker's scheduler (a lane
 * of its own, 'background' by default; fit() one step at a time), exactly as on the main thread, so the host only
 * decodes, forwards and encodes.
 */
export class HostedTuner {
  private constructor(readonly tuner: FineTuner) {}

  static async create(session: InferenceSession, options: FineTunerOptions): Promise<HostedTuner> {
    return new HostedTuner(await FineTuner.create(session, options));
  }

  async fit(data: WireTree, o: WireFitOptions, onProgress: ProgressCallback | undefined, signal: AbortSignal | undefined): Promise<FitResult> {
    const options = decodeTree(o.options) as FitOptions;
    try {
      return await this.tuner.fit(decodeTree(data) as Dataset, {
        ...options,
        priority: o.priority,
        signal,
        onProgress: onProgress && (async (e) => void (await onProgress(e))),
      });
    } finally {
      // A comlink proxy of the caller's callback: free its channel.
      (onProgress as Partial<Remote<ProgressCallback>> | undefined)?.[releaseProxy]?.();
    }
  }

  evaluate(data: WireTree, batchSize: number | undefined, priority: TaskPriority | undefined, signal?: AbortSignal): Promise<EvaluationMetrics> {
    return this.tuner.evaluate(decodeTree(data) as Dataset, { batchSize, priority, signal });
  }

  async predict(inputs: WireTree, batchSize: number | undefined, priority: TaskPriority | undefined, signal?: AbortSignal): Promise<Record<string, WireValue>> {
    const out = await this.tuner.predict(decodeTree(inputs) as Dataset['inputs'], { batchSize, priority, signal });
    const buffers = new Set<ArrayBuffer>();
    const wire: Record<string, WireValue> = {};
    // Copied: a prediction may alias the tuner's weights, which must stay here.
    for (const [k, v] of Object.entries(out)) wire[k] = encodeValue(v, k, buffers, true);
    return transfer(wire, [...buffers]);
  }

  async exportOnnx(options: ExportOptions): Promise<Uint8Array> {
    const bytes = await this.tuner.exportOnnx(options);
    return transfer(bytes, [bytes.buffer as ArrayBuffer]);
  }

  status(): TunerStatus {
    const t = this.tuner;
    return { trainable: [...t.trainable], stepCount: t.stepCount, epochCount: t.epochCount, epochPosition: t.epochPosition };
  }

  async getWeights(): Promise<Record<string, WireValue>> {
    const out = await this.tuner.getWeights();
    const buffers = new Set<ArrayBuffer>();
    const wire: Record<string, WireValue> = {};
    // getWeights returns fresh host copies: transferred, not copied again.
    for (const [k, v] of Object.entries(out)) wire[k] = encodeValue(v, k, buffers, false);
    return transfer(wire, [...buffers]);
  }

  async setWeights(weights: WireTree): Promise<TunerStatus> {
    await this.tuner.setWeights(decodeTree(weights) as Record<string, Tensor>);
    return this.status();
  }

  async saveCheckpoint(): Promise<Uint8Array> {
    const bytes = await this.tuner.saveCheckpoint();
    return transfer(bytes, [bytes.buffer as ArrayBuffer]);
  }

  async loadCheckpoint(bytes: Uint8Array): Promise<TunerStatus> {
    await this.tuner.loadCheckpoint(bytes);
    return this.status();
  }

  async restartEpoch(): Promise<TunerStatus> {
    this.tuner.restartEpoch();
    return this.status();
  }

  dispose(): void {
    // Its waiting work rejects; a running step finishes before the memory is freed (FineTuner.dispose).
    this.tuner.dispose();
  }
}
