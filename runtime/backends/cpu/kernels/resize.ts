import { fromNumbers, toNumbers } from '../../../ir/dtype.js';
import { resizeAttrs, resizePlan, schemas } from '../../../ir/ops/resize.js';
import { hostTensor, type HostTensor } from '../../../ir/tensor.js';
import { around, cells, gatherByAxisMaps, outputsOf } from '../data-index.js';
import { axisTaps, type AxisTaps } from '../data-resize-taps.js';
import type { CpuKernel } from '../kernel.js';

/**
 * Resize-19 on the CPU: one separable 1-D pass per resized axis (see data-resize-taps.ts). Nearest mode copies
 * elements (exact for int64 and float16 bits); linear and cubic accumulate in float64 and round into the element
 * type once at the end (integers truncate toward zero, as onnxruntime's and the reference's casts do).
 */

const valuesOf = (t: HostTensor | undefined) => (t && t.data.length ? Array.from(toNumbers(t.dtype, t.data)) : undefined);

/** One pass: [outer, inLen, inner] → [outer, outLen, inner] through the taps of one axis. */
function applyTaps(src: Float64Array, outer: number, inLen: number, inner: number, taps: AxisTaps, extrapolation: number): Float64Array {
  const outLen = taps.outside.length;
  const out = new Float64Array(outer * outLen * inner);
  const { k, index, weight, outside } = taps;
  for (let b = 0; b < outer; b++) {
    for (let o = 0; o < outLen; o++) {
      const dst = (b * outLen + o) * inner;
      if (outside[o]) {
        out.fill(extrapolation, dst, dst + inner);
        continue;
      }
      for (let t = 0; t < k; t++) {
        const w = weight[o * k + t]!;
        if (w === 0) continue;
        const from = (b * inLen + index[o * k + t]!) * inner;
        for (let i = 0; i < inner; i++) out[dst + i] = out[dst + i]! + w * src[from + i]!;
      }
    }
  }
  return out;
}

const resize: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.Resize, node, inputs, ctx);
  const x = inputs[0]!;
  const attrs = resizeAttrs(node);
  const plan = resizePlan(node, x.shape, valuesOf(inputs[1]), valuesOf(inputs[2]), valuesOf(inputs[3]));
  // An axis is untouched when its size and scale stay and no roi crops it (every transform is then the identity).
  const resized = x.shape.map((d, a) => !(plan.outShape[a] === d && plan.scales[a] === 1 && attrs.coord !== 'tf_crop_and_resize'));
  const taps = x.shape.map((d, a) => (resized[a] ? axisTaps(attrs, d, plan.outShape[a]!, plan.scales[a]!, plan.roi[a]!) : undefined));

  if (attrs.mode === 'nearest') {
    const maps = x.shape.map((d, a) => {
      const t = taps[a];
      if (!t) return Int32Array.from({ length: d }, (_, i) => i);
      return Int32Array.from(t.index, (v, i) => (t.outside[i] ? -1 : v));
    });
    const fill = cells(fromNumbers(x.dtype, [attrs.extrapolation]))[0];
    return [hostTensor(o!.dtype, o!.shape, gatherByAxisMaps(x.data, x.dtype, x.shape, maps, fill, ctx.maxElements))];
  }

  let values = toNumbers(x.dtype, x.data);
  const shape = [...x.shape];
  shape.forEach((d, a) => {
    const t = taps[a];
    if (!t) return;
    const [outer, , inner] = around(shape, a);
    values = applyTaps(values, outer, d, inner, t, attrs.extrapolation);
    shape[a] = plan.outShape[a]!;
  });
  return [hostTensor(o!.dtype, o!.shape, fromNumbers(o!.dtype, values))];
};

export const kernels: Record<string, CpuKernel> = { Resize: resize };
