import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CancelledError, DiffusionPipeline, InferenceSession, SCHEDULERS, Tensor, hostNoise,
  type Backend, type DiffusionPreview, type DiffusionProgress, type SchedulerName,
} from '../../sdk/node.js';
import { FIXTURES, readBytes, readJson } from '../models/fixture-files.js';

/**
 * The diffusion pipeline (sdk/diffusion) through the public API on the fixture DDPM (tests/fixtures/diffusion,
 * trained by scripts/fixtures/diffusion_fixture.py on sklearn's digits), run by diffusion.test.ts (CPU) and
 * diffusion-webgpu.test.ts (WebGPU on SwiftShader), one file per backend to keep each under a minute:
 * - with the noise PyTorch drew injected, EdgeKit's DDPM, DDIM (η 0.5) and Euler samples after 20 guided steps equal
 *   the PyTorch schedulers' within 1e-3 (max abs over the batch);
 * - the digits classifier (tests/fixtures/digits) labels the generated digits as it labelled PyTorch's (so at exactly the rate recorded at
 *   training time on the CPU's 50; digits 0, 2, 4, 6, 8 on WebGPU), with the same injected initial noise, DDIM η 0, guidance 2;
 * - previews every k steps, progress with step times, cancel through an AbortSignal (CancelledError), every
 *   scheduler produces finite samples.
 */

interface SchedTraj { initial_noise: number[]; step_noise: number[][]; final: number[]; eta?: number }
interface Trajectories {
  labels: number[]; steps: number; guidance_scale: number; timesteps: number[]; shape: number[];
  ddpm: SchedTraj; ddim: SchedTraj; euler: SchedTraj;
}
export interface DiffusionMeta {
  onnx: { null_class: number };
  recognition: { samples: number; recognised: number; rate: number; guidance_scale: number; labels: number[]; predicted: number[]; initial_noise: number[] };
}

const dir = join(FIXTURES, 'diffusion');
const unetBytes = readBytes(join(dir, 'unet.onnx'));
export const config = readJson<Record<string, unknown>>(join(dir, 'scheduler_config.json'));
const traj = readJson<Trajectories>(join(dir, 'trajectories.json'));
export const meta = readJson<DiffusionMeta>(join(dir, 'meta.json'));
const classifierBytes = readBytes(join(FIXTURES, 'digits', 'digits-cnn.onnx'));
const TOL = 1e-3;

export const pipes: Partial<Record<Backend, DiffusionPipeline>> = {};
let classifier: InferenceSession | undefined;

function injected(t: SchedTraj) {
  return (draw: number) => (draw === 0 ? t.initial_noise : t.step_noise[draw - 1]!);
}

export async function predicted(samples: Float32Array, n: number): Promise<number[]> {
  const x = Float32Array.from(samples, (v) => (Math.min(1, Math.max(-1, v)) + 1) / 2);
  classifier ??= await InferenceSession.create(classifierBytes, { backend: 'cpu' });
  const { logits } = await classifier.run({ input: new Tensor('float32', x, [n, 1, 8, 8]) });
  const d = logits!.data as Float32Array;
  return Array.from({ length: n }, (_, i) => {
    const row = Array.from(d.subarray(i * 10, i * 10 + 10));
    return row.indexOf(Math.max(...row));
  });
}

export async function recognised(samples: Float32Array, labels: number[]): Promise<number> {
  const p = await predicted(samples, labels.length);
  return labels.filter((y, i) => p[i] === y).length;
}

export function diffusionSuite(backend: Backend, extra?: () => void): void {
describe(`diffusion pipeline on ${backend}`, () => {
  beforeAll(async () => {
    pipes[backend] = DiffusionPipeline.create(await InferenceSession.create(unetBytes, { backend }), { schedulerConfig: config });
  });
  afterAll(async () => {
    await pipes[backend]?.session.release();
  });

  it.each(['ddpm', 'ddim', 'euler'] as const)('%s with injected noise matches PyTorch within 1e-3 after 20 steps', async (name) => {
    const t = traj[name];
    const r = await pipes[backend]!.generate({
      scheduler: name, steps: traj.steps, eta: t.eta ?? 0, classLabels: traj.labels, nullClass: meta.onnx.null_class,
      guidanceScale: traj.guidance_scale, noise: injected(t),
    });
    expect(r.shape).toEqual(traj.shape);
    expect(r.timesteps).toEqual(traj.timesteps);
    let maxErr = 0;
    r.samples.forEach((v, i) => (maxErr = Math.max(maxErr, Math.abs(v - t.final[i]!))));
    expect(maxErr).toBeLessThan(TOL);
  });

  it('the digits classifier gives the samples the labels PyTorch\'s samples got', async () => {
    // The same initial noise as the fixture's recognition run (DDIM η 0 draws nothing else). The CPU replays all 50
    // samples; SwiftShader, ~5x slower on this UNet, one of each even digit.
    const rec = meta.recognition;
    const pick = rec.labels.map((_, i) => i).filter((i) => backend === 'cpu' || i % 10 === 0);
    const noise = Float32Array.from(pick.flatMap((i) => rec.initial_noise.slice(i * 64, i * 64 + 64)));
    const labels = pick.map((i) => rec.labels[i]!);
    const r = await pipes[backend]!.generate({
      scheduler: 'ddim', steps: 20, classLabels: labels, nullClass: meta.onnx.null_class, guidanceScale: rec.guidance_scale,
      noise: (draw) => {
        if (draw !== 0) throw new Error('DDIM with eta 0 draws only the initial noise');
        return noise;
      },
    });
    expect(await predicted(r.samples, labels.length)).toEqual(pick.map((i) => rec.predicted[i]));
    if (backend === 'cpu') expect(await recognised(r.samples, labels)).toBe(rec.recognised);
  });

  it('reports previews every k steps and progress with step times; every scheduler gives finite samples', async () => {
    const previews: DiffusionPreview[] = [];
    const progress: DiffusionProgress[] = [];
    const r = await pipes[backend]!.generate({
      scheduler: 'dpmpp_2m', steps: 10, classLabels: [1, 2], nullClass: 10, guidanceScale: 2, seed: 3, previewEvery: 3,
      onPreview: (p) => previews.push(p), onProgress: (p) => progress.push(p),
    });
    expect(previews.map((p) => p.step)).toEqual([3, 6, 9]);
    expect(previews[0]!.shape).toEqual([2, 1, 8, 8]);
    expect(progress.map((p) => p.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(progress.every((p) => p.stepMs >= 0 && p.steps === 10)).toBe(true);
    expect(r.stepMs.length).toBe(10);
    for (const s of SCHEDULERS) {
      const out = await pipes[backend]!.generate({ scheduler: s as SchedulerName, steps: 4, classLabels: [4], seed: 1 });
      expect(out.samples.every(Number.isFinite)).toBe(true);
      expect(Math.max(...out.samples.map(Math.abs))).toBeLessThan(5);
    }
  });

  it('draws seeded noise on the device that matches the host generator (hostNoise)', async () => {
    const a = await pipes[backend]!.generate({ scheduler: 'ddim', steps: 3, classLabels: [2], seed: 11 });
    const b = await pipes[backend]!.generate({ scheduler: 'ddim', steps: 3, classLabels: [2], noise: (d, n) => hostNoise(11, d, n) });
    let e = 0;
    a.samples.forEach((v, i) => (e = Math.max(e, Math.abs(v - b.samples[i]!))));
    // The draws agree to ~1e-6 (f32 log/cos on the device); x0 at t = 950 amplifies that by 1 / sqrt(ᾱ) ≈ 150.
    expect(e).toBeLessThan(1e-3);
  });

  it('cancels through an AbortSignal with a CancelledError', async () => {
    const ac = new AbortController();
    const run = pipes[backend]!.generate({
      steps: 20, classLabels: [5], seed: 2, onProgress: (p) => { if (p.step === 3) ac.abort(); },
      signal: ac.signal,
    });
    await expect(run).rejects.toBeInstanceOf(CancelledError);
    // The pipeline is usable afterwards.
    const again = await pipes[backend]!.generate({ steps: 2, classLabels: [5], seed: 2 });
    expect(again.samples.length).toBe(64);
  });
  extra?.();
});
}
