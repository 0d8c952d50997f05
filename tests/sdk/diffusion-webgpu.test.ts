import { beforeAll } from 'vitest';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';
import { diffusionSuite } from './diffusion-suite.js';

/**
 * The diffusion pipeline on WebGPU (SwiftShader in CI; see tests/helpers/webgpu-env.ts): latents, noise, guidance
 * combine and scheduler updates on the device (sdk/diffusion/pipeline.ts). The shared suite is diffusion-suite.ts.
 */

beforeAll(async () => {
  console.log(`diffusion suite WebGPU on ${describeDevice(await gpuForTests())}`);
});

diffusionSuite('webgpu');
