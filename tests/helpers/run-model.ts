import { InferenceSession, Tensor } from '../../sdk/node.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import type { HostValue } from '../../runtime/ir/value.js';
import type { SessionValue } from '../../sdk/values.js';

/**
 * Runs an ONNX model on one of EdgeKit's backends through the public SDK (import, graph optimization, feed
 * validation, per-shape plans): the one entry point the conformance and real-model suites use, so they test what a
 * user's `InferenceSession.create(bytes, { backend })` then `run` does.
 */
export async function runModel(bytes: Uint8Array, feeds: Record<string, HostValue>, backend: 'cpu' | 'webgpu'): Promise<Record<string, HostValue>> {
  const session = await InferenceSession.create(bytes, { backend });
  try {
    // Sequences are arrays of Tensors, empty optionals null, at the public API as here (sdk/values.ts).
    const toTensor = (t: HostTensor) => new Tensor(t.dtype, t.data, t.shape);
    const tensors: Record<string, SessionValue> = {};
    for (const [name, v] of Object.entries(feeds)) tensors[name] = v === null ? null : Array.isArray(v) ? v.map(toTensor) : toTensor(v);
    const out = await session.run<Record<string, SessionValue>>(tensors);
    const result: Record<string, HostValue> = {};
    for (const [name, v] of Object.entries(out)) result[name] = v === null ? null : Array.isArray(v) ? v.map((t) => t.toHost()) : v.toHost();
    return result;
  } finally {
    await session.release();
  }
}

export const runModelCpu = (bytes: Uint8Array, feeds: Record<string, HostValue>) => runModel(bytes, feeds, 'cpu');
/** WebGPU: import tests/helpers/webgpu-env.ts first (it points Dawn at SwiftShader when there is no GPU). */
export const runModelWebGpu = (bytes: Uint8Array, feeds: Record<string, HostValue>) => runModel(bytes, feeds, 'webgpu');

/** Runs the same model in onnxruntime-node (the reference the real-model tests compare against). */
export async function runModelOrt(bytes: Uint8Array, feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(bytes);
  try {
    const ortFeeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
    for (const [name, t] of Object.entries(feeds)) {
      // onnxruntime-node takes float16 as raw bits in a Uint16Array, like HostTensor; it has no bfloat16 tensors.
      if (t.dtype === 'bfloat16') throw new Error('runModelOrt: onnxruntime-node does not accept bfloat16 feeds');
      ortFeeds[name] = new ort.Tensor(t.dtype as 'float32', t.data as Float32Array, t.shape);
    }
    const out = await session.run(ortFeeds);
    const result: Record<string, HostTensor> = {};
    for (const [name, t] of Object.entries(out)) {
      result[name] = { dtype: t.type as HostTensor['dtype'], shape: [...t.dims], data: t.data as Float32Array };
    }
    return result;
  } finally {
    await session.release();
  }
}
