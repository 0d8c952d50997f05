import type { DType } from '../../ir/dtype.js';
import type { Node } from '../../ir/graph.js';
import type { HostTensor } from '../../ir/tensor.js';
import type { GpuLimits } from './device.js';
import type { StorageType } from './storage.js';
import type { ProgramLayout, ShaderBuilder } from './wgsl/builder.js';

/**
 * What a GPU kernel is: for one node with concrete shapes, a list of program calls. Each program has two speeds:
 * `source(builder)` runs only on a pipeline-cache miss; `run()` returns the dispatch size and uniform values. Its
 * `key` names exactly what the WGSL depends on (dtype/storage, rank, vector width, tiling), never shapes, so one
 * pipeline serves every shape of a kind.
 */

/** A tensor as a kernel sees it at plan time. `value` is set when it is a constant (an initializer). */
export interface GpuTensorInfo {
  dtype: DType;
  shape: number[];
  storage: StorageType;
  value?: HostTensor;
}

export interface KernelEnv {
  /** shader-f16 is available. */
  f16: boolean;
  limits: Readonly<GpuLimits>;
  maxElements: number;
  /** The adapter runs shaders on the CPU (GpuContext.cpuAdapter). */
  cpuAdapter?: boolean;
  /** WGSL has packed_4x8_integer_dot_product (dot4I8Packed): int8 kernels take the packed path. */
  packedDot?: boolean;
  /** The device has the 'subgroups' feature (subgroupAdd...): reductions may use it. */
  subgroups?: boolean;
}

export type Uniforms = Record<string, number | readonly number[]>;

export interface ProgramSpec extends ProgramLayout {
  /** Kernel-specific part of the cache key; the executor appends the layout (bindings, uniforms, workgroup size). */
  key: string;
  source(b: ShaderBuilder): void;
  run(): { workgroups: [number, number, number]; uniforms: Uniforms };
}

/**
 * Where a program binding points: a node input, a node output, a scratch tensor of the kernel plan, or one of
 * the plan's constant tables (Resize's taps: computed on the host at plan time, uploaded once).
 */
export type TensorSlot = { input: number } | { output: number } | { scratch: number } | { constant: number };

export interface ProgramCall {
  program: ProgramSpec;
  /** One per entry of program.bindings, in order. */
  tensors: TensorSlot[];
}

export interface KernelPlan {
  calls: ProgramCall[];
  /** Temporaries the calls use (allocated by the executor, alive for this node only). */
  scratch?: GpuTensorInfo[];
  /** Tables computed at plan time (int32 or float32), uploaded with the weights. */
  constants?: HostTensor[];
  /**
   * Indices of `constants` that depend only on the model's weights (a transposed weight matrix), returned as the
   * same HostTensor object by every plan (the kernel memoizes them): uploaded once into the session's weight store
   * and shared by every plan, instead of a copy per input-shape signature.
   */
  sharedConstants?: readonly number[];
  /**
   * Constant inputs this plan read on the host (their values are in `constants`, repacked) and never binds: not
   * uploaded, unless another node binds them.
   */
  unboundInputs?: readonly number[];
}

export interface GpuKernel {
  /**
   * Validates the node for the GPU (types, attributes, constant inputs it needs) and plans its dispatches.
   * Output shapes and dtypes come from the IR schema (graph.values); `outputs` carries them with their storage
   * (undefined for an omitted optional output, such as LayerNormalization's Mean).
   */
  plan(node: Node, inputs: (GpuTensorInfo | undefined)[], outputs: (GpuTensorInfo | undefined)[], env: KernelEnv): KernelPlan;
  /** Inputs the kernel reads only at plan time (constant shapes, axes...): they are never uploaded. */
  hostInputs?: readonly number[];
}

/** Full cache key: the kernel's key plus everything in the layout that shapes the WGSL. */
export function fullKey(p: ProgramSpec): string {
  const b = p.bindings.map((x) => `${x.name}:${x.type}${x.vec === 4 ? 'x4' : ''}${x.atomic ? ':atomic' : ''}`).join(',');
  const u = p.uniforms.map((x) => `${x.name}:${x.type}${x.length === undefined ? '' : `[${x.length}]`}`).join(',');
  return `${p.key}|${b}|${u}|wg${p.workgroupSize.join('x')}`;
}

/**
 * Workgroup counts covering `invocations` threads with workgroups of `size`, folding into y past the
 * 65535-per-dimension limit (the shader reconstructs the flat index with ShaderBuilder.linearIndex).
 */
export function dispatchLinear(invocations: number, size: number, maxPerDim = 65535): [number, number, number] {
  const groups = Math.ceil(invocations / size);
  if (groups <= maxPerDim) return [groups, 1, 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y, 1];
}

export const sizeOfShape = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

export function stridesFor(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** The node cannot run on the GPU: reported with every other such node in one UnsupportedOpError. */
export class GpuUnsupported extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'GpuUnsupported';
  }
}
