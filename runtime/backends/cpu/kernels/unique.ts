import { InternalError } from '../../../errors.js';
import { attrInt } from '../../../ir/graph.js';
import { allocStorage, toNumbers } from '../../../ir/dtype.js';
import { uniqueView } from '../../../ir/ops/unique.js';
import { hostTensor, type HostTensor } from '../../../ir/tensor.js';
import { cells } from '../data-index.js';
import type { CpuKernel } from '../kernel.js';

/**
 * Unique-11 and the WebGPU lowering's UniqueFirst (ir/ops/unique.ts). Slices are compared element by element in
 * row-major order over [outer, inner], which is also their lexicographic order when sorted.
 */

interface Slices {
  n: number;
  compare(a: number, b: number): number;
}

function slicesOf(x: HostTensor, view: ReturnType<typeof uniqueView>): Slices {
  const v = toNumbers(x.dtype, x.data);
  const { outer, n, inner } = view;
  return {
    n,
    compare(a, b) {
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < inner; i++) {
          const d = v[(o * n + a) * inner + i]! - v[(o * n + b) * inner + i]!;
          if (d) return d < 0 ? -1 : 1;
        }
      }
      return 0;
    },
  };
}

/** For each slice, the index of its first occurrence. */
function firstOccurrences(s: Slices): number[] {
  const first: number[] = [];
  for (let j = 0; j < s.n; j++) {
    let f = j;
    for (let k = 0; k < j; k++) {
      if (s.compare(k, j) === 0) {
        f = first[k]!;
        break;
      }
    }
    first.push(f);
  }
  return first;
}

const unique: CpuKernel = (inputs, node) => {
  const x = inputs[0]!;
  const view = uniqueView(node, x.shape);
  const s = slicesOf(x, view);
  const first = firstOccurrences(s);
  let reps = first.filter((f, j) => f === j);
  if (attrInt(node, 'sorted', 1)) reps = [...reps].sort((a, b) => s.compare(a, b));
  const given = inputs[1];
  if (given && Number(given.data[0]) !== reps.length) throw new InternalError(`Unique node '${node.name}': count input says ${Number(given.data[0])}, the data has ${reps.length}.`);
  const pos = new Map(reps.map((r, k) => [r, k]));
  const u = reps.length;
  const { outer, n, inner, axis } = view;
  const src = cells(x.data);
  const y = allocStorage(x.dtype, outer * u * inner);
  const dst = cells(y);
  for (let o = 0; o < outer; o++) for (let k = 0; k < u; k++) for (let i = 0; i < inner; i++) dst[(o * u + k) * inner + i] = src[(o * n + reps[k]!) * inner + i];
  const counts = new BigInt64Array(u);
  const inverse = BigInt64Array.from(first, (f) => {
    const k = pos.get(f)!;
    counts[k]!++;
    return BigInt(k);
  });
  const yShape = axis === undefined ? [u] : x.shape.map((d, i) => (i === axis ? u : d));
  return [hostTensor(x.dtype, yShape, y), hostTensor('int64', [u], BigInt64Array.from(reps, BigInt)), hostTensor('int64', [n], inverse), hostTensor('int64', [u], counts)];
};

const uniqueFirst: CpuKernel = (inputs, node) => {
  const x = inputs[0]!;
  const first = firstOccurrences(slicesOf(x, uniqueView(node, x.shape)));
  return [hostTensor('int64', [first.length], BigInt64Array.from(first, (f, j) => (f === j ? 1n : 0n)))];
};

export const kernels: Record<string, CpuKernel> = { Unique: unique, UniqueFirst: uniqueFirst };
