import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, parseSchedulerConfig, planSampling, type SchedulerName } from '../../sdk/node.js';
import { diffusionSuite, meta, pipes, recognised } from './diffusion-suite.js';

/** The diffusion pipeline on the CPU backend (the shared suite in diffusion-suite.ts), then config parsing. */

diffusionSuite('cpu', () => {
  it('gives other digits of the same quality: recognised within 10 points of the recorded rate', async () => {
    const rec = meta.recognition;
    const labels = rec.labels.filter((_, i) => i % 5 < 2); // two per digit
    const own = await pipes.cpu!.generate({ scheduler: 'ddim', steps: 20, classLabels: labels, nullClass: meta.onnx.null_class, guidanceScale: rec.guidance_scale, seed: 7 });
    expect((await recognised(own.samples, labels)) / labels.length).toBeGreaterThanOrEqual(rec.rate - 0.1);
  });

  it('rejects guidance without a null class and a missing class for a class-conditional UNet', async () => {
    await expect(pipes.cpu!.generate({ classLabels: [1], guidanceScale: 3 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(pipes.cpu!.generate({})).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe('scheduler configuration', () => {
  it('reads diffusers scheduler_config.json fields and rejects unsupported values', () => {
    const c = parseSchedulerConfig(JSON.stringify({ _class_name: 'EulerDiscreteScheduler', beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, prediction_type: 'v_prediction', timestep_spacing: 'trailing', steps_offset: 1 }));
    expect(c).toMatchObject({ numTrainTimesteps: 1000, betaSchedule: 'scaled_linear', predictionType: 'v_prediction', timestepSpacing: 'trailing', stepsOffset: 1 });
    expect(() => parseSchedulerConfig({ beta_schedule: 'sigmoid' })).toThrow(InvalidArgumentError);
    expect(() => parseSchedulerConfig({ prediction_type: 'flow' })).toThrow(/prediction_type/);
    expect(() => parseSchedulerConfig('{not json')).toThrow(InvalidArgumentError);
    expect(() => planSampling('heun' as SchedulerName, c, 10)).toThrow(InvalidArgumentError);
  });

  it('spaces timesteps as diffusers does (leading, trailing, linspace) and builds the squared-cosine schedule', () => {
    const base = parseSchedulerConfig({});
    expect(planSampling('ddim', { ...base, timestepSpacing: 'leading', stepsOffset: 1 }, 10).timesteps).toEqual([901, 801, 701, 601, 501, 401, 301, 201, 101, 1]);
    expect(planSampling('ddim', { ...base, timestepSpacing: 'trailing' }, 4).timesteps).toEqual([999, 749, 499, 249]);
    expect(planSampling('ddim', { ...base, timestepSpacing: 'linspace' }, 4).timesteps).toEqual([999, 666, 333, 0]);
    // Squared cosine: ᾱ_t = f((t + 1) / T) / f(0) with f(s) = cos²((s + 0.008) / 1.008 · π/2) (no clipping this early),
    // and DDPM's first x0 is (x - sqrt(1 - ᾱ) ε) / sqrt(ᾱ) at t = 900.
    const f = (v: number) => Math.cos(((v + 0.008) / 1.008) * Math.PI / 2) ** 2;
    const a900 = f(0.901) / f(0);
    const cos = planSampling('ddpm', { ...base, betaSchedule: 'squaredcos_cap_v2' }, 10);
    expect(cos.steps[0]!.x0.x).toBeCloseTo(1 / Math.sqrt(a900), 6);
    expect(cos.steps[0]!.x0.m).toBeCloseTo(-Math.sqrt(1 - a900) / Math.sqrt(a900), 6);
    // v prediction: x0 = sqrt(ᾱ) x - sqrt(1 - ᾱ) v.
    const v = planSampling('ddim', { ...base, betaSchedule: 'squaredcos_cap_v2', predictionType: 'v_prediction' }, 10);
    expect(v.steps[0]!.x0.x).toBeCloseTo(Math.sqrt(a900), 6);
    expect(v.steps[0]!.x0.m).toBeCloseTo(-Math.sqrt(1 - a900), 6);
  });
});
