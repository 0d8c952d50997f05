import { hostTensor, type HostTensor } from '../../../ir/tensor.js';
import { msOp } from '../../../ir/ops/contrib.js';
import { nbitsGeometry, type NBitsGeometry } from '../../../ir/ops/quantize-contrib.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, type GpuKernel, type GpuTensorInfo, type ProgramSpec, type TensorSlot } from '../program.js';
import { computeTypeOf } from '../storage.js';
import type { ShaderBuilder } from '../wgsl/builder.js';
import { castExpr } from './cast.js';

/**
 * com.microsoft MatMulNBits on WebGPU (CPU twin: cpu/kernels/quantize-contrib.ts). B stays packed on the GPU: its
 * uint8 bytes [N, k_blocks, blob_size] are uploaded as they are, four bytes per u32 (8 four-bit or 4 eight-bit codes
 * per word), into the session's weight store, so resident weight bytes are 1/8 (4 bits) or 1/4 (8 bits) of float32
 * and no float copy of W ever exists in a buffer. Codes are unpacked by shift and mask in registers (or, in the tiled
 * form, into a TK x 64 f32 tile of workgroup memory). A block_size of 16..256 is a whole number of words
 * (blob_size >= 8 bytes), so a word never spans two blocks. Accumulation is f32 whatever A's type; a float16 y is
 * rounded once at the store.
 *
 * Three forms, chosen at plan time by A's row count (batch dims flattened; chooseNBitsForm):
 * - gemv (decode, rows <= GEMV_MAX_ROWS, GPU adapters): a workgroup per 4 columns, its threads split K, one
 *   reduction through workgroup memory;
 * - tiled (prefill, GPU adapters): 64 x 64 output tiles as kernels/matmul.ts, B dequantized once per tile;
 * - direct (CPU adapters such as SwiftShader, any rows): RM rows x 4 columns per invocation, no workgroup memory
 *   and no barriers, which cost more than they save there (measured: docs/quantization.md).
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

/** Output columns per invocation of the direct form: A's values are loaded once for all of them. */
const CB = 4;

/** Rows per invocation of the direct form for `rows` rows of A: the unpacked codes are shared by them. */
export function directRows(rows: number): number {
  return rows <= 4 ? rows : rows <= 16 ? 4 : rows < 128 ? 8 : 16;
}

/**
 * The direct form: one invocation per RM rows and four columns, no workgroup memory and no barriers (the form for
 * CPU adapters, where a barrier is a switch between coroutines: see chooseTiling in kernels/matmul.ts). Per block it
 * reads each column's scale and zero point; per packed word it unpacks the four columns' codes in registers and
 * accumulates a[m, k] * (q - zp) for each of its RM rows, then multiplies the block's partial sums by the scales
 * (sum_k a_k (q_k - zp) s = s sum_k a_k (q_k - zp)). Rows past the last are clamped to it (computed twice, not
 * stored), so the k loop has no row checks. With RM = 1 this is the first MatMulNBits kernel.
 */
function directProgram(t: Record<string, GpuTensorInfo>, g: NBitsGeometry, zp: ZpKind, rows: number, rm: number, legacy = false): ProgramSpec {
  const names = ['a', 'b', 's', ...(zp !== 'none' ? ['z'] : []), ...(t.bias ? ['bias'] : []), 'y'];
  const y = t.y!;
  const blocks = Math.ceil(g.N / CB);
  const size = Math.ceil(rows / rm) * blocks;
  const perWord = 32 / g.bits;
  const mask = 2 ** g.bits - 1;
  const R = Array.from({ length: rm }, (_, r) => r);
  return {
    key: `matmul-nbits:${g.bits}:${zp}:${t.bias ? 'bias' : ''}:cb${CB}:rm${rm}${legacy ? '' : ':unrolled'}`,
    bindings: names.map((name) => ({ name, type: t[name]!.storage })),
    uniforms: ['size', 'M', 'N', 'K', 'k_blocks', 'block', 'words', 'zp_row', 'blocks'].map((name) => ({ name, type: 'u32' as const })),
    workgroupSize: [WG, 1, 1],
    source(b) {
      const z = zpExpr(zp, g.bits, (i) => b.load('z', i), (i) => b.loadAs('z', i, 'f32'));
      const bias = t.bias ? ` + ${b.loadAs('bias', 'n', 'f32')}` : '';
      // Each code of a word for each of the RM rows; `checked` tests k < K per code (the last word of a ragged K).
      const checked = `for (var j = 0u; j < ${perWord}u; j = j + 1u) {
        let k = kw + j;
        if (k < u.K) {
          let q = vec4<f32>((word >> vec4<u32>(j * ${g.bits}u)) & vec4<u32>(${mask}u)) - zps;
          ${R.map((r) => `part[${r}] = part[${r}] + ${b.loadAs('a', `a_row_${r} + k`, 'f32')} * q;`).join('\n          ')}
        }
      }`;
      // A whole word inside K: unrolled, constant shifts, no checks (the first kernel, 'legacy', had only `checked`).
      const unrolled = Array.from({ length: perWord }, (_, j) => [
        `let q_${j} = vec4<f32>((word >> vec4<u32>(${j * g.bits}u)) & vec4<u32>(${mask}u)) - zps;`,
        ...R.map((r) => `part[${r}] = part[${r}] + ${b.loadAs('a', `a_row_${r} + kw + ${j}u`, 'f32')} * q_${j};`),
      ].join('\n        ')).join('\n        ');
      const words = legacy ? checked : `if (kw + ${perWord}u <= u.K) {
        ${unrolled}
      } else {
        ${checked}
      }`;
      b.main(`${b.linearIndex('u.size')}
  let c0 = (index % u.blocks) * ${CB}u;
  let row0 = (index / u.blocks) * ${rm}u;
  ${R.map((r) => `let a_row_${r} = min(row0 + ${r}u, u.M - 1u) * u.K;`).join('\n  ')}
  var acc: array<vec4<f32>, ${rm}>;
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
    // Reset explicitly: SwiftShader kept the sums of the previous block in an uninitialized loop-local array.
    var part: array<vec4<f32>, ${rm}>;
    ${R.map((r) => `part[${r}] = vec4<f32>(0.0);`).join(' ')}
    for (var w = 0u; w < u.words; w = w + 1u) {
      let word = vec4<u32>(${b.load('b', 'w0.x + w')}, ${b.load('b', 'w0.y + w')}, ${b.load('b', 'w0.z + w')}, ${b.load('b', 'w0.w + w')});
      let kw = k0 + w * ${perWord}u;
      ${words}
    }
    ${R.map((r) => `acc[${r}] = acc[${r}] + part[${r}] * scs;`).join('\n    ')}
  }
  for (var r = 0u; r < ${rm}u; r = r + 1u) {
    let row = row0 + r;
    for (var c = 0u; c < ${CB}u; c = c + 1u) {
      let n = c0 + c;
      if (row < u.M && n < u.N) {
        ${b.store('y', 'row * u.N + n', castExpr(b, `acc[r][c]${bias}`, 'f32', y.dtype, computeTypeOf(y.storage)))}
      }
    }
  }`);
    },
    run: () => ({
      workgroups: dispatchLinear(size, WG),
      uniforms: { size, M: rows, N: g.N, K: g.K, k_blocks: g.kBlocks, block: g.block, words: g.blob / 4, zp_row: g.zpRow, blocks },
    }),
  };
}

/** GEMV form: threads per workgroup (they split K) and output columns per workgroup. */
const GEMV_WG = 64;
const GEMV_COLS = 4;
/** Largest row count (A's rows, batch dims flattened) that takes the GEMV form on a GPU adapter. */
export const GEMV_MAX_ROWS = 4;

/**
 * Statements that set `a_<r>_lo` (and, for 4 bits, `a_<r>_hi`): row r's A values k .. k + perWord - 1 as vec4s,
 * zero past K (those codes are the last block's padding), and `a_<r>_sum`, their sum (the zero point's term).
 */
function loadAWord(b: ShaderBuilder, rows: number, perWord: number): string {
  const lines: string[] = [];
  const vecs = perWord / 4;
  for (let r = 0; r < rows; r++) {
    for (let v = 0; v < vecs; v++) {
      const name = `a_${r}_${v ? 'hi' : 'lo'}`;
      const at = (j: number) => `a_row_${r} + k + ${v * 4 + j}u`;
      const full = `vec4<f32>(${[0, 1, 2, 3].map((j) => b.loadAs('a', at(j), 'f32')).join(', ')})`;
      const masked = `vec4<f32>(${[0, 1, 2, 3].map((j) => `select(0.0, ${b.loadAs('a', `min(${at(j)}, a_row_${r} + u.K - 1u)`, 'f32')}, k + ${v * 4 + j}u < u.K)`).join(', ')})`;
      lines.push(`var ${name}: vec4<f32>;`, `if (k + ${perWord}u <= u.K) { ${name} = ${full}; } else { ${name} = ${masked}; }`);
    }
    lines.push(`let a_${r}_sum = dot(a_${r}_lo, vec4<f32>(1.0))${vecs > 1 ? ` + dot(a_${r}_hi, vec4<f32>(1.0))` : ''};`);
  }
  return lines.join('\n      ');
}

/** WGSL: the codes of `word` as vec4<f32>s `<p>_lo` (and `<p>_hi`), codes 0..3 (4..7) in order. */
function unpackWord(bits: number, word: string, p: string): string {
  if (bits === 8) return `let ${p}_lo = vec4<f32>((vec4<u32>(${word}) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(255u));`;
  return `let ${p}_lo = vec4<f32>((vec4<u32>(${word}) >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(15u));
        let ${p}_hi = vec4<f32>((vec4<u32>(${word}) >> vec4<u32>(16u, 20u, 24u, 28u)) & vec4<u32>(15u));`;
}

/**
 * The decode form (few rows, a GEMV: memory bound on a GPU). One workgroup per GEMV_COLS output columns and all the
 * rows (at most GEMV_MAX_ROWS, baked into the program); its GEMV_WG threads split K word by word: thread t takes
 * words t, t + GEMV_WG, ... of each column's packed row (adjacent threads read adjacent words of B), unpacks each
 * word's codes in registers and adds s * (a . q - zp * sum(a)) for every row and column, so each A value is read once
 * per workgroup, into registers, and shared by the columns (staging A in workgroup memory would add a barrier and
 * save no reads: no two threads of a workgroup read the same A value). Then one barrier: the partial sums go through
 * workgroup memory and one thread per output adds the GEMV_WG partials of its element (a serial sum instead of a
 * tree: one barrier instead of log2(GEMV_WG)). Where the device has subgroups (KernelEnv.subgroups), subgroupAdd
 * first sums each subgroup's partials, so only one value per subgroup goes through workgroup memory. A word never
 * spans two blocks, so its block index is word / words-per-block.
 */
function gemvProgram(t: Record<string, GpuTensorInfo>, g: NBitsGeometry, zp: ZpKind, rows: number, maxPerDim: number, subgroups: boolean): ProgramSpec {
  const names = ['a', 'b', 's', ...(zp !== 'none' ? ['z'] : []), ...(t.bias ? ['bias'] : []), 'y'];
  const y = t.y!;
  const groups = Math.ceil(g.N / GEMV_COLS);
  const perWord = 32 / g.bits;
  const outs = rows * GEMV_COLS;
  return {
    key: `matmul-nbits-gemv:${g.bits}:${zp}:${t.bias ? 'bias' : ''}:r${rows}:c${GEMV_COLS}${subgroups ? ':sg' : ''}`,
    bindings: names.map((name) => ({ name, type: t[name]!.storage })),
    uniforms: ['N', 'K', 'k_blocks', 'words', 'zp_row', 'row_words', 'groups'].map((name) => ({ name, type: 'u32' as const })),
    workgroupSize: [GEMV_WG, 1, 1],
    source(b) {
      const z = zpExpr(zp, g.bits, (i) => b.load('z', i), (i) => b.loadAs('z', i, 'f32'));
      const bias = t.bias ? ` + ${b.loadAs('bias', 'n', 'f32')}` : '';
      b.helper(`var<workgroup> partial: array<f32, ${outs * GEMV_WG}>; // [rows * columns, threads]`);
      const cols: string[] = [];
      const body: string[] = [];
      for (let c = 0; c < GEMV_COLS; c++) {
        cols.push(`let n_${c} = min(c0 + ${c}u, u.N - 1u);`);
        body.push(`{
        let n = n_${c};
        let blk = w / u.words;
        let sc = ${b.loadAs('s', 'n * u.k_blocks + blk', 'f32')};
        let zp = ${z};
        ${unpackWord(g.bits, b.load('b', `n * u.row_words + w`), 'q')}`);
        for (let r = 0; r < rows; r++) {
          const dot = perWord === 8 ? `dot(a_${r}_lo, q_lo) + dot(a_${r}_hi, q_hi)` : `dot(a_${r}_lo, q_lo)`;
          body.push(`        acc[${r * GEMV_COLS + c}] = acc[${r * GEMV_COLS + c}] + sc * (${dot} - zp * a_${r}_sum);`);
        }
        body.push('      }');
      }
      if (subgroups) b.enable('subgroups');
      // Subgroups: subgroupAdd sums each subgroup's partials and its first invocation stores them, in its own slot
      // (workgroup memory starts zeroed, so the other slots add nothing); no subgroup size or layout is assumed.
      const gather = subgroups
        ? `let lead = subgroupBroadcastFirst(t);
  for (var i = 0u; i < ${outs}u; i = i + 1u) {
    let v = subgroupAdd(acc[i]);
    if (t == lead) { partial[i * ${GEMV_WG}u + t] = v; }
  }`
        : `for (var i = 0u; i < ${outs}u; i = i + 1u) {
    partial[i * ${GEMV_WG}u + t] = acc[i];
  }`;
      const aRows = Array.from({ length: rows }, (_, r) => `let a_row_${r} = ${r}u * u.K;`);
      b.main(`let group = wid.y * nwg.x + wid.x;
  if (group >= u.groups) { return; }
  let c0 = group * ${GEMV_COLS}u;
  let t = lid.x;
  ${cols.join('\n  ')}
  ${aRows.join('\n  ')}
  var acc: array<f32, ${outs}>;
  for (var w = t; w < u.row_words; w = w + ${GEMV_WG}u) {
    let k = w * ${perWord}u;
    if (k < u.K) {
      ${loadAWord(b, rows, perWord)}
      ${body.join('\n      ')}
    }
  }
  ${gather}
  workgroupBarrier();
  if (t < ${outs}u) {
    let row = t / ${GEMV_COLS}u;
    let n = c0 + t % ${GEMV_COLS}u;
    if (n < u.N) {
      var sum = 0.0;
      for (var i = 0u; i < ${GEMV_WG}u; i = i + 1u) {
        sum = sum + partial[t * ${GEMV_WG}u + i];
      }
      ${b.store('y', 'row * u.N + n', castExpr(b, `sum${bias}`, 'f32', y.dtype, computeTypeOf(y.storage)))}
    }
  }`);
    },
    run: () => {
      const yDim = Math.ceil(groups / maxPerDim);
      return {
        workgroups: [Math.ceil(groups / yDim), yDim, 1],
        uniforms: { N: g.N, K: g.K, k_blocks: g.kBlocks, words: g.blob / 4, zp_row: g.zpRow, row_words: (g.kBlocks * g.blob) / 4, groups },
      };
    },
  };
}

/**
 * Prefill form tiles (many rows): like kernels/matmul.ts's 64x64 tiles (16x16 invocations, 4x4 outputs each), K in
 * slices of TK = 16 values. TK divides every block size (16..256), so a slice's words each lie in one block.
 */
const TW = 16;
const TR = 4;
const TK = 16;
const TILE = TW * TR;

/**
 * The prefill form (many rows): the output is cut into TILE x TILE tiles, one per workgroup, as in kernels/matmul.ts.
 * Per K slice the workgroup stages A's TILE x TK values and B's TK x TILE values in workgroup memory; B's are
 * dequantized there once (s * (q - zp), f32) by the threads that read its packed words, and then shared by the
 * TILE rows of the tile, so each code is unpacked once per 64 rows instead of once per row. The f32 tile is
 * TK x TILE values of workgroup memory, never a copy of W in a buffer.
 */
function tiledProgram(t: Record<string, GpuTensorInfo>, g: NBitsGeometry, zp: ZpKind, rows: number): ProgramSpec {
  const names = ['a', 'b', 's', ...(zp !== 'none' ? ['z'] : []), ...(t.bias ? ['bias'] : []), 'y'];
  const y = t.y!;
  const perWord = 32 / g.bits;
  const wordsPerSlice = TK / perWord;
  const threads = TW * TW;
  const mask = 2 ** g.bits - 1;
  return {
    key: `matmul-nbits-tiled:${g.bits}:${zp}:${t.bias ? 'bias' : ''}:${TW}x${TW}:${TR}x${TR}:k${TK}`,
    bindings: names.map((name) => ({ name, type: t[name]!.storage })),
    uniforms: ['M', 'N', 'K', 'k_blocks', 'block', 'zp_row', 'row_words'].map((name) => ({ name, type: 'u32' as const })),
    workgroupSize: [TW, TW, 1],
    source(b) {
      const z = zpExpr(zp, g.bits, (i) => b.load('z', i), (i) => b.loadAs('z', i, 'f32'));
      const bias = t.bias ? ` + ${b.loadAs('bias', 'n', 'f32')}` : '';
      b.helper(`var<workgroup> a_tile: array<f32, ${TILE * TK}>; // [TM=${TILE}, TK=${TK}]`);
      b.helper(`var<workgroup> b_tile: array<f32, ${TK * TILE}>; // [TK=${TK}, TN=${TILE}], dequantized`);
      const reads: string[] = [];
      for (let r = 0; r < TR; r++) reads.push(`let a_${r} = a_tile[(lid.y + ${r * TW}u) * ${TK}u + kk];`);
      for (let c = 0; c < TR; c++) reads.push(`let b_${c} = b_tile[kk * ${TILE}u + lid.x + ${c * TW}u];`);
      for (let r = 0; r < TR; r++) for (let c = 0; c < TR; c++) reads.push(`acc[${r * TR + c}] = acc[${r * TR + c}] + a_${r} * b_${c};`);
      b.main(`let tid = lid.y * ${TW}u + lid.x;
  let row0 = wid.y * ${TILE}u;
  let col0 = wid.x * ${TILE}u;
  var acc: array<f32, ${TR * TR}>;
  let slices = (u.K + ${TK - 1}u) / ${TK}u;
  // No early return: every invocation must reach the barriers.
  for (var sl = 0u; sl < slices; sl = sl + 1u) {
    let k0 = sl * ${TK}u;
    for (var i = tid; i < ${TILE * TK}u; i = i + ${threads}u) {
      let m = row0 + i / ${TK}u;
      let k = k0 + i % ${TK}u;
      var value = 0.0;
      if (m < u.M && k < u.K) { value = ${b.loadAs('a', 'm * u.K + k', 'f32')}; }
      a_tile[i] = value;
    }
    for (var i = tid; i < ${TILE * wordsPerSlice}u; i = i + ${threads}u) {
      let nn = i / ${wordsPerSlice}u;
      let kw = (i % ${wordsPerSlice}u) * ${perWord}u;
      let n = col0 + nn;
      if (n < u.N) {
        let k = k0 + kw;
        let blk = k / u.block;
        let sc = ${b.loadAs('s', 'n * u.k_blocks + blk', 'f32')};
        let zp = ${z};
        let word = ${b.load('b', `n * u.row_words + k / ${perWord}u`)};
        for (var j = 0u; j < ${perWord}u; j = j + 1u) {
          b_tile[(kw + j) * ${TILE}u + nn] = sc * (f32((word >> (j * ${g.bits}u)) & ${mask}u) - zp);
        }
      } else {
        for (var j = 0u; j < ${perWord}u; j = j + 1u) {
          b_tile[(kw + j) * ${TILE}u + nn] = 0.0;
        }
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${TK}u; kk = kk + 1u) {
      ${reads.join('\n      ')}
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < ${TR}u; r = r + 1u) {
    let m = row0 + lid.y + r * ${TW}u;
    for (var c = 0u; c < ${TR}u; c = c + 1u) {
      let n = col0 + lid.x + c * ${TW}u;
      if (m < u.M && n < u.N) {
        ${b.store('y', 'm * u.N + n', castExpr(b, `acc[r * ${TR}u + c]${bias}`, 'f32', y.dtype, computeTypeOf(y.storage)))}
      }
    }
  }`);
    },
    run: () => ({
      workgroups: [Math.ceil(g.N / TILE), Math.ceil(rows / TILE), 1],
      uniforms: { M: rows, N: g.N, K: g.K, k_blocks: g.kBlocks, block: g.block, zp_row: g.zpRow, row_words: (g.kBlocks * g.blob) / 4 },
    }),
  };
}

/**
 * The programs; which one a plan takes is chooseNBitsForm's. 'legacy' is the direct form with one row per
 * invocation, which is the first MatMulNBits kernel: kept selectable for bench/matmul-nbits.bench.ts's "before".
 */
export type NBitsForm = 'direct' | 'gemv' | 'tiled' | 'legacy';

let forcedForm: NBitsForm | undefined;
let forcedSubgroups: boolean | undefined;

/** Forces the GEMV's reduction with (true) or without (false) subgroups where the device has them; undefined: the device decides. */
export function setNBitsSubgroups(use: boolean | undefined): void {
  forcedSubgroups = use;
}

/** Forces one form for every plan made after the call (tests and bench/matmul-nbits.bench.ts); undefined restores the choice by size. */
export function setNBitsForm(form: NBitsForm | undefined): void {
  forcedForm = form;
}

/**
 * The form for `rows` rows of A (batch dims flattened): GEMV up to GEMV_MAX_ROWS rows, tiled above. A forced
 * form (setNBitsForm) wins.
 */
export function chooseNBitsForm(rows: number, cpuAdapter = false): NBitsForm {
  if (forcedForm) return forcedForm;
  if (cpuAdapter) return 'direct';
  return rows <= GEMV_MAX_ROWS ? 'gemv' : 'tiled';
}

const matMulNBits: GpuKernel = {
  // B is read at plan time and uploaded packed (as a shared constant), never in the one-code-per-u32 form.
  hostInputs: [1],
  plan(node, inputs, [y], env) {
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
    const form = chooseNBitsForm(rows, env.cpuAdapter);
    const limit = env.limits.maxComputeWorkgroupsPerDimension;
    if (form === 'tiled' && Math.ceil(rows / TILE) > limit) throw new GpuUnsupported(`MatMulNBits with ${rows} rows exceeds one dispatch of ${TILE}-row tiles`);
    const program = form === 'gemv' && rows <= GEMV_MAX_ROWS ? gemvProgram(infos, g, zp, rows, limit, !!env.subgroups && forcedSubgroups !== false)
      : form === 'direct' || form === 'legacy' ? directProgram(infos, g, zp, rows, form === 'legacy' ? 1 : directRows(rows), form === 'legacy')
      : tiledProgram(infos, g, zp, rows);
    return { calls: [{ program, tensors }], constants: [words], sharedConstants: [0] };
  },
};

export const kernels: Record<string, GpuKernel> = { [msOp('MatMulNBits')]: matMulNBits };
