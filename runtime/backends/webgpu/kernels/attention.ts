import { attrFloat, attrInt } from '../../../ir/graph.js';
import { attentionGeometry, attentionScale, type AttentionGeometry } from '../../../ir/ops/attention.js';
import { broadcastStrides } from '../../cpu/math-broadcast.js';
import { dispatchLinear, GpuUnsupported, sizeOfShape, type GpuKernel, type GpuTensorInfo, type KernelPlan, type ProgramCall, type ProgramSpec, type TensorSlot } from '../program.js';
import { computeTypeOf, storageFor } from '../storage.js';
import { convert, type ShaderBuilder } from '../wgsl/builder.js';
import { DECODE_THREADS, decodeBody } from './attention-decode.js';

/**
 * Attention on WebGPU (formulas: cpu/kernels/attention.ts; design: docs/attention.md). One fused program in the
 * style of FlashAttention (Dao et al. 2022): a workgroup owns ROWS query rows of one (batch, head), one invocation
 * per row; it walks the keys in tiles of `bc` that the workgroup loads together into workgroup memory, scores the
 * tile, and folds it into a running max m, sum l and weighted value sum acc (the online softmax of Milakov &
 * Gimelshein 2018). The score matrix never exists: memory is O(rows * head size), whatever the sequence length.
 *
 * Q, K, V are read through strides, so 3-D [B, S, H*D] and 4-D [B, H, S, D] layouts share the shader. With a past,
 * a copy program first writes present = concat(past, new) ([B, Hkv, T, D], the op's present outputs or scratch)
 * and attention reads keys from there. Key/value head = query head / group (GQA, MQA).
 */

const ROWS = 32;
/** Below this many query rows (a decode step, a short continuation) each row gets a workgroup of its own. */
const DECODE_ROWS = 8;
/** Head sizes the private q/acc arrays are sized for (the shader loops to the real size, a uniform). */
const HEAD_TILES = [16, 32, 64, 128, 256];
/** Bytes of workgroup memory the K and V tiles may use (WebGPU's guaranteed minimum is 16384). */
const TILE_BYTES = 16384;

const headTile = (d: number): number | undefined => HEAD_TILES.find((t) => t >= d);

function floatOnly(ts: (GpuTensorInfo | undefined)[]): void {
  for (const t of ts) if (t && !t.dtype.startsWith('float')) throw new GpuUnsupported(`Attention on ${t.dtype} has no WebGPU kernel`);
}

/** Strides (batch, head, sequence) of a Q/K/V/Y tensor in its layout, for element (b, h, s, d) = sum + d. */
function layoutStrides(shape: readonly number[], heads: number, headSize: number): [number, number, number] {
  if (shape.length === 4) return [shape[1]! * shape[2]! * shape[3]!, shape[2]! * shape[3]!, shape[3]!];
  return [shape[1]! * shape[2]!, headSize, heads * headSize];
}

/**
 * present[b, h, t, d] = past[b, h, t, d] for t < P, else x at sequence t - P through x's strides: one invocation
 * per present element. Without a past it is the layout change of K or V into [B, Hkv, T, D].
 */
function presentProgram(hasPast: boolean, past: GpuTensorInfo | undefined, x: GpuTensorInfo, out: GpuTensorInfo, vals: Record<string, number>): ProgramSpec {
  const size = sizeOfShape(out.shape);
  return {
    key: `attention-present:${hasPast ? 'past' : 'new'}`,
    bindings: [...(hasPast ? [{ name: 'past', type: past!.storage }] : []), { name: 'x', type: x.storage }, { name: 'present', type: out.storage }],
    uniforms: ['size', 'heads', 'past_len', 'total', 'dim', 'x_sb', 'x_sh', 'x_ss'].map((name) => ({ name, type: 'u32' as const })),
    workgroupSize: [64, 1, 1],
    source(b) {
      const T = computeTypeOf(out.storage);
      const fromX = convert(T, computeTypeOf(x.storage), b.load('x', 'b * u.x_sb + h * u.x_sh + (t - u.past_len) * u.x_ss + d'));
      const fromPast = hasPast ? convert(T, computeTypeOf(past!.storage), b.load('past', '(bh * u.past_len + t) * u.dim + d')) : '';
      b.main(`${b.linearIndex('u.size')}
  let d = index % u.dim;
  let t = (index / u.dim) % u.total;
  let bh = index / (u.dim * u.total);
  let h = bh % u.heads;
  let b = bh / u.heads;
  ${hasPast ? `if (t < u.past_len) {\n    ${b.store('present', 'index', fromPast)}\n    return;\n  }\n  ` : ''}${b.store('present', 'index', fromX)}`);
    },
    run: () => ({ workgroups: dispatchLinear(size, 64), uniforms: { size, ...vals } }),
  };
}

/** 'fill': a bool mask whose false entries set the score to u.mask_fill (the fused Where(mask, S, fill) chain). */
type MaskKind = 'none' | 'bool' | 'fill' | 'float';

interface FlashSpec {
  q: GpuTensorInfo;
  k: GpuTensorInfo;
  v: GpuTensorInfo;
  mask?: GpuTensorInfo;
  y: GpuTensorInfo;
  maskKind: MaskKind;
  /** Private array sizes: head tiles for D and Dv. */
  dk: number;
  dv: number;
  /** Keys per tile. */
  bc: number;
  /** One workgroup per query row, its threads splitting the keys (attention-decode.ts), instead of tiles of rows. */
  decode: boolean;
  g: AttentionGeometry;
  values: Record<string, number | number[]>;
}

/** The WGSL that applies the mask to `score` for key `j` of the row whose mask offset is `m_row`. */
function maskTermOf(b: ShaderBuilder, kind: MaskKind): string {
  if (kind === 'bool') return `
        if (${b.load('mask', 'm_row + j * u.m_st_3')} == 0u) { keep = false; }`;
  if (kind === 'fill') return `
        if (${b.load('mask', 'm_row + j * u.m_st_3')} == 0u) { score = u.mask_fill; }`;
  if (kind === 'float') return `
        score = score + ${b.loadAs('mask', 'm_row + j * u.m_st_3', 'f32')};
        keep = score >= LOWEST; // a -inf (or NaN) score takes no part`;
  return '';
}

function flashProgram(s: FlashSpec): ProgramSpec {
  const { dk, dv, bc } = s;
  const u32 = (name: string) => ({ name, type: 'u32' as const });
  return {
    key: s.decode ? `attention-decode:dk${dk}:dv${dv}:mask-${s.maskKind}` : `attention-flash:dk${dk}:dv${dv}:bc${bc}:mask-${s.maskKind}`,
    bindings: [
      { name: 'q', type: s.q.storage }, { name: 'k', type: s.k.storage }, { name: 'v', type: s.v.storage },
      ...(s.mask ? [{ name: 'mask', type: s.mask.storage }] : []), { name: 'y', type: s.y.storage },
    ],
    uniforms: [
      ...['q_seq', 'total', 'head_size', 'v_head_size', 'group', 'causal', 'past_len'].map(u32),
      { name: 'scale', type: 'f32' }, { name: 'softcap', type: 'f32' }, { name: 'mask_fill', type: 'f32' },
      { name: 'q_st', type: 'u32', length: 3 }, { name: 'k_st', type: 'u32', length: 3 },
      { name: 'v_st', type: 'u32', length: 3 }, { name: 'y_st', type: 'u32', length: 3 },
      { name: 'm_st', type: 'u32', length: 4 },
    ],
    workgroupSize: [s.decode ? DECODE_THREADS : ROWS, 1, 1],
    source(b) {
      const f = (name: string, i: string) => b.loadAs(name, i, 'f32');
      const maskTerm = maskTermOf(b, s.maskKind);
      b.helper(`// The lowest finite f32: the running max starts here, so no arithmetic on infinities. Keys masked out (bool
// mask, is_causal, a -inf score) take no part; a finite score, however low, takes part as Softmax would.
const LOWEST: f32 = -0x1.fffffep+127f;`);
      if (s.decode) {
        decodeBody(b, { dk, dv, maskTerm, store: (i, v) => b.store('y', i, convert(computeTypeOf(s.y.storage), 'f32', v)) });
        return;
      }
      b.helper(`// The K and V tiles of the current keys, shared by the workgroup's ${ROWS} rows.
// vec4 along the head dim; entries past the real head size stay 0 (workgroup memory starts zeroed and they are
// never written), so the products can run over the whole tile width DK / DV with dot().
var<workgroup> k_tile: array<vec4<f32>, ${(bc * dk) / 4}>; // [BC=${bc}, DK/4=${dk / 4}]
var<workgroup> v_tile: array<vec4<f32>, ${(bc * dv) / 4}>; // [BC=${bc}, DV/4=${dv / 4}]`);
      b.main(`
  let batch = wid.z;
  let head = wid.y;
  let row = wid.x * ${ROWS}u + lid.x;
  let live = row < u.q_seq;
  let kv_head = head / u.group;
  let q_base = batch * u.q_st_0 + head * u.q_st_1 + row * u.q_st_2;
  let k_base = batch * u.k_st_0 + kv_head * u.k_st_1;
  let v_base = batch * u.v_st_0 + kv_head * u.v_st_1;
  let m_row = batch * u.m_st_0 + head * u.m_st_1 + row * u.m_st_2;

  // This row's query, scaled once instead of every score.
  var q_row: array<vec4<f32>, ${dk / 4}>; // zero past the head size
  if (live) {
    for (var d = 0u; d < u.head_size; d++) { q_row[d / 4u][d % 4u] = ${f('q', 'q_base + d')} * u.scale; }
  }
  // Keys this row may see: all T, or with is_causal those j <= row + past_len. The workgroup walks the keys of
  // its last live row, since every row shares the tile loads.
  let last_row = min(u.q_seq, (wid.x + 1u) * ${ROWS}u) - 1u;
  var row_end = u.total;
  var wg_end = u.total;
  if (u.causal != 0u) {
    row_end = min(u.total, row + u.past_len + 1u);
    wg_end = min(u.total, last_row + u.past_len + 1u);
  }

  var m = LOWEST; // running max of the scores seen
  var l = 0.0;   // running sum of exp(score - m)
  var acc: array<vec4<f32>, ${dv / 4}>; // running sum of exp(score - m) * v, zero past the value head size
  var scores: array<f32, ${bc}>;
  var kept: array<bool, ${bc}>;
  for (var j0 = 0u; j0 < wg_end; j0 += ${bc}u) {
    let n = min(${bc}u, u.total - j0);
    // Cooperative load of keys j0 .. j0 + n into the tiles.
    for (var e = lid.x; e < n * u.head_size; e += ${ROWS}u) {
      let jj = e / u.head_size;
      let d = e % u.head_size;
      k_tile[jj * ${dk / 4}u + d / 4u][d % 4u] = ${f('k', 'k_base + (j0 + jj) * u.k_st_2 + d')};
    }
    for (var e = lid.x; e < n * u.v_head_size; e += ${ROWS}u) {
      let jj = e / u.v_head_size;
      let d = e % u.v_head_size;
      v_tile[jj * ${dv / 4}u + d / 4u][d % 4u] = ${f('v', 'v_base + (j0 + jj) * u.v_st_2 + d')};
    }
    workgroupBarrier();
    if (live && j0 < row_end) {
      let seen = min(n, row_end - j0);
      var tile_max = LOWEST;
      var tile_kept = false;
      for (var jj = 0u; jj < seen; jj++) {
        let j = j0 + jj;
        var keep = true;
        var score = 0.0;
        for (var c = 0u; c < ${dk / 4}u; c++) { score += dot(q_row[c], k_tile[jj * ${dk / 4}u + c]); }
        if (u.softcap > 0.0) { score = u.softcap * tanh(score / u.softcap); }${maskTerm}
        scores[jj] = score;
        kept[jj] = keep;
        if (keep) {
          tile_max = max(tile_max, score);
          tile_kept = true;
        }
      }
      // Fold the tile in: rescale what was summed under the old max, then add this tile's terms.
      if (tile_kept) {
        let m_new = max(m, tile_max);
        let correction = exp(m - m_new);
        l = l * correction;
        for (var c = 0u; c < ${dv / 4}u; c++) { acc[c] = acc[c] * correction; }
        for (var jj = 0u; jj < seen; jj++) {
          if (!kept[jj]) { continue; }
          let p = exp(scores[jj] - m_new);
          l += p;
          for (var c = 0u; c < ${dv / 4}u; c++) { acc[c] += p * v_tile[jj * ${dv / 4}u + c]; }
        }
        m = m_new;
      }
    }
    workgroupBarrier();
  }
  if (!live) { return; }
  // A row with every key masked out has l = 0 and yields zeros (as onnxruntime does).
  let inv = select(0.0, 1.0 / l, l > 0.0);
  let y_base = batch * u.y_st_0 + head * u.y_st_1 + row * u.y_st_2;
  for (var d = 0u; d < u.v_head_size; d++) {
    ${b.store('y', 'y_base + d', convert(computeTypeOf(s.y.storage), 'f32', 'acc[d / 4u][d % 4u] * inv'))}
  }`);
    },
    run: () => ({ workgroups: [s.decode ? s.g.qSeq : Math.ceil(s.g.qSeq / ROWS), s.g.qHeads, s.g.batch], uniforms: s.values }),
  };
}

/** Keys per tile: as many as fit the workgroup-memory budget for these head tiles, at most 32. */
function keysPerTile(dk: number, dv: number, limitBytes: number): number {
  const bytes = Math.min(TILE_BYTES, limitBytes);
  return Math.max(1, Math.min(32, 2 ** Math.floor(Math.log2(bytes / (4 * (dk + dv))))));
}

const attention: GpuKernel = {
  plan(node, inputs, outputs, env): KernelPlan {
    const [q, k, v, mask, pastKey, pastValue] = inputs;
    floatOnly([q, k, v, pastKey, pastValue]);
    if (mask && mask.dtype !== 'bool') floatOnly([mask]);
    if (outputs[3]) {
      throw new GpuUnsupported('Attention qk_matmul_output has no WebGPU kernel: it is the [B, H, S, T] score matrix the fused kernel never forms');
    }
    const g = attentionGeometry(node, q!.shape, k!.shape, v!.shape, pastKey?.shape);
    const dk = headTile(g.headSize);
    const dv = headTile(g.vHeadSize);
    if (!dk || !dv) throw new GpuUnsupported(`Attention head sizes above ${HEAD_TILES.at(-1)} have no WebGPU kernel (got ${g.headSize} and ${g.vHeadSize})`);
    const calls: ProgramCall[] = [];
    const scratch: GpuTensorInfo[] = [];
    // Keys and values as the flash program reads them: the raw K/V, or present when there is a past.
    const sources: { t: GpuTensorInfo; slot: TensorSlot; st: [number, number, number] }[] = [];
    for (const [which, x, past, out, d] of [[1, k!, pastKey, outputs[1], g.headSize], [2, v!, pastValue, outputs[2], g.vHeadSize]] as const) {
      const presentShape = [g.batch, g.kvHeads, g.total, d];
      const pSt: [number, number, number] = [g.kvHeads * g.total * d, g.total * d, d];
      let target: { t: GpuTensorInfo; slot: TensorSlot } | undefined = out ? { t: out, slot: { output: which } } : undefined;
      if (!target && past) {
        const t: GpuTensorInfo = { dtype: x.dtype, shape: presentShape, storage: storageFor(x.dtype, env.f16, false) };
        scratch.push(t);
        target = { t, slot: { scratch: scratch.length - 1 } };
      }
      const xSt = layoutStrides(x.shape, g.kvHeads, d);
      if (target && sizeOfShape(presentShape) > 0) {
        const vals = { heads: g.kvHeads, past_len: g.past, total: g.total, dim: d, x_sb: xSt[0], x_sh: xSt[1], x_ss: xSt[2] };
        const program = presentProgram(!!past, past, x, target.t, vals);
        calls.push({ program, tensors: [...(past ? [{ input: which + 3 }] : []), { input: which }, target.slot] });
      }
      sources.push(past ? { t: target!.t, slot: target!.slot, st: pSt } : { t: x, slot: { input: which }, st: xSt });
    }
    const y = outputs[0]!;
    if (sizeOfShape(y.shape) === 0) return { calls, scratch };
    const fill = attrFloat(node, 'mask_fill');
    const maskKind: MaskKind = !mask ? 'none' : mask.dtype !== 'bool' ? 'float' : fill === undefined ? 'bool' : 'fill';
    const mSt = mask ? broadcastStrides(mask.shape, [g.batch, g.qHeads, g.qSeq, g.total]) : [0, 0, 0, 0];
    const bc = keysPerTile(dk, dv, env.limits.maxComputeWorkgroupStorageSize);
    const spec: FlashSpec = {
      q: q!, k: sources[0]!.t, v: sources[1]!.t, mask, y: y, maskKind, dk, dv, bc, g, decode: g.qSeq < DECODE_ROWS,
      values: {
        q_seq: g.qSeq, total: g.total, head_size: g.headSize, v_head_size: g.vHeadSize, group: g.qHeads / g.kvHeads,
        causal: attrInt(node, 'is_causal', 0) !== 0 ? 1 : 0, past_len: g.past,
        scale: attentionScale(node, g.headSize), softcap: attrFloat(node, 'softcap', 0), mask_fill: fill ?? 0,
        q_st: layoutStrides(q!.shape, g.qHeads, g.headSize), k_st: sources[0]!.st, v_st: sources[1]!.st,
        y_st: layoutStrides(y.shape, g.qHeads, g.vHeadSize), m_st: mSt,
      },
    };
    calls.push({
      program: flashProgram(spec),
      tensors: [{ input: 0 }, sources[0]!.slot, sources[1]!.slot, ...(mask ? [{ input: 3 }] : []), { output: 0 }],
    });
    return { calls, scratch };
  },
};

export const kernels: Record<string, GpuKernel> = { Attention: attention };
