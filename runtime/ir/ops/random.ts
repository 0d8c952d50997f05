import { DTypeError, InvalidArgumentError, ShapeError } from '../../errors.js';
import { isFloat, type DType } from '../dtype.js';
import { attrFloat, attrInt, attrInts, type Dim, type Node } from '../graph.js';
import { dataInput } from './data-dims.js';
import { castTarget } from './data-onnx-types.js';
import { inTypeClass } from './math-types.js';
import { defineOps, type InferContext, type OpSchema } from './schema.js';

/**
 * Random generators of the default domain: RandomUniform, RandomNormal (shape attribute), RandomUniformLike,
 * RandomNormalLike (the input's shape), Bernoulli and Multinomial. The spec leaves the generator to the runtime, so
 * EdgeKit uses one counter-based generator on every backend (the CPU reference and the WGSL kernels compute the
 * same bits): element i's j-th 32-bit draw is
 *   h = mix(mix(i ^ k0) ^ k1 ^ j * 0x68e31da4),   mix = lowbias32 (Wellons' integer hash: xorshift-multiply x2)
 * with keys (k0, k1) derived from the float `seed`. A uniform is the top 24 bits of a draw times 2^-24, in [0, 1);
 * a normal is Box-Muller over draws 0 and 1. With `seed` the values are the same on every run and backend; without
 * it every run draws fresh keys (a new seed per run).
 */

/** lowbias32: a 32-bit integer hash with low bias (xorshift-multiply, two rounds). */
export function mix32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/** The generator keys of a seed: from its float32 bits. */
export function seedKeys(seed: number): [number, number] {
  const bits = new Uint32Array(new Float32Array([seed]).buffer)[0]!;
  return [mix32(bits), mix32((bits ^ 0x9e3779b9) >>> 0)];
}

/** Fresh keys for a node without `seed` (a new stream per run). */
export function freshKeys(): [number, number] {
  return [(Math.random() * 2 ** 32) >>> 0, (Math.random() * 2 ** 32) >>> 0];
}

/** The keys a node draws with: its seed's, or fresh ones. */
export function keysOf(node: Node): [number, number] {
  const seed = attrFloat(node, 'seed');
  return seed === undefined ? freshKeys() : seedKeys(seed);
}

/** Draw j (0 or 1) of element i. */
export function draw(keys: readonly [number, number], i: number, j: number): number {
  return mix32((mix32((i ^ keys[0]) >>> 0) ^ keys[1] ^ Math.imul(j, 0x68e31da4)) >>> 0);
}

/** Uniform in [0, 1) from draw 0 of element i (24 bits, exact in float32). */
export function uniformAt(keys: readonly [number, number], i: number): number {
  return (draw(keys, i, 0) >>> 8) * 2 ** -24;
}

/** Standard normal of element i: Box-Muller, u1 in (0, 1] from draw 0, u2 in [0, 1) from draw 1. */
export function normalAt(keys: readonly [number, number], i: number): number {
  const u1 = ((draw(keys, i, 0) >>> 8) + 1) * 2 ** -24;
  const u2 = (draw(keys, i, 1) >>> 8) * 2 ** -24;
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

export type RandomOp = 'RandomUniform' | 'RandomNormal' | 'RandomUniformLike' | 'RandomNormalLike';

/** The distribution parameters of a Random* node: (low, high) or (mean, scale). */
export function distribution(node: Node): { normal: boolean; a: number; b: number } {
  const normal = node.op === 'RandomNormal' || node.op === 'RandomNormalLike';
  return normal
    ? { normal, a: attrFloat(node, 'mean', 0), b: attrFloat(node, 'scale', 1) }
    : { normal, a: attrFloat(node, 'low', 0), b: attrFloat(node, 'high', 1) };
}

/** The `dtype` attribute as a DType (an ONNX DataType code), or `dflt` when absent. */
export function dtypeAttr(node: Node, dflt: DType): DType {
  return node.attrs.dtype ? castTarget({ ...node, attrs: { to: node.attrs.dtype } }) : dflt;
}

function floatOut(ctx: InferContext, d: DType): DType {
  if (!isFloat(d) || d === 'bfloat16') throw new DTypeError(`${ctx.node.op} dtype must be float16, float or double, got ${d}.`, { dtype: d });
  return d;
}

const fromShape = (op: 'RandomUniform' | 'RandomNormal'): OpSchema => ({
  op,
  inputs: [0, 0],
  outputs: [1, 1],
  infer(ctx) {
    const shape = attrInts(ctx.node, 'shape');
    if (!shape) throw new InvalidArgumentError(`${op} needs the 'shape' attribute.`);
    if (shape.some((d) => d < 0)) throw new ShapeError(`${op} shape [${shape.join(', ')}] has a negative dimension.`);
    distribution(ctx.node);
    return [{ dtype: floatOut(ctx, dtypeAttr(ctx.node, 'float32')), shape: [...shape] }];
  },
});

const like = (op: 'RandomUniformLike' | 'RandomNormalLike'): OpSchema => ({
  op,
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'input');
    // Without dtype the output takes the input's type, which must then be a float type.
    return [{ dtype: floatOut(ctx, dtypeAttr(ctx.node, x.dtype)), shape: x.shape && [...x.shape] }];
  },
});

const bernoulli: OpSchema = {
  op: 'Bernoulli',
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'input');
    if (!isFloat(x.dtype) || x.dtype === 'bfloat16') throw new DTypeError(`Bernoulli input must be float16, float or double probabilities, got ${x.dtype}.`, { dtype: x.dtype });
    const d = dtypeAttr(ctx.node, x.dtype);
    if (!inTypeClass(d, 'numeric') && d !== 'bool') throw new DTypeError(`Bernoulli dtype must be numeric or bool, got ${d}.`, { dtype: d });
    return [{ dtype: d, shape: x.shape && [...x.shape] }];
  },
};

/** Multinomial sample_size (default 1). */
export function sampleSize(node: Node): number {
  const s = attrInt(node, 'sample_size', 1);
  if (s < 1) throw new InvalidArgumentError(`Multinomial sample_size must be >= 1, got ${s}.`);
  return s;
}

const multinomial: OpSchema = {
  op: 'Multinomial',
  inputs: [1, 1],
  outputs: [1, 1],
  infer(ctx) {
    const x = dataInput(ctx, 0, 'input');
    if (!isFloat(x.dtype) || x.dtype === 'bfloat16') throw new DTypeError(`Multinomial input must be float16, float or double log-probabilities, got ${x.dtype}.`, { dtype: x.dtype });
    const d = dtypeAttr(ctx.node, 'int32');
    if (d !== 'int32' && d !== 'int64') throw new DTypeError(`Multinomial dtype must be int32 or int64, got ${d}.`, { dtype: d });
    if (x.shape && x.shape.length !== 2) throw new ShapeError(`Multinomial input must be [batch_size, class_size], got [${x.shape.join(', ')}].`);
    const batch: Dim = x.shape ? x.shape[0]! : ctx.symbol(`${ctx.node.name}_batch`);
    return [{ dtype: d, shape: [batch, sampleSize(ctx.node)] }];
  },
};

export const schemas = defineOps(fromShape('RandomUniform'), fromShape('RandomNormal'), like('RandomUniformLike'), like('RandomNormalLike'), bernoulli, multinomial);
