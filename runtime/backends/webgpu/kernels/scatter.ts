import { attrInt } from '../../../ir/graph.js';
import { scatterReduction, type ScatterReduction } from '../../../ir/ops/indexing.js';
import { normalizeAxis } from '../../../ir/shape.js';
import { dispatchLinear, sizeOfShape, stridesFor, type GpuKernel, type GpuTensorInfo, type ProgramCall, type ProgramSpec } from '../program.js';
import { computeTypeOf } from '../storage.js';

/**
 * ScatterND-18 and ScatterElements-18 without atomics (WGSL has no float atomics):
 * - With a reduction: one invocation per output element starts from data and folds in, in order, the updates
 *   that could land on it: for ScatterElements the K candidates along `axis` (only those share its other
 *   coordinates; O(size * K)), for ScatterND every index tuple (O(size * tuples)). Deterministic, and equal to the
 *   CPU reference even for duplicate indices.
 * - 'none' (KV-cache updates, masks): a copy of data, then one invocation per update element writes it
 *   (O(size + updates)). Duplicate indices race there; the spec leaves that case undefined.
 * Indices outside [-n, n) are skipped (the CPU reference rejects them).
 */

const WG = 64;

function combine(red: ScatterReduction, acc: string, upd: string): string {
  switch (red) {
    case 'none': return upd;
    case 'add': return `${acc} + ${upd}`;
    case 'mul': return `${acc} * ${upd}`;
    case 'max': return `max(${acc}, ${upd})`;
    case 'min': return `min(${acc}, ${upd})`;
  }
}

function scatterElementsProgram(x: GpuTensorInfo, idx: GpuTensorInfo, upd: GpuTensorInfo, y: GpuTensorInfo, axis: number, red: ScatterReduction): ProgramSpec {
  const r = x.shape.length;
  const size = sizeOfShape(x.shape);
  return {
    key: `scatter-elements:${red}:r${r}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'indices', type: idx.storage }, { name: 'updates', type: upd.storage }, { name: 'y', type: y.storage }],
    uniforms: [
      { name: 'size', type: 'u32' }, { name: 'axis', type: 'u32' }, { name: 'axis_len', type: 'i32' }, { name: 'count', type: 'u32' },
      { name: 'shape', type: 'u32', length: r }, { name: 'idx_shape', type: 'u32', length: r }, { name: 'idx_strides', type: 'u32', length: r },
    ],
    workgroupSize: [WG, 1, 1],
    source(b) {
      const T = computeTypeOf(y.storage);
      const lines = [b.linearIndex('u.size'), `var c = ${b.coordsFn('out_coords', 'shape', r)}(index);`, 'var base = 0u;'];
      // Other coordinates past the indices' extent receive no update; the axis' own entry is never compared.
      for (let d = 0; d < r; d++) {
        lines.push(`if (${d}u != u.axis) {`, `  if (c[${d}] >= u.idx_shape_${d}) { ${b.store('y', 'index', b.load('x', 'index'))} return; }`, `  base = base + c[${d}] * u.idx_strides_${d};`, '}');
      }
      const stride = Array.from({ length: r }, (_, d) => `select(0u, u.idx_strides_${d}, u.axis == ${d}u)`).join(' + ');
      lines.push(
        `let step = ${stride};`,
        'let own = i32(c[u.axis]);',
        `var acc: ${T} = ${b.load('x', 'index')};`,
        'for (var j = 0u; j < u.count; j = j + 1u) {',
        `  let p = base + j * step;`,
        `  var v = i32(${b.load('indices', 'p')});`,
        '  v = select(v, v + u.axis_len, v < 0);',
        `  if (v == own) { acc = ${combine(red, 'acc', b.load('updates', 'p'))}; }`,
        '}',
        b.store('y', 'index', 'acc'),
      );
      b.main(lines.join('\n  '));
    },
    run() {
      return {
        workgroups: dispatchLinear(size, WG),
        uniforms: { size, axis, axis_len: x.shape[axis]!, count: idx.shape[axis]!, shape: x.shape, idx_shape: idx.shape, idx_strides: stridesFor(idx.shape) },
      };
    },
  };
}

/** ScatterElements 'none', second pass: update p goes to data at p's coordinates with the axis one replaced. */
function scatterElementsWriteProgram(x: GpuTensorInfo, idx: GpuTensorInfo, upd: GpuTensorInfo, y: GpuTensorInfo, axis: number): ProgramSpec {
  const r = x.shape.length;
  const count = sizeOfShape(idx.shape);
  const xs = stridesFor(x.shape);
  return {
    key: `scatter-elements-write:r${r}`,
    bindings: [{ name: 'indices', type: idx.storage }, { name: 'updates', type: upd.storage }, { name: 'y', type: y.storage }],
    uniforms: [
      { name: 'count', type: 'u32' }, { name: 'axis_len', type: 'i32' }, { name: 'axis_stride', type: 'u32' },
      { name: 'idx_shape', type: 'u32', length: r }, { name: 'x_strides', type: 'u32', length: r },
    ],
    workgroupSize: [WG, 1, 1],
    source(b) {
      b.main(`${b.linearIndex('u.count')}
  let c = ${b.coordsFn('idx_coords', 'idx_shape', r)}(index);
  var v = i32(${b.load('indices', 'index')});
  v = select(v, v + u.axis_len, v < 0);
  if (v < 0 || v >= u.axis_len) { return; }
  ${b.store('y', `${b.offset('c', 'x_strides', r)} + u32(v) * u.axis_stride`, b.load('updates', 'index'))}`);
    },
    run() {
      // The axis' own stride is applied to the index, so its coordinate contributes nothing.
      return { workgroups: dispatchLinear(count, WG), uniforms: { count, axis_len: x.shape[axis]!, axis_stride: xs[axis]!, idx_shape: idx.shape, x_strides: xs.map((s, d) => (d === axis ? 0 : s)) } };
    },
  };
}

const scatterElements: GpuKernel = {
  plan(node, [x, idx, upd], [y]) {
    const axis = normalizeAxis(attrInt(node, 'axis', 0), x!.shape.length);
    const red = scatterReduction(node);
    if (sizeOfShape(x!.shape) === 0) return { calls: [] };
    if (red !== 'none') {
      return { calls: [{ program: scatterElementsProgram(x!, idx!, upd!, y!, axis, red), tensors: [{ input: 0 }, { input: 1 }, { input: 2 }, { output: 0 }] }] };
    }
    const calls: ProgramCall[] = [{ program: copyProgram(x!, y!), tensors: [{ input: 0 }, { output: 0 }] }];
    if (sizeOfShape(idx!.shape) > 0) calls.push({ program: scatterElementsWriteProgram(x!, idx!, upd!, y!, axis), tensors: [{ input: 1 }, { input: 2 }, { output: 0 }] });
    return { calls };
  },
};

/** ScatterND uniforms shared by both forms: per indexed dim its size and its stride in slices. */
interface NdGeometry {
  k: number;
  slice: number;
  tuples: number;
  dims: number[];
  strides: number[];
}

function ndGeometry(x: GpuTensorInfo, idx: GpuTensorInfo): NdGeometry {
  const r = x.shape.length;
  const q = idx.shape.length;
  const k = idx.shape[q - 1]!;
  const slice = sizeOfShape(x.shape.slice(k));
  const xs = stridesFor(x.shape);
  return {
    k,
    slice,
    tuples: sizeOfShape(idx.shape.slice(0, q - 1)),
    dims: Array.from({ length: r }, (_, j) => (j < k ? x.shape[j]! : 1)),
    strides: Array.from({ length: r }, (_, j) => (j < k ? xs[j]! / slice : 0)),
  };
}

const ndUniforms = (r: number) => [
  { name: 'size', type: 'u32' as const }, { name: 'slice', type: 'u32' as const }, { name: 'tuples', type: 'u32' as const }, { name: 'k', type: 'u32' as const },
  { name: 'dims', type: 'i32' as const, length: r }, { name: 'strides', type: 'u32' as const, length: r },
];

/** Statements resolving tuple `t`'s K indices to a flat slice number `prefix` (valid = false when one is out of range). */
function tuplePrefix(b: Parameters<ProgramSpec['source']>[0], r: number): string {
  const lines = ['var prefix = 0u;', 'var valid = true;'];
  for (let j = 0; j < r; j++) {
    lines.push(
      `if (${j}u < u.k) {`,
      `  var v = i32(${b.load('indices', `t * u.k + ${j}u`)});`,
      `  v = select(v, v + u.dims_${j}, v < 0);`,
      `  valid = valid && v >= 0 && v < u.dims_${j};`,
      `  prefix = prefix + u32(max(v, 0)) * u.strides_${j};`,
      '}',
    );
  }
  return lines.join('\n  ');
}

/** ScatterND with a reduction: output element (prefix, s) folds in updates[t, s] of every tuple t naming prefix. */
function scatterNdGatherProgram(x: GpuTensorInfo, idx: GpuTensorInfo, upd: GpuTensorInfo, y: GpuTensorInfo, red: ScatterReduction, g: NdGeometry): ProgramSpec {
  const r = x.shape.length;
  const size = sizeOfShape(x.shape);
  return {
    key: `scatter-nd:${red}:r${r}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'indices', type: idx.storage }, { name: 'updates', type: upd.storage }, { name: 'y', type: y.storage }],
    uniforms: ndUniforms(r),
    workgroupSize: [WG, 1, 1],
    source(b) {
      const T = computeTypeOf(y.storage);
      b.main(`${b.linearIndex('u.size')}
  let s = index % u.slice;
  let own = index / u.slice;
  var acc: ${T} = ${b.load('x', 'index')};
  for (var t = 0u; t < u.tuples; t = t + 1u) {
  ${tuplePrefix(b, r)}
  if (valid && prefix == own) { acc = ${combine(red, 'acc', b.load('updates', 't * u.slice + s'))}; }
  }
  ${b.store('y', 'index', 'acc')}`);
    },
    run() {
      return { workgroups: dispatchLinear(size, WG), uniforms: { size, slice: g.slice, tuples: g.tuples, k: g.k, dims: g.dims, strides: g.strides } };
    },
  };
}

function copyProgram(x: GpuTensorInfo, y: GpuTensorInfo): ProgramSpec {
  const size = sizeOfShape(x.shape);
  return {
    key: 'scatter-copy',
    bindings: [{ name: 'x', type: x.storage }, { name: 'y', type: y.storage }],
    uniforms: [{ name: 'size', type: 'u32' }],
    workgroupSize: [WG, 1, 1],
    source(b) {
      b.main(`${b.linearIndex('u.size')}
  ${b.store('y', 'index', b.load('x', 'index'))}`);
    },
    run() {
      return { workgroups: dispatchLinear(size, WG), uniforms: { size } };
    },
  };
}

/** ScatterND 'none', second pass: update element (t, s) is written to its slice. */
function scatterNdWriteProgram(x: GpuTensorInfo, idx: GpuTensorInfo, upd: GpuTensorInfo, y: GpuTensorInfo, g: NdGeometry): ProgramSpec {
  const r = x.shape.length;
  const size = g.tuples * g.slice;
  return {
    key: `scatter-nd-write:r${r}`,
    bindings: [{ name: 'indices', type: idx.storage }, { name: 'updates', type: upd.storage }, { name: 'y', type: y.storage }],
    uniforms: ndUniforms(r),
    workgroupSize: [WG, 1, 1],
    source(b) {
      b.main(`${b.linearIndex('u.size')}
  let t = index / u.slice;
  ${tuplePrefix(b, r)}
  if (!valid) { return; }
  ${b.store('y', 'prefix * u.slice + index % u.slice', b.load('updates', 'index'))}`);
    },
    run() {
      return { workgroups: dispatchLinear(size, WG), uniforms: { size, slice: g.slice, tuples: g.tuples, k: g.k, dims: g.dims, strides: g.strides } };
    },
  };
}

const scatterNd: GpuKernel = {
  plan(node, [x, idx, upd], [y]) {
    const red = scatterReduction(node);
    if (sizeOfShape(x!.shape) === 0) return { calls: [] };
    const g = ndGeometry(x!, idx!);
    if (red !== 'none') {
      return { calls: [{ program: scatterNdGatherProgram(x!, idx!, upd!, y!, red, g), tensors: [{ input: 0 }, { input: 1 }, { input: 2 }, { output: 0 }] }] };
    }
    const calls: ProgramCall[] = [{ program: copyProgram(x!, y!), tensors: [{ input: 0 }, { output: 0 }] }];
    if (g.tuples * g.slice > 0) calls.push({ program: scatterNdWriteProgram(x!, idx!, upd!, y!, g), tensors: [{ input: 1 }, { input: 2 }, { output: 0 }] });
    return { calls };
  },
};

export const kernels: Record<string, GpuKernel> = { ScatterND: scatterNd, ScatterElements: scatterElements };
