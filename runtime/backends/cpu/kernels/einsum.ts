import { fromNumbers, toNumbers } from '../../../ir/dtype.js';
import { einsumSpec, einsumStrides, labelSizes, schemas } from '../../../ir/ops/einsum.js';
import { hostTensor, type HostTensor } from '../../../ir/tensor.js';
import { outputsOf } from '../data-index.js';
import type { CpuKernel } from '../kernel.js';

/**
 * Einsum-12 on the CPU: a plain loop over the label space (output labels, then summed labels), each operand read
 * through its per-label strides; products and sums in float64, rounded to the output type once.
 */
const einsum: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.Einsum, node, inputs, ctx);
  const xs = inputs as HostTensor[];
  const spec = einsumSpec(node, xs.map((x) => x.shape.length));
  const sizes = labelSizes(spec, xs.map((x) => x.shape));
  const dims = spec.labels.map((l) => sizes.get(l)!);
  const strides = xs.map((x, i) => einsumStrides(spec, i, x.shape));
  const vals = xs.map((x) => toNumbers(x.dtype, x.data));
  const nOut = spec.output.length;
  const outSize = dims.slice(0, nOut).reduce((a, b) => a * b, 1);
  const sumSize = dims.slice(nOut).reduce((a, b) => a * b, 1);
  const out = new Float64Array(outSize);
  const coord = new Array<number>(dims.length).fill(0);
  for (let p = 0; p < outSize; p++) {
    let rest = p;
    for (let l = nOut - 1; l >= 0; l--) {
      coord[l] = rest % dims[l]!;
      rest = Math.floor(rest / dims[l]!);
    }
    let acc = 0;
    for (let s = 0; s < sumSize; s++) {
      rest = s;
      for (let l = dims.length - 1; l >= nOut; l--) {
        coord[l] = rest % dims[l]!;
        rest = Math.floor(rest / dims[l]!);
      }
      let prod = 1;
      for (let i = 0; i < xs.length; i++) {
        let off = 0;
        for (let l = 0; l < dims.length; l++) off += coord[l]! * strides[i]![l]!;
        prod *= vals[i]![off]!;
      }
      acc += prod;
    }
    out[p] = acc;
  }
  return [hostTensor(o!.dtype, o!.shape, fromNumbers(o!.dtype, out))];
};

export const kernels: Record<string, CpuKernel> = { Einsum: einsum };
