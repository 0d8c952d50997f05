import { toNumbers } from '../../../ir/dtype.js';
import { resizeAttrs, resizePlan } from '../../../ir/ops/resize.js';
import { hostTensor, type HostTensor } from '../../../ir/tensor.js';
import { axisTaps } from '../../cpu/data-resize-taps.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, stridesFor, type GpuKernel, type GpuTensorInfo, type ProgramSpec, type TensorSlot } from '../program.js';
import { computeTypeOf } from '../storage.js';
import { convert } from '../wgsl/builder.js';
import { kindOf } from './elementwise.js';

/**
 * Resize-19 as a separable gather: per axis, every output coordinate reads k input indices with weights (the tap
 * tables of backends/cpu/data-resize-taps.ts, the same code the CPU reference uses, so coordinate transforms and
 * nearest rounding agree exactly). The tables are computed at plan time and uploaded once as constants; the
 * shader walks the tap product of all axes: out = sum over taps of (product of axis weights) * x[taps].
 * Nearest copies (any element type, bit-exact); linear and cubic compute in f32 (float types only). An output
 * coordinate that tf_crop_and_resize maps outside the input has index -1 and yields extrapolation_value.
 */

const WG = 64;

function resizeProgram(x: GpuTensorInfo, y: GpuTensorInfo, k: number[], offsets: number[], nearest: boolean, extrapolation: number): ProgramSpec {
  const rank = x.shape.length;
  const size = sizeOfShape(y.shape);
  const T = computeTypeOf(y.storage);
  return {
    key: `resize:${nearest ? 'nearest' : 'weighted'}:r${rank}`,
    // Nearest has weight 1 everywhere: no weight table (a binding the shader never reads would not be in its layout).
    bindings: [{ name: 'x', type: x.storage }, { name: 'tap_index', type: 'i32' }, ...(nearest ? [] : [{ name: 'tap_weight', type: 'f32' as const }]), { name: 'y', type: y.storage }],
    uniforms: [
      { name: 'size', type: 'u32' },
      { name: 'out_shape', type: 'u32', length: rank },
      { name: 'x_strides', type: 'u32', length: rank },
      { name: 'taps', type: 'u32', length: rank },
      { name: 'table_offset', type: 'u32', length: rank },
      { name: 'extrapolation', type: 'f32' },
    ],
    workgroupSize: [WG, 1, 1],
    source(b) {
      const lines = [b.linearIndex('u.size'), `let coords = ${b.coordsFn('out_coords', 'out_shape', rank)}(index);`];
      // Row of each axis' table for this output coordinate; an outside coordinate marks its first tap with -1.
      for (let d = 0; d < rank; d++) {
        lines.push(`let row_${d} = u.table_offset_${d} + coords[${d}] * u.taps_${d};`);
        lines.push(`if (tap_index[row_${d}] < 0) { ${b.store('y', 'index', `${T}(u.extrapolation)`)} return; }`);
      }
      if (nearest) {
        const at = Array.from({ length: rank }, (_, d) => `u32(tap_index[row_${d}]) * u.x_strides_${d}`).join(' + ') || '0u';
        lines.push(b.store('y', 'index', b.load('x', at)));
      } else {
        lines.push('var sum = 0.0;');
        let indent = '';
        for (let d = 0; d < rank; d++) {
          lines.push(`${indent}for (var t_${d} = 0u; t_${d} < u.taps_${d}; t_${d} = t_${d} + 1u) {`);
          indent += '  ';
          const prevW = d === 0 ? '' : `w_${d - 1} * `;
          const prevAt = d === 0 ? '' : `at_${d - 1} + `;
          lines.push(`${indent}let w_${d} = ${prevW}tap_weight[row_${d} + t_${d}];`);
          lines.push(`${indent}let at_${d} = ${prevAt}u32(tap_index[row_${d} + t_${d}]) * u.x_strides_${d};`);
        }
        lines.push(`${indent}sum = sum + w_${rank - 1} * ${b.loadAs('x', `at_${rank - 1}`, 'f32')};`);
        for (let d = rank - 1; d >= 0; d--) {
          indent = indent.slice(2);
          lines.push(`${indent}}`);
        }
        lines.push(b.store('y', 'index', convert(T, 'f32', 'sum')));
      }
      b.main(lines.join('\n  '));
    },
    run() {
      return {
        workgroups: dispatchLinear(size, WG),
        uniforms: { size, out_shape: y.shape, x_strides: stridesFor(x.shape), taps: k, table_offset: offsets, extrapolation },
      };
    },
  };
}

const valuesOf = (t: GpuTensorInfo | undefined): number[] | undefined => {
  if (!t) return undefined;
  if (!t.value) throw new GpuUnsupported('Resize needs its roi, scales and sizes inputs to be constants (known when the model is planned)');
  return t.value.data.length ? Array.from(toNumbers(t.value.dtype, t.value.data)) : undefined;
};

const resize: GpuKernel = {
  hostInputs: [1, 2, 3],
  plan(node, [x, roi, scales, sizes], [y]) {
    const attrs = resizeAttrs(node);
    const nearest = attrs.mode === 'nearest';
    if (!nearest && kindOf(x!.dtype) !== 'f') throw new GpuUnsupported(`Resize mode ${attrs.mode} on ${x!.dtype} has no WebGPU kernel (float only)`);
    if (x!.shape.length === 0) throw new GpuUnsupported('Resize of a scalar has no WebGPU kernel');
    const plan = resizePlan(node, x!.shape, valuesOf(roi), valuesOf(scales), valuesOf(sizes));
    const index: number[] = [];
    const weight: number[] = [];
    const k: number[] = [];
    const offsets: number[] = [];
    x!.shape.forEach((d, a) => {
      const outLen = plan.outShape[a]!;
      offsets.push(index.length);
      const identity = outLen === d && plan.scales[a] === 1 && attrs.coord !== 'tf_crop_and_resize';
      if (identity) {
        k.push(1);
        for (let i = 0; i < d; i++) index.push(i), weight.push(1);
        return;
      }
      const taps = axisTaps(attrs, d, outLen, plan.scales[a]!, plan.roi[a]!);
      k.push(taps.k);
      for (let o = 0; o < outLen; o++) {
        for (let t = 0; t < taps.k; t++) {
          index.push(taps.outside[o] ? -1 : taps.index[o * taps.k + t]!);
          weight.push(taps.weight[o * taps.k + t]!);
        }
      }
    });
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    const constants: HostTensor[] = [hostTensor('int32', [index.length], Int32Array.from(index))];
    if (!nearest) constants.push(hostTensor('float32', [weight.length], Float32Array.from(weight)));
    const tensors: TensorSlot[] = [{ input: 0 }, { constant: 0 }, ...(nearest ? [] : [{ constant: 1 }]), { output: 0 }];
    return { calls: [{ program: resizeProgram(x!, y!, k, offsets, nearest, attrs.extrapolation), tensors }], constants };
  },
};

export const kernels: Record<string, GpuKernel> = { Resize: resize };
