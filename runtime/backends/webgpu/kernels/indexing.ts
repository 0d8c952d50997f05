import { attrInt } from '../../../ir/graph.js';
import { gatherNdBatchDims, oneHotAxis, oneHotDepthValue } from '../../../ir/ops/indexing.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, stridesFor, type GpuKernel, type GpuTensorInfo, type KernelPlan, type ProgramSpec } from '../program.js';
import { computeTypeOf } from '../storage.js';
import { constInts } from './copy.js';

/**
 * Index-driven ops that write every output element once: GatherND-13, OneHot-11, EyeLike-9 and Trilu-14. One
 * invocation per output element. Indices are read on the GPU (they may be computed by the model); an index outside
 * [-n, n) reads as zero, as in the Gather kernel (a shader cannot throw; the CPU reference rejects such models).
 */

const WG = 64;

function single(program: ProgramSpec, inputs: number[], size: number): KernelPlan {
  if (size === 0) return { calls: [] };
  return { calls: [{ program, tensors: [...inputs.map((input) => ({ input })), { output: 0 }] }] };
}

/**
 * GatherND: output element (t, s) — index tuple t, slice element s — reads data at the batch of t, plus the K
 * indices of tuple t times their dims' strides, plus s. The shader unrolls over the data rank; entries past K have
 * stride 0, so only the rank shapes the WGSL.
 */
function gatherNdProgram(x: GpuTensorInfo, idx: GpuTensorInfo, y: GpuTensorInfo, b: number): ProgramSpec {
  const r = x.shape.length;
  const q = idx.shape.length;
  const k = idx.shape[q - 1]!;
  const xs = stridesFor(x.shape);
  const size = sizeOfShape(y.shape);
  const dims = Array.from({ length: r }, (_, j) => (j < k ? x.shape[b + j]! : 1));
  const strides = Array.from({ length: r }, (_, j) => (j < k ? xs[b + j]! : 0));
  return {
    key: `gather-nd:r${r}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'indices', type: idx.storage }, { name: 'y', type: y.storage }],
    uniforms: [
      { name: 'size', type: 'u32' }, { name: 'slice', type: 'u32' }, { name: 'per_batch', type: 'u32' },
      { name: 'batch_stride', type: 'u32' }, { name: 'k', type: 'u32' },
      { name: 'dims', type: 'i32', length: r }, { name: 'strides', type: 'u32', length: r },
    ],
    workgroupSize: [WG, 1, 1],
    source(sb) {
      const T = computeTypeOf(y.storage);
      const lines = [
        sb.linearIndex('u.size'),
        'let t = index / u.slice;',
        'var off = (t / u.per_batch) * u.batch_stride + index % u.slice;',
      ];
      for (let j = 0; j < r; j++) {
        lines.push(
          `if (${j}u < u.k) {`,
          `  var v = i32(${sb.load('indices', `t * u.k + ${j}u`)});`,
          `  v = select(v, v + u.dims_${j}, v < 0);`,
          `  if (v < 0 || v >= u.dims_${j}) { ${sb.store('y', 'index', `${T}(0)`)} return; }`,
          `  off = off + u32(v) * u.strides_${j};`,
          '}',
        );
      }
      lines.push(sb.store('y', 'index', sb.load('x', 'off')));
      sb.main(lines.join('\n  '));
    },
    run() {
      return {
        workgroups: dispatchLinear(size, WG),
        uniforms: {
          size,
          slice: sizeOfShape(x.shape.slice(b + k)),
          per_batch: sizeOfShape(idx.shape.slice(b, q - 1)),
          batch_stride: sizeOfShape(x.shape.slice(b)),
          k,
          dims,
          strides,
        },
      };
    },
  };
}

const gatherNd: GpuKernel = {
  plan(node, [x, idx], [y]) {
    const b = gatherNdBatchDims(node, x!.shape.length, idx!.shape.length);
    return single(gatherNdProgram(x!, idx!, y!, b), [0, 1], sizeOfShape(y!.shape));
  },
};

/** OneHot: the output is [outer, depth, inner]; element (a, d, i) is values[1] where indices[a, i] (wrapped) is d. */
function oneHotProgram(idx: GpuTensorInfo, values: GpuTensorInfo, y: GpuTensorInfo, depth: number, inner: number): ProgramSpec {
  const size = sizeOfShape(y.shape);
  // Float indices compare as floats: a non-integral index matches no position (as in onnxruntime).
  const S = computeTypeOf(idx.storage);
  const F = S === 'f32' || S === 'f16';
  const K = F ? 'f32' : 'i32';
  return {
    key: `one-hot:${F ? 'f' : 'i'}`,
    bindings: [{ name: 'indices', type: idx.storage }, { name: 'values', type: values.storage }, { name: 'y', type: y.storage }],
    uniforms: [{ name: 'size', type: 'u32' }, { name: 'inner', type: 'u32' }, { name: 'depth', type: 'i32' }],
    workgroupSize: [WG, 1, 1],
    source(b) {
      b.main(`${b.linearIndex('u.size')}
  let i = index % u.inner;
  let d = ${K}((index / u.inner) % u32(u.depth));
  let a = index / (u.inner * u32(u.depth));
  var k = ${K}(${b.load('indices', 'a * u.inner + i')});
  k = select(k, k + ${K}(u.depth), k < ${K}(0));
  ${b.store('y', 'index', `select(${b.load('values', '0u')}, ${b.load('values', '1u')}, k == d)`)}`);
    },
    run() {
      return { workgroups: dispatchLinear(size, WG), uniforms: { size, inner, depth } };
    },
  };
}

const oneHot: GpuKernel = {
  hostInputs: [1],
  plan(node, [idx, depthIn, values], [y]) {
    if (!depthIn?.value) throw new GpuUnsupported('OneHot needs its depth input to be a constant (known when the model is planned)');
    if (values!.dtype !== y!.dtype) throw new GpuUnsupported('OneHot values and output types differ');
    const depth = oneHotDepthValue(depthIn.value);
    const axis = oneHotAxis(node, idx!.shape.length);
    return single(oneHotProgram(idx!, values!, y!, depth, sizeOfShape(idx!.shape.slice(axis))), [0, 2], sizeOfShape(y!.shape));
  },
};

/** EyeLike: ones where col - row = k. Reads nothing: the input only gives the shape. */
function eyeLikeProgram(y: GpuTensorInfo, k: number): ProgramSpec {
  const size = sizeOfShape(y.shape);
  return {
    key: 'eye-like',
    bindings: [{ name: 'y', type: y.storage }],
    uniforms: [{ name: 'size', type: 'u32' }, { name: 'cols', type: 'u32' }, { name: 'k', type: 'i32' }],
    workgroupSize: [WG, 1, 1],
    source(b) {
      const T = computeTypeOf(y.storage);
      b.main(`${b.linearIndex('u.size')}
  let diag = i32(index % u.cols) - i32(index / u.cols) == u.k;
  ${b.store('y', 'index', `select(${T}(0), ${T}(1), diag)`)}`);
    },
    run() {
      return { workgroups: dispatchLinear(size, WG), uniforms: { size, cols: y.shape[1]!, k } };
    },
  };
}

const eyeLike: GpuKernel = {
  plan(node, _inputs, [y]) {
    const size = sizeOfShape(y!.shape);
    return size === 0 ? { calls: [] } : { calls: [{ program: eyeLikeProgram(y!, attrInt(node, 'k', 0)), tensors: [{ output: 0 }] }] };
  },
};

/** Trilu: keeps col - row >= k (upper) or <= k (lower) in every matrix of the last two dims, zero elsewhere. */
function triluProgram(x: GpuTensorInfo, y: GpuTensorInfo, upper: boolean, k: number): ProgramSpec {
  const size = sizeOfShape(x.shape);
  const r = x.shape.length;
  return {
    key: `trilu:${upper ? 'upper' : 'lower'}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'y', type: y.storage }],
    uniforms: [{ name: 'size', type: 'u32' }, { name: 'rows', type: 'u32' }, { name: 'cols', type: 'u32' }, { name: 'k', type: 'i32' }],
    workgroupSize: [WG, 1, 1],
    source(b) {
      const T = computeTypeOf(y.storage);
      b.main(`${b.linearIndex('u.size')}
  let diff = i32(index % u.cols) - i32((index / u.cols) % u.rows);
  ${b.store('y', 'index', `select(${T}(0), ${b.load('x', 'index')}, diff ${upper ? '>=' : '<='} u.k)`)}`);
    },
    run() {
      // k is clamped so that it fits i32 (any |k| past the matrix keeps all or nothing alike).
      const lim = x.shape[r - 1]! + x.shape[r - 2]! + 1;
      return { workgroups: dispatchLinear(size, WG), uniforms: { size, rows: x.shape[r - 2]!, cols: x.shape[r - 1]!, k: Math.max(-lim, Math.min(lim, k)) } };
    },
  };
}

const trilu: GpuKernel = {
  hostInputs: [1],
  plan(node, [x, kIn], [y]) {
    const k = constInts(kIn, 'Trilu', 'k')?.[0] ?? 0;
    return single(triluProgram(x!, y!, attrInt(node, 'upper', 1) !== 0, k), [0], sizeOfShape(y!.shape));
  },
};

export const kernels: Record<string, GpuKernel> = { GatherND: gatherNd, OneHot: oneHot, EyeLike: eyeLike, Trilu: trilu };
