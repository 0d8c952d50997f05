import { importOnnx } from '../../importers/onnx/index.js';
import { runGraphCpu } from '../../runtime/backends/cpu/executor.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';

/**
 * Runs an ONNX model on EdgeKit's CPU backend: the one entry point the conformance and real-model suites use.
 *
 * For now this is importOnnx + runGraphCpu; it will switch to the SDK (InferenceSession.create(bytes,
 * { backend: 'cpu' }) + session.run) once that exists, without changing its callers.
 */
export async function runModelCpu(bytes: Uint8Array, feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
  const { graph } = await importOnnx(bytes);
  // runGraphCpu expects validated feeds (the SDK will do this); check the basics so a wrong feed reads clearly.
  for (const input of graph.inputs) {
    const t = feeds[input.name];
    if (!t) throw new Error(`runModelCpu: no feed for graph input '${input.name}' (feeds: ${Object.keys(feeds).join(', ')})`);
    if (t.dtype !== input.dtype) throw new Error(`runModelCpu: input '${input.name}' is ${input.dtype}, feed is ${t.dtype}`);
    if (input.shape) {
      const ok = input.shape.length === t.shape.length && input.shape.every((d, i) => typeof d !== 'number' || d === t.shape[i]);
      if (!ok) throw new Error(`runModelCpu: input '${input.name}' has shape [${input.shape.join(', ')}], feed [${t.shape.join(', ')}]`);
    }
  }
  return runGraphCpu(graph, feeds);
}

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
