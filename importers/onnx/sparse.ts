import { ModelFormatError } from '../../runtime/errors.js';
import { allocStorage } from '../../runtime/ir/dtype.js';
import { sizeOf, stridesOf, type HostTensor } from '../../runtime/ir/tensor.js';
import { protoDims } from './tensor.js';
import type { PSparseTensor, PTensor } from './proto.js';

/**
 * SparseTensorProto → dense HostTensor (sparse initializers, Constant sparse_value). ONNX IR "Sparse tensors":
 * `values` holds the NNZ non-default values ([NNZ]); `indices` (int64) is either [NNZ] linear indices into the
 * row-major dense tensor or [NNZ, rank] coordinates; every other element is zero.
 */
export function densify(s: PSparseTensor, tensor: (t: PTensor) => HostTensor, maxElements: number): HostTensor {
  const name = s.values?.name || s.indices?.name || '';
  const where = `Sparse tensor '${name}'`;
  const shape = protoDims({ name, dims: s.dims }, maxElements, where);
  if (!s.values) throw new ModelFormatError(`${where} has no values.`);
  const values = tensor(s.values);
  const nnz = values.data.length;
  const out = allocStorage(values.dtype, sizeOf(shape, maxElements));
  if (nnz === 0) return { dtype: values.dtype, shape, data: out };
  if (!s.indices) throw new ModelFormatError(`${where} has ${nnz} values but no indices.`);
  const indices = tensor(s.indices);
  if (indices.dtype !== 'int64') throw new ModelFormatError(`${where} has ${indices.dtype} indices; ONNX requires int64.`);
  const idx = indices.data as BigInt64Array;
  const strides = stridesOf(shape);
  const coords = indices.shape.length === 2;
  if (!(coords ? indices.shape[0] === nnz && indices.shape[1] === shape.length : indices.shape.length === 1 && indices.shape[0] === nnz)) {
    throw new ModelFormatError(`${where}: indices of shape [${indices.shape.join(', ')}] do not fit ${nnz} values of a rank-${shape.length} tensor.`);
  }
  for (let i = 0; i < nnz; i++) {
    let flat = 0;
    if (coords) {
      for (let d = 0; d < shape.length; d++) {
        const c = Number(idx[i * shape.length + d]!);
        if (c < 0 || c >= shape[d]!) throw new ModelFormatError(`${where}: coordinate ${c} of value ${i} is outside dimension ${d} (size ${shape[d]}).`);
        flat += c * strides[d]!;
      }
    } else {
      flat = Number(idx[i]!);
      if (flat < 0 || flat >= out.length) throw new ModelFormatError(`${where}: index ${flat} of value ${i} is outside the ${out.length} elements.`);
    }
    (out as unknown as unknown[])[flat] = (values.data as unknown as unknown[])[i];
  }
  return { dtype: values.dtype, shape, data: out };
}
