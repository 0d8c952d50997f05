import { histogramParams, HISTOGRAM_OP } from '../../../ir/ops/histogram.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, type GpuKernel, type GpuTensorInfo, type ProgramCall, type ProgramSpec } from '../program.js';
import type { ShaderBuilder } from '../wgsl/builder.js';

/**
 * edgekit.Histogram (runtime/ir/ops/histogram.ts: the binning rule, shared with the CPU reference) in two programs:
 *  1. start: Y = Acc (or 0), one invocation per bin;
 *  2. count, on a GPU: each workgroup of 256 bins a grid-stride share of X (32 values per invocation or more)
 *     into its own `var<workgroup>` array of atomic<u32>, one per bin, then adds its non-zero bins to Y with one
 *     atomicAdd each: contention stays in workgroup memory, and a flush of 2048 bins serves 8192 values or more.
 *     The number of bins is in the shader (a workgroup array's size is a constant), so it is in the key;
 *     workgroup memory bounds it: 4 bytes a bin within maxComputeWorkgroupStorageSize (16 KiB by default: 4096).
 *     On a CPU adapter (SwiftShader) that shape measured badly: compiling a 2048-bin workgroup array took ~10 s
 *     (superlinear in the array: 256 bins 0.6 s) and 256 workgroups' barriers and bin sweeps 3.4 s for 1M values.
 *     There each invocation bins a contiguous run of 256 values straight into Y, merging equal neighbouring bins
 *     into one atomicAdd (0.12 s for 1M values, half of them zeros; measured on this repo's 2-core test machine).
 * Integer atomics are exact and commutative: the counts do not depend on scheduling and equal the CPU reference's.
 */

const GPU_WG = 256;
/** Values each GPU invocation bins at least (more past GPU_MAX_GROUPS): workgroups bin 8192 values per flush. */
const GPU_PER_THREAD = 32;
const GPU_MAX_GROUPS = 1024;
const CPU_WG = 64;
const CPU_RUN = 256;

let pinned: 'gpu' | 'cpu' | undefined;
/** Pins the count program for kernels planned from now on (tests check both on one device); undefined: by adapter. */
export function setHistogramShape(shape: 'gpu' | 'cpu' | undefined): void {
  pinned = shape;
}

function startProgram(bins: number, hasAcc: boolean, y: GpuTensorInfo, acc?: GpuTensorInfo): ProgramSpec {
  return {
    key: `histogram_start:${hasAcc ? 'acc' : 'zero'}`,
    bindings: [...(hasAcc ? [{ name: 'acc', type: acc!.storage }] : []), { name: 'y', type: y.storage }],
    uniforms: [{ name: 'bins', type: 'u32' }],
    workgroupSize: [64, 1, 1],
    source(b) {
      b.main(`${b.linearIndex('u.bins')}
  ${b.store('y', 'index', hasAcc ? b.load('acc', 'index') : '0u')}`);
    },
    run: () => ({ workgroups: dispatchLinear(bins, 64), uniforms: { bins } }),
  };
}

/** binOf (runtime/ir/ops/histogram.ts) in WGSL, and the expression binning element `i` of x. */
function binHelper(b: ShaderBuilder, bins: number, abs: boolean): (i: string) => string {
  // NaN is skipped and infinities are sorted by their bits (WGSL lets a compiler assume floats are finite, so they
  // are never compared as values); a finite value's bin is f32(f32(v - low) * scale), floored and clamped.
  b.helper(`fn bin_of(v: f32) -> i32 {
  let bits = bitcast<u32>(v) & 0x7fffffffu;
  if (bits > 0x7f800000u) { return -1; }
  if (bits == 0x7f800000u) { return select(${bins - 1}, 0, (bitcast<u32>(v) & 0x80000000u) != 0u); }
  let t = (v - u.low) * u.scale;
  if (t >= ${bins}.0) { return ${bins - 1}; }
  if (t > 0.0) { return i32(t); }
  return 0;
}`);
  return (i) => `bin_of(${abs ? `abs(${b.loadAs('x', i, 'f32')})` : b.loadAs('x', i, 'f32')})`;
}

function countProgram(bins: number, abs: boolean, size: number, low: number, scale: number, x: GpuTensorInfo, shape: 'gpu' | 'cpu'): ProgramSpec {
  const layout = {
    bindings: [{ name: 'x', type: x.storage }, { name: 'y', type: 'u32' as const, atomic: true }],
    uniforms: [{ name: 'size', type: 'u32' as const }, { name: 'low', type: 'f32' as const }, { name: 'scale', type: 'f32' as const }],
  };
  if (shape === 'cpu') {
    return {
      ...layout,
      key: `histogram_count_direct:${bins}:${abs ? 'abs' : 'signed'}`,
      workgroupSize: [CPU_WG, 1, 1],
      source(b) {
        const binAt = binHelper(b, bins, abs);
        b.main(`${b.linearIndex(`(u.size + ${CPU_RUN - 1}u) / ${CPU_RUN}u`)}
  let end = min(u.size, (index + 1u) * ${CPU_RUN}u);
  var run_bin = -1;
  var run_len = 0u;
  for (var i = index * ${CPU_RUN}u; i < end; i = i + 1u) {
    let bin = ${binAt('i')};
    if (bin != run_bin) {
      if (run_bin >= 0) { atomicAdd(&y[run_bin], run_len); }
      run_bin = bin;
      run_len = 0u;
    }
    run_len = run_len + 1u;
  }
  if (run_bin >= 0) { atomicAdd(&y[run_bin], run_len); }`);
      },
      run: () => ({ workgroups: dispatchLinear(Math.ceil(size / CPU_RUN), CPU_WG), uniforms: { size, low, scale } }),
    };
  }
  const groups = Math.min(GPU_MAX_GROUPS, Math.max(1, Math.ceil(size / (GPU_WG * GPU_PER_THREAD))));
  return {
    ...layout,
    key: `histogram_count:${bins}:${abs ? 'abs' : 'signed'}`,
    workgroupSize: [GPU_WG, 1, 1],
    source(b) {
      b.helper(`var<workgroup> local_bins: array<atomic<u32>, ${bins}>;`);
      const binAt = binHelper(b, bins, abs);
      b.main(`for (var j = lid.x; j < ${bins}u; j = j + ${GPU_WG}u) { atomicStore(&local_bins[j], 0u); }
  workgroupBarrier();
  let stride = nwg.x * ${GPU_WG}u;
  for (var i = gid.x; i < u.size; i = i + stride) {
    let bin = ${binAt('i')};
    if (bin >= 0) { atomicAdd(&local_bins[bin], 1u); }
  }
  workgroupBarrier();
  for (var j = lid.x; j < ${bins}u; j = j + ${GPU_WG}u) {
    let c = atomicLoad(&local_bins[j]);
    if (c != 0u) { atomicAdd(&y[j], c); }
  }`);
    },
    run: () => ({ workgroups: [groups, 1, 1], uniforms: { size, low, scale } }),
  };
}

const histogram: GpuKernel = {
  plan(node, [x, acc], [y], env) {
    const p = histogramParams(node);
    const shape = pinned ?? (env.cpuAdapter ? 'cpu' : 'gpu');
    const maxBins = Math.floor(env.limits.maxComputeWorkgroupStorageSize / 4);
    if (shape === 'gpu' && p.bins > maxBins) {
      throw new GpuUnsupported(`${HISTOGRAM_OP} with ${p.bins} bins needs more workgroup memory than the device's ${env.limits.maxComputeWorkgroupStorageSize} bytes (at most ${maxBins} bins)`);
    }
    const size = sizeOfShape(x!.shape);
    const calls: ProgramCall[] = [
      { program: startProgram(p.bins, !!acc, y!, acc), tensors: acc ? [{ input: 1 }, { output: 0 }] : [{ output: 0 }] },
    ];
    if (size > 0) calls.push({ program: countProgram(p.bins, p.abs, size, p.low, p.scale, x!, shape), tensors: [{ input: 0 }, { output: 0 }] });
    return { calls };
  },
};

export const kernels: Record<string, GpuKernel> = { [HISTOGRAM_OP]: histogram };
