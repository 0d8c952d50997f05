import { InternalError } from '../../../errors.js';
import { allocStorage, toNumbers } from '../../../ir/dtype.js';
import { compressAxis, schemas } from '../../../ir/ops/data-dependent.js';
import { hostTensor, stridesOf, type HostTensor } from '../../../ir/tensor.js';
import { cells, outputsOf } from '../data-index.js';
import type { CpuKernel, CpuKernelContext } from '../kernel.js';

/**
 * NonZero-13 and Compress-11, whose output size is the number of selected elements. When the WebGPU lowering's
 * `count` input is present (tests run the lowered graph on the CPU too) it must equal the count found.
 */

function checkCount(node: { op: string; name: string }, given: HostTensor | undefined, found: number): void {
  if (given && Number(toNumbers(given.dtype, given.data)[0]) !== found) {
    throw new InternalError(`${node.op} node '${node.name}': count input says ${Number(toNumbers(given.dtype, given.data)[0])}, the data has ${found}.`);
  }
}

/** Row-major coordinates of every non-zero element, as an int64 [rank, count] tensor. */
const nonZero: CpuKernel = (inputs, node, ctx: CpuKernelContext) => {
  const [x, given] = inputs as [HostTensor, HostTensor | undefined];
  const v = toNumbers(x.dtype, x.data);
  const hits: number[] = [];
  for (let i = 0; i < v.length; i++) if (v[i] !== 0) hits.push(i);
  checkCount(node, given, hits.length);
  const [o] = outputsOf(schemas.NonZero, node, [x, hostTensor('int64', [], BigInt64Array.of(BigInt(hits.length)))], ctx);
  const rank = x.shape.length;
  const strides = stridesOf(x.shape);
  const out = new BigInt64Array(rank * hits.length);
  hits.forEach((flat, k) => {
    for (let d = 0; d < rank; d++) out[d * hits.length + k] = BigInt(Math.floor(flat / strides[d]!) % x.shape[d]!);
  });
  return [hostTensor('int64', o!.shape, out)];
};

/** The slices of `input` along `axis` (or its elements, flattened) where `condition` is true. */
const compress: CpuKernel = (inputs, node, ctx: CpuKernelContext) => {
  const [x, cond, given] = inputs as [HostTensor, HostTensor, HostTensor | undefined];
  const c = toNumbers(cond.dtype, cond.data);
  const picked: number[] = [];
  for (let i = 0; i < c.length; i++) if (c[i]) picked.push(i);
  checkCount(node, given, picked.length);
  const [o] = outputsOf(schemas.Compress, node, [x, cond, hostTensor('int64', [], BigInt64Array.of(BigInt(picked.length)))], ctx);
  const axis = compressAxis(node, x.shape.length);
  const src = cells(x.data);
  const data = allocStorage(x.dtype, o!.shape.reduce((a, b) => a * b, 1));
  const dst = cells(data);
  const outer = axis === undefined ? 1 : x.shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const n = axis === undefined ? src.length : x.shape[axis]!;
  const inner = axis === undefined ? 1 : x.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  let k = 0;
  for (let a = 0; a < outer; a++) for (const j of picked) for (let i = 0; i < inner; i++) dst[k++] = src[(a * n + j) * inner + i];
  return [hostTensor(x.dtype, o!.shape, data)];
};

export const kernels: Record<string, CpuKernel> = { NonZero: nonZero, Compress: compress };
