import { runGraphCpu } from '../../runtime/backends/cpu/executor.js';
import { GpuSession } from '../../runtime/backends/webgpu/gpu-session.js';
import { GpuTrainer } from '../../runtime/backends/webgpu/trainer.js';
import type { Graph } from '../../runtime/ir/graph.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import type { TrainingProgram } from '../../runtime/train/program.js';
import { asyncTrainer } from '../../runtime/train/trainer-async.js';
import { CpuTrainer, type TrainerOptions } from '../../runtime/train/trainer-cpu.js';
import type { Trainer } from '../../runtime/train/trainer.js';
import type { SessionInternals } from '../internal.js';
import { concatRows, sliceRows } from './data.js';

/**
 * Where the fine-tuner's work runs. The trainable tail runs on the session's backend: the CPU reference
 * (CpuTrainer behind asyncTrainer) or the WebGPU trainer, and so does the frozen trunk, as inference (once per
 * example when features are cached).
 */
export async function createTrainer(internals: SessionInternals, program: TrainingProgram, opts: TrainerOptions): Promise<Trainer> {
  if (internals.backend === 'cpu') return asyncTrainer(new CpuTrainer(program, opts));
  return GpuTrainer.create(await internals.gpu(), program, opts);
}

/** Runs the frozen trunk as inference: batch-first feeds in, the cut values out. */
export interface TrunkRunner {
  readonly trunk: Graph;
  run(feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>>;
  dispose(): void;
}

/**
 * The trunk on the session's backend: the CPU reference executor, or a GpuSession of its own over the trunk graph
 * (it uploads the trunk's weights once more; they are freed by dispose()). Cut values that are model inputs
 * (a trunk with nothing to compute, or a skip connection from an input) are passed through.
 */
export async function createTrunkRunner(internals: SessionInternals, trunk: Graph): Promise<TrunkRunner> {
  const outputs = trunk.outputs.map((o) => o.name);
  const computed = outputs.filter((o) => trunk.nodes.some((n) => n.outputs.includes(o)));
  const passThrough = (feeds: Record<string, HostTensor>) => Object.fromEntries(outputs.filter((o) => !computed.includes(o)).map((o) => [o, feeds[o]!]));
  if (internals.backend === 'cpu' || !computed.length) {
    return {
      trunk,
      run: async (feeds) => ({ ...passThrough(feeds), ...(computed.length ? runGraphCpu(trunk, feeds, computed, { maxElements: internals.maxElements }) : {}) }),
      dispose: () => {},
    };
  }
  const gpu = await GpuSession.create(await internals.gpu(), trunk, { maxElements: internals.maxElements, opset: internals.opset });
  return {
    trunk,
    run: async (feeds) => ({ ...passThrough(feeds), ...(await gpu.run(feeds, computed)).host }),
    dispose: () => gpu.dispose(),
  };
}

/** Examples per trunk run: bounds the trunk's intermediate memory while features are computed. */
export const TRUNK_CHUNK = 256;

/**
 * The trunk's outputs (the tail's cut inputs) for every example of batch-first `inputs`, computed in chunks and
 * concatenated along the batch axis.
 */
export async function runTrunk(runner: TrunkRunner, inputs: Record<string, HostTensor>, count: number, chunk = TRUNK_CHUNK): Promise<Record<string, HostTensor>> {
  const outputs = runner.trunk.outputs.map((o) => o.name);
  const parts: Record<string, HostTensor[]> = Object.fromEntries(outputs.map((o) => [o, []]));
  for (let start = 0; start < count; start += chunk) {
    const end = Math.min(count, start + chunk);
    const out = await runner.run(Object.fromEntries(runner.trunk.inputs.map((i) => [i.name, sliceRows(inputs[i.name]!, start, end)])));
    for (const o of outputs) parts[o]!.push(out[o]!);
  }
  return Object.fromEntries(outputs.map((o) => [o, concatRows(parts[o]!)]));
}
