import { DTypeError, InvalidArgumentError, ShapeError, UnsupportedOpError } from '../../errors.js';
import { toNumbers } from '../dtype.js';
import { attrInt, type Dim } from '../graph.js';
import { msOp } from './contrib.js';
import { checkDType, checkSameDType, dimsConflict, requireInput, requireRank } from './math-types.js';
import { defineOps, type InferContext, type OpSchema } from './schema.js';

/**
 * onnxruntime's block-quantized matrix product, com.microsoft MatMulNBits (version 1; semantics from onnxruntime's
 * ContribOperators.md, checked against onnxruntime-node):
 *   Y [..., N] = A [..., K] @ W^T + bias,  W[n, k] = (q[n, k] - zp[n, b]) * scale[n, b],  b = floor(k / block_size).
 * B is uint8 [N, k_blocks, blob_size] with k_blocks = ceil(K / block_size) and blob_size = block_size * bits / 8;
 * codes are packed low bits first along K (for 4 bits: element 2i in the low nibble of byte i). scales are A's type,
 * [N * k_blocks] or [N, k_blocks]. zero_points are either uint8, packed like B one row per n ([N * ceil(k_blocks *
 * bits / 8)]), or A's float type unpacked ([N * k_blocks]); absent, the zero point is 2^(bits - 1). g_idx (act-order
 * permutation) is refused with a typed error; accuracy_level only tunes onnxruntime's CPU and is ignored.
 *
 * The other quantized com.microsoft ops (QLinearAdd, QLinearMul, QLinearSigmoid, QLinearLeakyRelu, QLinearConcat,
 * QLinear(Global)AveragePool, DynamicQuantizeMatMul, MatMulIntegerToFloat, GatherBlockQuantized) have no IR op of
 * their own: importers/onnx/ops/com-microsoft-quant.ts writes each as the standard ops it is defined by.
 */

export interface NBitsGeometry {
  K: number;
  N: number;
  bits: 4 | 8;
  block: number;
  kBlocks: number;
  blob: number;
  /** Bytes of one row of packed uint8 zero points. */
  zpRow: number;
}

const fail = (ctx: InferContext, reason: string): never => {
  throw new UnsupportedOpError([{ op: 'MatMulNBits', domain: 'com.microsoft', opset: 1, node: ctx.node.name, reason }]);
};

/** The attributes of a MatMulNBits node, checked: bits 4 or 8, block_size a power of two from 16 to 256. */
export function nbitsGeometry(ctx: InferContext): NBitsGeometry {
  const n = ctx.node;
  const K = attrInt(n, 'K', -1);
  const N = attrInt(n, 'N', -1);
  const bits = attrInt(n, 'bits', 4);
  const block = attrInt(n, 'block_size', -1);
  if (!(K > 0) || !(N > 0)) throw new InvalidArgumentError(`MatMulNBits needs positive attributes K and N, got K=${K}, N=${N}.`, { node: n.name });
  if (bits !== 4 && bits !== 8) fail(ctx, `bits=${bits} (EdgeKit runs 4 and 8)`);
  if (!(block >= 16 && block <= 256 && (block & (block - 1)) === 0)) {
    throw new InvalidArgumentError(`MatMulNBits block_size must be a power of two from 16 to 256, got ${block}.`, { node: n.name });
  }
  const kBlocks = Math.ceil(K / block);
  return { K, N, bits: bits as 4 | 8, block, kBlocks, blob: (block * bits) / 8, zpRow: Math.ceil((kBlocks * bits) / 8) };
}

const count = (s: readonly Dim[]): Dim => (s.every((d): d is number => typeof d === 'number') ? s.reduce((a, b) => a * b, 1) : '?');

function checkCount(what: string, s: readonly Dim[] | undefined, want: number): void {
  if (!s) return;
  const c = count(s);
  if (typeof c === 'number' && c !== want) throw new ShapeError(`MatMulNBits ${what} must hold ${want} values, got shape [${s.join(', ')}].`, { shape: [...s] });
}

const matMulNBits: OpSchema = {
  op: msOp('MatMulNBits'),
  inputs: [3, 6],
  outputs: [1, 1],
  infer(ctx) {
    const g = nbitsGeometry(ctx);
    const a = requireInput(ctx, 0, 'A');
    const b = requireInput(ctx, 1, 'B');
    const s = requireInput(ctx, 2, 'scales');
    const [zp, gIdx, bias] = [ctx.inputs[3], ctx.inputs[4], ctx.inputs[5]];
    checkDType(ctx, 'A', a.dtype, 'float');
    if (a.dtype === 'float64' || a.dtype === 'bfloat16') throw new DTypeError(`MatMulNBits A is ${a.dtype}; it must be float32 or float16.`);
    requireRank(ctx, a.shape, 'A', 1);
    if (a.shape && dimsConflict(a.shape[a.shape.length - 1]!, g.K)) {
      throw new ShapeError(`MatMulNBits A's last dim must be K=${g.K}, got [${a.shape.join(', ')}].`, { shape: [...a.shape] });
    }
    if (b.dtype !== 'uint8') throw new DTypeError(`MatMulNBits B is ${b.dtype}; it must be uint8 (packed codes).`);
    checkCount('B', b.shape, g.N * g.kBlocks * g.blob);
    if (b.shape && b.shape.length === 3 && (dimsConflict(b.shape[0]!, g.N) || dimsConflict(b.shape[1]!, g.kBlocks) || dimsConflict(b.shape[2]!, g.blob))) {
      throw new ShapeError(`MatMulNBits B must be [N=${g.N}, k_blocks=${g.kBlocks}, blob_size=${g.blob}], got [${b.shape.join(', ')}].`);
    }
    checkSameDType(ctx, a.dtype, s.dtype, 'A and scales');
    checkCount('scales', s.shape, g.N * g.kBlocks);
    if (s.value) {
      for (const v of toNumbers(s.value.dtype, s.value.data)) {
        if (!(v > 0) || !Number.isFinite(v)) throw new InvalidArgumentError(`MatMulNBits scales hold ${v}; a scale must be positive and finite.`, { node: ctx.node.name });
      }
    }
    if (zp) {
      const max = 2 ** g.bits - 1;
      if (zp.dtype === 'uint8') {
        checkCount('zero_points (uint8, packed)', zp.shape, g.N * g.zpRow);
      } else {
        checkSameDType(ctx, a.dtype, zp.dtype, 'A and zero_points');
        checkCount('zero_points (float)', zp.shape, g.N * g.kBlocks);
        if (zp.value) {
          for (const v of toNumbers(zp.value.dtype, zp.value.data)) {
            if (!(v >= 0 && v <= max)) throw new InvalidArgumentError(`MatMulNBits zero point ${v} is outside the ${g.bits}-bit code range [0, ${max}].`, { node: ctx.node.name });
          }
        }
      }
    }
    if (gIdx) fail(ctx, 'g_idx (act-order permutation of K) is not supported; export the model without act-order');
    if (bias) {
      checkSameDType(ctx, a.dtype, bias.dtype, 'A and bias');
      checkCount('bias', bias.shape, g.N);
    }
    return [{ dtype: a.dtype, shape: a.shape && [...a.shape.slice(0, -1), g.N] }];
  },
};

export const schemas = defineOps(matMulNBits);
