import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, ShapeError, UnsupportedOpError } from '../../runtime/errors.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession } from '../../sdk/node.js';
import { expectMatches, fourBitCases, gatherBlockCases, quantCases } from '../helpers/quant-contrib-cases.js';
import { tensorProto } from '../helpers/ort-single-node.js';
import { runModelCpu, runModelOrt } from '../helpers/run-model.js';
import { int, model, vi } from '../importer/model-builder.js';

/**
 * The quantized com.microsoft ops (issue #11 §1) on the CPU reference through InferenceSession.create(bytes,
 * { backend: 'cpu' }), each case against onnxruntime-node: MatMulNBits over bits, block sizes, ragged K, zero point
 * forms and bias; QLinearAdd/Mul/Sigmoid/LeakyRelu/AveragePool/GlobalAveragePool/Concat, MatMulIntegerToFloat and
 * DynamicQuantizeMatMul over types and attributes; int4/uint4 QuantizeLinear and DequantizeLinear. Then the typed
 * load-time errors of bad quantization parameters.
 */

describe('quantized com.microsoft ops on the CPU vs onnxruntime-node', () => {
  for (const c of quantCases()) {
    it(c.name, async () => {
      const [got, want] = [await runModelCpu(c.bytes, c.feeds), await runModelOrt(c.bytes, c.feeds)];
      expect(Object.keys(got)).toEqual(Object.keys(want));
      for (const k of Object.keys(want)) expectMatches(got[k] as HostTensor, want[k]!, c, `${c.name} ${k}`);
    });
  }
});

describe('int4 / uint4 QuantizeLinear, DequantizeLinear and GatherBlockQuantized on the CPU vs onnxruntime-node', () => {
  for (const c of [...fourBitCases(), ...gatherBlockCases()]) {
    it(c.name, async () => {
      const [got, want] = [await runModelCpu(c.bytes, c.feeds), await runModelOrt(c.bytes, c.feeds)];
      for (const k of Object.keys(want)) expectMatches(got[k] as HostTensor, want[k]!, c, `${c.name} ${k}`);
    });
  }
});

describe('bad quantization parameters are typed errors at load', () => {
  const MS = 'com.microsoft';
  /** A MatMulNBits model (K=32, N=2) with the given attributes and initializers. */
  const nbits = (attrs: { bits?: number; block?: number }, scales: number[], zp?: HostTensor, gIdx = false) =>
    model({
      opset: 21,
      extraOpsets: [{ domain: MS, version: 1 }],
      nodes: [{
        op: 'MatMulNBits', domain: MS, inputs: ['A', 'B', 's', zp ? 'z' : '', ...(gIdx ? ['g'] : [])], outputs: ['Y'],
        attrs: [int('K', 32), int('N', 2), int('bits', attrs.bits ?? 4), int('block_size', attrs.block ?? 32)],
      }],
      inputs: [vi('A', 1, [1, 32])],
      outputs: [vi('Y', 1)],
      initializers: [
        tensorProto('B', tensorFromNumbers('uint8', [2, 1, ((attrs.block ?? 32) * (attrs.bits ?? 4)) / 8], new Uint8Array(((attrs.block ?? 32) * (attrs.bits ?? 4)) / 4))),
        tensorProto('s', tensorFromNumbers('float32', [scales.length], scales)),
        ...(zp ? [tensorProto('z', zp)] : []),
        ...(gIdx ? [tensorProto('g', tensorFromNumbers('int32', [32], new Int32Array(32)))] : []),
      ],
    });
  const load = (bytes: Uint8Array) => InferenceSession.create(bytes, { backend: 'cpu' });

  it('a well-formed MatMulNBits model loads', async () => {
    await expect(load(nbits({}, [0.1, 0.2]))).resolves.toBeDefined();
  });
  it('a zero or negative scale', async () => {
    await expect(load(nbits({}, [0.1, 0]))).rejects.toThrow(InvalidArgumentError);
    await expect(load(nbits({}, [-0.1, 0.2]))).rejects.toThrow(/positive/);
  });
  it('a zero point outside the code range', async () => {
    await expect(load(nbits({}, [0.1, 0.2], tensorFromNumbers('float32', [2], [3, 16])))).rejects.toThrow(/outside the 4-bit code range/);
    await expect(load(nbits({}, [0.1, 0.2], tensorFromNumbers('float32', [2], [-1, 3])))).rejects.toThrow(InvalidArgumentError);
  });
  it('scales or zero points whose length mismatches N x k_blocks', async () => {
    await expect(load(nbits({}, [0.1, 0.2, 0.3]))).rejects.toThrow(ShapeError);
    await expect(load(nbits({}, [0.1, 0.2], tensorFromNumbers('uint8', [3], [1, 2, 3])))).rejects.toThrow(ShapeError);
  });
  it('a 4-bit QuantizeLinear whose zero point is outside the 4-bit range', async () => {
    const q = (zp: number) =>
      model({
        opset: 21,
        nodes: [{ op: 'QuantizeLinear', inputs: ['x', 's', 'z'], outputs: ['y'], attrs: [int('output_dtype', 22)] }],
        inputs: [vi('x', 1, [4])],
        outputs: [vi('y', 3)],
        initializers: [tensorProto('s', tensorFromNumbers('float32', [], [0.1])), tensorProto('z', tensorFromNumbers('int8', [], [zp]))],
      });
    await expect(load(q(3))).resolves.toBeDefined();
    await expect(load(q(9))).rejects.toThrow(/outside the 4-bit range \[-8, 7\]/);
  });
  it('later-opset attributes EdgeKit does not implement are refused by name', async () => {
    const dq = model({
      opset: 23,
      irVersion: 10,
      nodes: [{ op: 'DequantizeLinear', inputs: ['x', 's'], outputs: ['y'], attrs: [int('output_dtype', 10)] }],
      inputs: [vi('x', 3, [4])],
      outputs: [vi('y', 10)],
      initializers: [tensorProto('s', tensorFromNumbers('float32', [], [0.1]))],
    });
    await expect(load(dq)).rejects.toThrow(/output_dtype/);
  });
  it('a block_size that is not a power of two from 16 to 256, bits other than 4 and 8, and g_idx', async () => {
    await expect(load(nbits({ block: 24 }, [0.1, 0.2]))).rejects.toThrow(/power of two/);
    await expect(load(nbits({ block: 8 }, [0.1, 0.2]))).rejects.toThrow(InvalidArgumentError);
    await expect(load(nbits({ bits: 2 }, [0.1, 0.2]))).rejects.toThrow(UnsupportedOpError);
    await expect(load(nbits({}, [0.1, 0.2], undefined, true))).rejects.toThrow(/g_idx/);
  });
});
