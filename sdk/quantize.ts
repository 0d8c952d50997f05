import { quantizeModel, type CalibrationFeeds, type QuantizeOptions as CoreOptions, type QuantizeResult } from '../quantize/index.js';
import { acquireDevice } from '../runtime/backends/webgpu/device.js';
import { gpuResources } from '../runtime/backends/webgpu/executor.js';
import { InvalidArgumentError } from '../runtime/errors.js';
import type { HostTensor } from '../runtime/ir/tensor.js';
import { loadModelSource, type ModelSource } from './model-source.js';
import { getNodePlatform } from './platform.js';
import { Tensor } from './tensor.js';

/** A calibration example as the SDK's users hold it: Tensors (or host tensors) by input name. */
export type QuantizeFeeds = Record<string, Tensor | HostTensor>;

export interface QuantizeOptions extends Omit<CoreOptions, 'calibration'> {
  /** 'int8': examples the float model runs on (an async or sync iterable of feeds by input name). */
  calibration?: AsyncIterable<QuantizeFeeds> | Iterable<QuantizeFeeds>;
  /** Where calibration and the report run: 'webgpu' (default) or the 'cpu' reference. No silent fallback. */
  backend?: 'cpu' | 'webgpu';
}

/**
 * Converts a float32 ONNX model (bytes, a URL, or a path in Node) to int8, int4 weights or float16, and returns
 * standard ONNX bytes with a report (quantize/index.ts explains the modes; docs/quantization.md the decisions):
 *   const { model, report } = await quantize(bytes, { mode: 'int8', calibration: examples });
 */
export async function quantize(model: ModelSource, options: QuantizeOptions): Promise<QuantizeResult> {
  const backend = options?.backend ?? 'webgpu';
  if (backend !== 'cpu' && backend !== 'webgpu') throw new InvalidArgumentError(`quantize: backend must be 'cpu' or 'webgpu', got '${String(backend)}'.`);
  const { bytes } = await loadModelSource(model);
  const calibration = options.calibration ? toHostFeeds(options.calibration) : undefined;
  return quantizeModel(bytes, { ...options, calibration }, {
    backend,
    gpu: async () => gpuResources(await acquireDevice({ gpu: await getNodePlatform()?.getGpu?.() })),
  });
}

async function* toHostFeeds(src: AsyncIterable<QuantizeFeeds> | Iterable<QuantizeFeeds>): AsyncIterable<CalibrationFeeds> {
  for await (const f of src as AsyncIterable<QuantizeFeeds>) {
    const out: CalibrationFeeds = {};
    for (const [k, v] of Object.entries(f)) {
      if (v instanceof Tensor) {
        if (v.location !== 'cpu') throw new InvalidArgumentError(`quantize: calibration input '${k}' lives on the GPU; read it with getData() first.`);
        out[k] = v.toHost();
      } else out[k] = v;
    }
    yield out;
  }
}
