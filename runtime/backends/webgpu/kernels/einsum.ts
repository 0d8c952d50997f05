import { einsumSpec, einsumStrides, labelSizes } from '../../../ir/ops/einsum.js';
import { dispatchLinear, sizeOfShape, type GpuKernel, type GpuTensorInfo, type ProgramSpec } from '../program.js';
import type { UniformDecl } from '../wgsl/builder.js';
import { computeTypeOf } from '../storage.js';

/**
 * Einsum-12 as one general contraction: an invocation per output element loops over the summed labels and
 * accumulates the product of the operands, each read through its per-label strides (ir/ops/einsum.ts; repeated
 * letters and broadcast ellipsis axes are folded into those strides on the host). The WGSL depends on the operand
 * count and the numbers of labels only; sizes and strides are uniforms. float16 accumulates in f32.
 */

const WG = 64;

function einsumProgram(xs: GpuTensorInfo[], y: GpuTensorInfo, dims: number[], nOut: number, strides: number[][]): ProgramSpec {
  const L = dims.length;
  const outSize = sizeOfShape(dims.slice(0, nOut));
  const sumSize = sizeOfShape(dims.slice(nOut));
  const T = computeTypeOf(y.storage);
  const A = T === 'f16' ? 'f32' : T;
  const strideDecls: UniformDecl[] = xs.map((_, i) => ({ name: `strides${i}`, type: 'u32', length: L }));
  return {
    key: `einsum:n${xs.length}:l${L}:o${nOut}`,
    bindings: [...xs.map((x, i) => ({ name: `x${i}`, type: x.storage })), { name: 'y', type: y.storage }],
    uniforms: [{ name: 'out_size', type: 'u32' }, { name: 'sum_size', type: 'u32' }, { name: 'dims', type: 'u32', length: L }, ...strideDecls],
    workgroupSize: [WG, 1, 1],
    source(b) {
      const decode = (from: number, to: number, v: string) => {
        const lines: string[] = [];
        for (let l = to - 1; l >= from; l--) lines.push(`c[${l}] = ${v} % u.dims_${l};`, `${v} = ${v} / u.dims_${l};`);
        return lines.join('\n    ');
      };
      const offs = xs.map((_, i) => {
        const terms = Array.from({ length: L }, (_, l) => `c[${l}] * u.strides${i}_${l}`);
        return `let off${i} = ${terms.length ? terms.join(' + ') : '0u'};`;
      });
      const prod = xs.map((_, i) => b.loadAs(`x${i}`, `off${i}`, A)).join(' * ');
      b.main(`${b.linearIndex('u.out_size')}
  var c: array<u32, ${Math.max(L, 1)}>;
  var rest = index;
  ${decode(0, nOut, 'rest')}
  var acc = ${A}(0);
  for (var s = 0u; s < u.sum_size; s = s + 1u) {
    var r = s;
    ${decode(nOut, L, 'r')}
    ${offs.join('\n    ')}
    acc = acc + ${prod};
  }
  ${b.store('y', 'index', A === T ? 'acc' : `${T}(acc)`)}`);
    },
    run() {
      const uniforms: Record<string, number | number[]> = { out_size: outSize, sum_size: sumSize, dims };
      strides.forEach((s, i) => (uniforms[`strides${i}`] = s));
      return { workgroups: dispatchLinear(outSize, WG), uniforms };
    },
  };
}

const einsum: GpuKernel = {
  plan(node, inputs, [y]) {
    const xs = inputs as GpuTensorInfo[];
    const spec = einsumSpec(node, xs.map((x) => x.shape.length));
    const sizes = labelSizes(spec, xs.map((x) => x.shape));
    const dims = spec.labels.map((l) => sizes.get(l)!);
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    const program = einsumProgram(xs, y!, dims, spec.output.length, xs.map((x, i) => einsumStrides(spec, i, x.shape)));
    return { calls: [{ program, tensors: [...xs.map((_, input) => ({ input })), { output: 0 }] }] };
  },
};

export const kernels: Record<string, GpuKernel> = { Einsum: einsum };
