import { histogramParams, HISTOGRAM_OP } from '../../../ir/ops/histogram.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, type GpuKernel, type GpuTensorInfo, type ProgramCall, type ProgramSpec } from '../program.js';

/**
 * edgekit.Histogram (runtime/ir/ops/histogram.ts: the binning rule, shared with the CPU reference) in two programs:
 *  1. start: Y = Acc (or 0), one invocation per bin;
 *  2. count: each workgroup bins a grid-stride share of X into its own `var<workgroup>` array of atomic<u32> (one
 *     per bin), then adds its non-zero bins to Y with one atomicAdd each. Integer atomics are exact and
 *     commutative, so the counts do not depend on scheduling and equal the CPU reference's.
 * The number of bins is in the shader (the workgroup array's size must be a constant), so it is in the key; the
 * range (low, scale) is in uniforms. Workgroup memory bounds the bins: 4 bytes each, within
 * maxComputeWorkgroupStorageSize (16 KiB by default: 4096 bins).
 */

const WG = 256;
/** Elements one invocation bins, at most, before its workgroup flushes (bounds the workgroups, and so the flushes). */
const PER_THREAD = 16;
const MAX_GROUPS = 1024;

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

function countProgram(bins: number, abs: boolean, size: number, low: number, scale: number, x: GpuTensorInfo): ProgramSpec {
  const groups = Math.min(MAX_GROUPS, Math.max(1, Math.ceil(size / (WG * PER_THREAD))));
  return {
    key: `histogram_count:${bins}:${abs ? 'abs' : 'signed'}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'y', type: 'u32', atomic: true }],
    uniforms: [{ name: 'size', type: 'u32' }, { name: 'low', type: 'f32' }, { name: 'scale', type: 'f32' }],
    workgroupSize: [WG, 1, 1],
    source(b) {
      b.helper(`var<workgroup> local_bins: array<atomic<u32>, ${bins}>;`);
      // binOf (runtime/ir/ops/histogram.ts): NaN is skipped and infinities are sorted by their bits (WGSL lets a
      // compiler assume floats are finite, so they are never compared as values); a finite value's bin is
      // f32(f32(v - low) * scale), floored and clamped to the bins.
      b.helper(`fn bin_of(v: f32) -> i32 {
  let bits = bitcast<u32>(v) & 0x7fffffffu;
  if (bits > 0x7f800000u) { return -1; }
  if (bits == 0x7f800000u) { return select(${bins - 1}, 0, (bitcast<u32>(v) & 0x80000000u) != 0u); }
  let t = (v - u.low) * u.scale;
  if (t >= ${bins}.0) { return ${bins - 1}; }
  if (t > 0.0) { return i32(t); }
  return 0;
}`);
      b.main(`for (var j = lid.x; j < ${bins}u; j = j + ${WG}u) { atomicStore(&local_bins[j], 0u); }
  workgroupBarrier();
  let stride = nwg.x * ${WG}u;
  for (var i = gid.x; i < u.size; i = i + stride) {
    let bin = bin_of(${abs ? `abs(${b.loadAs('x', 'i', 'f32')})` : b.loadAs('x', 'i', 'f32')});
    if (bin >= 0) { atomicAdd(&local_bins[bin], 1u); }
  }
  workgroupBarrier();
  for (var j = lid.x; j < ${bins}u; j = j + ${WG}u) {
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
    const maxBins = Math.floor(env.limits.maxComputeWorkgroupStorageSize / 4);
    if (p.bins > maxBins) throw new GpuUnsupported(`${HISTOGRAM_OP} with ${p.bins} bins needs more workgroup memory than the device's ${env.limits.maxComputeWorkgroupStorageSize} bytes (at most ${maxBins} bins)`);
    const size = sizeOfShape(x!.shape);
    const calls: ProgramCall[] = [
      { program: startProgram(p.bins, !!acc, y!, acc), tensors: acc ? [{ input: 1 }, { output: 0 }] : [{ output: 0 }] },
    ];
    if (size > 0) calls.push({ program: countProgram(p.bins, p.abs, size, p.low, p.scale, x!), tensors: [{ input: 0 }, { output: 0 }] });
    return { calls };
  },
};

export const kernels: Record<string, GpuKernel> = { [HISTOGRAM_OP]: histogram };
