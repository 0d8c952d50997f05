import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DiffusionLayoutError, DiffusionPipeline, InferenceSession, InvalidArgumentError, LatentDiffusionPipeline, loadTokenizer, ModelFormatError,
  parseSchedulerConfig, planSampling,
} from '../../sdk/node.js';
import { LATENT_DIR, argmaxRows, classify, latentDiffusionSuite, latentMeta, latentPipes } from './latent-diffusion-suite.js';

/**
 * The latent-diffusion layout on the CPU backend (the shared suite in latent-diffusion-suite.ts), then the
 * classifier's rate on decoded samples and the typed errors for folders EdgeKit cannot run.
 */

latentDiffusionSuite('cpu', () => {
  it('the Fashion-MNIST classifier recognises the decoded samples at the rate recorded at training time', async () => {
    // The fixture's recognition run replayed: its prompts, its initial noise (DDIM η 0 draws nothing else).
    // The fixture's recognition run replayed: its prompts, its initial noise (DDIM η 0 draws nothing else); the
    // samples are independent, so the first of each class (10 of the 30) is replayed.
    const rec = latentMeta.recognition;
    const pick = rec.labels.map((_, i) => i).filter((i) => i % 3 === 0);
    const n = pick.length;
    const noise = pick.flatMap((i) => rec.initial_noise.slice(i * 196, i * 196 + 196));
    const r = await latentPipes.cpu!.generate({
      prompt: pick.map((i) => rec.prompts[i]!), scheduler: 'ddim', steps: 12, guidanceScale: rec.guidance_scale,
      noise: (draw) => {
        if (draw !== 0) throw new Error('DDIM with eta 0 draws only the initial noise');
        return noise;
      },
    });
    const pred = argmaxRows(await classify(r.images!, n), n);
    // Samples whose two best logits PyTorch saw further apart than 0.05 get PyTorch's label; the rest may flip
    // (float32 differences of ~1e-5 in the image), so the count is PyTorch's up to their number.
    const close = pick.map((i) => rec.top2_margin[i]! < 0.05);
    pred.forEach((p, j) => { if (!close[j]) expect(p, `sample ${pick[j]} (${rec.prompts[pick[j]!]})`).toBe(rec.predicted[pick[j]!]); });
    const recognised = pred.filter((p, j) => p === rec.labels[pick[j]!]).length;
    const expected = pick.filter((i) => rec.predicted[i] === rec.labels[i]).length;
    expect(Math.abs(recognised - expected)).toBeLessThanOrEqual(close.filter(Boolean).length);
  });

  it('prompts steer the samples: own noise, one class per prompt, recognised at the recorded rate within 15 points', async () => {
    const rec = latentMeta.recognition;
    const picks = rec.labels.map((_, i) => i).filter((i) => i % 3 === 0); // one prompt per class, 10 samples
    const r = await latentPipes.cpu!.generate({ prompt: picks.map((i) => rec.prompts[i]!), scheduler: 'ddim', steps: 12, guidanceScale: rec.guidance_scale, seed: 9 });
    const pred = argmaxRows(await classify(r.images!, picks.length), picks.length);
    const rate = pred.filter((p, j) => p === rec.labels[picks[j]!]).length / picks.length;
    expect(rate).toBeGreaterThanOrEqual(rec.rate - 0.15);
  });
});

describe('latent diffusion folders EdgeKit cannot run fail at load with a typed error', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'edgekit-ldm-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  let k = 0;
  /** A copy of the fixture folder, changed by `edit`. */
  const variant = (edit: (dir: string) => void) => {
    const dir = join(tmp, `v${k++}`);
    cpSync(LATENT_DIR, dir, { recursive: true });
    edit(dir);
    return dir;
  };
  const index = (dir: string, f: (j: Record<string, unknown>) => void) => {
    const p = join(dir, 'model_index.json');
    const j = JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>;
    f(j);
    writeFileSync(p, JSON.stringify(j));
  };
  const fails = async (dir: string, missing: RegExp, key: 'missing' | 'unsupported' = 'missing') => {
    const e = await LatentDiffusionPipeline.load(dir, { session: { backend: 'cpu' } }).then(() => undefined, (x: unknown) => x);
    expect(e).toBeInstanceOf(DiffusionLayoutError);
    expect(String((e as DiffusionLayoutError).details[key])).toMatch(missing);
    expect((e as Error).message).toMatch(missing);
  };

  it('names what is missing', async () => {
    await fails(variant((d) => rmSync(join(d, 'model_index.json'))), /model_index\.json/);
    await fails(variant((d) => rmSync(join(d, 'tokenizer', 'tokenizer.json'))), /tokenizer\/tokenizer\.json/);
    await fails(variant((d) => rmSync(join(d, 'unet', 'model.onnx'))), /unet\/model\.onnx/);
    await fails(variant((d) => rmSync(join(d, 'text_encoder', 'model.onnx'))), /text_encoder\/model\.onnx/);
    await fails(variant((d) => rmSync(join(d, 'scheduler', 'scheduler_config.json'))), /scheduler_config\.json/);
    await fails(variant((d) => rmSync(join(d, 'vae_decoder', 'config.json'))), /scaling_factor/);
    await fails(variant((d) => index(d, (j) => delete j.text_encoder)), /text_encoder/);
  });

  it('checks integrity per component, and refuses one digest for the whole folder', async () => {
    const sri = 'sha256-' + Buffer.alloc(32).toString('base64');
    await expect(LatentDiffusionPipeline.load(LATENT_DIR, { load: { integrity: sri } })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(LatentDiffusionPipeline.load(LATENT_DIR, { session: { backend: 'cpu', externalDataIntegrity: { 'w.bin': sri } } })).rejects.toThrow(/per component/);
    await expect(LatentDiffusionPipeline.load(LATENT_DIR, { session: { backend: 'cpu' }, unetSession: { integrity: sri } })).rejects.toBeInstanceOf(ModelFormatError);
  });

  it('names what it does not support (SDXL\'s second text encoder)', async () => {
    await fails(variant((d) => index(d, (j) => { j.text_encoder_2 = ['transformers', 'CLIPTextModelWithProjection']; j.tokenizer_2 = ['transformers', 'CLIPTokenizer']; })), /text_encoder_2/, 'unsupported');
  });

  it('loads without a VAE decoder: previews from the projection, the result in latents', async () => {
    const dir = variant((d) => index(d, (j) => delete j.vae_decoder));
    const pipe = await LatentDiffusionPipeline.load(dir, { session: { backend: 'cpu' } });
    try {
      expect(pipe.vaeDecoder).toBeUndefined();
      const previews: { imageSource?: string; imageShape?: number[] }[] = [];
      const r = await pipe.generate({ prompt: 'bag', steps: 3, seed: 1, previewEvery: 1, onPreview: (p) => previews.push(p) });
      expect(previews.map((p) => [p.imageSource, p.imageShape])).toEqual([['projection', [1, 3, 7, 7]], ['projection', [1, 3, 7, 7]]]);
      expect(r.images).toBeUndefined();
      expect(r.shape).toEqual([1, 4, 7, 7]);
    } finally {
      await pipe.release();
    }
  });

  it('rejects a text-conditional UNet without states, and components that do not fit', async () => {
    const unet = await InferenceSession.create(join(LATENT_DIR, 'unet', 'model.onnx'), { backend: 'cpu' });
    try {
      const bare = DiffusionPipeline.create(unet);
      await expect(bare.generate({ steps: 2 })).rejects.toThrow(/encoderHiddenStates/);
      expect(() => LatentDiffusionPipeline.create({ unet })).toThrow(DiffusionLayoutError);
      const tokenizer = await loadTokenizer(readFileSync(join(LATENT_DIR, 'tokenizer', 'tokenizer.json'), 'utf8'));
      expect(() => LatentDiffusionPipeline.create({ unet, textEncoder: unet, tokenizer })).toThrow(/input_ids/);
      expect(() => DiffusionPipeline.create(unet, { decoding: { vaeDecoder: unet } })).toThrow(/scalingFactor/);
      const pipe = await LatentDiffusionPipeline.load(LATENT_DIR, { session: { backend: 'cpu' } });
      try {
        await expect(pipe.generate({ prompt: ['a', 'b'], negativePrompt: ['x'], guidanceScale: 2 })).rejects.toBeInstanceOf(InvalidArgumentError);
        await expect(pipe.generate({ prompt: [] })).rejects.toBeInstanceOf(InvalidArgumentError);
      } finally {
        await pipe.release();
      }
    } finally {
      await unet.release();
    }
  });
});

describe('an SD-Turbo-class scheduler configuration', () => {
  it('parses (EulerDiscreteScheduler, trailing spacing) and plans one Euler step at t = 999', () => {
    // The fields of SD-Turbo's scheduler/scheduler_config.json (diffusers' EulerDiscreteScheduler).
    const c = parseSchedulerConfig({
      _class_name: 'EulerDiscreteScheduler', _diffusers_version: '0.24.0', beta_end: 0.012, beta_schedule: 'scaled_linear',
      beta_start: 0.00085, clip_sample: false, interpolation_type: 'linear', num_train_timesteps: 1000, prediction_type: 'epsilon',
      sample_max_value: 1.0, set_alpha_to_one: false, skip_prk_steps: true, steps_offset: 1, timestep_spacing: 'trailing',
      trained_betas: null, use_karras_sigmas: false,
    });
    const plan = planSampling('euler', c, 1);
    expect(plan.timesteps).toEqual([999]);
    expect(plan.steps[0]!.next.z).toBe(0);
  });
});
