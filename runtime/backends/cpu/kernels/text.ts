import { fullMatchRegex, normalizeStrings, schemas, splitParams, splitString, stringNormalizerParams, tfIdfParams, tfIdfRow, tokensOf } from '../../../ir/ops/text.js';
import { hostTensor, type HostTensor } from '../../../ir/tensor.js';
import { broadcastIndex } from '../math-broadcast.js';
import { outputsOf } from '../data-index.js';
import type { CpuKernel } from '../kernel.js';

/**
 * CPU reference for StringNormalizer-10, TfIdfVectorizer-9, StringConcat-20, StringSplit-20 and RegexFullMatch-20
 * (semantics and attribute reading in ir/ops/text.ts).
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

const stringConcat: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.StringConcat, node, inputs, ctx);
  const [x, y] = inputs as [HostTensor, HostTensor];
  const n = o!.shape.reduce((a, d) => a * d, 1);
  const xi = broadcastIndex(x.shape, o!.shape);
  const yi = broadcastIndex(y.shape, o!.shape);
  const xs = x.data as string[];
  const ys = y.data as string[];
  const out = Array.from({ length: n }, (_, i) => xs[xi ? xi[i]! : i]! + ys[yi ? yi[i]! : i]!);
  return [{ dtype: 'string', shape: o!.shape, data: out }];
};

/** Y: the pieces of each element padded with '' to the longest split; Z: each element's piece count. */
const stringSplit: CpuKernel = (inputs, node, ctx) => {
  const [oy, oz] = outputsOf(schemas.StringSplit, node, inputs, ctx);
  const { delimiter, maxsplit } = splitParams(node);
  const pieces = (inputs[0]!.data as string[]).map((s) => splitString(s, delimiter, maxsplit));
  const width = oy!.shape[oy!.shape.length - 1]!;
  const y = pieces.flatMap((p) => [...p, ...new Array<string>(width - p.length).fill('')]);
  return [
    { dtype: 'string', shape: oy!.shape, data: y },
    hostTensor('int64', oz!.shape, BigInt64Array.from(pieces, (p) => BigInt(p.length))),
  ];
};

const regexFullMatch: CpuKernel = (inputs, node, ctx) => {
  const [o] = outputsOf(schemas.RegexFullMatch, node, inputs, ctx);
  const re = fullMatchRegex(node);
  return [hostTensor('bool', o!.shape, Uint8Array.from(inputs[0]!.data as string[], (s) => (re.test(s) ? 1 : 0)))];
};

export const kernels: Record<string, CpuKernel> = {
  StringNormalizer: stringNormalizer, TfIdfVectorizer: tfIdf, StringConcat: stringConcat, StringSplit: stringSplit, RegexFullMatch: regexFullMatch,
};
