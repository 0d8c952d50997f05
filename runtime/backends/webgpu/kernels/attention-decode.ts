import type { ShaderBuilder } from '../wgsl/builder.js';

/**
 * The decode form of the fused attention (kernels/attention.ts, docs/attention.md): used when a step has few query
 * rows (a generation step has one), where the row-tiled form would keep one invocation per workgroup busy. Here one
 * workgroup owns one query row and its DECODE_THREADS invocations split the keys (invocation t takes keys
 * t, t + DECODE_THREADS, ...), each with its own online softmax (m, l, acc); the workgroup then merges them:
 * M = max m_t, L = sum l_t exp(m_t - M), y = sum acc_t exp(m_t - M) / L (the split-softmax merge of
 * flash-decoding), the value sums in chunks of CHUNK columns through workgroup memory. Same bindings, uniforms,
 * masks and semantics as the tiled form; the grid is [Sq, Hq, B].
 */

export const DECODE_THREADS = 64;
const CHUNK = 32;

export interface DecodeParts {
  /** Private array sizes for the query and the value sum. */
  dk: number;
  dv: number;
  /** WGSL applying the mask to `score` for key `j` (uses `m_row`; clears `keep` for a key that takes no part). */
  maskTerm: string;
  /** Statement storing f32 `value` to element `index` of y. */
  store(index: string, value: string): string;
}

export function decodeBody(b: ShaderBuilder, p: DecodeParts): void {
  const f = (name: string, i: string) => b.loadAs(name, i, 'f32');
  b.helper(`// Per-invocation partial results, merged by the workgroup.
var<workgroup> part_m: array<f32, ${DECODE_THREADS}>;
var<workgroup> part_l: array<f32, ${DECODE_THREADS}>;
var<workgroup> part_acc: array<f32, ${DECODE_THREADS * CHUNK}>; // [THREADS=${DECODE_THREADS}, CHUNK=${CHUNK}]`);
  b.main(`
  let batch = wid.z;
  let head = wid.y;
  let row = wid.x;
  let t = lid.x;
  let kv_head = head / u.group;
  let q_base = batch * u.q_st_0 + head * u.q_st_1 + row * u.q_st_2;
  let k_base = batch * u.k_st_0 + kv_head * u.k_st_1;
  let v_base = batch * u.v_st_0 + kv_head * u.v_st_1;
  let m_row = batch * u.m_st_0 + head * u.m_st_1 + row * u.m_st_2;

  var q_row: array<f32, ${p.dk}>;
  for (var d = 0u; d < u.head_size; d++) { q_row[d] = ${f('q', 'q_base + d')} * u.scale; }
  var row_end = u.total;
  if (u.causal != 0u) { row_end = min(u.total, row + u.past_len + 1u); }

  // This invocation's share of the keys, with its own running max m, sum l and value sum acc.
  var m = LOWEST;
  var l = 0.0;
  var acc: array<f32, ${p.dv}>;
  for (var j = t; j < row_end; j += ${DECODE_THREADS}u) {
    let k_row = k_base + j * u.k_st_2;
    var keep = true;
    var score = 0.0;
    for (var d = 0u; d < u.head_size; d++) { score += q_row[d] * ${f('k', 'k_row + d')}; }
    if (u.softcap > 0.0) { score = u.softcap * tanh(score / u.softcap); }${p.maskTerm}
    if (!keep) { continue; }
    if (score > m) {
      let correction = exp(m - score);
      l = l * correction;
      for (var d = 0u; d < u.v_head_size; d++) { acc[d] = acc[d] * correction; }
      m = score;
    }
    let weight = exp(score - m);
    l += weight;
    let v_row = v_base + j * u.v_st_2;
    for (var d = 0u; d < u.v_head_size; d++) { acc[d] += weight * ${f('v', 'v_row + d')}; }
  }

  // Merge: the row's max, each share rescaled to it, the sums added up.
  part_m[t] = m;
  workgroupBarrier();
  var row_max = LOWEST;
  for (var i = 0u; i < ${DECODE_THREADS}u; i++) { row_max = max(row_max, part_m[i]); }
  let rescale = select(0.0, exp(m - row_max), l > 0.0);
  part_l[t] = l * rescale;
  workgroupBarrier();
  var row_l = 0.0;
  for (var i = 0u; i < ${DECODE_THREADS}u; i++) { row_l += part_l[i]; }
  // A row with every key masked out has no weight and yields zeros (as onnxruntime does).
  let inv = select(0.0, 1.0 / row_l, row_l > 0.0);
  let y_base = batch * u.y_st_0 + head * u.y_st_1 + row * u.y_st_2;
  for (var c0 = 0u; c0 < u.v_head_size; c0 += ${CHUNK}u) {
    for (var c = 0u; c < ${CHUNK}u; c++) {
      var value = 0.0;
      if (c0 + c < u.v_head_size) { value = acc[c0 + c] * rescale; }
      part_acc[t * ${CHUNK}u + c] = value;
    }
    workgroupBarrier();
    if (t < ${CHUNK}u && c0 + t < u.v_head_size) {
      var sum = 0.0;
      for (var i = 0u; i < ${DECODE_THREADS}u; i++) { sum += part_acc[i * ${CHUNK}u + t]; }
      ${p.store('y_base + c0 + t', 'sum * inv')}
    }
    workgroupBarrier();
  }`);
}
