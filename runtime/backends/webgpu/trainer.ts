import { DisposedTensorError, DTypeError, InternalError, InvalidArgumentError } from '../../errors.js';
import type { Graph } from '../../ir/graph.js';
import { cloneGraph, foldConstants, removeDeadCode } from '../../ir/passes/index.js';
import { hostTensor, sizeOf, tensorFromNumbers, type HostTensor } from '../../ir/tensor.js';
import { validateAndSort } from '../../ir/validate.js';
import { inferTrainShapes } from '../../train/infer.js';
import { mixSeed } from '../../train/ops/dropout.js';
import { slotCount, validateOptimizer } from '../../train/optimizers.js';
import { initialParams, type TrainingProgram } from '../../train/program.js';
import type { StepReport, TrainerOptions } from '../../train/trainer-cpu.js';
import type { Trainer, TrainerState } from '../../train/trainer.js';
import { GpuGraphPlan, type GpuRange, type GpuResources } from './executor.js';
import type { GpuBufferLease } from './memory.js';
import { GpuOptimizer, validateClip, type StepStats } from './optimizer.js';
import { decodeFromGpu, storageBytes, storageFor } from './storage.js';

/**
 * Training on the GPU: the WebGPU twin of CpuTrainer (runtime/train/trainer-cpu.ts), same TrainingProgram, same
 * options, same StepReport semantics and determinism (Dropout masks from (seed, attempt), fixed reduction orders).
 *
 * Memory: the trainable parameters, their gradients and the optimizer state live in ONE buffer in the flat layout
 * ([params | grads | slots], runtime/train/layout.ts). The forward, backward and evaluate plans bind every
 * parameter to its range of that buffer (GpuPlanOptions.bindings), the backward plan writes each gradient straight
 * into its range of the gradient section, and the activations the backward pass reads ("saved") live in buffers both
 * plans bind, so nothing crosses to the host between the passes.
 *
 * A step is ONE submit: the batch and seed are written, then forward, backward, gradient statistics (NaN/Inf flag,
 * norm, clip coefficient), the optimizer step (which skips itself when the flag is set) and the copy of ~300 bytes
 * of statistics (loss, flag, norm) for the report. Plans are made per batch shape (the graphs are specialized to
 * concrete shapes, parameters turned into bound inputs so constant folding can never bake in a stale weight) and
 * cached, a few shapes at a time.
 */

const MAX_SHAPES = 4;

interface StepPlans {
  forward: GpuGraphPlan;
  backward: GpuGraphPlan;
  leases: GpuBufferLease[];
  /** Gradients that are constants of the specialized backward graph (a parameter the loss does not reach). */
  constGrads: { offset: number; data: Float32Array }[];
  /** Gradients that are backward inputs as they are (copied into the gradient section after the backward pass). */
  gradCopies: { src: GpuRange; offset: number }[];
  /** Dispatches of the forward and backward plans. */
  dispatches: number;
}

interface EvalPlan {
  plan: GpuGraphPlan;
  outputs: string[];
  graph: Graph;
}

export class GpuTrainer implements Trainer {
  /** Optimizer steps applied. */
  step = 0;
  /** Steps attempted (applied or skipped); seeds Dropout so a retried batch draws a new mask. */
  attempts = 0;
  private readonly seed: number;
  private readonly stepPlans = new Map<string, StepPlans>();
  private readonly evalPlans = new Map<string, EvalPlan>();
  private readonly paramRanges: Record<string, GpuRange> = {};
  private disposed = false;
  private queue: Promise<unknown> = Promise.resolve();
  /** Dispatches recorded by the last trainStep (forward + backward + optimizer). */
  lastStepDispatches = 0;

  private constructor(
    private readonly res: GpuResources,
    readonly program: TrainingProgram,
    readonly opts: TrainerOptions,
    private readonly flat: GpuBufferLease,
    private readonly optimizer: GpuOptimizer,
  ) {
    this.seed = (opts.seed ?? 0) >>> 0;
    for (const e of program.layout.entries) this.paramRanges[e.name] = { buffer: flat.buffer, offset: e.offset * 4, size: Math.max(4, e.size * 4) };
  }

  static async create(res: GpuResources, program: TrainingProgram, opts: TrainerOptions): Promise<GpuTrainer> {
    validateOptimizer(opts.optimizer);
    validateClip(opts.clip ?? {});
    res.ctx.assertAlive();
    const lossDType = program.forward.values[program.loss]?.dtype;
    if (lossDType !== 'float32') throw new DTypeError(`The GPU trainer needs a float32 loss; '${program.loss}' is ${lossDType}. Cast the logits to float32 before the loss.`);
    const L = program.layout.length;
    const sections = 2 + slotCount(opts.optimizer);
    const flat = await res.memory.acquireChecked(Math.max(1024, L * sections * 4), undefined, 'edgekit-train-flat');
    try {
      // Parameters from the tail's initializers; gradients and optimizer state start at zero (as CpuTrainer's).
      const init = new Float32Array(L * sections);
      const values = initialParams(program);
      for (const e of program.layout.entries) init.set(values[e.name]!.data instanceof Float32Array ? (values[e.name]!.data as Float32Array) : Float32Array.from(values[e.name]!.data as ArrayLike<number>), e.offset);
      res.memory.upload(flat.buffer, 0, init);
      const optimizer = await GpuOptimizer.create(res, { buffer: flat.buffer, offset: 0, size: flat.size }, L, opts.optimizer, opts.clip ?? {});
      return new GpuTrainer(res, program, opts, flat, optimizer);
    } catch (e) {
      res.memory.release(flat);
      throw e;
    }
  }

  get stepCount(): number {
    return this.step;
  }

  /** Calls run one at a time (a step reads what the previous one wrote). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private alive(): void {
    if (this.disposed) throw new DisposedTensorError('GPU trainer');
    this.res.ctx.assertAlive();
  }

  trainStep(batch: Record<string, HostTensor>): Promise<StepReport> {
    return this.serial(() => this.doStep(batch));
  }

  private async doStep(batch: Record<string, HostTensor>): Promise<StepReport> {
    this.alive();
    const { program, res } = this;
    const lr = this.opts.schedule ? this.opts.schedule(this.step) : this.opts.optimizer.lr;
    if (!(lr >= 0)) throw new InvalidArgumentError(`The learning-rate schedule gave ${lr} at step ${this.step}.`);
    const feeds: Record<string, HostTensor> = { ...batch };
    if (program.seedInput) feeds[program.seedInput] = tensorFromNumbers('uint32', [], [mixSeed(this.seed, this.attempts)]);
    this.attempts++; // as CpuTrainer: an attempt counts even when the batch is then rejected
    const plans = await this.plansFor(feeds);
    plans.forward.writeInputs(feeds);
    for (const c of plans.constGrads) res.memory.upload(this.flat.buffer, c.offset, c.data);
    let finish!: () => Promise<StepStats>;
    await res.ctx.scoped('running a training step', () => {
      const encoder = res.ctx.device.createCommandEncoder({ label: 'edgekit-train-step' });
      plans.forward.encode(encoder);
      plans.backward.encode(encoder);
      for (const c of plans.gradCopies) encoder.copyBufferToBuffer(c.src.buffer, c.src.offset, this.flat.buffer, c.offset, c.src.size);
      this.optimizer.encode(encoder, this.step + 1, lr);
      finish = this.optimizer.encodeReadback(encoder);
      res.ctx.device.queue.submit([encoder.finish()]);
    });
    this.lastStepDispatches = plans.dispatches + this.optimizer.dispatches;
    const s = await finish();
    const late = res.ctx.takeUncapturedError();
    if (late) throw late;
    if (s.bad) {
      const bad = s.lossBad ? `the loss is ${s.loss}` : this.describeBadGradient(s);
      return { step: this.step, loss: s.loss, lr, gradNorm: NaN, skipped: true, reason: `${bad}; the step was skipped and the weights kept` };
    }
    this.step++;
    return { step: this.step, loss: s.loss, lr, gradNorm: s.gradNorm, skipped: false };
  }

  private describeBadGradient(s: StepStats): string {
    const i = s.badIndex ?? 0;
    const e = this.program.layout.entries.find((x) => i >= x.offset && i < x.offset + x.size);
    return e ? `the gradient of '${e.name}' holds ${s.badValue} (element ${i - e.offset})` : `a gradient holds ${s.badValue}`;
  }

  evaluate(batch: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
    return this.serial(async () => {
      this.alive();
      const { plan, outputs, graph } = await this.evalPlanFor(batch);
      plan.writeInputs(batch);
      return this.readOutputs(plan, graph, outputs, batch);
    });
  }

  parameters(): Promise<Record<string, HostTensor>> {
    return this.serial(async () => {
      this.alive();
      const L = this.program.layout.length;
      const all = await this.readFloats(0, L);
      const out: Record<string, HostTensor> = {};
      for (const e of this.program.layout.entries) out[e.name] = hostTensor('float32', [...e.shape], all.slice(e.offset, e.offset + e.size));
      return out;
    });
  }

  saveState(): Promise<TrainerState> {
    return this.serial(async () => {
      this.alive();
      const L = this.program.layout.length;
      const n = slotCount(this.opts.optimizer);
      const all = await this.readFloats(0, L * (2 + n));
      return {
        params: all.slice(0, L),
        slots: Array.from({ length: n }, (_, k) => all.slice((2 + k) * L, (3 + k) * L)),
        step: this.step,
        attempts: this.attempts,
      };
    });
  }

  loadState(state: TrainerState): Promise<void> {
    return this.serial(async () => {
      this.alive();
      const L = this.program.layout.length;
      const n = slotCount(this.opts.optimizer);
      if (state.params.length !== L || state.slots.length !== n || state.slots.some((s) => s.length !== L)) {
        throw new InvalidArgumentError(
          `This state does not fit the trainer: it holds ${state.params.length} parameter floats and ${state.slots.length} optimizer slot(s); ` +
            `the layout has ${L} floats and the optimizer ${n} slot(s). Load a state saved from the same program and optimizer.`,
        );
      }
      const { memory } = this.res;
      memory.upload(this.flat.buffer, 0, state.params);
      state.slots.forEach((s, k) => memory.upload(this.flat.buffer, (2 + k) * L * 4, s));
      this.step = state.step;
      this.attempts = state.attempts;
    });
  }

  /** Number of submits one trainStep makes (always one; reported for the benchmark and the docs). */
  get submitsPerStep(): number {
    return 1;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const p of this.stepPlans.values()) disposeStepPlans(this.res, p);
    for (const p of this.evalPlans.values()) p.plan.dispose();
    this.stepPlans.clear();
    this.evalPlans.clear();
    this.optimizer.dispose();
    this.res.memory.release(this.flat);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  // ---- plans ----

  private async readFloats(offset: number, count: number): Promise<Float32Array> {
    if (count === 0) return new Float32Array(0);
    const bytes = await this.res.memory.readback(this.flat.buffer, offset * 4, count * 4);
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + count * 4));
  }

  private async plansFor(feeds: Record<string, HostTensor>): Promise<StepPlans> {
    const { program } = this;
    const key = signature(program.forward, feeds);
    const hit = this.stepPlans.get(key);
    if (hit) {
      this.stepPlans.delete(key);
      this.stepPlans.set(key, hit); // most recently used last
      return hit;
    }
    const plans = await this.buildStepPlans(feeds);
    this.stepPlans.set(key, plans);
    if (this.stepPlans.size > MAX_SHAPES) {
      const [oldest, p] = this.stepPlans.entries().next().value as [string, StepPlans];
      this.stepPlans.delete(oldest);
      disposeStepPlans(this.res, p);
    }
    return plans;
  }

  private async buildStepPlans(feeds: Record<string, HostTensor>): Promise<StepPlans> {
    const { program, res } = this;
    const { ctx, memory } = res;
    const maxElements = this.opts.maxElements;
    const L = program.layout.length;
    const fwd = specializeTrain(program.forward, shapesOf(program.forward, feeds), program.params, maxElements);
    const leases: GpuBufferLease[] = [];
    const bindings: Record<string, GpuRange> = { ...this.paramRanges, [program.loss]: this.optimizer.lossRange };
    const backwardConsts: Record<string, HostTensor> = {};
    const savedShapes: Record<string, number[]> = {};
    let forward: GpuGraphPlan | undefined;
    let backward: GpuGraphPlan | undefined;
    try {
      for (const v of program.saved) {
        if (fwd.initializers[v]) {
          backwardConsts[v] = fwd.initializers[v]!; // folded once the shapes were known (a Shape chain)
          continue;
        }
        const info = fwd.values[v];
        if (!info?.shape) throw new InternalError(`saved value '${v}' has no shape after specialization`);
        savedShapes[v] = info.shape as number[];
        if (Object.hasOwn(bindings, v)) continue;
        const bytes = Math.max(4, Math.ceil(storageBytes(storageFor(info.dtype, ctx.hasF16, false), sizeOf(info.shape as number[])) / 4) * 4);
        const l = await memory.acquireChecked(bytes, undefined, `edgekit-saved-${v}`);
        leases.push(l);
        bindings[v] = { buffer: l.buffer, offset: 0, size: bytes };
      }
      const bwSrc = cloneGraph(program.backward);
      bwSrc.inputs = bwSrc.inputs.filter((i) => !backwardConsts[i.name]);
      Object.assign(bwSrc.initializers, backwardConsts);
      const bwd = specializeTrain(bwSrc, savedShapes, program.params, maxElements);

      // Each gradient goes straight into its range of the gradient section when a node produces it.
      const produced = new Set(bwd.nodes.flatMap((n) => n.outputs));
      const constGrads: StepPlans['constGrads'] = [];
      const gradCopies: StepPlans['gradCopies'] = [];
      const bwBindings: Record<string, GpuRange> = { ...this.paramRanges };
      for (const v of Object.keys(savedShapes)) bwBindings[v] = bindings[v]!;
      for (const e of program.layout.entries) {
        const g = program.grads[e.name]!;
        const offset = (L + e.offset) * 4;
        if (produced.has(g) && !Object.hasOwn(bwBindings, g)) bwBindings[g] = { buffer: this.flat.buffer, offset, size: Math.max(4, e.size * 4) };
        else if (bwd.initializers[g]) constGrads.push({ offset, data: Float32Array.from(bwd.initializers[g]!.data as ArrayLike<number>) });
        else if (bwBindings[g]) gradCopies.push({ src: { ...bwBindings[g]!, size: e.size * 4 }, offset });
        else throw new InternalError(`the gradient '${g}' of '${e.name}' is neither computed nor constant in the backward graph`);
      }
      forward = await GpuGraphPlan.create(res, fwd, { maxElements, bindings });
      backward = await GpuGraphPlan.create(res, bwd, { maxElements, bindings: bwBindings });
      const dispatches = forward.report().dispatches + backward.report().dispatches;
      return { forward, backward, leases, constGrads, gradCopies, dispatches };
    } catch (e) {
      forward?.dispose();
      backward?.dispose();
      for (const l of leases) memory.release(l);
      throw e;
    }
  }

  private async evalPlanFor(batch: Record<string, HostTensor>): Promise<EvalPlan> {
    const { program } = this;
    const g = program.evaluate;
    const withTarget = program.target in batch;
    const key = `${withTarget ? 'T' : 'P'}|${signature(g, batch)}`;
    const hit = this.evalPlans.get(key);
    if (hit) return hit;
    const outputs = g.outputs.map((o) => o.name).filter((o) => o !== program.loss || withTarget);
    // Without the target only the model outputs are computed (and the target is not an input).
    const pruned = cloneGraph(g);
    pruned.outputs = pruned.outputs.filter((o) => outputs.includes(o.name));
    removeDeadCode(pruned);
    const read = new Set(pruned.nodes.flatMap((n) => n.inputs));
    pruned.inputs = pruned.inputs.filter((i) => i.name in batch || read.has(i.name) || outputs.includes(i.name));
    for (const i of pruned.inputs) {
      if (!(i.name in batch)) throw new InvalidArgumentError(`Evaluation needs input '${i.name}', which was not fed.`, { input: i.name });
    }
    const spec = specializeTrain(pruned, shapesOf(pruned, batch), program.params, this.opts.maxElements);
    const plan = await GpuGraphPlan.create(this.res, spec, { maxElements: this.opts.maxElements, bindings: this.paramRanges });
    const entry = { plan, outputs, graph: spec };
    this.evalPlans.set(key, entry);
    if (this.evalPlans.size > MAX_SHAPES) {
      const [oldest, p] = this.evalPlans.entries().next().value as [string, EvalPlan];
      this.evalPlans.delete(oldest);
      p.plan.dispose();
    }
    return entry;
  }

  /** One submit of `plan`, reading back `outputs`. */
  private async readOutputs(plan: GpuGraphPlan, g: Graph, outputs: string[], feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
    const { ctx, memory } = this.res;
    const result: Record<string, HostTensor> = {};
    const reads: { name: string; finish: () => Promise<Uint8Array> }[] = [];
    await ctx.scoped('evaluating the model', () => {
      const encoder = ctx.device.createCommandEncoder({ label: 'edgekit-train-evaluate' });
      plan.encode(encoder);
      for (const name of outputs) {
        if (feeds[name]) result[name] = feeds[name]!;
        else if (g.initializers[name]) result[name] = g.initializers[name]!;
        else {
          const r = plan.rangeOf(name);
          const info = g.values[name]!;
          if (!r) throw new InternalError(`output '${name}' has no buffer`);
          reads.push({ name, finish: memory.encodeReadback(encoder, r.buffer, r.offset, storageBytes(storageFor(info.dtype, ctx.hasF16, false), sizeOf(info.shape as number[]))) });
        }
      }
      ctx.device.queue.submit([encoder.finish()]);
    });
    const bytes = await Promise.all(reads.map((r) => r.finish()));
    const late = ctx.takeUncapturedError();
    if (late) throw late;
    reads.forEach((r, i) => {
      const info = g.values[r.name]!;
      result[r.name] = decodeFromGpu(bytes[i]!, storageFor(info.dtype, ctx.hasF16, false), info.dtype, info.shape as number[]);
    });
    return result;
  }
}

function disposeStepPlans(res: GpuResources, p: StepPlans): void {
  p.forward.dispose();
  p.backward.dispose();
  for (const l of p.leases) res.memory.release(l);
}

/** Shapes of the graph inputs present in `feeds`, checked for dtype. */
function shapesOf(g: Graph, feeds: Record<string, HostTensor>): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const i of g.inputs) {
    const t = feeds[i.name];
    if (!t) continue;
    if (t.dtype !== i.dtype) throw new DTypeError(`Input '${i.name}' must be ${i.dtype}, got ${t.dtype}.`, { input: i.name });
    out[i.name] = [...t.shape];
  }
  return out;
}

function signature(g: Graph, feeds: Record<string, HostTensor>): string {
  return g.inputs.map((i) => `${i.name}:${feeds[i.name] ? feeds[i.name]!.shape.join('x') : '-'}`).join('|');
}

/**
 * A training graph specialized to concrete input shapes (ir/passes specialize(), with the training schemas): the
 * trainable parameters become graph inputs first, so folding never turns an expression of a weight into a
 * constant, and the plan binds them to the flat buffer.
 */
export function specializeTrain(src: Graph, inputShapes: Record<string, readonly number[]>, params: readonly string[], maxElements?: number): Graph {
  let g = cloneGraph(src);
  for (const p of params) {
    const t = g.initializers[p];
    if (!t) continue;
    delete g.initializers[p];
    g.inputs.push({ name: p, dtype: t.dtype, shape: [...t.shape] });
  }
  g.inputs = g.inputs.map((i) => (inputShapes[i.name] ? { ...i, shape: [...inputShapes[i.name]!] } : i));
  g = inferTrainShapes(validateAndSort(g));
  for (let round = 0; round < 4; round++) {
    if (!foldConstants(g, maxElements)) break;
    g = inferTrainShapes(g);
  }
  removeDeadCode(g);
  g = inferTrainShapes(g);
  for (const o of g.outputs) {
    const info = g.values[o.name];
    if (!info?.shape || info.shape.some((d) => typeof d !== 'number')) {
      throw new InvalidArgumentError(`'${o.name}' has no concrete shape for these inputs; feed every input of graph '${g.name}' with concrete shapes.`);
    }
  }
  return g;
}
