import { compressAxis } from '../../../ir/ops/data-dependent.js';
import { toNumbers } from '../../../ir/dtype.js';
import { GpuUnsupported, sizeOfShape, stridesFor, type GpuKernel, type GpuTensorInfo, type ProgramSpec } from '../program.js';
import { computeTypeOf, gpuSupportsDType } from '../storage.js';
import { gatherProgram } from './gather-pad.js';

/**
 * NonZero and Compress on the GPU. Their output size is the number of selected elements, which a static plan must
 * know: the WebGPU lowering (lower-counts.ts) gives each node a `count` input computed by a GPU reduction, and
 * the staged plan reads it back before planning the node (staged-plan.ts). Here `count` is a plan-time constant.
 *
 * Positions come from one prefix sum over "is selected" in a single workgroup of 256 invocations: each takes a
 * contiguous chunk of the input, counts its hits, the workgroup scans the 256 counts (Hillis-Steele, 8 steps), and
 * each invocation writes its hits in order from its exclusive prefix. One dispatch, O(n / 256) work per
 * invocation: NonZero and Compress inputs in real models are masks and score vectors, not feature maps. Compress
 * selects its indices this way (the non-zero positions of the condition) and then gathers with Gather's program.
 */

const LANES = 256;

/** Writes the row-major coordinates of x's non-zero elements to y ([rank, count], int32 storage of int64). */
function nonZeroProgram(x: GpuTensorInfo, y: GpuTensorInfo, count: number): ProgramSpec {
  const size = sizeOfShape(x.shape);
  const rank = Math.max(x.shape.length, 1);
  const strides = x.shape.length ? stridesFor(x.shape) : [1];
  const T = computeTypeOf(x.storage);
  return {
    key: `nonzero:r${rank}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'y', type: y.storage }],
    uniforms: [{ name: 'size', type: 'u32' }, { name: 'count', type: 'u32' }, { name: 'strides', type: 'u32', length: rank }],
    workgroupSize: [LANES, 1, 1],
    source(b) {
      b.helper(`var<workgroup> lane_hits: array<u32, ${LANES}>;`);
      const coords = Array.from({ length: x.shape.length }, (_, d) => `    y[${d}u * u.count + k] = ${y.storage}(rest / u.strides_${d}); rest = rest % u.strides_${d};`);
      b.main(`let lane = lid.x;
  let chunk = (u.size + ${LANES - 1}u) / ${LANES}u;
  let begin = min(lane * chunk, u.size);
  let end = min(begin + chunk, u.size);
  var hits = 0u;
  for (var i = begin; i < end; i++) {
    if (${b.load('x', 'i')} != ${T}(0)) { hits++; }
  }
  lane_hits[lane] = hits;
  workgroupBarrier();
  for (var step = 1u; step < ${LANES}u; step = step << 1u) {
    let before = select(0u, lane_hits[lane - step], lane >= step);
    workgroupBarrier();
    lane_hits[lane] += before;
    workgroupBarrier();
  }
  var k = lane_hits[lane] - hits;
  for (var i = begin; i < end; i++) {
    if (${b.load('x', 'i')} == ${T}(0) || k >= u.count) { continue; }
    var rest = i;
${coords.join('\n')}
    k++;
  }`);
    },
    run() {
      return { workgroups: [1, 1, 1], uniforms: { size, count, strides } };
    },
  };
}

function countOf(node: { op: string }, c: GpuTensorInfo | undefined): number {
  if (!c?.value) throw new GpuUnsupported(`${node.op} needs its element count at plan time (the WebGPU lowering computes it)`);
  return Number(toNumbers(c.value.dtype, c.value.data)[0]);
}

const nonZero: GpuKernel = {
  hostInputs: [1],
  plan(node, [x, c], [y]) {
    if (!gpuSupportsDType(x!.dtype)) throw new GpuUnsupported(`NonZero of ${x!.dtype} has no WebGPU kernel`);
    const count = countOf(node, c);
    if (sizeOfShape(y!.shape) === 0) return { calls: [] }; // nothing selected, or a scalar's [0, count]
    return { calls: [{ program: nonZeroProgram(x!, y!, count), tensors: [{ input: 0 }, { output: 0 }] }] };
  },
};

const compress: GpuKernel = {
  hostInputs: [2],
  plan(node, [x, cond, c], [y]) {
    if (!gpuSupportsDType(x!.dtype)) throw new GpuUnsupported(`Compress of ${x!.dtype} has no WebGPU kernel`);
    const count = countOf(node, c);
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    const picked: GpuTensorInfo = { dtype: 'int64', shape: [1, count], storage: 'i32' };
    const axis = compressAxis(node, x!.shape.length);
    const flat = axis === undefined ? { ...x!, shape: [sizeOfShape(x!.shape)] } : x!;
    const indices: GpuTensorInfo = { ...picked, shape: [count] };
    return {
      scratch: [picked],
      calls: [
        { program: nonZeroProgram(cond!, picked, count), tensors: [{ input: 1 }, { scratch: 0 }] },
        { program: gatherProgram(flat, indices, y!, axis ?? 0), tensors: [{ input: 0 }, { scratch: 0 }, { output: 0 }] },
      ],
    };
  },
};

export const kernels: Record<string, GpuKernel> = { NonZero: nonZero, Compress: compress };
