import { InvalidArgumentError } from '../../runtime/errors.js';

/**
 * Diffusion schedulers as plans of scalar coefficients.
 *
 * With ε, v or x0 prediction every quantity a scheduler needs (the predicted x0, the predicted noise, the next
 * latents) is a linear combination of the current latents x, the model output m, a fresh noise draw z and, for
 * the multistep solver, the previous step's x0 h, with coefficients that depend only on the noise schedule and the
 * step. So a scheduler here does not touch tensors at all: plan() returns, per step, the model timestep, the scale
 * of the model input and the coefficients of
 *
 *   x0     = x0.x * x + x0.m * m                    (previews; LCM's denoised sample)
 *   x_next = next.x * x + next.m * m + next.z * z + next.h * h
 *   h_next = x0                                     (DPM-Solver++ 2M only)
 *
 * and the pipeline (pipeline.ts) applies them with one GPU kernel (runtime/backends/webgpu/kernels/diffusion.ts)
 * or, on the CPU backend, with the same arithmetic on the host. Coefficients are computed in float64.
 *
 * The formulas follow the papers in the parameterisation diffusers uses for the same scheduler, so that a
 * diffusers scheduler_config.json means the same thing here:
 * - DDPM, ancestral sampling of the posterior q(x_prev | x_t, x0) with the "fixed_small" variance (Ho et al. 2020);
 * - DDIM with η (Song et al. 2021); η = 0 is deterministic;
 * - Euler and Euler ancestral on σ = sqrt((1 - ᾱ) / ᾱ) (Karras et al. 2022); latents live in the σ (variance-
 *   exploding) domain, scaled by 1 / sqrt(σ² + 1) for the model;
 * - DPM-Solver++ 2M, data prediction, multistep, first order at the first and the last step (Lu et al. 2022);
 * - LCM: the consistency function c_skip·x + c_out·x0 (timestep scaling 10, σ_data 0.5), then re-noised to the
 *   next timestep (Luo et al. 2023). Steps follow the configured spacing, not LCM's 50-step skipping grid.
 */

export type SchedulerName = 'ddpm' | 'ddim' | 'euler' | 'euler_ancestral' | 'dpmpp_2m' | 'lcm';
export const SCHEDULERS: readonly SchedulerName[] = ['ddpm', 'ddim', 'euler', 'euler_ancestral', 'dpmpp_2m', 'lcm'];
export type BetaSchedule = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';
export type PredictionType = 'epsilon' | 'v_prediction' | 'sample';
export type TimestepSpacing = 'leading' | 'trailing' | 'linspace';

/** The noise schedule a model was trained with: the fields of a diffusers scheduler_config.json EdgeKit reads. */
export interface NoiseScheduleConfig {
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: BetaSchedule;
  predictionType: PredictionType;
  timestepSpacing: TimestepSpacing;
  stepsOffset: number;
  /** DDIM's ᾱ after the last step: 1 when true, ᾱ[0] when false. */
  setAlphaToOne: boolean;
}

export const DEFAULT_SCHEDULE: NoiseScheduleConfig = {
  numTrainTimesteps: 1000, betaStart: 1e-4, betaEnd: 0.02, betaSchedule: 'linear', predictionType: 'epsilon',
  timestepSpacing: 'leading', stepsOffset: 0, setAlphaToOne: false,
};

const KEYS: Record<string, keyof NoiseScheduleConfig> = {
  num_train_timesteps: 'numTrainTimesteps', beta_start: 'betaStart', beta_end: 'betaEnd', beta_schedule: 'betaSchedule',
  prediction_type: 'predictionType', timestep_spacing: 'timestepSpacing', steps_offset: 'stepsOffset', set_alpha_to_one: 'setAlphaToOne',
};

/**
 * Reads a diffusers scheduler_config.json (parsed JSON or its text). Fields EdgeKit does not use (_class_name,
 * clip_sample, variance_type...) are ignored; a field it uses with a value it does not support is an
 * InvalidArgumentError naming the field. Missing fields take diffusers' defaults (DEFAULT_SCHEDULE).
 */
export function parseSchedulerConfig(json: string | Record<string, unknown>, overrides: Partial<NoiseScheduleConfig> = {}): NoiseScheduleConfig {
  let obj: Record<string, unknown>;
  try {
    obj = typeof json === 'string' ? JSON.parse(json) as Record<string, unknown> : json;
  } catch (e) {
    throw new InvalidArgumentError(`scheduler_config.json is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new InvalidArgumentError('scheduler_config.json must hold a JSON object.');
  const cfg: Record<string, unknown> = { ...DEFAULT_SCHEDULE };
  for (const [k, field] of Object.entries(KEYS)) if (obj[k] !== undefined && obj[k] !== null) cfg[field] = obj[k];
  return validateSchedule({ ...(cfg as unknown as NoiseScheduleConfig), ...overrides });
}

export function validateSchedule(c: NoiseScheduleConfig): NoiseScheduleConfig {
  const bad = (field: string, v: unknown, want: string) => new InvalidArgumentError(`scheduler config ${field} = ${JSON.stringify(v)}: expected ${want}.`, { field });
  if (!Number.isInteger(c.numTrainTimesteps) || c.numTrainTimesteps < 2) throw bad('num_train_timesteps', c.numTrainTimesteps, 'an integer ≥ 2');
  if (!(c.betaStart > 0 && c.betaEnd < 1 && c.betaStart <= c.betaEnd)) throw bad('beta_start/beta_end', [c.betaStart, c.betaEnd], '0 < beta_start ≤ beta_end < 1');
  if (!['linear', 'scaled_linear', 'squaredcos_cap_v2'].includes(c.betaSchedule)) throw bad('beta_schedule', c.betaSchedule, "'linear', 'scaled_linear' or 'squaredcos_cap_v2'");
  if (!['epsilon', 'v_prediction', 'sample'].includes(c.predictionType)) throw bad('prediction_type', c.predictionType, "'epsilon', 'v_prediction' or 'sample'");
  if (!['leading', 'trailing', 'linspace'].includes(c.timestepSpacing)) throw bad('timestep_spacing', c.timestepSpacing, "'leading', 'trailing' or 'linspace'");
  if (!Number.isInteger(c.stepsOffset) || c.stepsOffset < 0) throw bad('steps_offset', c.stepsOffset, 'a non-negative integer');
  if (typeof c.setAlphaToOne !== 'boolean') throw bad('set_alpha_to_one', c.setAlphaToOne, 'a boolean');
  return c;
}

/** ᾱ_t for t = 0..T-1, float64. */
export function alphasCumprod(c: NoiseScheduleConfig): Float64Array {
  const T = c.numTrainTimesteps;
  const betas = new Float64Array(T);
  for (let i = 0; i < T; i++) {
    const f = T === 1 ? 0 : i / (T - 1);
    if (c.betaSchedule === 'linear') betas[i] = c.betaStart + f * (c.betaEnd - c.betaStart);
    else if (c.betaSchedule === 'scaled_linear') betas[i] = (Math.sqrt(c.betaStart) + f * (Math.sqrt(c.betaEnd) - Math.sqrt(c.betaStart))) ** 2;
    else {
      const g = (s: number) => Math.cos(((s + 0.008) / 1.008) * Math.PI / 2) ** 2;
      betas[i] = Math.min(1 - g((i + 1) / T) / g(i / T), 0.999);
    }
  }
  const ac = new Float64Array(T);
  let p = 1;
  for (let i = 0; i < T; i++) ac[i] = p *= 1 - betas[i]!;
  return ac;
}

/** The `steps` model timesteps, high to low, for the configured spacing. */
export function inferenceTimesteps(c: NoiseScheduleConfig, steps: number): number[] {
  const T = c.numTrainTimesteps;
  if (!Number.isInteger(steps) || steps < 1 || steps > T) throw new InvalidArgumentError(`steps must be an integer in 1..${T}, got ${steps}.`);
  let ts: number[];
  if (c.timestepSpacing === 'leading') {
    const r = Math.floor(T / steps);
    ts = Array.from({ length: steps }, (_, i) => i * r + c.stepsOffset).reverse();
  } else if (c.timestepSpacing === 'trailing') {
    const r = T / steps;
    ts = Array.from({ length: steps }, (_, i) => Math.round(T - i * r) - 1);
  } else {
    ts = Array.from({ length: steps }, (_, i) => Math.round(steps === 1 ? T - 1 : (i * (T - 1)) / (steps - 1))).reverse();
  }
  return ts.map((t) => Math.min(Math.max(t, 0), T - 1));
}

export interface Coefs { x: number; m: number }
export interface StepPlan {
  timestep: number;
  /** The model sees inputScale · x. */
  inputScale: number;
  x0: Coefs;
  next: { x: number; m: number; z: number; h: number };
  /** True where this step draws fresh noise (next.z ≠ 0). */
  noise: boolean;
  /** DPM-Solver++: keep this step's x0 as h for the next step. */
  keepX0: boolean;
}
export interface SamplingPlan {
  timesteps: number[];
  /** Initial latents are initSigma · z. */
  initSigma: number;
  steps: StepPlan[];
}

export interface PlanOptions {
  /** DDIM's η (default 0). */
  eta?: number;
}

/** x0 and ε as combinations of x and the model output, for ᾱ = a and a model input s·x. */
function predictions(type: PredictionType, a: number, s: number): { x0: Coefs; eps: Coefs } {
  const sa = Math.sqrt(a), sb = Math.sqrt(1 - a);
  if (type === 'epsilon') return { x0: { x: s / sa, m: -sb / sa }, eps: { x: 0, m: 1 } };
  if (type === 'v_prediction') return { x0: { x: sa * s, m: -sb }, eps: { x: sb * s, m: sa } };
  return { x0: { x: 0, m: 1 }, eps: { x: s / sb, m: -sa / sb } };
}

export function planSampling(name: SchedulerName, c: NoiseScheduleConfig, steps: number, opts: PlanOptions = {}): SamplingPlan {
  if (!SCHEDULERS.includes(name)) throw new InvalidArgumentError(`Unknown scheduler ${JSON.stringify(name)}; expected one of ${SCHEDULERS.join(', ')}.`);
  const ac = alphasCumprod(c);
  const ts = inferenceTimesteps(c, steps);
  const eta = opts.eta ?? 0;
  if (!(eta >= 0)) throw new InvalidArgumentError(`eta must be ≥ 0, got ${eta}.`);
  const plans: StepPlan[] = [];
  const sigma = (t: number) => Math.sqrt((1 - ac[t]!) / ac[t]!);
  let initSigma = 1;
  let hPrev = 0;
  ts.forEach((t, i) => {
    const prev = i + 1 < ts.length ? ts[i + 1]! : -1;
    const a = ac[t]!;
    let s = 1;
    let next = { x: 0, m: 0, z: 0, h: 0 };
    let keepX0 = false;
    if (name === 'euler' || name === 'euler_ancestral') {
      const sg = sigma(t), sn = prev >= 0 ? sigma(prev) : 0;
      if (i === 0) initSigma = Math.sqrt(sg * sg + 1);
      s = 1 / Math.sqrt(sg * sg + 1);
      const { x0 } = predictions(c.predictionType, a, s);
      let down = sn, up = 0;
      if (name === 'euler_ancestral') {
        up = Math.sqrt((sn * sn * (sg * sg - sn * sn)) / (sg * sg));
        down = Math.sqrt(sn * sn - up * up);
      }
      // x + (down - sg) · (x - x0) / sg
      const k = (down - sg) / sg;
      next = { x: 1 + k + -k * x0.x, m: -k * x0.m, z: up, h: 0 };
      plans.push({ timestep: t, inputScale: s, x0, next, noise: up !== 0, keepX0 });
      return;
    }
    const { x0, eps } = predictions(c.predictionType, a, s);
    let outX0 = x0;
    if (name === 'ddpm') {
      const ap = prev >= 0 ? ac[prev]! : 1;
      const curAlpha = a / ap, curBeta = 1 - curAlpha;
      const A = (Math.sqrt(ap) * curBeta) / (1 - a), B = (Math.sqrt(curAlpha) * (1 - ap)) / (1 - a);
      const sd = prev >= 0 ? Math.sqrt(Math.max(((1 - ap) / (1 - a)) * curBeta, 1e-20)) : 0;
      next = { x: A * x0.x + B, m: A * x0.m, z: sd, h: 0 };
    } else if (name === 'ddim') {
      const ap = prev >= 0 ? ac[prev]! : c.setAlphaToOne ? 1 : ac[0]!;
      const sd = eta * Math.sqrt((1 - ap) / (1 - a)) * Math.sqrt(1 - a / ap);
      const ce = Math.sqrt(Math.max(1 - ap - sd * sd, 0)), cx = Math.sqrt(ap);
      next = { x: cx * x0.x + ce * eps.x, m: cx * x0.m + ce * eps.m, z: eta > 0 ? sd : 0, h: 0 };
    } else if (name === 'dpmpp_2m') {
      keepX0 = true;
      if (prev < 0) {
        next = { x: x0.x, m: x0.m, z: 0, h: 0 };
      } else {
        const al = Math.sqrt(a), sg = Math.sqrt(1 - a), aln = Math.sqrt(ac[prev]!), sgn = Math.sqrt(1 - ac[prev]!);
        const h = Math.log(aln / sgn) - Math.log(al / sg);
        const cd = -aln * (Math.exp(-h) - 1);
        // D = (1 + 1/2r) x0 - 1/2r h_prev (second order), or x0 on the first step.
        const w = i === 0 ? 0 : 1 / (2 * (hPrev / h));
        next = { x: sgn / sg + cd * (1 + w) * x0.x, m: cd * (1 + w) * x0.m, z: 0, h: -cd * w };
        hPrev = h;
      }
    } else {
      // LCM
      const st = t * 10;
      const cSkip = 0.25 / (st * st + 0.25), cOut = st / Math.sqrt(st * st + 0.25);
      outX0 = { x: cSkip + cOut * x0.x, m: cOut * x0.m };
      if (prev < 0) next = { x: outX0.x, m: outX0.m, z: 0, h: 0 };
      else next = { x: Math.sqrt(ac[prev]!) * outX0.x, m: Math.sqrt(ac[prev]!) * outX0.m, z: Math.sqrt(1 - ac[prev]!), h: 0 };
    }
    plans.push({ timestep: t, inputScale: s, x0: outX0, next, noise: next.z !== 0, keepX0 });
  });
  return { timesteps: ts, initSigma, steps: plans };
}
