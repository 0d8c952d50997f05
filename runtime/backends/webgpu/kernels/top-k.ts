import { attrInt } from '../../../ir/graph.js';
import { normalizeAxis } from '../../../ir/shape.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, type GpuKernel, type GpuTensorInfo, type ProgramSpec } from '../program.js';
import { computeTypeOf } from '../storage.js';
import { convert } from '../wgsl/builder.js';
import { constInts } from './copy.js';
import { kindOf } from './elementwise.js';

/**
 * TopK-11 by ranking: one invocation per input element counts the elements of its row that sort before it; an
 * element of rank r < K writes value and index to slot r. O(L) work per element, all of it parallel, no sorting
 * network and no shared memory; fine for the rows TopK meets in practice (class scores, beam candidates).
 * Order as in the CPU reference: largest (or smallest) first, equal values by lower index, NaN counted as the
 * largest value (first with largest=1, last with largest=0). The result is always sorted.
 */

const WG = 64;

function topKProgram(x: GpuTensorInfo, values: GpuTensorInfo, indices: GpuTensorInfo, len: number, inner: number, k: number, largest: boolean): ProgramSpec {
  const size = sizeOfShape(x.shape);
  const t = kindOf(x.dtype) === 'f' ? 'f32' : kindOf(x.dtype) === 'u' ? 'u32' : 'i32';
  return {
    key: `topk:${largest ? 'largest' : 'smallest'}`,
    bindings: [{ name: 'x', type: x.storage }, { name: 'values', type: values.storage }, { name: 'indices', type: indices.storage }],
    uniforms: [{ name: 'size', type: 'u32' }, { name: 'axis_len', type: 'u32' }, { name: 'inner', type: 'u32' }, { name: 'k', type: 'u32' }],
    workgroupSize: [WG, 1, 1],
    source(b) {
      const nan = (v: string) => (t === 'f32' ? `((bitcast<u32>(${v}) & 0x7fffffffu) > 0x7f800000u)` : 'false');
      const cmp = largest ? '>' : '<';
      b.helper(`// Whether (a at index ia) sorts before (b at index ib).
fn sorts_before(a: ${t}, ia: u32, b: ${t}, ib: u32) -> bool {
  let a_nan = ${nan('a')};
  let b_nan = ${nan('b')};
  if (a_nan != b_nan) { return ${largest ? 'a_nan' : 'b_nan'}; }
  if (a_nan || a == b) { return ia < ib; }
  return a ${cmp} b;
}`);
      b.main(`${b.linearIndex('u.size')}
  let l = (index / u.inner) % u.axis_len;
  let i = index % u.inner;
  let o = index / (u.inner * u.axis_len);
  let base = o * u.axis_len * u.inner + i;
  let v = ${b.loadAs('x', 'index', t)};
  var rank = 0u;
  for (var j = 0u; j < u.axis_len && rank < u.k; j = j + 1u) {
    if (sorts_before(${b.loadAs('x', 'base + j * u.inner', t)}, j, v, l)) { rank = rank + 1u; }
  }
  if (rank >= u.k) { return; }
  let out = (o * u.k + rank) * u.inner + i;
  ${b.store('values', 'out', convert(computeTypeOf(values.storage), t, 'v'))}
  ${b.store('indices', 'out', convert(computeTypeOf(indices.storage), 'u32', 'l'))}`);
    },
    run() {
      return { workgroups: dispatchLinear(size, WG), uniforms: { size, axis_len: len, inner, k } };
    },
  };
}

const topK: GpuKernel = {
  hostInputs: [1],
  plan(node, [x, kIn], [values, indices]) {
    if (kindOf(x!.dtype) === 'b') throw new GpuUnsupported('TopK on bool has no WebGPU kernel');
    if (!values || !indices) throw new GpuUnsupported('TopK with an omitted output has no WebGPU kernel');
    const axis = normalizeAxis(attrInt(node, 'axis', -1), x!.shape.length);
    const k = constInts(kIn, 'TopK', 'K')![0]!;
    if (k === 0 || sizeOfShape(x!.shape) === 0) return { calls: [] };
    const inner = sizeOfShape(x!.shape.slice(axis + 1));
    const program = topKProgram(x!, values, indices, x!.shape[axis]!, inner, k, attrInt(node, 'largest', 1) !== 0);
    return { calls: [{ program, tensors: [{ input: 0 }, { output: 0 }, { output: 1 }] }] };
  },
};

export const kernels: Record<string, GpuKernel> = { TopK: topK };
