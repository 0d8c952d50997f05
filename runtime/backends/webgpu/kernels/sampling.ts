import { InternalError } from '../../../errors.js';
import { isGreedy, SAMPLER_THREADS, type SamplingParams } from '../../cpu/sampling.js';
import type { GpuResources, GpuTensorRef } from '../executor.js';
import { UNIFORM_USAGE, type GpuBufferLease } from '../memory.js';
import type { ProgramSpec } from '../program.js';
import { packUniforms } from '../wgsl/builder.js';
import { MIX32_WGSL } from './random.js';

/**
 * Next-token selection on the GPU for text generation: repetition penalty, NaN check, greedy arg max, temperature,
 * top-k, top-p and a seeded draw, one workgroup of 256 invocations per batch row, reading the last position's
 * logits straight from the model's output buffer. Only the chosen ids (and a NaN flag per row) are read back; the
 * rows' seen-token flags for the penalty stay on the GPU and are updated by the same dispatch. The steps, their
 * order and the arithmetic are those of the CPU twin (runtime/backends/cpu/sampling.ts), which documents them.
 *
 * Top-k and top-p thresholds are exact binary searches over the floats' order-preserving u32 keys: 32 rounds, each
 * a strided pass over the row and a tree reduction in workgroup memory. Values read from workgroup memory to steer
 * the search go through workgroupUniformLoad, so every barrier stays in uniform control flow.
 */

const T = SAMPLER_THREADS;

const UNIFORMS = [
  { name: 'vocab', type: 'u32' as const },
  { name: 'rows', type: 'u32' as const },
  { name: 'offset', type: 'u32' as const },
  { name: 'row_stride', type: 'u32' as const },
  { name: 'inv_temp', type: 'f32' as const },
  { name: 'greedy', type: 'u32' as const },
  { name: 'top_k', type: 'u32' as const },
  { name: 'top_p', type: 'f32' as const },
  { name: 'penalty', type: 'f32' as const },
  { name: 'inv_penalty', type: 'f32' as const },
  { name: 'k0', type: 'u32' as const },
  { name: 'k1', type: 'u32' as const },
  { name: 'step', type: 'u32' as const },
];

/**
 * The sampler program: logits [rows, ..., vocab] (f32, or f16 where the device stores float16 outputs natively; the
 * arithmetic is f32 either way), seen flags [rows, vocab] (u32), out [2 rows] (token ids, then NaN flags).
 */
export function samplerProgram(storage: 'f32' | 'f16' = 'f32'): ProgramSpec {
  return {
    key: 'sample_tokens',
    bindings: [{ name: 'logits', type: storage }, { name: 'seen', type: 'u32' }, { name: 'out', type: 'i32' }],
    uniforms: UNIFORMS,
    workgroupSize: [T, 1, 1],
    source(b) {
      b.helper(`var<workgroup> red_f: array<f32, ${T}>;`);
      b.helper(`var<workgroup> red_u: array<u32, ${T}>;`);
      b.helper(`var<workgroup> red_n: array<u32, ${T}>;`);
      b.helper('var<workgroup> shared_u: u32;');
      b.helper('var<workgroup> shared_f: f32;');
      b.helper('var<workgroup> shared_nan: u32;');
      b.helper(MIX32_WGSL);
      b.helper(`// The row's logit i after the repetition penalty.
fn logit_at(row: u32, i: u32) -> f32 {
  let x = ${storage === 'f16' ? 'f32(logits[u.offset + row * u.row_stride + i])' : 'logits[u.offset + row * u.row_stride + i]'};
  if (u.penalty != 1.0 && seen[row * u.vocab + i] != 0u) {
    return select(x * u.penalty, x * u.inv_penalty, x > 0.0);
  }
  return x;
}`);
      b.helper(`fn is_nan(x: f32) -> bool {
  let bits = bitcast<u32>(x);
  return (bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0u;
}`);
      b.helper(`// Order-preserving key: a < b as floats iff key(a) < key(b).
fn float_key(x: f32) -> u32 {
  let bits = bitcast<u32>(x);
  return select(bits | 0x80000000u, ~bits, (bits & 0x80000000u) != 0u);
}`);
      b.helper(`fn sum_f(t: u32, v: f32) -> f32 {
  red_f[t] = v;
  workgroupBarrier();
  for (var s = ${T / 2}u; s > 0u; s = s >> 1u) {
    if (t < s) { red_f[t] = red_f[t] + red_f[t + s]; }
    workgroupBarrier();
  }
  if (t == 0u) { shared_f = red_f[0]; }
  return workgroupUniformLoad(&shared_f);
}`);
      b.helper(`fn sum_u(t: u32, v: u32) -> u32 {
  red_u[t] = v;
  workgroupBarrier();
  for (var s = ${T / 2}u; s > 0u; s = s >> 1u) {
    if (t < s) { red_u[t] = red_u[t] + red_u[t + s]; }
    workgroupBarrier();
  }
  if (t == 0u) { shared_u = red_u[0]; }
  return workgroupUniformLoad(&shared_u);
}`);
      b.helper(`fn finish(row: u32, token: i32, nan: i32) {
  out[row] = token;
  out[u.rows + row] = nan;
  if (token >= 0) { seen[row * u.vocab + u32(token)] = 1u; }
}`);
      const inf = b.infinity(true);
      b.main(`let row = wid.x;
  let t = lid.x;
  // Arg max (lowest index among equal maxima) and the NaN check, one pass.
  var best = ${inf};
  var idx = 0xffffffffu;
  var nan = 0u;
  for (var i = t; i < u.vocab; i = i + ${T}u) {
    let x = logit_at(row, i);
    if (is_nan(x)) { nan = 1u; } else if (x > best || (x == best && i < idx)) { best = x; idx = i; }
  }
  red_f[t] = best;
  red_u[t] = idx;
  red_n[t] = nan;
  workgroupBarrier();
  for (var s = ${T / 2}u; s > 0u; s = s >> 1u) {
    if (t < s) {
      let ob = red_f[t + s];
      let oi = red_u[t + s];
      if (ob > red_f[t] || (ob == red_f[t] && oi < red_u[t])) { red_f[t] = ob; red_u[t] = oi; }
      red_n[t] = max(red_n[t], red_n[t + s]);
    }
    workgroupBarrier();
  }
  if (t == 0u) { shared_nan = red_n[0]; shared_u = red_u[0]; }
  if (workgroupUniformLoad(&shared_nan) != 0u) {
    if (t == 0u) { finish(row, -1, 1); }
    return;
  }
  let arg = workgroupUniformLoad(&shared_u);
  if (u.greedy != 0u) {
    if (t == 0u) { finish(row, i32(arg), 0); }
    return;
  }
  let m = logit_at(row, arg) * u.inv_temp;
  // Top-k: the largest key with at least k keys at or above it.
  var thr = 0u;
  if (u.top_k > 0u && u.top_k < u.vocab) {
    var lo = 0u;
    var hi = 0xffffffffu;
    for (var r = 0u; r < 32u; r = r + 1u) {
      let d = hi - lo;
      let mid = lo + (d >> 1u) + (d & 1u);
      var c = 0u;
      for (var i = t; i < u.vocab; i = i + ${T}u) {
        if (float_key(logit_at(row, i) * u.inv_temp) >= mid) { c = c + 1u; }
      }
      if (sum_u(t, c) >= u.top_k) { lo = mid; } else { hi = mid - 1u; }
    }
    thr = lo;
  }
  // Top-p: the largest key whose mass at or above it (among the top-k) is at least p of the total.
  if (u.top_p > 0.0 && u.top_p < 1.0) {
    let t0 = thr;
    var a = 0.0;
    for (var i = t; i < u.vocab; i = i + ${T}u) {
      let z = logit_at(row, i) * u.inv_temp;
      if (float_key(z) >= t0) { a = a + exp(z - m); }
    }
    let need = u.top_p * sum_f(t, a);
    var lo = 0u;
    var hi = 0xffffffffu;
    for (var r = 0u; r < 32u; r = r + 1u) {
      let d = hi - lo;
      let mid = lo + (d >> 1u) + (d & 1u);
      var s = 0.0;
      for (var i = t; i < u.vocab; i = i + ${T}u) {
        let z = logit_at(row, i) * u.inv_temp;
        let k = float_key(z);
        if (k >= mid && k >= t0) { s = s + exp(z - m); }
      }
      if (sum_f(t, s) >= need) { lo = mid; } else { hi = mid - 1u; }
    }
    thr = max(lo, t0);
  }
  // Draw: contiguous chunks summed in index order, then one invocation walks them.
  let chunk = (u.vocab + ${T - 1}u) / ${T}u;
  let first = min(u.vocab, t * chunk);
  let last = min(u.vocab, first + chunk);
  var cs = 0.0;
  for (var i = first; i < last; i = i + 1u) {
    let z = logit_at(row, i) * u.inv_temp;
    if (float_key(z) >= thr) { cs = cs + exp(z - m); }
  }
  red_f[t] = cs;
  workgroupBarrier();
  if (t != 0u) { return; }
  var total = 0.0;
  for (var k = 0u; k < ${T}u; k = k + 1u) { total = total + red_f[k]; }
  let draw = mix32(mix32(row ^ u.k0) ^ u.k1 ^ (u.step * 0x68e31da4u));
  let goal = f32(draw >> 8u) * 5.9604644775390625e-8 * total;
  var acc = 0.0;
  var at = 0.0;
  var c = -1;
  for (var k = 0u; k < ${T}u; k = k + 1u) {
    let w = red_f[k];
    if (w > 0.0) { c = i32(k); at = acc; }
    let next = acc + w;
    if (next > goal && w > 0.0) { break; }
    acc = next;
  }
  var token = i32(arg);
  if (c >= 0) {
    acc = at;
    let c0 = u32(c) * chunk;
    for (var i = c0; i < min(u.vocab, c0 + chunk); i = i + 1u) {
      let z = logit_at(row, i) * u.inv_temp;
      if (float_key(z) < thr) { continue; }
      let w = exp(z - m);
      if (w <= 0.0) { continue; }
      token = i32(i);
      acc = acc + w;
      if (acc > goal) { break; }
    }
  }
  finish(row, token, 0);`);
    },
    run() {
      throw new InternalError('the sampler is dispatched by GpuSampler, not planned as a node');
    },
  };
}

/** Per-step result: the chosen id per row (-1 where the row's logits held a NaN) and the NaN flags. */
export interface SampledTokens {
  tokens: Int32Array;
  nan: boolean[];
}

/**
 * Runs the sampler over a model's logits output for a batch: owns the seen-token flags [rows, vocab] and the small
 * output buffer, and reads back 8 bytes per row per step.
 */
export class GpuSampler {
  readonly #res: GpuResources;
  readonly #rows: number;
  readonly #vocab: number;
  readonly #programs = { f32: samplerProgram('f32'), f16: samplerProgram('f16') };
  readonly #seen: GpuBufferLease;
  readonly #out: GpuBufferLease;
  readonly #uniforms: GpuBufferLease;
  #disposed = false;

  private constructor(res: GpuResources, rows: number, vocab: number) {
    this.#res = res;
    this.#rows = rows;
    this.#vocab = vocab;
    this.#seen = res.memory.acquire(rows * vocab * 4, undefined, 'edgekit-sampler-seen');
    this.#out = res.memory.acquire(rows * 8, undefined, 'edgekit-sampler-out');
    this.#uniforms = res.memory.acquire(packUniforms(UNIFORMS, zeros()).byteLength, UNIFORM_USAGE, 'edgekit-sampler-uniforms');
  }

  static async create(res: GpuResources, rows: number, vocab: number): Promise<GpuSampler> {
    await res.pipelines.prepare(res.ctx.hasF16 ? [samplerProgram('f32'), samplerProgram('f16')] : [samplerProgram('f32')]);
    return new GpuSampler(res, rows, vocab);
  }

  /** Sets the seen flags: row r's tokens (its prompt) for the repetition penalty. */
  setSeen(rows: readonly (readonly number[])[]): void {
    const flags = new Uint32Array(this.#rows * this.#vocab);
    rows.forEach((ids, r) => {
      for (const id of ids) if (id >= 0 && id < this.#vocab) flags[r * this.#vocab + id] = 1;
    });
    this.#res.memory.upload(this.#seen.buffer, 0, flags);
  }

  /**
   * Chooses one token per row from `logits` [rows, seq, vocab] (f32 or f16 storage): position `seq - 1` of each
   * row. One dispatch and one 8-byte-per-row readback.
   */
  async sample(logits: GpuTensorRef, params: SamplingParams, step: number): Promise<SampledTokens> {
    if (this.#disposed) throw new InternalError('GpuSampler used after dispose');
    const shape = logits.shape;
    const [rows, seq, vocab] = [shape[0]!, shape.length === 3 ? shape[1]! : 1, shape[shape.length - 1]!];
    const storage = logits.storage;
    if ((storage !== 'f32' && storage !== 'f16') || rows !== this.#rows || vocab !== this.#vocab) {
      throw new InternalError(`sampler made for [${this.#rows}, *, ${this.#vocab}] f32 logits got [${shape.join(', ')}] ${logits.storage}`);
    }
    const { ctx, memory, pipelines } = this.#res;
    const p = this.#programs[storage];
    const bytesPer = storage === 'f16' ? 2 : 4;
    const greedy = isGreedy(params);
    const values = {
      vocab,
      rows,
      offset: logits.offset / bytesPer + (seq - 1) * vocab,
      row_stride: seq * vocab,
      inv_temp: greedy ? 1 : 1 / params.temperature,
      greedy: greedy ? 1 : 0,
      top_k: Math.max(0, Math.floor(params.topK)),
      top_p: params.topP,
      penalty: params.repetitionPenalty,
      inv_penalty: 1 / Math.fround(params.repetitionPenalty),
      k0: params.keys[0],
      k1: params.keys[1],
      step,
    };
    const packed = packUniforms(p.uniforms, values);
    memory.upload(this.#uniforms.buffer, 0, new Uint8Array(packed));
    const pipeline = pipelines.getReady(p);
    const logitsBytes = Math.ceil((logits.offset + rows * seq * vocab * bytesPer) / 4) * 4;
    const group = ctx.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      label: p.key,
      entries: [
        { binding: 0, resource: { buffer: logits.buffer, offset: 0, size: logitsBytes } },
        { binding: 1, resource: { buffer: this.#seen.buffer, offset: 0, size: rows * vocab * 4 } },
        { binding: 2, resource: { buffer: this.#out.buffer, offset: 0, size: rows * 8 } },
        { binding: 3, resource: { buffer: this.#uniforms.buffer, offset: 0, size: packed.byteLength } },
      ],
    });
    const encoder = ctx.device.createCommandEncoder({ label: 'edgekit-sample' });
    const pass = encoder.beginComputePass({ label: 'edgekit-sample' });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(rows);
    pass.end();
    const read = memory.encodeReadback(encoder, this.#out.buffer, 0, rows * 8);
    ctx.device.queue.submit([encoder.finish()]);
    const bytes = await read();
    const words = new Int32Array(bytes.buffer, bytes.byteOffset, rows * 2);
    return { tokens: words.slice(0, rows), nan: Array.from(words.subarray(rows), (x) => x !== 0) };
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const l of [this.#seen, this.#out, this.#uniforms]) this.#res.memory.release(l);
  }
}

function zeros(): Record<string, number> {
  return Object.fromEntries(UNIFORMS.map((x) => [x.name, 0]));
}
