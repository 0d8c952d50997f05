import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportOnnx, importOnnx } from '../../importers/onnx/index.js';
import type { Graph } from '../../runtime/ir/graph.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
import { quantizeCommand, readNpy } from '../../sdk/cli-quantize.js';
import { InvalidArgumentError, quantize } from '../../sdk/node.js';
import { relativeError } from '../helpers/compare.js';
import { runModelOrt } from '../helpers/run-model.js';
import { Rng } from '../helpers/random.js';
import '../helpers/webgpu-env.js';
import { accuracy, agreement, digits, logitsOf } from './fixtures.js';

/**
 * The other modes and options on the digits CNN (a real trained model: its Gemm is the MatMul-with-weights layer
 * the dynamic and 4-bit modes convert), the bad-input rule (ops the quantizer does not handle stay float32 and are
 * named), option errors, and the CLI with .npy calibration.
 */

const m = digits();
const opsOf = async (bytes: Uint8Array) => (await importOnnx(bytes)).graph.nodes.map((n) => n.op);

describe('int8-dynamic', () => {
  it('writes DynamicQuantizeLinear + MatMulInteger (and ConvInteger) that onnxruntime-node and EdgeKit (CPU, WebGPU) run alike', async () => {
    const q = await quantize(m.bytes, { mode: 'int8-dynamic', backend: 'cpu', calibration: m.calibration(20, 2) });
    const ops = await opsOf(q.model);
    expect(ops).toContain('DynamicQuantizeLinear');
    expect(ops).toContain('MatMulInteger');
    expect(ops).not.toContain('Gemm');
    // The Convs become ConvInteger (tests/quantize/dynamic-conv.test.ts checks them in detail).
    expect(q.report.layers.map((l) => l.op)).toEqual(['Conv', 'Conv', 'Gemm']);
    for (const l of q.report.layers) expect(l.sqnrDb).toBeGreaterThan(25);
    expect(ops).toContain('ConvInteger');
    expect(ops).not.toContain('Conv');
    const float = await logitsOf(m.bytes, m.test, 'cpu');
    const ort = (await runModelOrt(q.model, { input: m.test })).logits!;
    for (const backend of ['cpu', 'webgpu'] as const) {
      const ek = await logitsOf(q.model, m.test, backend);
      expect(agreement(ek, float)).toBeGreaterThanOrEqual(0.99);
      expect(agreement(ek, ort)).toBeGreaterThanOrEqual(0.99);
      // The same integer products; DynamicQuantizeLinear's scale (a float division) may round an activation to the
      // neighbouring step in one runtime and not the other, so the logits agree to a fraction of a percent.
      expect(relativeError(ek, ort)).toBeLessThan(0.01);
    }
  }, 300_000);
});

describe('int4-weights', () => {
  it('writes com.microsoft MatMulNBits (4 bits, block 32) for the Gemm; onnxruntime-node and EdgeKit agree', async () => {
    const q = await quantize(m.bytes, { mode: 'int4-weights', backend: 'cpu', calibration: m.calibration(20, 2) });
    const { graph, opsets } = await importOnnx(q.model);
    expect(opsets['com.microsoft']).toBe(1);
    const mm = graph.nodes.find((n) => n.op === 'com.microsoft.MatMulNBits')!;
    expect(mm.attrs.bits).toEqual({ type: 'int', value: 4 });
    expect(mm.attrs.block_size).toEqual({ type: 'int', value: 32 });
    expect(graph.initializers[mm.inputs[1]!]!.shape).toEqual([10, 2, 16]); // [N, K / 32, 32 / 2]
    const float = await logitsOf(m.bytes, m.test, 'cpu');
    const ort = (await runModelOrt(q.model, { input: m.test })).logits!;
    for (const backend of ['cpu', 'webgpu'] as const) {
      const ek = await logitsOf(q.model, m.test, backend);
      expect(agreement(ek, ort)).toBe(1);
      expect(Math.abs(accuracy(ek, m.labels) - accuracy(float, m.labels))).toBeLessThanOrEqual(0.005);
    }
  }, 300_000);
});

describe('options', () => {
  it('percentile and entropy calibration give working int8 models; exclude and keepFirstLast keep layers float', async () => {
    const float = await logitsOf(m.bytes, m.test, 'cpu');
    for (const method of ['percentile', 'entropy'] as const) {
      const q = await quantize(m.bytes, { mode: 'int8', method, backend: 'cpu', calibration: m.calibration(20, 8) });
      expect(agreement(await logitsOf(q.model, m.test, 'cpu'), float)).toBeGreaterThanOrEqual(0.98);
    }
    const q = await quantize(m.bytes, { mode: 'int8', backend: 'cpu', calibration: m.calibration(20, 4), keepFirstLast: true, exclude: ['MaxPool'], activations: 'int8', symmetric: true });
    expect(q.report.keptFloat.map((k) => k.op).sort()).toEqual(['Conv', 'Gemm', 'MaxPool', 'MaxPool']);
    const { graph } = await importOnnx(q.model);
    // With symmetric int8 activations the Relus stay nodes (saturation at -128 is not a Relu).
    expect(graph.nodes.filter((n) => n.op === 'Relu').length).toBe(2);
    const zps = graph.nodes.filter((n) => n.op === 'QuantizeLinear').map((n) => graph.initializers[n.inputs[2]!]!);
    expect(zps.every((z) => z.dtype === 'int8' && z.data[0] === 0)).toBe(true);
    expect(agreement(await logitsOf(q.model, m.test, 'cpu'), float)).toBeGreaterThanOrEqual(0.99);
  }, 300_000);

  it('refuses bad options with InvalidArgumentError', async () => {
    await expect(quantize(m.bytes, { mode: 'int8', backend: 'cpu' })).rejects.toThrow(InvalidArgumentError);
    await expect(quantize(m.bytes, { mode: 'int7' as 'int8', backend: 'cpu' })).rejects.toThrow(/mode must be one of/);
    await expect(quantize(m.bytes, { mode: 'int4-weights', blockSize: 24, backend: 'cpu' })).rejects.toThrow(/blockSize/);
    await expect(quantize(m.bytes, { mode: 'int8', calibration: [{ image: m.test }], backend: 'cpu' })).rejects.toThrow(/has no 'input'/);
  });
});

describe('bad input: ops the quantizer does not handle', () => {
  it('keeps them float32, names them in the report, and the file still runs in onnxruntime-node and EdgeKit', async () => {
    const rng = new Rng(7);
    const t = (shape: number[], s = 0.3): HostTensor => ({ dtype: 'float32', shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(-s, s)) });
    // x [N, 1, 8, 8] -> Conv -> HardSwish -> Erf -> GlobalAveragePool -> Flatten -> Gemm -> y [N, 5]
    const g: Graph = {
      name: 'odd',
      inputs: [{ name: 'x', dtype: 'float32', shape: ['N', 1, 8, 8] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: ['N', 5] }],
      initializers: { w: t([6, 1, 3, 3]), b: t([6]), fw: t([5, 6]), fb: t([5]) },
      nodes: [
        { name: 'conv', op: 'Conv', domain: '', inputs: ['x', 'w', 'b'], outputs: ['c'], attrs: { pads: { type: 'ints', value: [1, 1, 1, 1] } } },
        { name: 'hswish', op: 'HardSwish', domain: '', inputs: ['c'], outputs: ['h'], attrs: {} },
        { name: 'erf', op: 'Erf', domain: '', inputs: ['h'], outputs: ['e'], attrs: {} },
        { name: 'gap', op: 'GlobalAveragePool', domain: '', inputs: ['e'], outputs: ['p'], attrs: {} },
        { name: 'flat', op: 'Flatten', domain: '', inputs: ['p'], outputs: ['f'], attrs: {} },
        { name: 'fc', op: 'Gemm', domain: '', inputs: ['f', 'fw', 'fb'], outputs: ['y'], attrs: { transB: { type: 'int', value: 1 } } },
      ],
      values: {},
    };
    const bytes = exportOnnx(g, { opset: 17 });
    const q = await quantize(bytes, { mode: 'int8', backend: 'cpu', calibration: m.calibration(20, 3).map((f) => ({ x: f.input })) });
    expect(q.report.keptFloat).toEqual([
      { node: 'hswish', op: 'HardSwish', reason: "mode 'int8' does not handle HardSwish" },
      { node: 'erf', op: 'Erf', reason: "mode 'int8' does not handle Erf" },
    ]);
    const out = (await importOnnx(q.model)).graph;
    const hs = out.nodes.find((n) => n.op === 'HardSwish')!;
    expect(out.values[hs.inputs[0]!]!.dtype).toBe('float32');
    expect(out.values[hs.outputs[0]!]!.dtype).toBe('float32');
    expect(out.nodes.some((n) => n.op === 'QuantizeLinear')).toBe(true);
    const x = m.test;
    const ort = (await runModelOrt(q.model, { x })).y!;
    for (const backend of ['cpu', 'webgpu'] as const) {
      const s = await import('../../sdk/node.js');
      const session = await s.InferenceSession.create(q.model, { backend });
      const y = (await session.run({ x: new s.Tensor('float32', x.data as Float32Array, x.shape) })).y!.toHost();
      let worst = 0;
      for (let i = 0; i < y.data.length; i++) worst = Math.max(worst, Math.abs(Number(y.data[i]) - Number(ort.data[i])));
      expect(worst).toBeLessThan(2e-2);
    }
  }, 300_000);
});

describe('CLI', () => {
  it('edgekit quantize reads .npy calibration, writes the model, and prints the report', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgekit-quantize-'));
    const calib = m.calibration(40, 1)[0]!.input;
    // A .npy (v1.0, '<f4', C order) of [40, 1, 8, 8]: forty examples of batch 1.
    const header = `{'descr': '<f4', 'fortran_order': False, 'shape': (40, 1, 8, 8), }`;
    const pad = 64 - ((10 + header.length + 1) % 64);
    const h = `${header}${' '.repeat(pad)}\n`;
    const npy = new Uint8Array(10 + h.length + calib.data.length * 4);
    npy.set([0x93, ...new TextEncoder().encode('NUMPY'), 1, 0, h.length & 255, h.length >> 8]);
    npy.set(new TextEncoder().encode(h), 10);
    npy.set(new Uint8Array((calib.data as Float32Array).buffer), 10 + h.length);
    writeFileSync(join(dir, 'calib.npy'), npy);
    expect(readNpy(npy).shape).toEqual([40, 1, 8, 8]);
    writeFileSync(join(dir, 'in.onnx'), m.bytes);
    const logs: string[] = [];
    const log = console.log;
    console.log = (...a: unknown[]) => void logs.push(a.join(' '));
    let code: number;
    try {
      code = await quantizeCommand([join(dir, 'in.onnx'), join(dir, 'out.onnx'), '--mode', 'int8', '--calibration', dir, '--samples', '30', '--backend', 'cpu', '--report', join(dir, 'r.json')]);
    } finally {
      console.log = log;
    }
    expect(code).toBe(0);
    const text = logs.join('\n');
    expect(text).toMatch(/mode int8: weights .* 30 calibration examples/);
    expect(text).toMatch(/Conv \/conv1\/Conv/);
    const { readFileSync } = await import('node:fs');
    const out = new Uint8Array(readFileSync(join(dir, 'out.onnx')));
    expect(JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8')).calibrationExamples).toBe(30);
    const float = await logitsOf(m.bytes, m.test, 'cpu');
    expect(agreement(await logitsOf(out, m.test, 'cpu'), float)).toBeGreaterThanOrEqual(0.99);
  }, 300_000);
});
