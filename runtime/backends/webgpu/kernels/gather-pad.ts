import { toNumbers } from '../../../ir/dtype.js';
import { attrInt } from '../../../ir/graph.js';
import { padMode, type PadMode } from '../../../ir/ops/movement.js';
import { resolvePads } from '../../../ir/ops/data-params.js';
import { normalizeAxis } from '../../../ir/shape.js';
import { dispatchLinear, sizeOfShape, stridesFor, type GpuKernel, type GpuTensorInfo, type KernelPlan, type ProgramSpec } from '../program.js';
import { computeTypeOf } from '../storage.js';
import { constInts } from './copy.js';

/**
 * Index-driven data movement: Gather-13 and GatherElements-13 (indices read on the GPU, so they may be computed by
 * the model), and Pad-21 (constant, reflect, edge, wrap; negative pads crop). One invocation per output element.
 * An index outside [-n, n) reads as zero: a shader cannot throw, and the CPU reference rejects such models.
 */

const WORKGROUP = 64;

function single(program: ProgramSpec, inputs: number[], size: number): KernelPlan {
  if (size === 0) return { calls: [] };
  return { calls: [{ program, tensors: [...inputs.map((input) => ({ input })), { output: 0 }] }] };
}

/** Gather: the output is [outer, J, inner]; element (o, j, i) reads data[o, idx[j] (+ n if negative), i]. */
export function gatherProgram(x: GpuTensorInfo, idx: GpuTensorInfo, y: GpuTensorInfo, axis: number): ProgramSpec {
  const outer = sizeOfShape(x.shape.slice(0, axis));
  const n = x.shape[axis]!;
  const inner = sizeOfShape(x.shape.slice(axis + 1));
  const count = sizeOfShape(idx.shape);
  const size = outer * count * inner;
  return {
    key: 'gather',
    bindings: [{ name: 'x', type: x.storage }, { name: 'indices', type: idx.storage }, { name: 'y', type: y.storage }],
    uniforms: [{ name: 'size', type: 'u32' }, { name: 'inner', type: 'u32' }, { name: 'index_count', type: 'u32' }, { name: 'axis_len', type: 'i32' }],
    workgroupSize: [WORKGROUP, 1, 1],
    source(b) {
      const T = computeTypeOf(y.storage);
      b.main(`${b.linearIndex('u.size')}
  let i = index % u.inner;
  let rest = index / u.inner;
  let j = rest % u.index_count;
  let o = rest / u.index_count;
  var k = i32(${b.load('indices', 'j')});
  k = select(k, k + u.axis_len, k < 0);
  if (k < 0 || k >= u.axis_len) { ${b.store('y', 'index', `${T}(0)`)} return; }
  ${b.store('y', 'index', b.load('x', '(o * u32(u.axis_len) + u32(k)) * u.inner + i'))}`);
    },
    run() {
      return { workgroups: dispatchLinear(size, WORKGROUP), uniforms: { size, inner, index_count: count, axis_len: n } };
    },
  };
}

const gather: GpuKernel = {
  plan(node, [x, idx], [y]) {
    const axis = normalizeAxis(attrInt(node, 'axis', 0), x!.shape.length);
    return single(gatherProgram(x!, idx!, y!, axis), [0, 1], sizeOfShape(y!.shape));
  },
};

/** GatherElements: output coords c read data at c with c[axis] replaced by the index there. */
function gatherElementsProgram(x: GpuTensorInfo, idx: GpuTensorInfo, y: GpuTensorInfo, axis: number): ProgramSpec {
  const rank = idx.shape.length;
  const size = sizeOfShape(idx.shape);
  const xs = stridesFor(x.shape);
  return {
    key: `gather-elements:r${rank}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'indices', type: idx.storage }, { name: 'y', type: y.storage }],
    uniforms: [
      { name: 'size', type: 'u32' },
      { name: 'shape', type: 'u32', length: rank },
      { name: 'x_strides', type: 'u32', length: rank },
      { name: 'axis_len', type: 'i32' },
      { name: 'axis_stride', type: 'u32' },
    ],
    workgroupSize: [WORKGROUP, 1, 1],
    source(b) {
      const T = computeTypeOf(y.storage);
      b.main(`${b.linearIndex('u.size')}
  let coords = ${b.coordsFn('out_coords', 'shape', rank)}(index);
  var k = i32(${b.load('indices', 'index')});
  k = select(k, k + u.axis_len, k < 0);
  if (k < 0 || k >= u.axis_len) { ${b.store('y', 'index', `${T}(0)`)} return; }
  ${b.store('y', 'index', b.load('x', `${b.offset('coords', 'x_strides', rank)} + u32(k) * u.axis_stride`))}`);
    },
    run() {
      return {
        workgroups: dispatchLinear(size, WORKGROUP),
        // The axis' own stride is applied to the index, so its coordinate contributes nothing.
        uniforms: { size, shape: idx.shape, x_strides: xs.map((s, d) => (d === axis ? 0 : s)), axis_len: x.shape[axis]!, axis_stride: xs[axis]! },
      };
    },
  };
}

const gatherElements: GpuKernel = {
  plan(node, [x, idx], [y]) {
    const axis = normalizeAxis(attrInt(node, 'axis', 0), x!.shape.length);
    return single(gatherElementsProgram(x!, idx!, y!, axis), [0, 1], sizeOfShape(y!.shape));
  },
};

/**
 * Pad: per axis, output coordinate j - before maps into the kept (cropped) range [lo, lo + len) by the mode:
 * constant (outside reads the value), edge (clamp), wrap (modulo), reflect (mirror without repeating the edge).
 */
function padProgram(x: GpuTensorInfo, y: GpuTensorInfo, mode: PadMode, begin: number[], end: number[], value: number): ProgramSpec {
  const rank = x.shape.length;
  const size = sizeOfShape(y.shape);
  const T = computeTypeOf(y.storage);
  const valueType = T === 'f16' ? 'f32' : T;
  const lo = begin.map((b) => Math.max(0, -b));
  const len = x.shape.map((n, d) => n - lo[d]! - Math.max(0, -end[d]!));
  return {
    key: `pad:${mode}:r${rank}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'y', type: y.storage }],
    uniforms: [
      { name: 'size', type: 'u32' },
      { name: 'out_shape', type: 'u32', length: rank },
      { name: 'x_strides', type: 'u32', length: rank },
      { name: 'before', type: 'i32', length: rank },
      { name: 'lo', type: 'i32', length: rank },
      { name: 'len', type: 'i32', length: rank },
      { name: 'value', type: valueType },
    ],
    workgroupSize: [WORKGROUP, 1, 1],
    source(b) {
      const lines = [b.linearIndex('u.size'), `let coords = ${b.coordsFn('out_coords', 'out_shape', rank)}(index);`, 'var src = 0u;'];
      for (let d = 0; d < rank; d++) {
        const n = `u.len_${d}`;
        lines.push(`{ // axis ${d}`, `  var j = i32(coords[${d}]) - u.before_${d};`);
        if (mode === 'constant') lines.push(`  if (j < 0 || j >= ${n}) { ${b.store('y', 'index', `${T}(u.value)`)} return; }`);
        else if (mode === 'edge') lines.push(`  j = clamp(j, 0, ${n} - 1);`);
        else if (mode === 'wrap') lines.push(`  j = ((j % ${n}) + ${n}) % ${n};`);
        else {
          lines.push(
            `  let period = max(2 * (${n} - 1), 1);`,
            '  let m = ((j % period) + period) % period;',
            `  j = select(select(period - m, m, m < ${n}), 0, ${n} == 1);`,
          );
        }
        lines.push(`  src = src + u32(j + u.lo_${d}) * u.x_strides_${d};`, '}');
      }
      lines.push(b.store('y', 'index', b.load('x', 'src')));
      b.main(lines.join('\n  '));
    },
    run() {
      return {
        workgroups: dispatchLinear(size, WORKGROUP),
        uniforms: { size, out_shape: y.shape, x_strides: stridesFor(x.shape), before: begin.map((v) => Math.max(0, v)), lo, len, value },
      };
    },
  };
}

const pad: GpuKernel = {
  hostInputs: [1, 2, 3],
  plan(node, [x, pads, cv, axes], [y]) {
    const mode = padMode(node);
    const { begin, end } = resolvePads(x!.shape.length, constInts(pads, 'Pad', 'pads')!, constInts(axes, 'Pad', 'axes'));
    let value = 0;
    if (cv) {
      const v = constInts(cv, 'Pad', 'constant_value') && toNumbers(cv.value!.dtype, cv.value!.data);
      value = v && v.length ? v[0]! : 0;
    }
    return single(padProgram(x!, y!, mode, begin, end, value), [0], sizeOfShape(y!.shape));
  },
};

export const kernels: Record<string, GpuKernel> = { Gather: gather, GatherElements: gatherElements, Pad: pad };
