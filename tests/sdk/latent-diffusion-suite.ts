import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  InferenceSession, LatentDiffusionPipeline, Tensor, projectLatents, type Backend, type DiffusionPreview,
} from '../../sdk/node.js';
import { FIXTURES, readBytes, readJson } from '../models/fixture-files.js';

/**
 * The latent-diffusion layout (sdk/diffusion/latent.ts) through the public API on the fixture of
 * scripts/fixtures/latent_diffusion_fixture.py (tests/fixtures/latent-diffusion: a text encoder, a cross-attention
 * UNet on 4x7x7 latents and a VAE decoder trained on Fashion-MNIST, in diffusers' ONNX folder layout), run by
 * latent-diffusion.test.ts (CPU) and latent-diffusion-webgpu.test.ts (WebGPU on SwiftShader):
 * - the folder loads from its path; prompts tokenize to the ids PyTorch used; the text encoder's states match;
 * - with PyTorch's noise injected, guided DDIM and DDPM (12 steps, guidance 3) end on PyTorch's latents and
 *   decoded images within 1e-3, with the text encoder run once per generate;
 * - the preview of the predicted x0 comes from the VAE decoder (PyTorch's decoded preview within 1e-3), or from the
 *   linear projection when asked.
 */

interface Run { initial_noise: number[]; step_noise: number[][]; final_latents: number[]; images: number[]; preview_image: number[] }
export interface Reference {
  prompts: string[]; steps: number; guidance_scale: number; timesteps: number[]; latent_shape: number[];
  input_ids: number[][]; empty_ids: number[]; text_states: number[]; preview_step: number; ddim: Run; ddpm: Run;
}
export interface LatentMeta {
  class_names: string[];
  vae: { scaling_factor: number };
  recognition: {
    samples: number; recognised: number; rate: number; guidance_scale: number; prompts: string[]; labels: number[];
    predicted: number[]; top2_margin: number[]; initial_noise: number[];
  };
}

export const LATENT_DIR = join(FIXTURES, 'latent-diffusion');
export const ref = readJson<Reference>(join(LATENT_DIR, 'reference.json'));
export const latentMeta = readJson<LatentMeta>(join(LATENT_DIR, 'meta.json'));
const TOL = 1e-3;

export const latentPipes: Partial<Record<Backend, LatentDiffusionPipeline>> = {};
let classifier: InferenceSession | undefined;

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let e = 0;
  for (let i = 0; i < a.length; i++) e = Math.max(e, Math.abs(a[i]! - b[i]!));
  return e;
}

/** Fashion-MNIST classifier (tests/fixtures/fashion) on decoded images: (clamp(x, -1, 1) + 1) / 2. Logits rows. */
export async function classify(images: Float32Array, n: number): Promise<Float32Array> {
  classifier ??= await InferenceSession.create(readBytes(join(FIXTURES, 'fashion', 'fashion-cnn.onnx')), { backend: 'cpu' });
  const x = Float32Array.from(images, (v) => (Math.min(1, Math.max(-1, v)) + 1) / 2);
  const { logits } = await classifier.run({ input: new Tensor('float32', x, [n, 1, 28, 28]) });
  return logits!.data as Float32Array;
}

export function argmaxRows(logits: Float32Array, n: number, k = 10): number[] {
  return Array.from({ length: n }, (_, i) => {
    const row = Array.from(logits.subarray(i * k, i * k + k));
    return row.indexOf(Math.max(...row));
  });
}

export function latentDiffusionSuite(backend: Backend, extra?: () => void): void {
describe(`latent diffusion (text encoder, UNet, VAE decoder) on ${backend}`, () => {
  beforeAll(async () => {
    latentPipes[backend] = await LatentDiffusionPipeline.load(LATENT_DIR, { session: { backend } });
  });
  afterAll(async () => {
    await latentPipes[backend]?.release();
    await classifier?.release();
    classifier = undefined;
  });

  it('loads the folder: tokenizer ids and text-encoder states equal PyTorch\'s', async () => {
    const pipe = latentPipes[backend]!;
    expect(pipe.maxLength).toBe(ref.input_ids[0]!.length);
    expect(ref.prompts.map((p) => pipe.tokenize(p))).toEqual(ref.input_ids);
    expect(pipe.tokenize('')).toEqual(ref.empty_ids);
    const { states } = await pipe.encodePrompts(ref.prompts);
    try {
      expect(maxAbsDiff(await states.getData() as Float32Array, ref.text_states)).toBeLessThan(1e-4);
    } finally {
      states.dispose();
    }
  });

  // SwiftShader runs this UNet ~3x slower than the CPU backend: WebGPU replays DDIM on the first two prompts.
  const replays = backend === 'cpu' ? (['ddim', 'ddpm'] as const) : (['ddim'] as const);
  it.each(replays)('%s with injected noise: latents and decoded images match PyTorch within 1e-3; the text encoder runs once', async (name) => {
    const pipe = latentPipes[backend]!;
    const run = ref[name];
    const n = backend === 'cpu' ? ref.prompts.length : 2;
    const lat = n * 4 * 7 * 7, img = n * 28 * 28;
    const encode = vi.spyOn(pipe.textEncoder!, 'run');
    const previews: DiffusionPreview[] = [];
    try {
      const r = await pipe.generate({
        prompt: ref.prompts.slice(0, n), scheduler: name, steps: ref.steps, guidanceScale: ref.guidance_scale,
        noise: (draw) => (draw === 0 ? run.initial_noise : run.step_noise[draw - 1]!).slice(0, lat),
        previewEvery: ref.preview_step, onPreview: (p) => previews.push(p),
      });
      expect(encode).toHaveBeenCalledTimes(1);
      // One call over the distinct texts: the n prompts and the empty prompt.
      expect((encode.mock.calls[0]![0] as Record<string, Tensor>).input_ids!.dims).toEqual([n + 1, ref.input_ids[0]!.length]);
      expect(r.inputIds).toEqual([...ref.input_ids.slice(0, n), ...ref.input_ids.slice(0, n).map(() => ref.empty_ids)]);
      expect(r.timesteps).toEqual(ref.timesteps);
      expect(r.shape).toEqual([n, ...ref.latent_shape.slice(1)]);
      expect(maxAbsDiff(r.samples, run.final_latents.slice(0, lat))).toBeLessThan(TOL);
      expect(r.imageShape).toEqual([n, 1, 28, 28]);
      expect(maxAbsDiff(r.images!, run.images.slice(0, img))).toBeLessThan(TOL);
      // The preview: PyTorch's x0 at that step through PyTorch's decoder.
      expect(previews.map((p) => p.step)).toEqual([ref.preview_step]);
      expect(previews[0]!.imageSource).toBe('decoder');
      expect(previews[0]!.imageShape).toEqual([n, 1, 28, 28]);
      expect(maxAbsDiff(previews[0]!.image!, run.preview_image.slice(0, img))).toBeLessThan(TOL);
    } finally {
      encode.mockRestore();
    }
  });

  it('encodes a repeated prompt once and copies its states to every row', async () => {
    const pipe = latentPipes[backend]!;
    const z = ref.ddim.initial_noise.slice(0, 196);
    const one = await pipe.generate({ prompt: 'a bag', steps: 3, scheduler: 'ddim', guidanceScale: 3, noise: () => z });
    const encode = vi.spyOn(pipe.textEncoder!, 'run');
    try {
      const two = await pipe.generate({ prompt: ['a bag', 'a bag'], steps: 3, scheduler: 'ddim', guidanceScale: 3, noise: () => [...z, ...z] });
      expect(encode).toHaveBeenCalledTimes(1);
      expect((encode.mock.calls[0]![0] as Record<string, Tensor>).input_ids!.dims[0]).toBe(2); // 'a bag' and ''
      expect(two.inputIds.length).toBe(4);
      expect(maxAbsDiff(two.images!.subarray(0, 784), one.images!)).toBeLessThan(1e-5);
      expect(maxAbsDiff(two.images!.subarray(784), one.images!)).toBeLessThan(1e-5);
    } finally {
      encode.mockRestore();
    }
  });

  it('the preview image is the decoder run on x0 / scaling_factor; projection previews when asked', async () => {
    const pipe = latentPipes[backend]!;
    const previews: DiffusionPreview[] = [];
    await pipe.generate({ prompt: ['a coat', 'a sandal'], steps: 3, scheduler: 'ddim', guidanceScale: 2, seed: 5, previewEvery: 2, onPreview: (p) => previews.push(p) });
    const p = previews[0]!;
    const dec = pipe.vaeDecoder!;
    const out = await dec.run({ latent_sample: new Tensor('float32', p.x0.map((v) => v / latentMeta.vae.scaling_factor), p.shape) });
    expect(maxAbsDiff(p.image!, await out.sample!.getData() as Float32Array)).toBeLessThan(1e-4);

    if (backend !== 'cpu') return; // the projection is host code (after the preview's read-back) on either backend
    const projection = readJson<{ matrix: number[][]; bias: number[] }>(join(LATENT_DIR, 'latent_preview.json'));
    const cheap = await LatentDiffusionPipeline.load(LATENT_DIR, { session: { backend }, preview: 'projection' });
    try {
      const got: DiffusionPreview[] = [];
      const r = await cheap.generate({ prompt: 'trouser', steps: 3, scheduler: 'ddim', seed: 5, previewEvery: 2, onPreview: (q) => got.push(q) });
      expect(got[0]!.imageSource).toBe('projection');
      expect(got[0]!.imageShape).toEqual([1, 3, 7, 7]);
      expect(maxAbsDiff(got[0]!.image!, projectLatents(got[0]!.x0, got[0]!.shape, projection).data)).toBeLessThan(1e-6);
      // The final result still goes through the decoder.
      expect(r.imageShape).toEqual([1, 1, 28, 28]);
    } finally {
      await cheap.release();
    }
  });
  extra?.();
});
}
