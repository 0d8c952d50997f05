import { toNumbers } from '../../../ir/dtype.js';
import { attrInt } from '../../../ir/graph.js';
import { uniqueView } from '../../../ir/ops/unique.js';
import { dispatchLinear, GpuUnsupported, stridesFor, type GpuKernel, type GpuTensorInfo, type ProgramCall, type ProgramSpec, type TensorSlot } from '../program.js';
import { gpuSupportsDType } from '../storage.js';
import type { ShaderBuilder } from '../wgsl/builder.js';
import { copyProgram, gatherView } from './copy.js';
import { gatherProgram } from './gather-pad.js';

/**
 * Unique on the GPU, once U (the number of distinct slices) is known at plan time: the WebGPU lowering computes
 * it as ReduceSum(UniqueFirst(X)) and the staged plan reads it back (lower-counts.ts). X is seen as n slices
 * [outer, n, inner] (n elements when flattened), compared element by element in row-major order. Every pass is
 * one invocation per slice and O(n) slice comparisons, O(n^2) in all: no sort, no atomics, so results are exact
 * and in the order the spec asks. Fine for the label and token sets Unique sees in models; not for millions.
 *  1. first: flag[i] = 1 when no earlier slice equals slice i (UniqueFirst's kernel too);
 *  2. rank: for a first occurrence i, its position r in Y (sorted: distinct slices smaller than it; unsorted:
 *     first occurrences before it); reps[r] = i, counts[r] = slices equal to it, rank_at[i] = r;
 *  3. inverse: for every slice j, rank_at of the first slice equal to it;
 *  4. Y gathers X's slices at reps (Gather's program); indices and counts are copies of reps and the counts.
 */

const WORKGROUP = 64;

function sliceCompare(b: ShaderBuilder): void {
  b.helper(`fn slice_cmp(a: u32, c: u32) -> i32 {
  for (var o = 0u; o < u.outer; o++) {
    for (var i = 0u; i < u.inner; i++) {
      let va = ${b.load('x', '(o * u.n + a) * u.inner + i')};
      let vc = ${b.load('x', '(o * u.n + c) * u.inner + i')};
      if (va < vc) { return -1; }
      if (va > vc) { return 1; }
    }
  }
  return 0;
}`);
}

function slicesProgram(key: string, x: GpuTensorInfo, others: string[], view: { outer: number; n: number; inner: number }, body: string, extra: Record<string, number> = {}): ProgramSpec {
  return {
    key: `unique:${key}`,
    bindings: [{ name: 'x', type: x.storage }, ...others.map((name) => ({ name, type: 'i32' as const }))],
    uniforms: ['outer', 'n', 'inner', ...Object.keys(extra)].map((name) => ({ name, type: 'u32' as const })),
    workgroupSize: [WORKGROUP, 1, 1],
    source(b) {
      sliceCompare(b);
      b.main(`${b.linearIndex('u.n')}\n  ${body}`);
    },
    run() {
      return { workgroups: dispatchLinear(view.n, WORKGROUP), uniforms: { outer: view.outer, n: view.n, inner: view.inner, ...extra } };
    },
  };
}

const FIRST = `var first = 1;
  for (var k = 0u; k < index; k++) { if (slice_cmp(k, index) == 0) { first = 0; break; } }
  flag[index] = first;`;

function rankBody(sorted: boolean): string {
  const before = sorted ? 'slice_cmp(k, index) < 0' : 'k < index';
  return `if (flag[index] == 0) { return; }
  var r = 0u;
  var same = 0;
  for (var k = 0u; k < u.n; k++) {
    if (flag[k] != 0 && ${before}) { r++; }
    if (slice_cmp(k, index) == 0) { same++; }
  }
  reps[r] = i32(index);
  counts[r] = same;
  rank_at[index] = i32(r);`;
}

const INVERSE = `var f = index;
  for (var k = 0u; k < index; k++) { if (slice_cmp(k, index) == 0) { f = k; break; } }
  inverse[index] = rank_at[f];`;

const uniqueFirst: GpuKernel = {
  plan(node, [x], [flags]) {
    if (!gpuSupportsDType(x!.dtype)) throw new GpuUnsupported(`Unique of ${x!.dtype} has no WebGPU kernel`);
    const view = uniqueView(node, x!.shape);
    if (!view.n) return { calls: [] };
    return { calls: [{ program: slicesProgram('first', x!, ['flag'], view, FIRST), tensors: [{ input: 0 }, { output: 0 }] }] };
  },
};

const unique: GpuKernel = {
  hostInputs: [1],
  plan(node, [x, c], [y, indices, inverse, counts]) {
    if (!gpuSupportsDType(x!.dtype)) throw new GpuUnsupported(`Unique of ${x!.dtype} has no WebGPU kernel`);
    if (!c?.value) throw new GpuUnsupported('Unique needs its distinct count at plan time (the WebGPU lowering computes it)');
    const u = Number(toNumbers(c.value.dtype, c.value.data)[0]);
    const view = uniqueView(node, x!.shape);
    if (!view.n || !u) return { calls: [] };
    const sorted = attrInt(node, 'sorted', 1) !== 0;
    const i32 = (n: number): GpuTensorInfo => ({ dtype: 'int32', shape: [n], storage: 'i32' });
    // scratch: 0 flags [n], 1 reps [U], 2 counts [U], 3 rank_at [n], 4 inverse [n] when the output is omitted
    const scratch = [i32(view.n), i32(u), i32(u), i32(view.n), i32(view.n)];
    const inv: TensorSlot = inverse ? { output: 2 } : { scratch: 4 };
    const calls: ProgramCall[] = [
      { program: slicesProgram('first', x!, ['flag'], view, FIRST), tensors: [{ input: 0 }, { scratch: 0 }] },
      { program: slicesProgram(`rank:${sorted ? 'sorted' : 'first'}`, x!, ['flag', 'reps', 'counts', 'rank_at'], view, rankBody(sorted)), tensors: [{ input: 0 }, { scratch: 0 }, { scratch: 1 }, { scratch: 2 }, { scratch: 3 }] },
      { program: slicesProgram('inverse', x!, ['rank_at', 'inverse'], view, INVERSE), tensors: [{ input: 0 }, { scratch: 3 }, inv] },
    ];
    if (y) {
      const asSlices = { ...x!, shape: [view.outer, view.n, view.inner] };
      const ySlices = { ...y, shape: [view.outer, u, view.inner] };
      calls.push({ program: gatherProgram(asSlices, i32(u), ySlices, 1), tensors: [{ input: 0 }, { scratch: 1 }, { output: 0 }] });
    }
    const copy = (from: number, to: number, out: GpuTensorInfo) =>
      calls.push({ program: copyProgram(i32(u), out, gatherView([u], stridesFor([u]))), tensors: [{ scratch: from }, { output: to }] });
    if (indices) copy(1, 1, indices);
    if (counts) copy(2, 3, counts);
    return { scratch, calls };
  },
};

export const kernels: Record<string, GpuKernel> = { Unique: unique, UniqueFirst: uniqueFirst };
