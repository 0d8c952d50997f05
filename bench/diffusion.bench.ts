import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { DiffusionPipeline, InferenceSession, type DiffusionResult } from '../sdk/node.js';
import { describeDevice, gpuForTests } from '../tests/helpers/webgpu-env.js';

/**
 * DiffusionPipeline on the fixture DDPM (tests/fixtures/diffusion: 8×8 digits UNet) on this machine's WebGPU adapter
 * (SwiftShader where there is no GPU) and on the CPU backend: DDIM, 20 steps, guidance 2 (one batch-2N UNet call
 * per step), batch 1 and batch 8; milliseconds per step as the results report them (each step waits for the device):
 *
 *   npx vitest bench --run bench/diffusion.bench.ts
 *
 * The first call per backend is a warm-up (plans, pipelines); the printed numbers are the last measured call's.
 * The comparison with onnxruntime-web (WebGPU and wasm, in headless Chromium) is bench/diffusion.mjs; docs/diffusion.md.
 */

const dir = 'tests/fixtures/diffusion';
const pipes: Record<string, DiffusionPipeline> = {};
const last: Record<string, DiffusionResult> = {};
const run = (backend: string, batch: number) => pipes[backend]!.generate({
  scheduler: 'ddim', steps: 20, classLabels: Array.from({ length: batch }, (_, i) => i % 10), nullClass: 10, guidanceScale: 2, seed: 1,
});

beforeAll(async () => {
  console.log(`diffusion bench WebGPU on ${describeDevice(await gpuForTests())}`);
  const config = JSON.parse(readFileSync(`${dir}/scheduler_config.json`, 'utf8')) as Record<string, unknown>;
  for (const backend of ['cpu', 'webgpu'] as const) {
    pipes[backend] = DiffusionPipeline.create(await InferenceSession.create(readFileSync(`${dir}/unet.onnx`), { backend }), { schedulerConfig: config });
    await run(backend, 1);
    await run(backend, 8);
  }
});

afterAll(async () => {
  for (const [k, r] of Object.entries(last)) {
    const mean = r.stepMs.reduce((a, b) => a + b, 0) / r.stepMs.length;
    console.log(`${k}: ${mean.toFixed(1)} ms per step (DDIM, 20 steps, guidance 2)`);
  }
  for (const p of Object.values(pipes)) await p.session.release();
});

describe('fixture DDPM, DDIM 20 steps, guidance 2', () => {
  for (const backend of ['cpu', 'webgpu']) {
    for (const batch of [1, 8]) {
      bench(`${backend} batch ${batch}`, async () => {
        last[`${backend} batch ${batch}`] = await run(backend, batch);
      }, { iterations: 2, warmupIterations: 0, time: 0 });
    }
  }
});
