import type { KernelEnv } from '../../runtime/backends/webgpu/program.js';

/**
 * The fixed device the WGSL snapshot tests plan kernels for (no f16; WebGPU's default limits), so the generated
 * sources do not depend on the machine's adapter.
 */
export const SNAPSHOT_ENV: KernelEnv = {
  f16: false,
  limits: {
    maxBufferSize: 2 ** 28, maxStorageBufferBindingSize: 2 ** 27, maxUniformBufferBindingSize: 65536, maxStorageBuffersPerShaderStage: 8,
    maxComputeWorkgroupStorageSize: 16384, maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupSizeX: 256,
    maxComputeWorkgroupSizeY: 256, maxComputeWorkgroupSizeZ: 64, maxComputeWorkgroupsPerDimension: 65535,
    minStorageBufferOffsetAlignment: 256, minUniformBufferOffsetAlignment: 256, maxBindGroups: 4,
  },
  maxElements: 2 ** 30,
};
