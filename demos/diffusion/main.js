// The diffusion demo: imports only the built bundle (npm run build → dist/browser/edgekit.js).
const $ = (id) => document.getElementById(id);
const status = (s) => { $('status').textContent = s; };
const fail = (s) => { $('error').textContent = s; status('Stopped.'); };
const base = new URL('../../tests/fixtures/diffusion/', import.meta.url);

/** Draws [1, 8, 8] values in [-1, 1] as a grey image. */
function draw(parent, values, offset = 0) {
  const c = document.createElement('canvas');
  c.width = 8; c.height = 8;
  const ctx = c.getContext('2d');
  const img = ctx.createImageData(8, 8);
  for (let i = 0; i < 64; i++) {
    const v = Math.round(((Math.min(1, Math.max(-1, values[offset + i])) + 1) / 2) * 255);
    img.data.set([v, v, v, 255], i * 4);
  }
  ctx.putImageData(img, 0, 0);
  parent.append(c);
  return c;
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
  for (const s of ek.SCHEDULERS) $('scheduler').append(new Option(s, s));
  $('scheduler').value = 'ddim';
  $('controls').disabled = false;
  status('Ready.');

  let abort;
  window.demo = { ready: true, runs: [] };
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
      const r = await pipe.generate({
        scheduler: $('scheduler').value, steps, seed: Number($('seed').value), classLabels: [Number($('digit').value)],
        nullClass: 10, guidanceScale: Number($('guidance').value), previewEvery: Math.max(1, Math.floor(steps / 5)),
        signal: abort.signal,
        onPreview: (p) => { draw($('previews'), p.x0).title = `step ${p.step}`; record.previews++; },
        onProgress: (p) => {
          record.stepMs.push(p.stepMs);
          status(`Step ${p.step}/${p.steps}: ${p.stepMs.toFixed(1)} ms (${(p.elapsedMs / p.step).toFixed(1)} ms per step on average)`);
        },
      });
      $('result').replaceChildren();
      draw($('result'), r.samples);
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
