import { describe, expect, it } from 'vitest';
import { exportOnnx, importOnnx } from '../../importers/onnx/index.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { quantize } from '../../sdk/node.js';
import { runModel, runModelOrt } from '../helpers/run-model.js';
import '../helpers/webgpu-env.js';
import { accuracy, agreement, digits, fashion, logitsOf, stepDiff, type TrainedModel } from './fixtures.js';

/**
 * Static int8 (QDQ) on the trained CNNs: top-1 agreement with the float32 model >= 99% and test accuracy within
 * 0.5 point, on EdgeKit's CPU and WebGPU backends; onnxruntime-node loads the same file, and every int8 activation
 * (each QuantizeLinear output, exposed as a graph output for the check) is within one quantization step of
 * onnxruntime's. Calibration runs on WebGPU for one model and on the CPU for the other, so both paths are used.
 */

async function withQuantizedOutputs(model: Uint8Array): Promise<{ bytes: Uint8Array; names: string[] }> {
  const { graph } = await importOnnx(model);
  const names = graph.nodes.filter((n) => n.op === 'QuantizeLinear').map((n) => n.outputs[0]!);
  graph.outputs = [...graph.outputs, ...names.map((name) => ({ ...graph.values[name]!, name }))];
  return { bytes: exportOnnx(graph, { opset: 21 }), names };
}

const cases: [() => TrainedModel, 'cpu' | 'webgpu'][] = [
  [digits, 'webgpu'],
  [fashion, 'cpu'],
];

describe.each(cases)('static int8 %#', (load, calibrateOn) => {
  const m = load();
  let q: Awaited<ReturnType<typeof quantize>>;
  let float: HostTensor;

  it(`quantizes ${calibrateOn === 'webgpu' ? 'calibrating on WebGPU' : 'calibrating on the CPU'}`, async () => {
    q = await quantize(m.bytes, { mode: 'int8', calibration: m.calibration(20, 10), backend: calibrateOn });
    float = await logitsOf(m.bytes, m.test, 'cpu');
    const r = q.report;
    expect(r.calibrationExamples).toBe(10);
    expect(r.backend).toBe(calibrateOn);
    // Every Conv and Gemm is quantized (BatchNorm folded first), with a per-layer SQNR well above noise.
    const convs = r.layers.filter((l) => l.op === 'Conv' || l.op === 'Gemm');
    expect(convs.length).toBeGreaterThanOrEqual(3);
    for (const l of convs) expect(l.sqnrDb).toBeGreaterThan(20);
    expect(r.keptFloat).toEqual([]);
    // int8 weights, int32 biases, float32 scales: about a quarter of the float32 bytes.
    expect(r.weightBytesAfter / r.weightBytesBefore).toBeLessThan(0.32);
  }, 300_000);

  for (const backend of ['cpu', 'webgpu'] as const) {
    it(`keeps top-1 agreement >= 99% and accuracy within 0.5 point on ${backend}`, async () => {
      const int8 = await logitsOf(q.model, m.test, backend);
      const acc = accuracy(int8, m.labels);
      const accFloat = accuracy(float, m.labels);
      expect(agreement(int8, float)).toBeGreaterThanOrEqual(0.99);
      expect(Math.abs(acc - accFloat)).toBeLessThanOrEqual(0.005);
    }, 300_000);
  }

  it('loads in onnxruntime-node, and every int8 activation is within one step of its values', async () => {
    const { bytes, names } = await withQuantizedOutputs(q.model);
    const feeds = { input: { ...m.test, shape: [100, ...m.test.shape.slice(1)], data: (m.test.data as Float32Array).slice(0, 100 * m.test.shape.slice(1).reduce((a, b) => a * b, 1)) } };
    const ort = await runModelOrt(bytes, feeds);
    for (const backend of ['cpu', 'webgpu'] as const) {
      const ek = await runModel(bytes, feeds, backend);
      for (const n of names) {
        const { worst, off, n: count } = stepDiff(ek[n] as HostTensor, ort[n]!);
        expect(worst, `${backend} ${n}`).toBeLessThanOrEqual(1);
        expect(off / count, `${backend} ${n}: share of values one step off`).toBeLessThan(0.01);
      }
      const agree = agreement(ek.logits as HostTensor, ort.logits!);
      expect(agree).toBeGreaterThanOrEqual(0.99);
    }
  }, 300_000);
});
