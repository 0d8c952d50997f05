import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importOnnx } from '../../importers/onnx/index.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession, quantize, Tensor } from '../../sdk/node.js';
import { runModelOrt } from '../helpers/run-model.js';
import '../helpers/webgpu-env.js';
import { FIXTURES, readBytes, requireGenerated } from '../models/fixture-files.js';
import { agreement, digits, fashion, logitsOf, type TrainedModel } from './fixtures.js';

/**
 * float16 models on WebGPU, with and without 'shader-f16' (SwiftShader has none: weights stay two halves per u32
 * and are unpacked in registers, never copied to float32), against onnxruntime-node running the same file:
 * EdgeKit's quantize({ mode: 'float16' }) output and files converted by a Python script the way
 * onnxconverter-common does (scripts/fixtures/fp16_fixture.py).
 *
 * Tolerance: onnxruntime's default for float16 outputs (test/providers/checkers.cc: 0.005 absolute + 0.005
 * relative), with the absolute part taken relative to the largest logit, since a whole network's float16
 * rounding grows with the magnitude of what it computes.
 */

function withinFp16Tolerance(actual: HostTensor, expected: HostTensor): { worst: number; ok: boolean } {
  const e = expected.data as Float32Array;
  const a = actual.data as Float32Array;
  const scale = e.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  let worst = 0;
  for (let i = 0; i < e.length; i++) worst = Math.max(worst, Math.abs(a[i]! - e[i]!) / (0.005 * scale + 0.005 * Math.abs(e[i]!)));
  return { worst, ok: worst <= 1 };
}

async function residentWeights(bytes: Uint8Array): Promise<{ bytes: number; f16: boolean }> {
  const s = await InferenceSession.create(bytes, { backend: 'webgpu' });
  const r = s.report();
  await s.release();
  return { bytes: r.weightBytes, f16: r.gpu!.adapter.f16 };
}

const cases: [string, () => TrainedModel, string][] = [
  ['digits', digits, 'digits-cnn-fp16.onnx'],
  ['fashion', fashion, 'fashion-cnn-fp16.onnx'],
];

describe.each(cases)('float16 %s CNN', (_name, load, pythonFile) => {
  const m = load();
  const n = 200;
  const test: HostTensor = { ...m.test, shape: [n, ...m.test.shape.slice(1)], data: (m.test.data as Float32Array).slice(0, n * m.test.shape.slice(1).reduce((a, b) => a * b, 1)) };

  it("quantize({ mode: 'float16' }) and the Python-converted file run on WebGPU and the CPU within onnxruntime's fp16 tolerance", async () => {
    const q = await quantize(m.bytes, { mode: 'float16', backend: 'webgpu', calibration: m.calibration(20, 2) });
    expect(q.report.weightBytesAfter / q.report.weightBytesBefore).toBeLessThan(0.51);
    expect(q.report.keptFloat).toEqual([]);
    for (const l of q.report.layers) expect(l.sqnrDb).toBeGreaterThan(40);
    const { graph } = await importOnnx(q.model);
    expect(graph.inputs[0]!.dtype).toBe('float32');
    expect(graph.outputs.map((o) => graph.values[o.name]!.dtype)).toEqual(['float32']);
    expect(Object.values(graph.initializers).filter((t) => t.dtype === 'float32')).toEqual([]);

    const float = await logitsOf(m.bytes, test, 'cpu');
    const w32 = await residentWeights(m.bytes);
    for (const bytes of [q.model, readBytes(join(FIXTURES, 'fp16', pythonFile))]) {
      const ort = (await runModelOrt(bytes, { input: test })).logits!;
      for (const backend of ['webgpu', 'cpu'] as const) {
        const ek = await logitsOf(bytes, test, backend);
        const t = withinFp16Tolerance(ek, ort);
        expect(t.ok, `${backend}: worst error ${t.worst.toFixed(3)} of the tolerance`).toBe(true);
        expect(agreement(ek, float)).toBeGreaterThanOrEqual(0.99);
      }
      // Weights resident at half their float32 size: packed f16 (f16x2) without shader-f16, f16 with it.
      const w16 = await residentWeights(bytes);
      expect(w16.bytes / w32.bytes).toBeLessThan(0.55); // small tensors round up to 4 bytes each
    }
  }, 300_000);
});

describe('float16 mobilenet_v2 (random weights, tests/fixtures/generated)', () => {
  it('runs on WebGPU with half the resident weight bytes, within fp16 tolerance of onnxruntime-node', async () => {
    const bytes = readBytes(requireGenerated('mobilenet_v2'));
    const q = await quantize(bytes, { mode: 'float16', backend: 'cpu', reportSamples: 0 });
    expect(q.report.reportInputs).toBe('none');
    const x = Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => Math.sin(i * 0.01));
    const input: HostTensor = { dtype: 'float32', shape: [1, 3, 224, 224], data: x };
    const s = await InferenceSession.create(q.model, { backend: 'webgpu' });
    const y = (await s.run({ input: new Tensor('float32', x, input.shape) })).output!.toHost();
    const resident = s.report().weightBytes;
    await s.release();
    const ort = (await runModelOrt(q.model, { input })).output!;
    const t = withinFp16Tolerance(y, ort);
    expect(t.ok, `worst error ${t.worst.toFixed(3)} of the tolerance`).toBe(true);
    expect(resident / q.report.weightBytesBefore).toBeLessThan(0.51);
  }, 300_000);
});
