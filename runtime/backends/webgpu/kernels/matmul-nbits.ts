import { hostTensor, type HostTensor } from '../../../ir/tensor.js';
import { msOp } from '../../../ir/ops/contrib.js';
import { nbitsGeometry, type NBitsGeometry } from '../../../ir/ops/quantize-contrib.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, type GpuKernel, type GpuTensorInfo, type ProgramSpec, type TensorSlot } from '../program.js';
import { computeTypeOf } from '../storage.js';
import { castExpr } from './cast.js';

/**
 * com.microsoft MatMulNBits on WebGPU (CPU twin: cpu/kernels/quantize-contrib.ts). B stays packed on the GPU: its
 * uint8 bytes [N, k_blocks, blob_size] are uploaded as they are, four bytes per u32 (8 four-bit or 4 eight-bit codes
 * per word), into the session's weight store, so resident weight bytes are 1/8 (4 bits) or 1/4 (8 bits) of float32
 * and no float copy of W ever exists. Each invocation computes four columns y[m, n0 .. n0 + 3] (A's values loaded
 * once for the four): per block it reads each column's scale and zero point, unpacks the codes of a word of each by
 * shift and mask in registers and accumulates a[m, k] * (q - zp), then multiplies the block's partial sums by their
 * scales (sum_k a_k (q_k - zp) s = s sum_k a_k (q_k - zp)).
 * A block_size of 16..256 is a whole number of words (blob_size >= 8 bytes), so a word never spans two blocks.
 * Accumulation is f32 whatever A's type; a float16 y is rounded once at the store.
 */

const WG = 64;

/** B's bytes reinterpreted as u32 words, memoized per initializer so every plan shares one weight-store upload. */
const packedB = new WeakMap<HostTensor, HostTensor>();

function packedWords(b: HostTensor): HostTensor {
  let t = packedB.get(b);
  if (!t) {
    const bytes = b.data as Uint8Array;
    const words = new Uint32Array(Math.ceil(bytes.length / 4));
    new Uint8Array(words.buffer).set(bytes);
    t = hostTensor('uint32', [words.length], words);
    packedB.set(b, t);
  }
  return t;
}

type ZpKind = 'none' | 'packed' | 'float';

/** WGSL expression of the zero point of block `blk` of row `n` as f32. */
function zpExpr(kind: ZpKind, bits: number, load: (i: string) => string, loadF: (i: string) => string): string {
  if (kind === 'none') return `${2 ** (bits - 1)}.0`;
  if (kind === 'float') return loadF('n * u.k_blocks + blk');
  if (bits === 8) return `f32(${load('n * u.zp_row + blk')})`;
  return `f32((${load('n * u.zp_row + blk / 2u')} >> ((blk & 1u) * 4u)) & 15u)`;
}

/** Output columns per invocation: A's values are loaded once for all of them. */
const CB = 4;

function program(t: Record<string, GpuTensorInfo>, g: NBitsGeometry, zp: ZpKind, rows: number): ProgramSpec {
  const names = ['a', 'b', 's', ...(zp !== 'none' ? ['z'] : []), ...(t.bias ? ['bias'] : []), 'y'];
  const y = t.y!;
  const blocks = Math.ceil(g.N / CB);
  const size = rows * blocks;
  const perWord = 32 / g.bits;
  const mask = 2 ** g.bits - 1;
  return {
    key: `matmul-nbits:${g.bits}:${zp}:${t.bias ? 'bias' : ''}:cb${CB}`,
    bindings: names.map((name) => ({ name, type: t[name]!.storage })),
    uniforms: ['size', 'N', 'K', 'k_blocks', 'block', 'words', 'zp_row', 'blocks'].map((name) => ({ name, type: 'u32' as const })),
    workgroupSize: [WG, 1, 1],
    source(b) {
      const z = zpExpr(zp, g.bits, (i) => b.load('z', i), (i) => b.loadAs('z', i, 'f32'));
      const bias = t.bias ? ` + ${b.loadAs('bias', 'n', 'f32')}` : '';
      b.main(`${b.linearIndex('u.size')}
  let c0 = (index % u.blocks) * ${CB}u;
  let row = index / u.blocks;
  let a_row = row * u.K;
  var acc = vec4<f32>(0.0);
  for (var blk = 0u; blk < u.k_blocks; blk = blk + 1u) {
    var zps = vec4<f32>(0.0);
    var scs = vec4<f32>(0.0);
    var w0 = vec4<u32>(0u);
    for (var r = 0u; r < ${CB}u; r = r + 1u) {
      let n = min(c0 + r, u.N - 1u);
      zps[r] = ${z};
      scs[r] = ${b.loadAs('s', 'n * u.k_blocks + blk', 'f32')};
      w0[r] = (n * u.k_blocks + blk) * u.words;
    }
    let k0 = blk * u.block;
    var part = vec4<f32>(0.0);
    for (var w = 0u; w < u.words; w = w + 1u) {
      let word = vec4<u32>(${b.load('b', 'w0.x + w')}, ${b.load('b', 'w0.y + w')}, ${b.load('b', 'w0.z + w')}, ${b.load('b', 'w0.w + w')});
      let kw = k0 + w * ${perWord}u;
      for (var j = 0u; j < ${perWord}u; j = j + 1u) {
        let k = kw + j;
        if (k < u.K) {
          let q = vec4<f32>((word >> vec4<u32>(j * ${g.bits}u)) & vec4<u32>(${mask}u));
          part = part + ${b.loadAs('a', 'a_row + k', 'f32')} * (q - zps);
        }
      }
    }
    acc = acc + part * scs;
  }
  for (var r = 0u; r < ${CB}u; r = r + 1u) {
    let n = c0 + r;
    if (n < u.N) {
      ${b.store('y', 'row * u.N + n', castExpr(b, `acc[r]${bias}`, 'f32', y.dtype, computeTypeOf(y.storage)))}
    }
  }`);
    },
    run: () => ({
      workgroups: dispatchLinear(size, WG),
      uniforms: { size, N: g.N, K: g.K, k_blocks: g.kBlocks, block: g.block, words: g.blob / 4, zp_row: g.zpRow, blocks },
    }),
  };
}

const matMulNBits: GpuKernel = {
  // B is read at plan time and uploaded packed (as a shared constant), never in the one-code-per-u32 form.
  hostInputs: [1],
  plan(node, inputs, [y]) {
    const [a, b, s, z, gIdx, bias] = inputs;
    if (gIdx) throw new GpuUnsupported('MatMulNBits with g_idx has no WebGPU kernel');
    if (!b?.value) throw new GpuUnsupported('MatMulNBits on WebGPU needs B as a constant initializer (it is kept packed in the weight store)');
    if (a!.dtype !== 'float32' && a!.dtype !== 'float16') throw new GpuUnsupported(`MatMulNBits of ${a!.dtype} has no WebGPU kernel`);
    const g = nbitsGeometry({ node, inputs: [], symbol: () => '' });
    if (sizeOfShape(y!.shape) === 0) return { calls: [] };
    const words = packedWords(b.value);
    const zp: ZpKind = !z ? 'none' : z.dtype === 'uint8' ? 'packed' : 'float';
    const infos: Record<string, GpuTensorInfo> = {
      a: a!, b: { dtype: 'uint32', shape: words.shape, storage: 'u32' }, s: s!, y: y!,
      ...(z ? { z } : {}), ...(bias ? { bias } : {}),
    };
    const tensors: TensorSlot[] = [{ input: 0 }, { constant: 0 }, { input: 2 }, ...(z ? [{ input: 3 }] : []), ...(bias ? [{ input: 5 }] : []), { output: 0 }];
    const rows = sizeOfShape(a!.shape) / g.K;
    return { calls: [{ program: program(infos, g, zp, rows), tensors }], constants: [words], sharedConstants: [0] };
  },
};

export const kernels: Record<string, GpuKernel> = { [msOp('MatMulNBits')]: matMulNBits };
