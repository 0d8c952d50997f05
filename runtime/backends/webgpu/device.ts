import { DeviceError, InternalError, OutOfMemoryError } from '../../errors.js';

/**
 * The WebGPU device: acquired once per process and shared by every session (a browser tab or a Node process has one
 * GPU; creating a device per session would duplicate pipelines and buffers). Records features and limits, turns
 * `device.lost` into DeviceError('DEVICE_LOST') for pending and later work, and lets the next acquire build a new
 * device after a loss.
 *
 * The runtime never imports `webgpu` (Dawn's Node bindings) statically: browsers use navigator.gpu, and in Node the
 * package is loaded through a dynamic import whose specifier is a variable, so bundlers leave it alone.
 */

/** Limits EdgeKit's kernels care about; a model may need more than WebGPU's defaults of some of them. */
export const LIMIT_NAMES = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxUniformBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'minStorageBufferOffsetAlignment',
  'minUniformBufferOffsetAlignment',
  'maxBindGroups',
] as const;
export type LimitName = (typeof LIMIT_NAMES)[number];
export type GpuLimits = Record<LimitName, number>;

/** Alignment limits are "at least this coarse": a smaller number is the stronger requirement. */
const ALIGNMENT_LIMITS: ReadonlySet<LimitName> = new Set(['minStorageBufferOffsetAlignment', 'minUniformBufferOffsetAlignment']);

export interface DeviceOptions {
  /** A WebGPU entry point (navigator.gpu, or `create([])` from the `webgpu` package). Default: found automatically. */
  gpu?: GPU;
  powerPreference?: GPUPowerPreference;
  /** Limits the model needs; checked against the adapter (LIMIT_EXCEEDED when it cannot give them). */
  requiredLimits?: Partial<GpuLimits>;
  /** Features the model needs (MISSING_FEATURE when absent). Optional ones such as shader-f16 are enabled when present. */
  requiredFeatures?: readonly GPUFeatureName[];
}

/** Features requested whenever the adapter has them: kernels are chosen at plan time by what the device offers. */
const OPTIONAL_FEATURES: readonly GPUFeatureName[] = ['shader-f16', 'subgroups', 'timestamp-query'] as GPUFeatureName[];

export class GpuContext {
  readonly device: GPUDevice;
  readonly adapterInfo: { vendor: string; architecture: string; description: string };
  readonly features: ReadonlySet<string>;
  readonly limits: Readonly<GpuLimits>;
  /** Whether f16 arithmetic and f16 storage arrays are available in WGSL ('shader-f16'). */
  readonly hasF16: boolean;
  /**
   * The adapter runs shaders on the CPU (SwiftShader, or the browser's fallback adapter): kernels that suit a CPU
   * (no workgroup barriers) are chosen where they measured faster there; see kernels/matmul.ts chooseTiling.
   */
  readonly cpuAdapter: boolean;
  /** WGSL language extensions of the GPU object the device came from (packed_4x8_integer_dot_product...). */
  readonly wgslFeatures: ReadonlySet<string>;
  private lostInfo: { reason: string; message: string } | undefined;
  private readonly lostListeners = new Set<(e: DeviceError) => void>();
  private uncaptured: GPUError | undefined;

  constructor(device: GPUDevice, adapterInfo: GpuContext['adapterInfo'], fallbackAdapter = false, wgslFeatures: Iterable<string> = []) {
    this.device = device;
    this.wgslFeatures = new Set(wgslFeatures);
    this.adapterInfo = adapterInfo;
    this.cpuAdapter = fallbackAdapter || /swiftshader/i.test(`${adapterInfo.architecture} ${adapterInfo.description}`);
    this.features = new Set([...device.features].map(String));
    this.hasF16 = this.features.has('shader-f16');
    const limits = {} as GpuLimits;
    for (const k of LIMIT_NAMES) limits[k] = Number((device.limits as unknown as Record<string, number>)[k]);
    this.limits = Object.freeze(limits);
    void device.lost.then((info) => {
      this.lostInfo = { reason: String(info.reason), message: info.message };
      const err = this.lostError();
      for (const l of [...this.lostListeners]) l(err);
      this.lostListeners.clear();
    });
    // Errors no scope captured: kept so the next run reports them instead of returning garbage.
    device.onuncapturederror = (ev: GPUUncapturedErrorEvent) => {
      this.uncaptured ??= ev.error;
    };
  }

  get lost(): boolean {
    return this.lostInfo !== undefined;
  }

  private lostError(): DeviceError {
    const i = this.lostInfo;
    return new DeviceError(
      'DEVICE_LOST',
      `The WebGPU device was lost (${i?.reason ?? 'unknown'}${i?.message ? `: ${i.message}` : ''}). ` +
        'Create the session again; EdgeKit acquires a new device on the next load.',
      { reason: i?.reason },
    );
  }

  /** Throws DEVICE_LOST when the device is gone: every entry point calls this before touching the GPU. */
  assertAlive(): void {
    if (this.lostInfo) throw this.lostError();
  }

  /** Awaits GPU work, rejecting with DEVICE_LOST if the device is lost first (mapAsync may otherwise hang or abort). */
  guard<T>(p: Promise<T>): Promise<T> {
    this.assertAlive();
    return new Promise<T>((resolve, reject) => {
      const onLost = (e: DeviceError) => reject(e);
      this.lostListeners.add(onLost);
      p.then(
        (v) => {
          this.lostListeners.delete(onLost);
          if (this.lostInfo) reject(this.lostError());
          else resolve(v);
        },
        (e: unknown) => {
          this.lostListeners.delete(onLost);
          reject(this.lostInfo ? this.lostError() : e);
        },
      );
    });
  }

  /**
   * Runs `fn` inside validation and out-of-memory error scopes: an allocation the GPU could not satisfy becomes
   * OutOfMemoryError, a validation error (always a bug in EdgeKit's own encoding) an InternalError.
   */
  async scoped<T>(what: string, fn: () => T): Promise<T> {
    this.assertAlive();
    const d = this.device;
    d.pushErrorScope('out-of-memory');
    d.pushErrorScope('validation');
    let result: T;
    try {
      result = fn();
    } finally {
      const validation = await this.guard(d.popErrorScope());
      const oom = await this.guard(d.popErrorScope());
      if (oom) throw new OutOfMemoryError(`The GPU ran out of memory while ${what}: ${oom.message}. Use a smaller model, batch or input size, or close other GPU work.`);
      if (validation) throw new InternalError(`WebGPU rejected ${what}: ${validation.message}`);
    }
    return result;
  }

  /** Reports (once) an error no scope captured. */
  takeUncapturedError(): Error | undefined {
    const e = this.uncaptured;
    this.uncaptured = undefined;
    if (!e) return undefined;
    if (e.constructor?.name === 'GPUOutOfMemoryError') return new OutOfMemoryError(`The GPU ran out of memory: ${e.message}`);
    return new InternalError(`WebGPU reported an error: ${e.message}`);
  }

  /** Throws LIMIT_EXCEEDED / MISSING_FEATURE when this device cannot run something that needs `limits`/`features`. */
  check(limits: Partial<GpuLimits> = {}, features: readonly string[] = []): void {
    for (const f of features) {
      if (!this.features.has(f)) {
        throw new DeviceError('MISSING_FEATURE', `The GPU lacks the WebGPU feature '${f}' this model needs; use the CPU backend or another device.`, { feature: f });
      }
    }
    for (const [k, want] of Object.entries(limits) as [LimitName, number][]) {
      const have = this.limits[k];
      const ok = ALIGNMENT_LIMITS.has(k) ? have <= want : have >= want;
      if (!ok) {
        throw new DeviceError(
          'LIMIT_EXCEEDED',
          `The model needs the WebGPU limit ${k} = ${want}, but this device offers ${have}. ` +
            'Use a smaller input or batch, a device with larger limits, or the CPU backend.',
          { limit: k, needed: want, available: have },
        );
      }
    }
  }

  destroy(): void {
    this.device.destroy();
  }
}

let gpuEntry: Promise<GPU> | undefined;
let refusal: DeviceError | undefined;

/**
 * Makes every later device request in this thread fail with `reason` (before any GPU code loads). The Node worker
 * entry calls it: see sdk/worker/node-entry.ts for why Dawn is not used inside worker_threads.
 */
export function refuseWebGpu(reason: DeviceError): void {
  refusal = reason;
}

/** Whether refuseWebGpu() was called in this thread. */
export function webGpuRefused(): boolean {
  return refusal !== undefined;
}

/** navigator.gpu in browsers and workers; in Node, the `webgpu` package loaded on demand. */
export function findGpu(): Promise<GPU> {
  if (refusal) return Promise.reject(refusal);
  gpuEntry ??= (async () => {
    const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
    if (nav?.gpu) return nav.gpu;
    const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
    if (!proc?.versions?.node) {
      throw new DeviceError('NO_WEBGPU', 'This browser does not expose WebGPU (navigator.gpu is missing). Use a browser with WebGPU enabled, or the CPU backend.');
    }
    // A variable specifier keeps bundlers from resolving (and browsers from fetching) the Node-only package.
    const specifier = ['web', 'gpu'].join('');
    let mod: { create(flags: string[]): GPU; globals: Record<string, unknown> };
    try {
      mod = (await import(/* @vite-ignore */ specifier)) as typeof mod;
    } catch (e) {
      throw new DeviceError('NO_WEBGPU', "WebGPU in Node needs the optional package 'webgpu' (npm install webgpu); it could not be loaded.", {}, { cause: e });
    }
    // Dawn's objects check their prototypes against these globals (GPUBufferUsage and friends).
    for (const [k, v] of Object.entries(mod.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
    return mod.create([]);
  })();
  gpuEntry.catch(() => (gpuEntry = undefined));
  return gpuEntry;
}

/** A new device (not shared). Most callers want acquireDevice(). */
export async function createDevice(opts: DeviceOptions = {}): Promise<GpuContext> {
  if (refusal) throw refusal;
  const gpu = opts.gpu ?? (await findGpu());
  const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  if (!adapter) {
    throw new DeviceError(
      'NO_ADAPTER',
      'WebGPU is present but no GPU adapter is available (blocklisted driver, headless without a software renderer, or no GPU). ' +
        'Use the CPU backend, or in Node set VK_ICD_FILENAMES to a Vulkan driver such as SwiftShader.',
    );
  }
  const adapterLimits = adapter.limits as unknown as Record<string, number>;
  // Ask for everything the adapter can give on the limits we use: one shared device then serves every model.
  const requiredLimits: Record<string, number> = {};
  for (const k of LIMIT_NAMES) requiredLimits[k] = adapterLimits[k]!;
  for (const [k, want] of Object.entries(opts.requiredLimits ?? {}) as [LimitName, number][]) {
    const have = adapterLimits[k]!;
    if (ALIGNMENT_LIMITS.has(k) ? have > want : have < want) {
      throw new DeviceError('LIMIT_EXCEEDED', `The model needs the WebGPU limit ${k} = ${want}, but the adapter offers ${have}. Use a smaller input or batch, or the CPU backend.`, { limit: k, needed: want, available: have });
    }
  }
  for (const f of opts.requiredFeatures ?? []) {
    if (!adapter.features.has(f)) throw new DeviceError('MISSING_FEATURE', `The GPU adapter lacks the WebGPU feature '${f}' this model needs.`, { feature: f });
  }
  const features = [...new Set([...(opts.requiredFeatures ?? []), ...OPTIONAL_FEATURES.filter((f) => adapter.features.has(f))])];
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredFeatures: features, requiredLimits });
  } catch (e) {
    throw new DeviceError('NO_ADAPTER', `The GPU adapter refused to create a device: ${(e as Error)?.message ?? e}`, {}, { cause: e });
  }
  const info = adapter.info ?? ({} as GPUAdapterInfo);
  const fallback = Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter);
  const wgsl = (gpu as { wgslLanguageFeatures?: Iterable<string> }).wgslLanguageFeatures ?? [];
  const ctx = new GpuContext(device, { vendor: info.vendor ?? '', architecture: info.architecture ?? '', description: info.description ?? '' }, fallback, wgsl);
  // The device must not outlive its GPU instance and adapter (in Node, Dawn tears the device down when they are
  // garbage-collected): the context keeps them referenced.
  keepAlive.set(ctx, [gpu, adapter]);
  return ctx;
}

const keepAlive = new WeakMap<GpuContext, unknown[]>();

let shared: Promise<GpuContext> | undefined;

/**
 * The process-wide device, created on first use and re-created after a loss. `requiredLimits`/`requiredFeatures`
 * are checked against it (the shared device already holds the adapter's maximum of every limit EdgeKit uses).
 */
export async function acquireDevice(opts: DeviceOptions = {}): Promise<GpuContext> {
  if (shared) {
    const ctx = await shared.catch(() => undefined);
    if (!ctx || ctx.lost) shared = undefined;
  }
  shared ??= createDevice({ ...opts, requiredLimits: undefined, requiredFeatures: undefined });
  shared.catch(() => (shared = undefined));
  const ctx = await shared;
  ctx.check(opts.requiredLimits, opts.requiredFeatures);
  return ctx;
}

/** Spec-fixed flag values, so the runtime does not depend on GPUBufferUsage existing as a global. */
export const BufferUsage = {
  MAP_READ: 0x1, MAP_WRITE: 0x2, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80,
} as const;
export const MAP_MODE_READ = 0x1;

export function assertNever(x: never, what: string): never {
  throw new InternalError(`Unexpected ${what}: ${String(x)}`);
}
