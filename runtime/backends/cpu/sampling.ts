import { draw, mix32 } from '../../ir/ops/random.js';

/**
 * Next-token selection from a row of logits, the CPU twin of the WebGPU sampler (webgpu/kernels/sampling.ts). Both
 * follow the same steps in the same float32 arithmetic order, so a seed gives the same tokens on both backends
 * (they can differ only when a draw lands within float rounding of a boundary: WGSL's exp and JS's Math.exp may
 * differ in the last bit).
 *
 *  1. Repetition penalty ρ (CTRL, Keskar et al. 2019, as Hugging Face applies it): a token already in the row
 *     (prompt or generated) has its logit l divided by ρ when l > 0, multiplied by ρ otherwise.
 *  2. A NaN among the logits stops here with `nan: true`.
 *  3. Greedy (temperature 0, or topK 1): the arg max, the lowest index among equal maxima.
 *  4. Otherwise z = l / temperature, and
 *     - top-k keeps the tokens whose z is at least the k-th largest z (ties with it are kept, as torch.topk's
 *       threshold in Hugging Face's TopKLogitsWarper does);
 *     - top-p keeps, of those, the smallest set of most likely tokens whose probability mass is at least p, plus
 *       every token tied with the last one (a threshold, so ties are never split by index order);
 *     - a uniform u in [0, 1) picks the token: the first, in index order, whose running sum of exp(z - max z)
 *       over kept tokens exceeds u times the kept total.
 *  Both thresholds are found exactly by binary search over the float's order-preserving 32-bit key (32 rounds of
 *  "how many / how much at or above this key"), so no sort is needed on the GPU.
 *
 * The random stream: u = top 24 bits of draw(keys, row, step) × 2^-24 (the generator of ir/ops/random.ts), keys
 * from the integer seed (samplingKeys). Every (seed, row, step) has its own draw, independent of batch size.
 */

/** Threads of the GPU sampler's workgroup; the CPU twin reduces in the same order. */
export const SAMPLER_THREADS = 256;

export interface SamplingParams {
  /** 0 = greedy. */
  temperature: number;
  /** 0 = off. */
  topK: number;
  /** 1 = off. */
  topP: number;
  /** 1 = off. */
  repetitionPenalty: number;
  keys: readonly [number, number];
}

/** Generator keys of an integer seed in [0, 2^32). */
export function samplingKeys(seed: number): [number, number] {
  const s = seed >>> 0;
  return [mix32(s), mix32((s ^ 0x9e3779b9) >>> 0)];
}

/** The uniform draw in [0, 1) for (row, step). */
export function samplingUniform(keys: readonly [number, number], row: number, step: number): number {
  return (draw(keys, row, step) >>> 8) * 2 ** -24;
}

export function isGreedy(p: SamplingParams): boolean {
  return p.temperature <= 0 || p.topK === 1;
}

const f = Math.fround;
const keyView = new Float32Array(1);
const keyBits = new Uint32Array(keyView.buffer);

/** Order-preserving key of a float32: larger floats have larger keys. */
export function floatKey(x: number): number {
  keyView[0] = x;
  const b = keyBits[0]!;
  return (b & 0x80000000 ? ~b : b | 0x80000000) >>> 0;
}

/** Sum in the GPU's order: thread t adds i = t, t + 256, ... sequentially, then a tree over the 256 partials. */
function treeSum(n: number, term: (i: number) => number): number {
  const part = new Float64Array(SAMPLER_THREADS);
  for (let t = 0; t < SAMPLER_THREADS; t++) {
    let a = 0;
    for (let i = t; i < n; i += SAMPLER_THREADS) a = f(a + term(i));
    part[t] = a;
  }
  for (let s = SAMPLER_THREADS / 2; s > 0; s >>= 1) for (let t = 0; t < s; t++) part[t] = f(part[t]! + part[t + s]!);
  return part[0]!;
}

/** The largest key t with measure(t) >= need, measure decreasing in t (binary search over all 2^32 keys). */
function searchKey(measure: (t: number) => number, need: number): number {
  let lo = 0;
  let hi = 0xffffffff;
  for (let r = 0; r < 32 && lo < hi; r++) {
    const d = hi - lo;
    const mid = lo + (d >>> 1) + (d & 1);
    if (measure(mid) >= need) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * Chooses the next token of one row. `logits` holds the row's V values (from `offset`); `seen[i]` is nonzero for
 * tokens already in the row (only read when repetitionPenalty != 1).
 */
export function sampleRow(logits: Float32Array, offset: number, vocab: number, seen: Uint8Array | undefined, p: SamplingParams, row: number, step: number): { token: number; nan: boolean } {
  // Division by ρ as a product with f32(1 / ρ): the same rounding on both backends (WGSL's division is not
  // correctly rounded); it can differ from x / ρ in the last bit.
  const rho = f(p.repetitionPenalty);
  const invRho = f(1 / rho);
  const l = (i: number): number => {
    const x = logits[offset + i]!;
    if (rho === 1 || !seen?.[i]) return x;
    return x > 0 ? f(x * invRho) : f(x * rho);
  };
  // Arg max, the lowest index among equal maxima (index 0 when every logit is -inf).
  let best = -Infinity;
  let arg = 0;
  let nan = false;
  for (let i = 0; i < vocab; i++) {
    const x = l(i);
    if (Number.isNaN(x)) nan = true;
    else if (x > best) {
      best = x;
      arg = i;
    }
  }
  if (nan) return { token: -1, nan: true };
  if (isGreedy(p)) return { token: arg, nan: false };
  const inv = f(1 / p.temperature);
  const z = (i: number) => f(l(i) * inv);
  const keys = new Uint32Array(vocab);
  for (let i = 0; i < vocab; i++) keys[i] = floatKey(z(i));
  const m = z(arg);
  const e = new Float32Array(vocab);
  for (let i = 0; i < vocab; i++) e[i] = Math.exp(f(z(i) - m));
  let threshold = 0;
  if (p.topK > 0 && p.topK < vocab) {
    threshold = searchKey((t) => treeSum(vocab, (i) => (keys[i]! >= t ? 1 : 0)), p.topK);
  }
  if (p.topP > 0 && p.topP < 1) {
    const t0 = threshold;
    const total = treeSum(vocab, (i) => (keys[i]! >= t0 ? e[i]! : 0));
    const need = f(f(p.topP) * total);
    threshold = searchKey((t) => treeSum(vocab, (i) => (keys[i]! >= t && keys[i]! >= t0 ? e[i]! : 0)), need);
    if (threshold < t0) threshold = t0;
  }
  const kept = (i: number) => (keys[i]! >= threshold ? e[i]! : 0);
  // Contiguous chunks, one per thread, summed in index order; then one thread walks the chunk sums.
  const chunk = Math.ceil(vocab / SAMPLER_THREADS);
  const sums = new Float32Array(SAMPLER_THREADS);
  for (let t = 0; t < SAMPLER_THREADS; t++) {
    let a = 0;
    for (let i = t * chunk; i < Math.min(vocab, (t + 1) * chunk); i++) a = f(a + kept(i));
    sums[t] = a;
  }
  let total = 0;
  for (let t = 0; t < SAMPLER_THREADS; t++) total = f(total + sums[t]!);
  const target = f(f(samplingUniform(p.keys, row, step)) * total);
  let acc = 0;
  let c = -1;
  let accAt = 0;
  for (let t = 0; t < SAMPLER_THREADS; t++) {
    if (sums[t]! > 0) {
      c = t;
      accAt = acc;
    }
    const next = f(acc + sums[t]!);
    if (next > target && sums[t]! > 0) break;
    acc = next;
  }
  acc = accAt;
  let token = arg;
  for (let i = c * chunk; c >= 0 && i < Math.min(vocab, (c + 1) * chunk); i++) {
    const w = kept(i);
    if (w <= 0) continue;
    token = i;
    acc = f(acc + w);
    if (acc > target) break;
  }
  return { token, nan: false };
}
