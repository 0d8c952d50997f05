import { beforeAll } from 'vitest';
import { describeDevice, gpuForTests } from '../helpers/webgpu-env.js';
import { latentDiffusionSuite } from './latent-diffusion-suite.js';

/**
 * The latent-diffusion layout on WebGPU (SwiftShader in CI; see tests/helpers/webgpu-env.ts): the text encoder's
 * states stay on the GPU and feed every UNet step, and the VAE decoder reads the scaled latents the combine kernel
 * writes on the device (sdk/diffusion/pipeline.ts). The shared suite is latent-diffusion-suite.ts.
 */

beforeAll(async () => {
  console.log(`latent diffusion suite WebGPU on ${describeDevice(await gpuForTests())}`);
});

latentDiffusionSuite('webgpu');
