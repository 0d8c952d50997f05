import { describe, expect, it } from 'vitest';
import { importOnnx } from '../../importers/onnx/index.js';
import { DTypeError, InvalidArgumentError, ShapeError, UnsupportedOpError } from '../../runtime/errors.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr } from '../../runtime/ir/graph.js';
import { roundHalfEven } from '../../runtime/ir/ops/quantize.js';
import { tensorFromNumbers, tensorToNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { InferenceSession } from '../../sdk/node.js';
import { attr } from '../helpers/ir-builder.js';
import { compareWithOrt, inferNode, runCpuNode, singleNodeModel } from '../helpers/ort-single-node.js';
import { Rng } from '../helpers/random.js';

/**
 * Linear quantization ops on the CPU reference against onnxruntime-node (issue #11 §1): every attribute (axis,
 * block_size, output_dtype, conv geometry), every integer type, per-tensor / per-axis / blocked scales, ties and
 * saturation, and the typed errors for bad parameters.
 */

const EXACT = { rtol: 0, atol: 0 };
const RANGE: Record<string, [number, number]> = { int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535], int32: [-1000, 1000] };
const rng = new Rng(11);

const ints = (dtype: DType, shape: number[], lo = RANGE[dtype]![0], hi = RANGE[dtype]![1]) =>
  tensorFromNumbers(dtype, shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.int(lo, hi)));
const floats = (shape: number[], lo = -1, hi = 1, dtype: DType = 'float32') =>
  tensorFromNumbers(dtype, shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(lo, hi)));
const scales = (shape: number[], lo = 0.002, hi = 0.05, dtype: DType = 'float32') => floats(shape, lo, hi, dtype);
const a = (v: number | number[] | string) => attr(v);

describe('roundHalfEven', () => {
  it('rounds ties to the even neighbour, like numpy.rint', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, -3.5001, 7].map(roundHalfEven)).toEqual([0, 2, 2, -0, -2, -2, 2, -4, 7]);
  });
});

describe('QuantizeLinear matches onnxruntime', () => {
  const cases: [string, number[], number[], Record<string, Attr>, DType | undefined][] = [
    ['per tensor, no zero point (uint8)', [3, 7], [], {}, undefined],
    ['per tensor uint8', [2, 3, 5], [], {}, 'uint8'],
    ['per tensor int8', [17], [], {}, 'int8'],
    ['per axis 1 (default)', [2, 4, 3], [4], {}, 'int8'],
    ['per axis 0', [5, 3], [5], { axis: a(0) }, 'uint8'],
    ['per axis -1', [2, 3, 6], [6], { axis: a(-1) }, 'int8'],
    ['int16', [4, 5], [5], {}, 'int16'],
    ['uint16', [4, 5], [], {}, 'uint16'],
    ['blocked axis 1, block 2', [3, 4], [3, 2], { axis: a(1), block_size: a(2) }, 'int8'],
    ['blocked axis 0, block 3, ragged last block', [7, 2], [3, 2], { axis: a(0), block_size: a(3) }, 'uint8'],
    ['blocked axis -1 of rank 3', [2, 3, 8], [2, 3, 2], { axis: a(-1), block_size: a(4) }, 'int16'],
  ];
  for (const [name, xs, ss, attrs, zdt] of cases) {
    it(name, async () => {
      const x = floats(xs, -3, 3);
      const s = scales(ss);
      const z = zdt ? ints(zdt, ss, Math.max(RANGE[zdt]![0], -20), Math.min(RANGE[zdt]![1], 20)) : undefined;
      expect(await compareWithOrt('QuantizeLinear', attrs, z ? [x, s, z] : [x, s], EXACT)).toEqual([]);
    });
  }

  it('ties round half to even and out-of-range values saturate, for every output type', async () => {
    const values = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, 127.5, -128.5, -129.5, 1e6, -1e6, 254.5, 255.5, 40000.5, 65535.5];
    const x = tensorFromNumbers('float32', [values.length], values);
    for (const dt of ['int8', 'uint8', 'int16', 'uint16'] as DType[]) {
      for (const zp of [0, 3]) {
        const inputs = [x, tensorFromNumbers('float32', [], [1]), tensorFromNumbers(dt, [], [zp])];
        expect(await compareWithOrt('QuantizeLinear', {}, inputs, EXACT), `${dt} zp ${zp}`).toEqual([]);
      }
    }
  });

  it('output_dtype without a zero point (opset 21)', async () => {
    for (const [code, dt] of [[3, 'int8'], [5, 'int16'], [4, 'uint16'], [2, 'uint8']] as const) {
      const x = floats([4, 6], -2, 2);
      const node = { output_dtype: a(code) };
      const inputs = [x, scales([])];
      expect(await compareWithOrt('QuantizeLinear', node, inputs, EXACT)).toEqual([]);
      expect(runCpuNode('QuantizeLinear', node, inputs)[0]!.dtype).toBe(dt);
    }
  });

  it('float16 input and scale', async () => {
    const x = floats([3, 8], -2, 2, 'float16');
    expect(await compareWithOrt('QuantizeLinear', {}, [x, scales([], 0.01, 0.02, 'float16'), ints('int8', [], -5, 5)], EXACT)).toEqual([]);
  });

  it('older opsets import unchanged (10: per tensor, 13 and 19: per axis)', async () => {
    const x = floats([3, 4], -2, 2);
    expect(await compareWithOrt('QuantizeLinear', {}, [x, scales([]), ints('uint8', [])], { ...EXACT, opset: 10 })).toEqual([]);
    expect(await compareWithOrt('QuantizeLinear', { axis: a(0) }, [x, scales([3]), ints('int8', [3])], { ...EXACT, opset: 13 })).toEqual([]);
    expect(await compareWithOrt('QuantizeLinear', { saturate: a(1) }, [x, scales([4]), ints('int8', [4])], { ...EXACT, opset: 19 })).toEqual([]);
  });
});

describe('DequantizeLinear matches onnxruntime', () => {
  for (const dt of ['int8', 'uint8', 'int16', 'uint16', 'int32'] as DType[]) {
    it(`${dt}: per tensor, per axis, blocked`, async () => {
      const x = ints(dt, [4, 6]);
      const zp = (shape: number[]) => (dt === 'int32' ? undefined : ints(dt, shape, Math.max(RANGE[dt]![0], -30), Math.min(RANGE[dt]![1], 30)));
      const run = async (attrs: Record<string, Attr>, ss: number[]) => {
        const z = zp(ss);
        return compareWithOrt('DequantizeLinear', attrs, z ? [x, scales(ss), z] : [x, scales(ss)], { rtol: 1e-6, atol: 0 });
      };
      expect(await run({}, [])).toEqual([]);
      expect(await run({ axis: a(0) }, [4])).toEqual([]);
      expect(await run({}, [6])).toEqual([]);
      if (dt !== 'int32') {
        expect(await run({ axis: a(1), block_size: a(4) }, [4, 2])).toEqual([]);
        expect(await run({ axis: a(0), block_size: a(2) }, [2, 6])).toEqual([]);
      }
    });
  }

  it('float16 scale gives a float16 output; opset 10 and 13 forms', async () => {
    const x = ints('int8', [3, 5]);
    expect(await compareWithOrt('DequantizeLinear', {}, [x, scales([], 0.01, 0.1, 'float16'), ints('int8', [], -3, 3)], { rtol: 1e-3, atol: 0 })).toEqual([]);
    expect(await compareWithOrt('DequantizeLinear', {}, [ints('uint8', [7]), scales([]), ints('uint8', [])], { rtol: 1e-6, atol: 0, opset: 10 })).toEqual([]);
    expect(await compareWithOrt('DequantizeLinear', { axis: a(0) }, [x, scales([3]), ints('int8', [3])], { rtol: 1e-6, atol: 0, opset: 13 })).toEqual([]);
  });
});

describe('DynamicQuantizeLinear matches onnxruntime', () => {
  const inputs: [string, HostTensor][] = [
    ['mixed signs', floats([3, 17], -4, 6)],
    ['all positive (min clamps to 0)', floats([40], 0.5, 3)],
    ['all negative (max clamps to 0)', floats([2, 9], -5, -0.1)],
    ['all zero', tensorFromNumbers('float32', [6], [0, 0, 0, 0, 0, 0])],
    ['one element', tensorFromNumbers('float32', [1], [-2.5])],
  ];
  for (const [name, x] of inputs) {
    it(name, async () => {
      expect(await compareWithOrt('DynamicQuantizeLinear', {}, [x], { outputs: 3, rtol: 1e-6, atol: 0 })).toEqual([]);
    });
  }
});

describe('MatMulInteger matches onnxruntime', () => {
  const cases: [string, DType, DType, number[], number[], 'none' | 'scalar' | 'vector'][] = [
    ['uint8 x uint8, no zero points', 'uint8', 'uint8', [3, 5], [5, 4], 'none'],
    ['uint8 x uint8, scalar zero points', 'uint8', 'uint8', [7, 13], [13, 9], 'scalar'],
    ['int8 x int8', 'int8', 'int8', [4, 16], [16, 6], 'scalar'],
    ['uint8 x int8, per-column b zero point', 'uint8', 'int8', [5, 8], [8, 7], 'vector'],
    ['batched 3-D x 2-D', 'uint8', 'uint8', [2, 3, 6], [6, 5], 'scalar'],
    ['batched broadcast', 'int8', 'int8', [2, 1, 3, 4], [3, 4, 2], 'none'],
  ];
  for (const [name, at, bt, as, bs, zps] of cases) {
    it(name, async () => {
      const A = ints(at, as);
      const B = ints(bt, bs);
      const n = bs[bs.length - 1]!;
      const zA = zps === 'none' ? undefined : ints(at, [], at === 'int8' ? -10 : 100, at === 'int8' ? 10 : 140);
      const zB = zps === 'none' ? undefined : ints(bt, zps === 'vector' ? [n] : [], bt === 'int8' ? -10 : 100, bt === 'int8' ? 10 : 140);
      expect(await compareWithOrt('MatMulInteger', {}, zA ? [A, B, zA, zB] : [A, B], EXACT)).toEqual([]);
    });
  }

  it('per-row a zero point, checked on the CPU against the definition (onnxruntime requires a scalar)', () => {
    const A = ints('uint8', [3, 4]);
    const B = ints('uint8', [4, 2]);
    const zA = ints('uint8', [3]);
    const y = tensorToNumbers(runCpuNode('MatMulInteger', {}, [A, B, zA])[0]!);
    const [av, bv, zv] = [A, B, zA].map(tensorToNumbers) as Float64Array[];
    for (let m = 0; m < 3; m++) for (let n = 0; n < 2; n++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += (av![m * 4 + k]! - zv![m]!) * bv![k * 2 + n]!;
      expect(y[m * 2 + n]).toBe(s);
    }
  });
});

describe('ConvInteger matches onnxruntime', () => {
  const cases: [string, number[], number[], Record<string, Attr>][] = [
    ['1x1', [1, 3, 4, 4], [2, 3, 1, 1], {}],
    ['3x3 pads', [2, 2, 5, 6], [4, 2, 3, 3], { pads: a([1, 1, 1, 1]) }],
    ['strides and dilations', [1, 3, 9, 8], [2, 3, 3, 2], { strides: a([2, 1]), dilations: a([1, 2]) }],
    ['groups', [1, 4, 5, 5], [6, 2, 3, 3], { group: a(2), pads: a([0, 1, 2, 1]) }],
    ['auto_pad SAME_UPPER', [1, 2, 6, 7], [3, 2, 3, 3], { auto_pad: a('SAME_UPPER'), strides: a([2, 2]) }],
    ['1-D', [2, 3, 11], [4, 3, 3], { pads: a([2, 1]) }],
  ];
  for (const [name, xs, ws, attrs] of cases) {
    it(name, async () => {
      const x = ints('uint8', xs);
      const w = ints('uint8', ws);
      expect(await compareWithOrt('ConvInteger', attrs, [x, w, ints('uint8', [], 120, 135), ints('uint8', [], 120, 135)], EXACT)).toEqual([]);
      expect(await compareWithOrt('ConvInteger', attrs, [x, w], EXACT)).toEqual([]);
    });
  }
  it('int8 operands', async () => {
    const x = ints('int8', [1, 2, 4, 4]);
    const w = ints('int8', [3, 2, 3, 3]);
    expect(await compareWithOrt('ConvInteger', { pads: a([1, 1, 1, 1]) }, [x, w, ints('int8', [], -3, 3), ints('int8', [], -4, 4)], EXACT)).toEqual([]);
  });
  it('a per-channel w zero point equals per-tensor runs channel by channel (onnxruntime takes only a scalar)', () => {
    const x = ints('uint8', [2, 2, 5, 5]);
    const w = ints('uint8', [3, 2, 3, 3]);
    const xz = ints('uint8', [], 100, 140);
    const wz = ints('uint8', [3], 100, 140);
    const attrs = { strides: a([2, 1]) };
    const out = runCpuNode('ConvInteger', attrs, [x, w, xz, wz])[0]!;
    expect(out.shape).toEqual([2, 3, 2, 3]);
    const y = tensorToNumbers(out);
    const P = 2 * 3;
    for (let m = 0; m < 3; m++) {
      const ym = tensorToNumbers(runCpuNode('ConvInteger', attrs, [x, w, xz, tensorFromNumbers('uint8', [], [tensorToNumbers(wz)[m]!])])[0]!);
      for (let n = 0; n < 2; n++) for (let p = 0; p < P; p++) expect(y[(n * 3 + m) * P + p]).toBe(ym[(n * 3 + m) * P + p]);
    }
  });
});

describe('QLinearMatMul matches onnxruntime', () => {
  const cases: [string, DType, DType, number[], number[], boolean][] = [
    ['uint8 2-D', 'uint8', 'uint8', [2, 4], [4, 3], false],
    ['int8 2-D', 'int8', 'int8', [5, 16], [16, 7], false],
    ['uint8 x int8, per-column b', 'uint8', 'int8', [3, 8], [8, 5], true],
    ['3-D batched', 'uint8', 'uint8', [2, 3, 6], [2, 6, 4], false],
    ['odd sizes', 'int8', 'int8', [7, 33], [33, 11], true],
  ];
  for (const [name, at, bt, as, bs, perCol] of cases) {
    it(name, async () => {
      const n = bs[bs.length - 1]!;
      const zp = (dt: DType, shape: number[]) => ints(dt, shape, dt === 'int8' ? -5 : 120, dt === 'int8' ? 5 : 135);
      const inputs = [
        ints(at, as), scales([]), zp(at, []),
        ints(bt, bs), scales(perCol ? [n] : []), zp(bt, perCol ? [n] : []),
        scales([], 0.05, 0.2), zp(at, []),
      ];
      // onnxruntime requantizes in float32 with its own operation order: a tie can land one step away.
      expect(await compareWithOrt('QLinearMatMul', {}, inputs, { rtol: 0, atol: 1 })).toEqual([]);
    });
  }
});

describe('QLinearConv matches onnxruntime', () => {
  const cases: [string, DType, number[], number[], Record<string, Attr>, boolean, boolean][] = [
    ['uint8 3x3 pads with bias', 'uint8', [1, 3, 6, 6], [4, 3, 3, 3], { pads: a([1, 1, 1, 1]) }, true, false],
    ['int8 weights per channel', 'int8', [1, 2, 5, 5], [3, 2, 3, 3], { strides: a([2, 2]) }, true, true],
    ['grouped, no bias', 'uint8', [2, 4, 5, 4], [4, 2, 2, 2], { group: a(2), dilations: a([2, 1]) }, false, false],
    ['depthwise', 'int8', [1, 3, 7, 7], [3, 1, 3, 3], { group: a(3), pads: a([1, 1, 1, 1]) }, true, true],
  ];
  for (const [name, dt, xs, ws, attrs, bias, perChannel] of cases) {
    it(name, async () => {
      const m = ws[0]!;
      const zp = (shape: number[]) => (dt === 'int8' ? tensorFromNumbers('int8', shape, new Array(shape.reduce((p, q) => p * q, 1)).fill(0)) : ints('uint8', shape, 120, 135));
      const inputs = [
        ints(dt, xs), scales([]), zp([]),
        ints(dt, ws), scales(perChannel ? [m] : []), zp(perChannel ? [m] : []),
        scales([], 0.1, 0.4), zp([]),
        ...(bias ? [ints('int32', [m], -500, 500)] : []),
      ];
      expect(await compareWithOrt('QLinearConv', attrs, inputs, { rtol: 0, atol: 1 })).toEqual([]);
    });
  }
});

describe('bad quantization parameters get typed errors', () => {
  const x = { dtype: 'float32' as DType, shape: [2, 4] };
  const sc = (v: number[], shape = [v.length]) => ({ dtype: 'float32' as DType, shape, value: tensorFromNumbers('float32', shape, v) });
  it('a zero, negative or NaN scale', () => {
    for (const v of [0, -0.5, NaN]) {
      expect(() => inferNode('QuantizeLinear', {}, [x, sc([v], [])])).toThrow(InvalidArgumentError);
      expect(() => inferNode('DequantizeLinear', {}, [{ dtype: 'int8', shape: [2] }, sc([0.1, v])], 1)).toThrow(/positive/);
    }
  });
  it('an axis that mismatches the scale length, or out of range', () => {
    expect(() => inferNode('QuantizeLinear', {}, [x, sc([1, 1, 1])])).toThrow(ShapeError);
    expect(() => inferNode('QuantizeLinear', { axis: a(2) }, [x, sc([1, 1])])).toThrow(InvalidArgumentError);
  });
  it('a blocked scale that does not match ceil(D / block_size), and a zero point of another shape', () => {
    expect(() => inferNode('QuantizeLinear', { axis: a(1), block_size: a(3) }, [x, sc([1, 1], [2, 1])])).toThrow(/ceil/);
    expect(() => inferNode('QuantizeLinear', { block_size: a(-1) }, [x, sc([1], [])])).toThrow(InvalidArgumentError);
    expect(() => inferNode('QuantizeLinear', {}, [x, sc([1, 1, 1, 1]), { dtype: 'int8', shape: [2] }])).toThrow(/zero point shape/);
  });
  it('float8 outputs are refused as unsupported (int4/uint4 are held as int8/uint8); wrong element types as dtype errors', () => {
    for (const code of [17, 19, 23]) {
      expect(() => inferNode('QuantizeLinear', { output_dtype: a(code) }, [x, sc([1], [])])).toThrow(UnsupportedOpError);
    }
    expect(inferNode('QuantizeLinear', { output_dtype: a(22) }, [x, sc([1], [])])[0]!.dtype).toBe('int8');
    expect(inferNode('QuantizeLinear', { output_dtype: a(21) }, [x, sc([1], [])])[0]!.dtype).toBe('uint8');
    expect(() => inferNode('DequantizeLinear', {}, [{ dtype: 'int64', shape: [2] }, sc([1], [])])).toThrow(UnsupportedOpError);
    expect(() => inferNode('MatMulInteger', {}, [{ dtype: 'int16', shape: [2, 2] }, { dtype: 'int8', shape: [2, 2] }])).toThrow(DTypeError);
    expect(() => inferNode('QLinearConv', {}, [
      { dtype: 'uint8', shape: [1, 1, 3, 3] }, sc([1], []), { dtype: 'uint8', shape: [] },
      { dtype: 'uint8', shape: [2, 1, 1, 1] }, sc([1, 1, 1], [3]), { dtype: 'uint8', shape: [] },
      sc([1], []), { dtype: 'uint8', shape: [] },
    ])).toThrow(ShapeError);
  });
  it('at load: a constant zero scale, a per-axis scale of the wrong length, a blocked scale of the wrong shape', async () => {
    const x = tensorFromNumbers('float32', [2, 4], [1, 2, 3, 4, 5, 6, 7, 8]);
    const load = (attrs: Record<string, Attr>, s: HostTensor) =>
      InferenceSession.create(singleNodeModel('QuantizeLinear', attrs, [x, s, tensorFromNumbers('int8', s.shape, new Array(s.data.length).fill(0))], { constants: [1, 2] }), { backend: 'cpu' });
    await expect(load({}, tensorFromNumbers('float32', [], [0]))).rejects.toThrow(InvalidArgumentError);
    await expect(load({}, tensorFromNumbers('float32', [3], [1, 1, 1]))).rejects.toThrow(ShapeError);
    await expect(load({ block_size: a(3) }, tensorFromNumbers('float32', [2, 1], [1, 1]))).rejects.toThrow(ShapeError);
    const ok = await load({ block_size: a(3) }, tensorFromNumbers('float32', [2, 2], [1, 1, 1, 1]));
    expect(ok.inputNames).toEqual(['in0']);
    await ok.release();
  });

  it('the importer refuses an opset-10 QuantizeLinear carrying an axis', async () => {
    const bytes = singleNodeModel('QuantizeLinear', { axis: a(0) }, [tensorFromNumbers('float32', [2], [1, 2]), tensorFromNumbers('float32', [], [1])], { opset: 10 });
    await expect(importOnnx(bytes)).rejects.toThrow(UnsupportedOpError);
  });
});
