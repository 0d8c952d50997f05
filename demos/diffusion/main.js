// The diffusion demo: imports only the built bundle (npm run build → dist/browser/edgekit.js).
const $ = (id) => document.getElementById(id);
const status = (s) => { $('status').textContent = s; };
const fail = (s) => { $('error').textContent = s; status('Stopped.'); };
const base = new URL('../../tests/fixtures/diffusion/', import.meta.url);
const fashionBase = new URL('../../tests/fixtures/latent-diffusion/', import.meta.url);
// The latent model's classes, as its tokenizer spells them (scripts/fixtures/latent_diffusion_fixture.py).
const FASHION = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle-boot'];

/** Draws one image of [C, H, W] values in [-1, 1] (C 1: grey, C 3: RGB) starting at `offset`. */
function draw(parent, values, [ch, h, w] = [1, 8, 8], offset = 0) {
  const c = document.createElement('canvas');
  c.width = w; c.height = h;
  const ctx = c.getContext('2d');
  const img = ctx.createImageData(w, h);
  const byte = (v) => Math.round(((Math.min(1, Math.max(-1, v)) + 1) / 2) * 255);
  for (let i = 0; i < h * w; i++) {
    const rgb = [0, 1, 2].map((k) => byte(values[offset + Math.min(k, ch - 1) * h * w + i]));
    img.data.set([...rgb, 255], i * 4);
  }
  ctx.putImageData(img, 0, 0);
  parent.append(c);
  return c;
}

/**
 * The latent model, loaded when first selected: LatentDiffusionPipeline reads the diffusers folder (model_index.json,
 * text_encoder, unet, vae_decoder, scheduler, tokenizer), then runs are warmed like the digits model's (guided and
 * unguided, with a decoded preview) so that generating later has no long main-thread task.
 */
async function loadFashion(ek) {
  const pipe = await ek.LatentDiffusionPipeline.load(fashionBase.href, {
    session: {
      backend: 'webgpu',
      onProgress: (p) => status(p.phase === 'fetch' ? `Loading the latent model… ${p.loaded} / ${p.total ?? '?'} bytes` : `Compiling GPU pipelines… ${p.done} / ${p.total}`),
    },
  });
  status('Warming up the latent model…');
  for (const guidanceScale of [3, 1]) {
    await pipe.generate({ prompt: 'a bag', scheduler: 'ddpm', steps: 2, seed: 0, guidanceScale, previewEvery: 1, onPreview: () => {} });
  }
  return pipe;
}

async function main() {
  if (!navigator.gpu || !(await navigator.gpu.requestAdapter())) {
    fail('WebGPU is not available in this browser. Use a recent Chrome or Edge (or Safari Technology Preview / Firefox Nightly with WebGPU enabled), on a device with WebGPU support, and reload.');
    window.demo = { error: 'no-webgpu' };
    return;
  }
  const ek = await import(new URL('../../dist/browser/edgekit.js', import.meta.url).href);
  status('Loading the UNet…');
  const unet = await ek.InferenceSession.create(new URL('unet.onnx', base).href, {
    backend: 'webgpu',
    onProgress: (p) => status(p.phase === 'fetch' ? `Loading the UNet… ${p.loaded} / ${p.total ?? '?'} bytes` : `Compiling GPU pipelines… ${p.done} / ${p.total}`),
  });
  const config = await (await fetch(new URL('scheduler_config.json', base))).json();
  const pipe = ek.DiffusionPipeline.create(unet, { schedulerConfig: config });
  // Warm-up while loading: the first UNet run at a batch size specializes the graph to that shape and builds its GPU
  // plan, and the first generate compiles the loop's programs, each one synchronous main-thread task of 100-600 ms on
  // SwiftShader. Done here (guided = batch 2, unguided = batch 1; DDPM draws noise; a preview), so Generate later
  // runs only per-step encoding on this thread (no task of 50 ms or more: tests/browser/diffusion-demo.test.ts).
  status('Warming up the GPU…');
  for (const guidanceScale of [2, 1]) {
    await pipe.generate({ scheduler: 'ddpm', steps: 2, seed: 0, classLabels: [0], nullClass: 10, guidanceScale, previewEvery: 1, onPreview: () => {} });
  }
  for (let d = 0; d < 10; d++) $('digit').append(new Option(String(d), String(d)));
  for (const name of FASHION) $('prompts').append(new Option(`a photo of a ${name}`));
  let fashion;
  $('model').onchange = async () => {
    const model = $('model').value;
    $('digit-label').hidden = model !== 'digits';
    $('prompt-label').hidden = model !== 'fashion';
    $('guidance').value = model === 'fashion' ? '3' : '2';
    window.demo.model = model;
    if (model === 'fashion' && !fashion) {
      $('controls').disabled = true;
      window.demo.ready = false;
      try {
        fashion = await loadFashion(ek);
      } catch (e) {
        fail(`${e.name ?? 'Error'}: ${e.message ?? e}`);
        window.demo.error = String(e);
        return;
      }
      $('controls').disabled = false;
      window.demo.ready = true;
    }
    status('Ready.');
  };
  for (const s of ek.SCHEDULERS) $('scheduler').append(new Option(s, s));
  $('scheduler').value = 'ddim';
  $('controls').disabled = false;
  status('Ready.');

  let abort;
  window.demo = { ready: true, model: 'digits', runs: [] };
  $('cancel').onclick = () => abort?.abort();
  $('generate').onclick = async () => {
    abort = new AbortController();
    $('previews').replaceChildren();
    $('error').textContent = '';
    $('generate').disabled = true;
    $('cancel').disabled = false;
    const record = { previews: 0, done: false, cancelled: false, stepMs: [] };
    window.demo.runs.push(record);
    try {
      const steps = Number($('steps').value);
      const latent = $('model').value === 'fashion';
      const common = {
        scheduler: $('scheduler').value, steps, seed: Number($('seed').value), guidanceScale: Number($('guidance').value),
        previewEvery: Math.max(1, Math.floor(steps / 5)), signal: abort.signal,
        // The latent model's previews are the predicted x0 through the VAE decoder (p.image); the digits model's are x0.
        onPreview: (p) => {
          draw($('previews'), p.image ?? p.x0, (p.imageShape ?? p.shape).slice(1)).title = `step ${p.step}${p.imageSource ? ` (${p.imageSource})` : ''}`;
          record.previews++;
        },
        onProgress: (p) => {
          record.stepMs.push(p.stepMs);
          status(`Step ${p.step}/${p.steps}: ${p.stepMs.toFixed(1)} ms (${(p.elapsedMs / p.step).toFixed(1)} ms per step on average)`);
        },
      };
      const r = latent
        ? await fashion.generate({ ...common, prompt: $('prompt').value })
        : await pipe.generate({ ...common, classLabels: [Number($('digit').value)], nullClass: 10 });
      $('result').replaceChildren();
      if (latent) draw($('result'), r.images, r.imageShape.slice(1));
      else draw($('result'), r.samples);
      const mean = r.stepMs.reduce((a, b) => a + b, 0) / r.stepMs.length;
      status(`Done: ${r.stepMs.length} steps, ${mean.toFixed(1)} ms per step.`);
      record.done = true;
    } catch (e) {
      if (e instanceof ek.CancelledError) { status('Cancelled.'); record.cancelled = true; }
      else { fail(`${e.name}: ${e.message}`); record.error = String(e); }
    } finally {
      $('generate').disabled = false;
      $('cancel').disabled = true;
    }
  };
}

main().catch((e) => { fail(`${e.name ?? 'Error'}: ${e.message ?? e}`); window.demo = { error: String(e) }; });
