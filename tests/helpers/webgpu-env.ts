import { existsSync } from 'node:fs';
import { acquireDevice, type GpuContext } from '../../runtime/backends/webgpu/device.js';
import { gpuResources, type GpuResources } from '../../runtime/backends/webgpu/executor.js';

/**
 * WebGPU for the GPU test suites, in Node through Dawn (`webgpu` package).
 *
 * Default: SwiftShader (Chromium's CPU Vulkan driver), so every machine and CI runner gets the same device.
 * VK_ICD_FILENAMES is set to its ICD unless the caller set it already; EDGEKIT_GPU=hardware leaves the Vulkan loader
 * alone so a real GPU is used. The variable must be set before Dawn creates its Vulkan instance (the first create()
 * in the process), which is why this runs at import time, before any device is requested.
 *
 * If WebGPU cannot be brought up, gpuForTests() THROWS with the reason: GPU suites fail loudly, never skip.
 */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

const wantHardware = process.env.EDGEKIT_GPU === 'hardware';
if (!wantHardware && !process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) {
  process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
}

let ready: Promise<GpuResources> | undefined;

export function gpuForTests(): Promise<GpuResources> {
  ready ??= (async () => {
    if (!wantHardware && !process.env.VK_ICD_FILENAMES) {
      throw new Error(
        `WebGPU tests need a Vulkan driver: SwiftShader's ICD (${SWIFTSHADER_ICD}, from Debian's chromium package) is missing ` +
          'and VK_ICD_FILENAMES is not set. Install chromium (scripts/setup-test-env.mjs does), point VK_ICD_FILENAMES at a driver, ' +
          'or set EDGEKIT_GPU=hardware to use a real GPU.',
      );
    }
    let ctx: GpuContext;
    try {
      ctx = await acquireDevice();
    } catch (e) {
      throw new Error(
        `WebGPU could not be brought up for the GPU tests (VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES ?? '(unset)'}, ` +
          `EDGEKIT_GPU=${process.env.EDGEKIT_GPU ?? '(unset)'}): ${(e as Error)?.message ?? e}`,
        { cause: e },
      );
    }
    return gpuResources(ctx);
  })();
  return ready;
}

/** One line naming the device the suite runs on (printed by the suites so logs say what was tested). */
export function describeDevice(res: GpuResources): string {
  const i = res.ctx.adapterInfo;
  return `${i.vendor} ${i.architecture} ${i.description}`.trim() + (res.ctx.hasF16 ? ' (shader-f16)' : ' (no shader-f16)');
}
