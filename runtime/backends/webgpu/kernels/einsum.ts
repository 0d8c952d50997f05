import { einsumSpec, einsumStrides, labelSizes, type EinsumSpec } from '../../../ir/ops/einsum.js';
import { dispatchLinear, sizeOfShape, type GpuKernel, type GpuTensorInfo, type ProgramSpec } from '../program.js';
import type { UniformDecl } from '../wgsl/builder.js';
import { computeTypeOf } from '../storage.js';
import { kindOf } from './elementwise.js';
import { matmulProgram, type MatMulDims } from './matmul.js';

/**
 * Einsum-12 as one general contraction: an invocation per output element loops over the summed labels and
 * accumulates the product of the operands, each read through its per-label strides (ir/ops/einsum.ts; repeated
 * letters and broadcast ellipsis axes are folded into those strides on the host). The WGSL depends on the operand
 * count and the numbers of labels only; sizes and strides are uniforms. float16 accumulates in f32. Equations that
 * are batched matrix products run on the tiled MatMul kernel instead (asMatMul).
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

/**
 * A two-operand Einsum that is a (batched) matrix product in disguise runs on the tiled MatMul kernel: every label
 * is a batch label (in both inputs and the output), or the one row label (A and output), the one column label
 * (B and output) or the one contracted label (A and B), and the output lists the batch labels first, then row, then
 * column. Operand layouts (transposes, broadcast ellipsis axes, diagonals) are just strides for it. Returns
 * undefined for any other equation.
 */
function asMatMul(spec: EinsumSpec, xs: GpuTensorInfo[], y: GpuTensorInfo, sizes: Map<string, number>, maxBatch: number, cpuAdapter: boolean): ProgramSpec | undefined {
  if (xs.length !== 2 || kindOf(y.dtype) === 'b') return undefined;
  const [inA, inB] = [new Set(spec.inputs[0]!.labels), new Set(spec.inputs[1]!.labels)];
  const out = new Set(spec.output);
  const role = (l: string) => (inA.has(l) && inB.has(l) ? (out.has(l) ? 'batch' : 'k') : out.has(l) ? (inA.has(l) ? 'm' : 'n') : 'only');
  const byRole = (r: string) => spec.labels.filter((l) => role(l) === r);
  const [batch, m, n, k] = [byRole('batch'), byRole('m'), byRole('n'), byRole('k')];
  if (byRole('only').length || m.length > 1 || n.length > 1 || k.length > 1) return undefined;
  if (spec.output.join(',') !== [...batch.filter((l) => out.has(l)), ...m, ...n].join(',')) return undefined;
  const batchLabels = spec.output.filter((l) => role(l) === 'batch');
  const batchShape = batchLabels.map((l) => sizes.get(l)!);
  if (sizeOfShape(batchShape) > maxBatch) return undefined;
  const [sa, sb] = xs.map((x, i) => {
    const st = einsumStrides(spec, i, x.shape);
    return (l: string | undefined) => (l === undefined ? 0 : st[spec.labels.indexOf(l)]!);
  }) as [(l?: string) => number, (l?: string) => number];
  const size = (l: string | undefined) => (l === undefined ? 1 : sizes.get(l)!);
  const dims: MatMulDims = {
    batchShape: batchShape.length ? batchShape : [1],
    aBatchStrides: batchLabels.length ? batchLabels.map((l) => sa(l)) : [0],
    bBatchStrides: batchLabels.length ? batchLabels.map((l) => sb(l)) : [0],
    m: size(m[0]),
    n: size(n[0]),
    k: size(k[0]),
    aStride: [sa(m[0]), sa(k[0])],
    bStride: [sb(k[0]), sb(n[0])],
  };
  return matmulProgram(xs[0]!, xs[1]!, y, dims, {}, cpuAdapter);
}

const einsum: GpuKernel = {
  plan(node, inputs, [y], env) {
    const xs = inputs as GpuTensorInfo[];
    const spec = einsumSpec(node, xs.map((x) => x.shape.length));
    const sizes = labelSizes(spec, xs.map((x) => x.shape));
    const dims = spec.labels.map((l) => sizes.get(l)!);
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    const tensors = [...xs.map((_, input) => ({ input })), { output: 0 }];
    const mm = asMatMul(spec, xs, y!, sizes, env.limits.maxComputeWorkgroupsPerDimension, !!env.cpuAdapter);
    if (mm) return { calls: [{ program: mm, tensors }] };
    return { calls: [{ program: einsumProgram(xs, y!, dims, spec.output.length, xs.map((x, i) => einsumStrides(spec, i, x.shape))), tensors }] };
  },
};

export const kernels: Record<string, GpuKernel> = { Einsum: einsum };
