import { normalizeStrings, schemas, stringNormalizerParams, tfIdfParams, tfIdfRow, tokensOf } from '../../../ir/ops/text.js';
import { hostTensor, type HostTensor } from '../../../ir/tensor.js';
import { outputsOf } from '../data-index.js';
import type { CpuKernel } from '../kernel.js';

/**
 * CPU reference for StringNormalizer-10 and TfIdfVectorizer-9 (semantics and attribute reading in ir/ops/text.ts).
 * Strings never leave the CPU: these are the only kernels for string data.
 */

const stringNormalizer: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.StringNormalizer, node, inputs, ctx);
  const x = inputs[0]!;
  const kept = normalizeStrings(stringNormalizerParams(node), x.data as string[]);
  return [{ dtype: 'string', shape: o!.shape, data: kept.length ? kept : [''] }];
};

const tfIdf: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.TfIdfVectorizer, node, inputs, ctx);
  const x = inputs[0] as HostTensor;
  const p = tfIdfParams(node);
  const rows = x.shape.length === 1 ? 1 : x.shape[0]!;
  const c = x.shape[x.shape.length - 1]!;
  const tokens = tokensOf(x);
  const out = new Float64Array(rows * p.columns);
  for (let r = 0; r < rows; r++) tfIdfRow(p, tokens.slice(r * c, (r + 1) * c), out, r * p.columns);
  return [hostTensor('float32', o!.shape, Float32Array.from(out))];
};

export const kernels: Record<string, CpuKernel> = { StringNormalizer: stringNormalizer, TfIdfVectorizer: tfIdf };
