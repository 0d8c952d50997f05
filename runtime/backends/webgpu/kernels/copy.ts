import { toNumbers } from '../../../ir/dtype.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, stridesFor, type GpuTensorInfo, type ProgramSpec } from '../program.js';

/**
 * The strided copy: every data-movement op that only moves elements by an affine map (Transpose, Slice, Concat,
 * Split, Expand, Tile, Depth/SpaceToDepth, and Reshape & co.) is one program. The host describes the copy as an
 * iteration shape with source and destination element strides and base offsets; the shader walks the iteration
 * space, one invocation per element: dst[dst_base + c . dst_strides] = src[src_base + c . src_strides].
 * Strides are signed (Slice with negative steps) and zero on broadcast dims (Expand). Size-1 dims are dropped and
 * dims that are contiguous on both sides merged on the host, so a reshape is a rank-1 copy and the shader's rank
 * is the smallest that describes the access pattern.
 */
export interface CopyView {
  shape: number[];
  src: number[];
  dst: number[];
  srcBase: number;
  dstBase: number;
}

/** Drops size-1 dims and merges neighbours that are contiguous in both source and destination. */
export function collapseView(v: CopyView): CopyView {
  const dims: { n: number; s: number; d: number }[] = [];
  v.shape.forEach((n, i) => {
    if (n === 1) return;
    const s = v.src[i]!;
    const d = v.dst[i]!;
    const prev = dims[dims.length - 1];
    if (prev && prev.s === s * n && prev.d === d * n) {
      prev.n *= n;
      prev.s = s;
      prev.d = d;
    } else dims.push({ n, s, d });
  });
  if (!dims.length) dims.push({ n: sizeOfShape(v.shape), s: 1, d: 1 });
  return { shape: dims.map((x) => x.n), src: dims.map((x) => x.s), dst: dims.map((x) => x.d), srcBase: v.srcBase, dstBase: v.dstBase };
}

/** A view reading `src` with `srcStrides` into a contiguous destination of `shape`. */
export function gatherView(shape: readonly number[], srcStrides: readonly number[], srcBase = 0): CopyView {
  return { shape: [...shape], src: [...srcStrides], dst: stridesFor(shape), srcBase, dstBase: 0 };
}

const WORKGROUP = 64;

export function copyProgram(x: GpuTensorInfo, y: GpuTensorInfo, view: CopyView): ProgramSpec {
  const v = collapseView(view);
  const rank = v.shape.length;
  const size = sizeOfShape(v.shape);
  const contiguous = stridesFor(v.shape);
  // The common cases keep the index math out of the shader: a contiguous destination, a contiguous source.
  const dstFlat = v.dstBase === 0 && v.dst.every((d, i) => d === contiguous[i]);
  const srcFlat = v.srcBase === 0 && v.src.every((s, i) => s === contiguous[i]);
  return {
    key: `copy:r${rank}:${srcFlat ? 'sflat' : 'sstrided'}:${dstFlat ? 'dflat' : 'dstrided'}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'y', type: y.storage }],
    uniforms: [
      { name: 'size', type: 'u32' },
      ...(srcFlat && dstFlat ? [] : [{ name: 'shape', type: 'u32' as const, length: rank }]),
      ...(srcFlat ? [] : [{ name: 'src_base', type: 'i32' as const }, { name: 'src_strides', type: 'i32' as const, length: rank }]),
      ...(dstFlat ? [] : [{ name: 'dst_base', type: 'i32' as const }, { name: 'dst_strides', type: 'i32' as const, length: rank }]),
    ],
    workgroupSize: [WORKGROUP, 1, 1],
    source(b) {
      const lines = [b.linearIndex('u.size')];
      if (!(srcFlat && dstFlat)) lines.push(`let coords = ${b.coordsFn('iter_coords', 'shape', rank)}(index);`);
      const at = (base: string, strides: string) =>
        `u32(${[`u.${base}`, ...Array.from({ length: rank }, (_, d) => `i32(coords[${d}]) * u.${strides}_${d}`)].join(' + ')})`;
      lines.push(`let src_index = ${srcFlat ? 'index' : at('src_base', 'src_strides')};`);
      lines.push(`let dst_index = ${dstFlat ? 'index' : at('dst_base', 'dst_strides')};`);
      lines.push(b.store('y', 'dst_index', b.load('x', 'src_index')));
      b.main(lines.join('\n  '));
    },
    run() {
      return {
        workgroups: dispatchLinear(size, WORKGROUP),
        uniforms: { size, shape: v.shape, src_base: v.srcBase, src_strides: v.src, dst_base: v.dstBase, dst_strides: v.dst },
      };
    },
  };
}

/** The integer values of a constant input (Reshape's shape, Slice's starts...), which kernels read at plan time. */
export function constInts(t: GpuTensorInfo | undefined, op: string, what: string): number[] | undefined {
  if (!t) return undefined;
  if (!t.value) throw new GpuUnsupported(`${op} needs its ${what} input to be a constant (known when the model is planned)`);
  return Array.from(toNumbers(t.value.dtype, t.value.data));
}
