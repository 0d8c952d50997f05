import { DeviceError, DTypeError, EdgeKitError, InternalError, OutOfMemoryError, ShapeError, UnsupportedOpError, type UnsupportedNode } from '../../errors.js';
import type { Graph, Node } from '../../ir/graph.js';
import { planMemory, type MemoryPlan } from '../../ir/plan.js';
import { isConcrete } from '../../ir/shape.js';
import { DEFAULT_MAX_ELEMENTS, type HostTensor } from '../../ir/tensor.js';
import { validateAndSort } from '../../ir/validate.js';
import { inferTrainShapes } from '../../train/infer.js';
import type { GpuContext } from './device.js';
import { fuseForGpu } from './fusion.js';
import { gpuKernelFor } from './kernels/index.js';
import { checkLabels, labelChecks, type LabelCheck } from './label-check.js';
import { GpuMemory, UNIFORM_USAGE, type GpuBufferLease } from './memory.js';
import { PipelineCache } from './pipeline-cache.js';
import { GpuUnsupported, sizeOfShape, type GpuTensorInfo, type KernelEnv, type ProgramCall, type ProgramSpec } from './program.js';
import { decodeFromGpu, encodeForGpu, storageBytes, storageFor, type StorageType } from './storage.js';
import { packUniforms } from './wgsl/builder.js';
import type { GpuSharedBuffers } from './shared-buffers.js';
import type { GpuWeightStore } from './weights.js';

/**
 * The executor: a specialized graph (concrete shapes) becomes a GpuGraphPlan once: kernels planned, intermediates
 * placed in ONE arena buffer by the static memory plan (runtime/ir/plan.ts) (with GpuPlanOptions.shared, the
 * session's arena, shared by all its plans, as are the graph inputs' and outputs' buffers), uniforms packed into one buffer,
 * pipelines compiled ahead, bind groups created. A run then writes the inputs, encodes every dispatch into one
 * command encoder, submits once, and reads back only the requested outputs.
 */

/** The per-device memory manager and pipeline cache, shared by every plan on that device. */
export interface GpuResources {
  ctx: GpuContext;
  memory: GpuMemory;
  pipelines: PipelineCache;
}

const resources = new WeakMap<GpuContext, GpuResources>();
export function gpuResources(ctx: GpuContext): GpuResources {
  let r = resources.get(ctx);
  if (!r) resources.set(ctx, (r = { ctx, memory: new GpuMemory(ctx), pipelines: new PipelineCache(ctx) }));
  return r;
}

/** A byte range of a GPU buffer. */
export interface GpuRange {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}
type Range = GpuRange;

/** A tensor already in a GPU buffer, in the storage form of storage.ts. */
export interface GpuTensorRef {
  buffer: GPUBuffer;
  offset: number;
  storage: StorageType;
  dtype: HostTensor['dtype'];
  shape: readonly number[];
}

type Action =
  | {
      kind: 'dispatch';
      pipeline: GPUComputePipeline;
      /** Undefined while an entry is a lazy input/output slot (see GpuGraphPlan.lazy): made per run. */
      bindGroup: GPUBindGroup | undefined;
      /** The bind group's entries, rebound per run when a fed input or a kept output lives in the caller's buffer. */
      entries: GPUBindGroupEntry[];
      workgroups: [number, number, number];
      node: Node;
      key: string;
    }
  | { kind: 'copy'; src: Range; dst: Range };

/** GPUBufferUsage.QUERY_RESOLVE | COPY_SRC (the numbers: Node has no GPUBufferUsage global). */
const QUERY_RESOLVE_USAGE = 0x0200 | 0x0004;
/** GPUBufferUsage.STORAGE. */
const STORAGE_BIT = 0x0080;

/** One dispatch of a profiled run (GpuGraphPlan.profile). */
export interface GpuDispatchTiming {
  node: string;
  op: string;
  kernel: string;
  workgroups: [number, number, number];
  /** GPU time between the dispatch's pass start and end, in nanoseconds. */
  ns: number;
}

/** Matrix-kernel weight slots: (op, input index) whose initializer may be kept in half precision. */
const HALF_WEIGHT_SLOTS: Readonly<Record<string, readonly number[]>> = { Conv: [1], ConvTranspose: [1], Gemm: [0, 1], MatMul: [0, 1] };
/** Smaller weights stay float32: they cost little memory and may be scalars with meaning (epsilons, scales). */
const HALF_WEIGHT_MIN_ELEMENTS = 256;
const F16_MAX = 65504;

/**
 * The float32 initializers that weightPrecision 'float16' stores in half precision: read only by matrix kernels
 * (Conv, ConvTranspose, Gemm, MatMul) as a weight operand, at least HALF_WEIGHT_MIN_ELEMENTS elements, every value
 * within float16's finite range (a weight that would overflow stays float32). Computation stays float32.
 */
export function halfPrecisionWeights(g: Graph, bound: Readonly<Record<string, unknown>> = {}): Set<string> {
  const slots = new Map<string, boolean>();
  for (const n of g.nodes) {
    n.inputs.forEach((v, i) => {
      if (!v || !g.initializers[v] || Object.hasOwn(bound, v)) return;
      const ok = n.domain === '' && (HALF_WEIGHT_SLOTS[n.op]?.includes(i) ?? false);
      slots.set(v, (slots.get(v) ?? true) && ok);
    });
  }
  const out = new Set<string>();
  for (const [v, ok] of slots) {
    const t = g.initializers[v]!;
    if (!ok || t.dtype !== 'float32' || t.data.length < HALF_WEIGHT_MIN_ELEMENTS) continue;
    let inRange = true;
    for (const x of t.data as Float32Array) if (!(Math.abs(x) <= F16_MAX)) { inRange = false; break; }
    if (inRange) out.add(v);
  }
  return out;
}

export interface GpuPlanOptions {
  maxElements?: number;
  /**
   * 'float16' keeps large float32 weights of matrix kernels in half precision on the GPU (half their memory; values
   * rounded to float16, about 3 significant digits; arithmetic stays float32): see halfPrecisionWeights.
   * Default 'float32'.
   */
  weightPrecision?: 'float32' | 'float16';
  /** Overrides GpuContext.cpuAdapter for kernel choice (tests cover both kernel families on one device). */
  cpuAdapter?: boolean;
  /** Where initializers live: a store shared by the model's plans uploads each weight once. Default: the plan's own buffers. */
  weights?: GpuWeightStore;
  /** The model's default-domain opset, named in UnsupportedOpError. */
  opset?: number;
  /** Fuse activations and MatMul + Add into the matrix kernels' epilogues (fusion.ts). Default true. */
  fuse?: boolean;
  /**
   * Externally owned tensors (the GPU trainer's flat parameter buffer, activations kept between its forward and
   * backward plans): graph inputs, initializers or outputs named here live in the given byte ranges instead of
   * buffers of the plan. The plan never allocates, uploads (except a fed input) or frees them, kernels see them as
   * run-time tensors (an initializer's host value is not offered for plan-time use), and a bound graph input that
   * is not fed is taken as already written. Offsets must honour minStorageBufferOffsetAlignment; a bound float16
   * value uses the writable storage form (f32 without shader-f16), so every plan binding it agrees.
   */
  bindings?: Readonly<Record<string, GpuRange>>;
  /**
   * Buffers shared with the other plans of a session (shared-buffers.ts): the activation arena, the graph inputs' and
   * outputs' own buffers and kernel scratch go into its slots instead of buffers of the plan. Default: the plan's own.
   */
  shared?: GpuSharedBuffers;
}

export interface GpuPlanReport {
  dispatches: number;
  /** Bytes of the intermediate arena and the liveness lower bound it is compared with. */
  arenaBytes: number;
  lowerBound: number;
  weightBytes: number;
  pipelines: string[];
  /** Each planned node (after fusion) with the pipelines its dispatches use and its output storage. */
  nodes: { name: string; op: string; kernels: string[]; storage: string[] }[];
  /** What the plan needs of the device: its largest binding and most storage buffers in one shader. */
  requiredLimits: { maxStorageBufferBindingSize: number; maxStorageBuffersPerShaderStage: number };
  /** Optional features the plan's pipelines use (shader-f16 when f16 storage is native). */
  features: string[];
  /** The plan's fused nodes (fusion.ts): each one's kind and the model's nodes it replaces. */
  fusions: GpuFusion[];
}

export interface GpuFusion {
  /** What was fused: 'LayerNorm', 'SkipLayerNorm', 'Gelu', 'QKV', 'MatMul+Bias+Gelu'... (docs/fusion.md). */
  kind: string;
  /** The fused node in the plan's graph. */
  node: string;
  /** The model's nodes it stands for. */
  nodes: string[];
}

/** The fused nodes of a planned graph: those carrying attrs.fusion and attrs.fused_from. */
export function fusionsOf(g: Graph): GpuFusion[] {
  const out: GpuFusion[] = [];
  for (const n of g.nodes) {
    const kind = n.attrs.fusion;
    const from = n.attrs.fused_from;
    if (kind?.type === 'string' && from?.type === 'strings') out.push({ kind: kind.value, node: n.name, nodes: [...from.value] });
  }
  return out;
}

const align = (n: number, a: number) => Math.ceil(n / a) * a;

export class GpuGraphPlan {
  private readonly leases: GpuBufferLease[] = [];
  private readonly ranges = new Map<string, Range>();
  private readonly storage = new Map<string, StorageType>();
  private actions: Action[] = [];
  private memPlan: MemoryPlan | undefined;
  private weightBytes = 0;
  private weights: GpuWeightStore | undefined;
  private programKeys = new Set<string>();
  private nodeKernels = new Map<string, { name: string; op: string; kernels: Set<string>; storage: string[] }>();
  private largestBinding = 0;
  private mostBindings = 0;
  private disposed = false;
  private readonly bound: Readonly<Record<string, GpuRange>>;
  /** Class-index targets checked on the host before upload (label-check.ts). */
  private labels: LabelCheck[] = [];
  private shared: GpuSharedBuffers | undefined;
  /** Each shared slot the plan uses, with the buffer its bind groups and ranges point at now. */
  private readonly sharedUse = new Map<string, GPUBuffer>();
  /** Slots this plan's build grew (dropped again if the build's out-of-memory scope fails). */
  private readonly sharedGrown: string[] = [];
  /**
   * With shared buffers, each graph input's and output's range points at a stand-in key, not a buffer: every run
   * swaps it for the caller's buffer (a fed GPU tensor bound as it is, a kept output written in place) or, only when
   * the run needs one (a host feed, a copy, a readback), for the session's shared slot `in:<name>` / `out:<name>`,
   * made or grown then. A decode loop that feeds its past and keeps its present on the GPU never makes those slots,
   * so no buffer sits idle for them. Dispatches that bind a stand-in get their bind group per run (rebound()).
   */
  private readonly lazy = new Map<GPUBuffer, { slot: string; bytes: number }>();

  private constructor(
    private readonly res: GpuResources,
    readonly graph: Graph,
    bindings: Readonly<Record<string, GpuRange>> = {},
  ) {
    this.bound = bindings;
  }

  /** Plans `graph` (sorted, inferred, concrete: see ir/passes specialize()) for the device. */
  static async create(res: GpuResources, graph: Graph, opts: GpuPlanOptions = {}): Promise<GpuGraphPlan> {
    res.ctx.assertAlive();
    const plan = new GpuGraphPlan(res, opts.fuse === false ? graph : fuseForGpu(graph, { bound: opts.bindings }), opts.bindings);
    plan.weights = opts.weights;
    plan.shared = opts.shared;
    plan.labels = labelChecks(plan.graph);
    // A validation error while planning (a bind group that does not match its pipeline) is a bug in a kernel:
    // caught here so it is reported against this plan, not by whichever run happens next.
    const device = res.ctx.device;
    // One out-of-memory scope around every allocation of the plan: buffers are leased unchecked inside it (a scope
    // per buffer costs a device round trip each, which dominated load time), and a failure fails the whole plan.
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    let failure: unknown;
    try {
      await plan.build(opts.maxElements ?? DEFAULT_MAX_ELEMENTS, opts.opset ?? 0, opts.cpuAdapter ?? res.ctx.cpuAdapter, opts.weightPrecision ?? 'float32');
    } catch (e) {
      failure = e;
    }
    const invalid = await res.ctx.guard(device.popErrorScope()).catch((e: unknown) => {
      failure ??= e;
      return null;
    });
    const oom = await res.ctx.guard(device.popErrorScope()).catch((e: unknown) => {
      failure ??= e;
      return null;
    });
    if (oom) {
      failure = new OutOfMemoryError(`The GPU ran out of memory planning graph '${graph.name}': ${oom.message}. Use a smaller model, batch or input.`);
    } else if (!failure && invalid) failure = new InternalError(`WebGPU rejected the plan of graph '${graph.name}': ${invalid.message}`);
    if (failure) {
      // After an out-of-memory report any of the plan's buffers may be invalid: destroyed, never pooled; so may the
      // shared slots this build grew.
      for (const key of plan.sharedGrown) {
        if (oom) opts.shared?.drop(key);
        else opts.shared?.commit(key);
      }
      plan.dispose(oom !== null && oom !== undefined);
      throw failure;
    }
    for (const key of plan.sharedGrown) opts.shared?.commit(key);
    return plan;
  }

  private info(name: string): GpuTensorInfo {
    const v = this.graph.values[name];
    if (!v || !isConcrete(v.shape)) throw new InternalError(`GPU planning needs concrete shapes; '${name}' has none (specialize the graph first).`);
    const value = Object.hasOwn(this.bound, name) ? undefined : this.graph.initializers[name];
    return { dtype: v.dtype, shape: v.shape, storage: this.storage.get(name)!, value };
  }

  private async build(maxElements: number, opset: number, cpuAdapter: boolean, weightPrecision: 'float32' | 'float16'): Promise<void> {
    const { ctx, memory, pipelines } = this.res;
    const g = this.graph;
    const env: KernelEnv = { f16: ctx.hasF16, limits: ctx.limits, maxElements, cpuAdapter, packedDot: ctx.wgslFeatures.has('packed_4x8_integer_dot_product'), subgroups: ctx.features.has('subgroups') };
    const unsupported: UnsupportedNode[] = [];
    const readOnly = new Set([...g.inputs.map((i) => i.name), ...Object.keys(g.initializers)].filter((v) => !Object.hasOwn(this.bound, v)));
    const half = weightPrecision === 'float16' ? halfPrecisionWeights(g, this.bound) : new Set<string>();

    // 1. Storage of every value, and each node's kernel plan.
    const nodePlans: { node: Node; calls: ProgramCall[]; scratch: GpuTensorInfo[]; constants: HostTensor[]; shared: Set<number>; hostInputs: Set<number> }[] = [];
    for (const node of g.nodes) {
      const fail = (reason: string) => unsupported.push({ op: node.op, domain: node.domain, opset: node.domain === '' ? opset : 1, node: node.name, reason });
      const kernel = gpuKernelFor(node);
      if (!kernel) {
        fail('no WebGPU kernel');
        continue;
      }
      try {
        for (const v of [...node.inputs, ...node.outputs]) {
          if (!v || this.storage.has(v)) continue;
          const info = g.values[v];
          if (!info) throw new InternalError(`value '${v}' has no inferred type`);
          this.storage.set(v, storageFor(half.has(v) ? 'float16' : info.dtype, ctx.hasF16, readOnly.has(v)));
        }
        const inputs = node.inputs.map((v) => (v ? this.info(v) : undefined));
        const outputs = node.outputs.map((v) => (v ? this.info(v) : undefined));
        const kp = kernel.plan(node, inputs, outputs, env);
        nodePlans.push({ node, calls: kp.calls, scratch: kp.scratch ?? [], constants: kp.constants ?? [], shared: new Set(kp.sharedConstants ?? []), hostInputs: new Set([...(kernel.hostInputs ?? []), ...(kp.unboundInputs ?? [])]) });
      } catch (e) {
        if (e instanceof GpuUnsupported) fail(e.reason);
        else if (e instanceof DTypeError) fail(e.message);
        else if (e instanceof EdgeKitError) {
          e.message = `${node.op} node '${node.name}': ${e.message}`;
          throw e;
        } else throw e;
      }
    }
    if (unsupported.length) {
      throw new UnsupportedOpError(unsupported, 'These nodes have no WebGPU kernel for their types or attributes; use the CPU backend for this model.');
    }

    // 2. The arena: every node output except graph outputs (those get their own buffers, read back or kept).
    const outputs = new Set(g.outputs.map((o) => o.name));
    const remapped: Graph = { ...g, values: {} };
    for (const [k, v] of Object.entries(g.values)) {
      const s = this.storage.get(k);
      remapped.values[k] = { ...v, dtype: s === 'f16' ? 'float16' : 'float32' };
    }
    const storageAlign = ctx.limits.minStorageBufferOffsetAlignment;
    this.memPlan = planMemory(remapped, { alignment: storageAlign, exclude: new Set([...outputs, ...Object.keys(this.bound)]) });
    const arena = this.memPlan.arenaBytes > 0 ? await this.lease(this.memPlan.arenaBytes, 'edgekit-arena', undefined, 'arena') : undefined;
    for (const pv of Object.values(this.memPlan.values)) {
      this.ranges.set(pv.name, { buffer: arena!.buffer, offset: pv.offset, size: pv.bytes });
    }

    // 3. Own buffers: graph inputs, graph outputs, the initializers kernels bind (uploaded now); external bindings.
    for (const [name, r] of Object.entries(this.bound)) {
      if (r.offset % storageAlign) throw new InternalError(`binding '${name}' at offset ${r.offset} is not ${storageAlign}-byte aligned`);
      this.ranges.set(name, r);
    }
    const bound = new Set<string>();
    for (const np of nodePlans) np.node.inputs.forEach((v, i) => v && !np.hostInputs.has(i) && bound.add(v));
    for (const name of [...g.inputs.map((i) => i.name), ...outputs, ...bound]) {
      if (this.ranges.has(name) || !this.storage.has(name)) continue;
      const t = this.info(name);
      const bytes = Math.max(4, align(storageBytes(t.storage, sizeOfShape(t.shape)), 4));
      const init = g.initializers[name];
      if (init && this.weights) {
        this.ranges.set(name, await this.weights.get(init, t.storage, `edgekit-${name}`));
        this.weightBytes += bytes;
        continue;
      }
      // Graph inputs and outputs live only inside a run: with shared buffers, a stand-in resolved per run (lazy).
      if (!init && this.shared) {
        const key = { label: `edgekit-lazy-${name}` } as unknown as GPUBuffer;
        this.lazy.set(key, { slot: `${outputs.has(name) ? 'out' : 'in'}:${name}`, bytes });
        this.ranges.set(name, { buffer: key, offset: 0, size: bytes });
        continue;
      }
      const lease = await this.lease(bytes, `edgekit-${name}`);
      this.ranges.set(name, { buffer: lease.buffer, offset: 0, size: bytes });
      if (init) {
        memory.upload(lease.buffer, 0, encodeForGpu(init, t.storage));
        this.weightBytes += bytes;
      }
    }

    // 4. Uniforms of every call in one buffer; pipelines compiled in parallel.
    const calls: { call: ProgramCall; np: (typeof nodePlans)[number]; scratch: Range[]; constants: Range[]; run: ReturnType<ProgramSpec['run']> }[] = [];
    for (const np of nodePlans) {
      const scratch: Range[] = [];
      for (const s of np.scratch) {
        const bytes = Math.max(16, align(storageBytes(s.storage, sizeOfShape(s.shape)), 4));
        const lease = await this.lease(bytes, `edgekit-scratch-${np.node.name}`, undefined, `scratch:${np.node.name}:${scratch.length}`);
        scratch.push({ buffer: lease.buffer, offset: 0, size: bytes });
      }
      const constants: Range[] = [];
      for (const [k, t] of np.constants.entries()) {
        const storage = storageFor(t.dtype, ctx.hasF16, true);
        if (this.weights && np.shared.has(k)) {
          constants.push(await this.weights.get(t, storage, `edgekit-table-${np.node.name}`));
          continue;
        }
        const bytes = Math.max(16, align(storageBytes(storage, sizeOfShape(t.shape)), 4));
        const lease = await this.lease(bytes, `edgekit-table-${np.node.name}`);
        memory.upload(lease.buffer, 0, encodeForGpu(t, storage));
        this.weightBytes += bytes;
        constants.push({ buffer: lease.buffer, offset: 0, size: bytes });
      }
      for (const call of np.calls) {
        const run = call.program.run();
        if (run.workgroups.some((w) => w === 0)) continue; // an empty tensor: nothing to compute
        calls.push({ call, np, scratch, constants, run });
      }
    }
    const uniformAlign = ctx.limits.minUniformBufferOffsetAlignment;
    const packed = calls.map((c) => packUniforms(c.call.program.uniforms, c.run.uniforms));
    const offsets: number[] = [];
    let total = 0;
    for (const p of packed) {
      offsets.push(total);
      total = align(total + p.byteLength, uniformAlign);
    }
    const uniformLease = total > 0 ? await this.lease(total, 'edgekit-uniforms', UNIFORM_USAGE) : undefined;
    packed.forEach((p, i) => memory.upload(uniformLease!.buffer, offsets[i]!, new Uint8Array(p)));
    await pipelines.prepare(calls.map((c) => c.call.program));

    // 5. Bind groups, and copies for a value bound twice in one dispatch (writable bindings must not alias).
    for (const [i, { call, np, scratch, constants, run }] of calls.entries()) {
      const pipeline = pipelines.getReady(call.program);
      this.programKeys.add(call.program.key);
      let nk = this.nodeKernels.get(np.node.name);
      if (!nk) this.nodeKernels.set(np.node.name, (nk = { name: np.node.name, op: np.node.op, kernels: new Set(), storage: np.node.outputs.map((o) => (o ? this.storage.get(o) ?? '' : '')) }));
      nk.kernels.add(call.program.key);
      this.mostBindings = Math.max(this.mostBindings, call.tensors.length);
      const used: Range[] = [];
      const entries: GPUBindGroupEntry[] = [];
      for (const [b, slot] of call.tensors.entries()) {
        let r: Range | undefined;
        if ('input' in slot) r = this.ranges.get(np.node.inputs[slot.input]!);
        else if ('output' in slot) r = this.ranges.get(np.node.outputs[slot.output]!);
        else if ('scratch' in slot) r = scratch[slot.scratch];
        else r = constants[slot.constant];
        if (!r) throw new InternalError(`binding ${b} of '${call.program.key}' at node '${np.node.name}' has no buffer`);
        const maxBinding = ctx.limits.maxStorageBufferBindingSize;
        if (r.size > maxBinding) {
          throw new DeviceError(
            'LIMIT_EXCEEDED',
            `Node '${np.node.name}' (${np.node.op}) binds a tensor of ${r.size} bytes, more than this device's maxStorageBufferBindingSize (${maxBinding}). ` +
              'Use a smaller input or batch, or the CPU backend.',
            { limit: 'maxStorageBufferBindingSize', needed: r.size, available: maxBinding },
          );
        }
        this.largestBinding = Math.max(this.largestBinding, r.size);
        if (used.some((o) => o.buffer === r!.buffer && o.offset < r!.offset + r!.size && r!.offset < o.offset + o.size)) {
          const dup = await this.lease(r.size, 'edgekit-dup');
          const dst = { buffer: dup.buffer, offset: 0, size: r.size };
          this.actions.push({ kind: 'copy', src: r, dst });
          r = dst;
        }
        used.push(r);
        entries.push({ binding: b, resource: { buffer: r.buffer, offset: r.offset, size: r.size } });
      }
      const uSize = packed[i]!.byteLength;
      entries.push({ binding: call.tensors.length, resource: { buffer: uniformLease!.buffer, offset: offsets[i]!, size: uSize } });
      const lazy = entries.some((e) => this.lazy.has((e.resource as GPUBufferBinding).buffer));
      const bindGroup = lazy ? undefined : ctx.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries, label: np.node.name });
      this.actions.push({ kind: 'dispatch', pipeline, bindGroup, entries, workgroups: run.workgroups, node: np.node, key: call.program.key });
    }
  }

  /**
   * A buffer for the plan (inside create()'s out-of-memory scope, unchecked). With `slot` and shared buffers, the
   * session's shared slot of that name instead (grown if needed; the plan does not own it).
   */
  private async lease(bytes: number, label: string, usage?: number, slot?: string): Promise<{ buffer: GPUBuffer }> {
    if (slot && this.shared && usage === undefined) {
      const { buffer, grown } = this.shared.ensure(slot, bytes);
      if (grown) this.sharedGrown.push(slot);
      this.sharedUse.set(slot, buffer);
      return { buffer };
    }
    const l = this.res.memory.acquire(bytes, usage, label);
    this.leases.push(l);
    return l;
  }

  /**
   * Points the plan at its shared slots' current buffers: another plan of the session may have grown a slot since
   * this plan last ran (shared-buffers.ts). Bind groups and copies that used a replaced buffer are remade once.
   */
  private syncShared(): void {
    if (!this.shared) return;
    const moved = new Map<GPUBuffer, Range>();
    for (const [key, was] of this.sharedUse) {
      const now = this.shared.buffer(key);
      if (!now) throw new InternalError(`shared GPU buffer '${key}' is gone (its session was released)`);
      if (now === was) continue;
      moved.set(was, { buffer: now, offset: 0, size: now.size });
      this.sharedUse.set(key, now);
    }
    if (!moved.size) return;
    this.actions = this.rebound(moved);
    for (const [name, r] of this.ranges) {
      const m = moved.get(r.buffer);
      if (m) this.ranges.set(name, { ...r, buffer: m.buffer });
    }
  }

  /** Every buffer the plan writes: its own and its shared slots'. */
  private planBuffers(): Set<GPUBuffer> {
    return new Set([...this.leases.map((l) => l.buffer), ...this.sharedUse.values(), ...this.lazy.keys()]);
  }

  /**
   * Every lazy input/output stand-in resolved to its shared slot (made or grown now, unchecked: callers outside a
   * run's error scope are the profiler and the trainer's paths, which make no lazy stand-ins).
   */
  private slotSwap(): Map<GPUBuffer, Range> {
    const swap = new Map<GPUBuffer, Range>();
    for (const [key, { slot, bytes }] of this.lazy) {
      swap.set(key, { buffer: this.shared!.ensure(slot, bytes).buffer, offset: 0, size: bytes });
      this.shared!.commit(slot);
    }
    return swap;
  }

  report(): GpuPlanReport {
    return {
      dispatches: this.actions.filter((a) => a.kind === 'dispatch').length,
      arenaBytes: this.memPlan?.arenaBytes ?? 0,
      lowerBound: this.memPlan?.lowerBound ?? 0,
      weightBytes: this.weightBytes,
      pipelines: [...this.programKeys],
      nodes: [...this.nodeKernels.values()].map((n) => ({ name: n.name, op: n.op, kernels: [...n.kernels], storage: n.storage })),
      requiredLimits: { maxStorageBufferBindingSize: this.largestBinding, maxStorageBuffersPerShaderStage: this.mostBindings },
      features: [...this.storage.values()].includes('f16') ? ['shader-f16'] : [],
      fusions: fusionsOf(this.graph),
    };
  }

  // ---- Encoding into a caller's submit (the GPU trainer chains forward, backward and its step in one). ----

  /**
   * Writes the fed graph inputs into their buffers (queue writes, ordered before the next submit). A graph input
   * bound externally (GpuPlanOptions.bindings) may be left unfed: its range is taken as already written.
   */
  writeInputs(feeds: Readonly<Record<string, HostTensor>>): void {
    if (this.disposed) throw new InternalError('writeInputs() on a disposed GPU plan');
    this.res.ctx.assertAlive();
    checkLabels(this.labels, feeds);
    this.syncShared();
    for (const i of this.graph.inputs) {
      const t = feeds[i.name];
      const want = this.info(i.name);
      if (!t) {
        if (Object.hasOwn(this.bound, i.name)) continue;
        throw new ShapeError(`Input '${i.name}' was not provided.`);
      }
      if (t.dtype !== want.dtype || t.shape.length !== want.shape.length || t.shape.some((d, k) => d !== want.shape[k])) {
        throw new ShapeError(`Input '${i.name}' is ${t.dtype}[${t.shape.join(', ')}], but this plan was made for ${want.dtype}[${want.shape.join(', ')}].`);
      }
      const r = this.rangeOf(i.name);
      if (r) this.res.memory.upload(r.buffer, r.offset, encodeForGpu(t, want.storage));
    }
  }

  /** Records every dispatch (and copy) of the plan into `encoder`, without submitting. */
  encode(encoder: GPUCommandEncoder, actions?: readonly Action[]): void {
    if (this.disposed) throw new InternalError('encode() on a disposed GPU plan');
    if (!actions) {
      this.syncShared();
      actions = this.lazy.size ? this.rebound(this.slotSwap()) : this.actions;
    }
    let pass: GPUComputePassEncoder | undefined;
    for (const a of actions) {
      if (a.kind === 'copy') {
        pass?.end();
        pass = undefined;
        encoder.copyBufferToBuffer(a.src.buffer, a.src.offset, a.dst.buffer, a.dst.offset, a.src.size);
        continue;
      }
      pass ??= encoder.beginComputePass();
      if (!a.bindGroup) throw new InternalError(`dispatch of '${a.node.name}' has no bind group (an unresolved input or output)`);
      pass.setPipeline(a.pipeline);
      pass.setBindGroup(0, a.bindGroup);
      pass.dispatchWorkgroups(...a.workgroups);
    }
    pass?.end();
  }

  /**
   * One profiled run: every dispatch in its own compute pass with GPU timestamps at its start and end (needs the
   * 'timestamp-query' feature; throws MISSING_FEATURE without it). Returns each dispatch's GPU time in order, with
   * its node and kernel key. Separate passes cost a little extra, so the sum is near, not equal to, a normal run.
   */
  async profile(feeds: Readonly<Record<string, HostTensor>>): Promise<GpuDispatchTiming[]> {
    if (this.disposed) throw new InternalError('profile() on a disposed GPU plan');
    const { ctx, memory } = this.res;
    ctx.check({}, ['timestamp-query']);
    this.syncShared();
    const actions = this.lazy.size ? this.rebound(this.slotSwap()) : this.actions;
    const dispatches = actions.filter((a) => a.kind === 'dispatch');
    if (!dispatches.length) return [];
    this.writeInputs(feeds);
    const count = dispatches.length * 2;
    let querySet: GPUQuerySet | undefined;
    let resolve: GpuBufferLease | undefined;
    try {
      const timestamps = await ctx.scoped('profiling the model', () => {
        querySet = ctx.device.createQuerySet({ type: 'timestamp', count });
        resolve = memory.acquire(count * 8, QUERY_RESOLVE_USAGE, 'edgekit-profile');
        const encoder = ctx.device.createCommandEncoder();
        let q = 0;
        for (const a of actions) {
          if (a.kind === 'copy') {
            encoder.copyBufferToBuffer(a.src.buffer, a.src.offset, a.dst.buffer, a.dst.offset, a.src.size);
            continue;
          }
          const pass = encoder.beginComputePass({ timestampWrites: { querySet: querySet!, beginningOfPassWriteIndex: q, endOfPassWriteIndex: q + 1 } });
          q += 2;
          pass.setPipeline(a.pipeline);
          pass.setBindGroup(0, a.bindGroup!);
          pass.dispatchWorkgroups(...a.workgroups);
          pass.end();
        }
        encoder.resolveQuerySet(querySet!, 0, count, resolve!.buffer, 0);
        const finish = memory.encodeReadback(encoder, resolve!.buffer, 0, count * 8);
        ctx.device.queue.submit([encoder.finish()]);
        return finish;
      });
      const bytes = await timestamps();
      const ticks = new BigUint64Array(bytes.buffer, bytes.byteOffset, count);
      return dispatches.map((a, i) => ({
        node: a.node.name,
        op: a.node.op,
        kernel: a.key,
        workgroups: [...a.workgroups] as [number, number, number],
        ns: Number(ticks[2 * i + 1]! - ticks[2 * i]!),
      }));
    } finally {
      querySet?.destroy();
      if (resolve) memory.release(resolve);
    }
  }

  /** The buffer range a graph value lives in (undefined for folded constants and values no kernel binds). */
  rangeOf(name: string): GpuRange | undefined {
    this.syncShared();
    const r = this.ranges.get(name);
    const s = r && this.lazy.has(r.buffer) ? this.slotSwap().get(r.buffer) : undefined;
    return s ? { ...s, size: r!.size } : r;
  }

  /** One run: inputs written, every dispatch in one encoder and one submit, `fetch` outputs read back. */
  async run(feeds: Readonly<Record<string, HostTensor>>, fetch: readonly string[] = this.graph.outputs.map((o) => o.name)): Promise<Record<string, HostTensor>> {
    return (await this.execute(feeds, {}, fetch, [])).host;
  }

  /**
   * A run whose feeds may already live on the GPU (`gpuFeeds`: copied buffer-to-buffer inside the run's encoder, no
   * host round trip) and whose `keep` outputs stay on the GPU: each is copied, in the same submit, into a new buffer
   * the caller owns and must hand back with GpuMemory.release (the plan's own output buffers are overwritten by the
   * next run). `fetch` outputs are read back as usual.
   */
  async execute(
    feeds: Readonly<Record<string, HostTensor>>,
    gpuFeeds: Readonly<Record<string, GpuTensorRef>>,
    fetch: readonly string[],
    keep: readonly string[],
  ): Promise<{ host: Record<string, HostTensor>; gpu: Record<string, GpuTensorRef & { lease: GpuBufferLease }> }> {
    if (this.disposed) throw new InternalError('run() on a disposed GPU plan');
    const { ctx, memory } = this.res;
    ctx.assertAlive();
    checkLabels(this.labels, feeds);
    const g = this.graph;
    const copiesIn: { src: Range; dst: Range }[] = [];
    // Zero-copy: a plan buffer (a graph input's or a kept output's own buffer) replaced, for this run, by the
    // caller's range in every binding and copy that uses it.
    const swap = new Map<GPUBuffer, Range>();
    /** A range of the plan as this run sees it (a swapped buffer replaced: a fed tensor, a kept output, a slot). */
    const at = (r: Range): Range => {
      const s = swap.get(r.buffer);
      return s ? { buffer: s.buffer, offset: s.offset + r.offset, size: r.size } : r;
    };
    const storageAlign = ctx.limits.minStorageBufferOffsetAlignment;
    // Host uploads are queued only right before the submit, in the same synchronous stretch (no await between):
    // input buffers may be shared with the session's other plans (shared-buffers.ts), and a run of another plan
    // that got in between would overwrite them before this run's submit reads them.
    const uploads: (() => void)[] = [];
    const feedsOnGpu = new Map<string, HostTensor>();
    for (const i of g.inputs) {
      const gt = gpuFeeds[i.name];
      if (!gt || feeds[i.name] || !this.ranges.has(i.name) || gt.storage === this.info(i.name).storage) continue;
      // Only float16 without shader-f16 differs (written tensors are f32, read-only inputs packed f16x2): the
      // packed form cannot be produced by a buffer copy, so this one input goes through the host (read first, so
      // no await falls between the uploads and the submit).
      feedsOnGpu.set(i.name, decodeFromGpu(await memory.readback(gt.buffer, gt.offset, storageBytes(gt.storage, sizeOfShape(gt.shape))), gt.storage, gt.dtype, [...gt.shape]));
    }
    this.syncShared();
    const planBuffers = this.planBuffers();
    for (const i of g.inputs) {
      const gt = gpuFeeds[i.name];
      const t = feeds[i.name] ?? gt;
      const want = this.info(i.name);
      if (!t) throw new ShapeError(`Input '${i.name}' was not provided.`);
      if (t.dtype !== want.dtype || t.shape.length !== want.shape.length || t.shape.some((d, k) => d !== want.shape[k])) {
        throw new ShapeError(`Input '${i.name}' is ${t.dtype}[${t.shape.join(', ')}], but this plan was made for ${want.dtype}[${want.shape.join(', ')}].`);
      }
      const r = this.ranges.get(i.name);
      if (!r) continue;
      if (gt && !feeds[i.name]) {
        const host = feedsOnGpu.get(i.name);
        if (host) {
          uploads.push(() => memory.upload(at(r).buffer, at(r).offset, encodeForGpu(host, want.storage)));
        } else {
          const src = { buffer: gt.buffer, offset: gt.offset, size: align(storageBytes(gt.storage, sizeOfShape(gt.shape)), 4) };
          if (this.canBindFed(i.name, r, src, storageAlign, planBuffers, swap)) swap.set(r.buffer, { buffer: gt.buffer, offset: gt.offset, size: r.size });
          else copiesIn.push({ src, dst: r });
        }
      } else {
        uploads.push(() => memory.upload(at(r).buffer, at(r).offset, encodeForGpu(t as HostTensor, want.storage)));
      }
    }
    const host: Record<string, HostTensor> = {};
    const gpu: Record<string, GpuTensorRef & { lease: GpuBufferLease }> = {};
    const reads: { name: string; finish: (() => Promise<Uint8Array>) & { discard(): void } }[] = [];
    // Buffers for kept outputs are leased inside the run's out-of-memory scope (ctx.scoped), unchecked: a scope per
    // buffer would cost a device round trip on every run.
    const kept: { name: string; src: Range; lease: GpuBufferLease; info: GpuTensorInfo; inPlace: boolean }[] = [];
    const inputNames = new Set(g.inputs.map((i) => i.name));
    const keptSources = keep.map((name) => {
      const src = this.ranges.get(name);
      if (!src) throw new InternalError(`output '${name}' has no GPU buffer to keep (an input or a folded constant?)`);
      const info = this.info(name);
      // Written in place (into the caller's new buffer) when the value has a whole buffer of its own in the plan.
      const inPlace = !inputNames.has(name) && !Object.hasOwn(this.bound, name) && src.offset === 0 && planBuffers.has(src.buffer) && !swap.has(src.buffer);
      return { name, src: { ...src, size: Math.max(4, align(storageBytes(info.storage, sizeOfShape(info.shape)), 4)) }, info, inPlace };
    });
    let copiedIn = 0;
    let copiedOut = 0;
    const grownSlots: string[] = [];
    await ctx.scoped('running the model', () => {
      for (const k of keptSources) {
        const lease = memory.acquire(k.src.size, undefined, `edgekit-out-${k.name}`);
        kept.push({ ...k, lease });
        if (k.inPlace) swap.set(k.src.buffer, { buffer: lease.buffer, offset: 0, size: k.src.size });
      }
      // The lazy inputs and outputs this run does not bind to the caller's buffers need their shared slots now.
      for (const [key, { slot, bytes }] of this.lazy) {
        if (swap.has(key)) continue;
        const { buffer, grown } = this.shared!.ensure(slot, bytes);
        if (grown) grownSlots.push(slot);
        swap.set(key, { buffer, offset: 0, size: bytes });
      }
      // Queued right before the submit, with no await since (see `uploads`).
      for (const u of uploads) u();
      const encoder = ctx.device.createCommandEncoder();
      for (const c of copiesIn) {
        const dst = at(c.dst);
        encoder.copyBufferToBuffer(c.src.buffer, c.src.offset, dst.buffer, dst.offset, c.src.size);
        copiedIn += c.src.size;
      }
      this.encode(encoder, swap.size ? this.rebound(swap) : this.actions);
      for (const k of kept) {
        if (k.inPlace) continue;
        const src = at(k.src);
        encoder.copyBufferToBuffer(src.buffer, src.offset, k.lease.buffer, 0, k.src.size);
        copiedOut += k.src.size;
      }
      for (const name of fetch) {
        if (feeds[name]) host[name] = feeds[name]!;
        else if (g.initializers[name]) host[name] = g.initializers[name]!;
        else {
          const own = this.ranges.get(name);
          const r = own && swap.has(own.buffer) ? { ...swap.get(own.buffer)!, offset: swap.get(own.buffer)!.offset + own.offset } : own;
          const t = this.info(name);
          if (!r) throw new InternalError(`output '${name}' has no buffer`);
          reads.push({ name, finish: memory.encodeReadback(encoder, r.buffer, r.offset, storageBytes(t.storage, sizeOfShape(t.shape))) });
        }
      }
      ctx.device.queue.submit([encoder.finish()]);
      memory.countCopy(copiedIn, copiedOut);
    }).then(() => {
      for (const slot of grownSlots) this.shared!.commit(slot);
    }).catch((e: unknown) => {
      // The run failed inside its scope (out of memory, say): its staging and kept-output buffers are never read;
      // after an out-of-memory report they may be invalid, so they are destroyed rather than pooled.
      const oom = e instanceof OutOfMemoryError;
      for (const k of kept) {
        if (oom) memory.discard(k.lease);
        else memory.release(k.lease);
      }
      for (const slot of grownSlots) {
        if (oom) this.shared!.drop(slot);
        else this.shared!.commit(slot);
      }
      for (const r of reads) r.finish.discard();
      throw e;
    });
    let bytes: Uint8Array[];
    try {
      bytes = await Promise.all(reads.map((r) => r.finish()));
      const late = ctx.takeUncapturedError();
      if (late) throw late;
    } catch (e) {
      for (const k of kept) memory.release(k.lease);
      throw e;
    }
    reads.forEach((r, i) => {
      const t = this.info(r.name);
      host[r.name] = decodeFromGpu(bytes[i]!, t.storage, t.dtype, t.shape);
    });
    for (const k of kept) {
      gpu[k.name] = { buffer: k.lease.buffer, offset: 0, storage: k.info.storage, dtype: k.info.dtype, shape: [...k.info.shape], lease: k.lease };
    }
    return { host, gpu };
  }

  /**
   * Whether a fed GPU range can stand in for input `name`'s own buffer `own` for one run: same storage form (checked
   * by the caller), large enough, aligned for a storage binding, usable as storage, not one of the plan's buffers
   * (which the plan writes), and not overlapping another fed range swapped in already (two bindings of one dispatch
   * must not alias a buffer range that either writes; the plan never writes inputs, but a kernel may declare one
   * read_write). Otherwise the input is copied into its own buffer as before.
   */
  private canBindFed(name: string, own: Range, fed: Range, storageAlign: number, planBuffers: ReadonlySet<GPUBuffer>, swap: ReadonlyMap<GPUBuffer, Range>): boolean {
    if (Object.hasOwn(this.bound, name) || own.offset !== 0 || !planBuffers.has(own.buffer) || swap.has(own.buffer)) return false;
    if (planBuffers.has(fed.buffer) || fed.offset % storageAlign || fed.offset + own.size > fed.buffer.size) return false;
    if (!(fed.buffer.usage & STORAGE_BIT)) return false;
    for (const r of swap.values()) if (r.buffer === fed.buffer && r.offset < fed.offset + own.size && fed.offset < r.offset + r.size) return false;
    return true;
  }

  /** The plan's actions with `swap`'s buffers substituted: bind groups remade only for dispatches that use one. */
  private rebound(swap: ReadonlyMap<GPUBuffer, Range>): Action[] {
    const at = (r: Range): Range => {
      const s = swap.get(r.buffer);
      return s ? { buffer: s.buffer, offset: s.offset + r.offset, size: r.size } : r;
    };
    return this.actions.map((a) => {
      if (a.kind === 'copy') return swap.has(a.src.buffer) || swap.has(a.dst.buffer) ? { ...a, src: at(a.src), dst: at(a.dst) } : a;
      const res = (e: GPUBindGroupEntry) => e.resource as GPUBufferBinding;
      if (!a.entries.some((e) => swap.has(res(e).buffer))) return a;
      const entries = a.entries.map((e) => {
        const b = res(e);
        const s = swap.get(b.buffer);
        return s ? { binding: e.binding, resource: { buffer: s.buffer, offset: s.offset + (b.offset ?? 0), size: b.size } } : e;
      });
      // Still bound to a lazy stand-in (a slot moved under it, see syncShared): the run's own rebound() makes it.
      if (entries.some((e) => this.lazy.has(res(e).buffer))) return { ...a, bindGroup: undefined, entries };
      const bindGroup = this.res.ctx.device.createBindGroup({ layout: a.pipeline.getBindGroupLayout(0), entries, label: a.node.name });
      return { ...a, bindGroup, entries };
    });
  }

  /** Releases every buffer of the plan (deferred until queued GPU work is done). Idempotent. */
  dispose(discard = false): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const l of this.leases) {
      if (discard) this.res.memory.discard(l);
      else this.res.memory.release(l);
    }
    this.leases.length = 0;
    this.actions = [];
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * Runs one node on the GPU (tests, conformance, debugging): inputs become graph inputs, except the indices in
 * `constInputs`, which become initializers (kernels that need a constant, such as Reshape's shape, see them).
 */
export async function runNodeGpu(
  res: GpuResources,
  node: Node,
  inputs: readonly (HostTensor | undefined)[],
  opts: { constInputs?: readonly number[]; maxElements?: number; cpuAdapter?: boolean } = {},
): Promise<HostTensor[]> {
  const names = inputs.map((t, i) => (t ? `input_${i}` : ''));
  // An omitted optional output ('') stays omitted: kernels skip work nobody reads.
  const outNames = node.outputs.map((o, i) => (o ? `output_${i}` : ''));
  const g: Graph = {
    name: node.name || node.op,
    inputs: [],
    outputs: outNames.filter(Boolean).map((name) => ({ name, dtype: 'float32' })),
    initializers: {},
    nodes: [{ ...node, inputs: names, outputs: outNames }],
    values: {},
  };
  const feeds: Record<string, HostTensor> = {};
  inputs.forEach((t, i) => {
    if (!t) return;
    if (opts.constInputs?.includes(i)) g.initializers[names[i]!] = t;
    else {
      g.inputs.push({ name: names[i]!, dtype: t.dtype, shape: [...t.shape] });
      feeds[names[i]!] = t;
    }
  });
  // Training-domain schemas too (runtime/train/infer.ts), so single training ops run here as well.
  const sorted = inferTrainShapes(validateAndSort(g));
  const plan = await GpuGraphPlan.create(res, sorted, { maxElements: opts.maxElements, cpuAdapter: opts.cpuAdapter });
  try {
    const out = await plan.run(feeds);
    // Omitted outputs come back as undefined in their positions.
    return outNames.map((name) => out[name]!);
  } finally {
    plan.dispose();
  }
}
