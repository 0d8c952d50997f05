// Runs in a headless Chromium page (bench/page.html) for bench/diffusion.mjs: one contender's guided DDIM sampling
// loop over a class-conditional noise-prediction UNet (inputs sample, timestep float32, class_labels int64; output
// noise_pred), batch 1 with classifier-free guidance, so every step is one batch-2 UNet call (conditional rows,
// then the null-class rows), as EdgeKit's pipeline does it.
//   edgekit-webgpu: DiffusionPipeline on a WebGPU session (latents, guidance combine and DDIM update on the GPU);
//   ort-webgpu (ort.webgpu bundle), ort-jsep (default bundle, webgpu EP), ort-wasm: onnxruntime-web's session in the
//     loop a user writes: the doubled sample and the timestep and class feeds made on the CPU every step, the UNet
//     output read back, guidance and DDIM (eta 0, diffusers' DDIMScheduler) in JavaScript.
// All start from the same initial latents (a seeded JavaScript generator, injected into EdgeKit through `noise`),
// and DDIM with eta 0 draws nothing more, so every contender computes the same sample: the runner compares them.
// Timed after one warm-up generation (plans, pipelines): the wall time per step of a whole generation.

/** Standard normal values from a seeded LCG + Box-Muller: the initial latents of every contender. */
function gaussian(n, seed) {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 1) / 4294967297;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u())), a = 2 * Math.PI * u();
    out[i] = r * Math.cos(a);
    if (i + 1 < n) out[i + 1] = r * Math.sin(a);
  }
  return out;
}

/** diffusers' DDIMScheduler (eta 0) for this config: the timesteps and, per step, ᾱ_t and ᾱ_prev. */
export function ddimPlan(config, steps) {
  const T = config.num_train_timesteps;
  const betas = Array.from({ length: T }, (_, i) => {
    if (config.beta_schedule === 'linear') return config.beta_start + ((config.beta_end - config.beta_start) * i) / (T - 1);
    if (config.beta_schedule === 'scaled_linear') {
      const a = Math.sqrt(config.beta_start), b = Math.sqrt(config.beta_end);
      return (a + ((b - a) * i) / (T - 1)) ** 2;
    }
    throw new Error(`beta_schedule ${config.beta_schedule} is not in this benchmark's JavaScript DDIM`);
  });
  const ac = [];
  betas.reduce((p, b) => (ac.push(p * (1 - b)), p * (1 - b)), 1);
  if ((config.timestep_spacing ?? 'leading') !== 'leading') throw new Error('only leading timestep spacing here');
  const ratio = Math.floor(T / steps);
  const final = config.set_alpha_to_one ? 1 : ac[0];
  return Array.from({ length: steps }, (_, k) => {
    const t = (steps - 1 - k) * ratio + (config.steps_offset ?? 0);
    const prev = t - ratio;
    return { t, a: ac[t], aPrev: prev >= 0 ? ac[prev] : final };
  });
}

export async function generate(origin, contender, o) {
  const bytes = new Uint8Array(await (await fetch(`${origin}/${o.model}`)).arrayBuffer());
  const config = await (await fetch(`${origin}/${o.config}`)).json();
  const per = o.sampleShape.reduce((a, b) => a * b, 1);
  const init = gaussian(per, o.seed);
  const t = performance.now();
  let loop;
  let release;
  if (contender === 'edgekit-webgpu') {
    const ek = await import(`${origin}/dist/browser/edgekit.js`);
    const session = await ek.InferenceSession.create(bytes, { backend: 'webgpu' });
    const pipe = ek.DiffusionPipeline.create(session, { schedulerConfig: config });
    loop = async () => {
      const r = await pipe.generate({
        scheduler: 'ddim', steps: o.steps, classLabels: [o.classLabel], nullClass: o.nullClass, guidanceScale: o.guidance,
        sampleShape: o.sampleShape, noise: (draw, size) => {
          if (draw !== 0 || size !== per) throw new Error(`unexpected noise draw ${draw} of ${size}`);
          return init;
        },
      });
      return { sample: r.samples, stepMs: r.stepMs };
    };
    release = () => session.release();
  } else {
    const file = contender === 'ort-webgpu' ? 'ort.webgpu.min.mjs' : 'ort.min.mjs';
    const ort = await import(`${origin}/node_modules/onnxruntime-web/dist/${file}`);
    ort.env.wasm.wasmPaths = `${origin}/node_modules/onnxruntime-web/dist/`;
    ort.env.wasm.numThreads = 1;
    const session = await ort.InferenceSession.create(bytes, { executionProviders: [contender === 'ort-wasm' ? 'wasm' : 'webgpu'] });
    const plan = ddimPlan(config, o.steps);
    const g = o.guidance;
    const labels = new ort.Tensor('int64', BigInt64Array.from([BigInt(o.classLabel), BigInt(o.nullClass)]), [2]);
    loop = async () => {
      let x = Float32Array.from(init); // DDIM's initial noise sigma is 1
      const stepMs = [];
      for (const { t, a, aPrev } of plan) {
        const t0 = performance.now();
        const doubled = new Float32Array(2 * per);
        doubled.set(x, 0);
        doubled.set(x, per);
        const out = await session.run({
          sample: new ort.Tensor('float32', doubled, [2, ...o.sampleShape]),
          timestep: new ort.Tensor('float32', Float32Array.from([t, t]), [2]),
          class_labels: labels,
        });
        const m = await out[session.outputNames[0]].getData();
        out[session.outputNames[0]].dispose?.();
        const next = new Float32Array(per);
        const sa = Math.sqrt(a), s1a = Math.sqrt(1 - a), sp = Math.sqrt(aPrev), s1p = Math.sqrt(1 - aPrev);
        for (let i = 0; i < per; i++) {
          const eps = m[per + i] + g * (m[i] - m[per + i]);
          const x0 = (x[i] - s1a * eps) / sa;
          next[i] = sp * x0 + s1p * eps;
        }
        x = next;
        stepMs.push(performance.now() - t0);
      }
      return { sample: x, stepMs };
    };
    release = () => session.release();
  }
  const loadMs = performance.now() - t;
  await loop(); // warm-up: plans, pipelines, buffers
  const t0 = performance.now();
  const r = await loop();
  const totalMs = performance.now() - t0;
  await release();
  const sorted = [...r.stepMs].sort((a, b) => a - b);
  return {
    contender, loadMs, steps: o.steps, totalMs, msPerStep: totalMs / o.steps, stepMedianMs: sorted[sorted.length >> 1],
    peakGpuBytes: globalThis.__gpuMem.peak, sample: Array.from(r.sample),
  };
}
