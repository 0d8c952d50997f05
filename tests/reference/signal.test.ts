import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, ShapeError } from '../../runtime/errors.js';
import type { DType } from '../../runtime/ir/dtype.js';
import type { Attr, Dim } from '../../runtime/ir/graph.js';
import { tensorFromNumbers, type HostTensor } from '../../runtime/ir/tensor.js';
import { attr } from '../helpers/ir-builder.js';
import { compareWithOrt, inferNode } from '../helpers/ort-single-node.js';
import { randomTensor, Rng } from '../helpers/random.js';
import { int, nodeModel } from '../importer/model-builder.js';
import { checkAgainstOrt } from '../importer/ort-check.js';

/** Windows, DFT, STFT and MelWeightMatrix: inference and the CPU reference against onnxruntime-node (opset 17). */

const rng = new Rng(1717);
const x = (shape: Dim[] | undefined, dtype: DType = 'float32', value?: HostTensor) => ({ dtype, shape, value });
const i64s = (v: number) => tensorFromNumbers('int64', [], [v]);

async function expectOrt(op: string, attrs: Record<string, Attr>, inputs: (HostTensor | undefined)[], constants: number[] = [], opset = 17) {
  const what = `${op} ${JSON.stringify(attrs)} ${JSON.stringify(inputs.map((t) => t && [t.dtype, t.shape]))}`;
  expect(await compareWithOrt(op, attrs, inputs, { opset, rtol: 1e-4, atol: 1e-4, constants }), what).toEqual([]);
}

describe('signal inference', () => {
  it('shapes from constant scalars, symbols otherwise', () => {
    expect(inferNode('HannWindow', {}, [x([], 'int64', i64s(10))])[0]).toEqual({ dtype: 'float32', shape: [10] });
    expect(inferNode('HammingWindow', { output_datatype: attr(11) }, [x([], 'int32')])[0]).toEqual({ dtype: 'float64', shape: ['s0'] });
    expect(inferNode('DFT', { onesided: attr(1) }, [x(['B', 10, 1])])[0]!.shape).toEqual(['B', 6, 2]);
    expect(inferNode('DFT', {}, [x([2, 3, 7, 2]), x([], 'int64', i64s(9)), x([], 'int64', i64s(2))])[0]!.shape).toEqual([2, 3, 9, 2]);
    expect(inferNode('DFT', {}, [x([2, 3, 7, 2]), undefined, x([], 'int64')])[0]!.shape).toEqual([2, 's0', 's1', 2]);
    expect(inferNode('STFT', {}, [x([2, 64, 1]), x([], 'int64', i64s(8)), undefined, x([], 'int64', i64s(16))])[0]!.shape).toEqual([2, 7, 9, 2]);
    expect(inferNode('MelWeightMatrix', {}, [x([], 'int64', i64s(8)), x([], 'int64', i64s(64)), x([], 'int64', i64s(8000)), x([], 'float32'), x([], 'float32')])[0]!.shape).toEqual([33, 8]);
    expect(() => inferNode('DFT', {}, [x([2, 3, 3])])).toThrow(ShapeError);
    expect(() => inferNode('STFT', {}, [x([2, 64, 1]), x([], 'int64', i64s(8))])).toThrow(InvalidArgumentError);
    expect(() => inferNode('HannWindow', {}, [x([], 'int64', i64s(0))])).toThrow(InvalidArgumentError);
  });
});

describe('signal CPU kernels against onnxruntime', () => {
  it('windows, periodic and symmetric', async () => {
    for (const op of ['HannWindow', 'HammingWindow', 'BlackmanWindow']) {
      for (const periodic of [0, 1]) await expectOrt(op, { periodic: attr(periodic) }, [i64s(11)]);
    }
  });

  it('DFT-20: real and complex, forward and inverse, onesided, dft_length padding and truncation, other axes', async () => {
    await expectOrt('DFT', {}, [randomTensor(rng, 'float32', [3, 10, 1])], [], 20);
    await expectOrt('DFT', { inverse: attr(1) }, [randomTensor(rng, 'float32', [2, 7, 2])], [], 20);
    await expectOrt('DFT', { onesided: attr(1) }, [randomTensor(rng, 'float32', [2, 9, 1])], [], 20);
    await expectOrt('DFT', {}, [randomTensor(rng, 'float32', [2, 6, 2]), i64s(11)], [1], 20);
    await expectOrt('DFT', {}, [randomTensor(rng, 'float32', [2, 12, 1]), i64s(5)], [1], 20);
    await expectOrt('DFT', {}, [randomTensor(rng, 'float32', [2, 3, 8, 2]), undefined, i64s(1)], [2], 20);
    await expectOrt('DFT', {}, [randomTensor(rng, 'float32', [2, 5, 4, 1]), i64s(6), i64s(-3)], [1, 2], 20);
  });

  it('STFT with and without a window, real and complex', async () => {
    const sig = randomTensor(rng, 'float32', [2, 40, 1]);
    await expectOrt('STFT', {}, [sig, i64s(6), undefined, i64s(16)], [1, 3]);
    const w = tensorFromNumbers('float32', [12], Array.from({ length: 12 }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / 12)));
    await expectOrt('STFT', {}, [sig, i64s(5), w], [1]);
    await expectOrt('STFT', { onesided: attr(0) }, [randomTensor(rng, 'float32', [1, 30, 2]), i64s(7), undefined, i64s(8)], [1, 3]);
  });

  it('MelWeightMatrix', async () => {
    const f = (v: number) => tensorFromNumbers('float32', [], [v]);
    await expectOrt('MelWeightMatrix', {}, [i64s(8), i64s(64), i64s(8000), f(0), f(4000)], [0, 1, 2, 3, 4]);
    await expectOrt('MelWeightMatrix', {}, [i64s(20), i64s(512), i64s(16000), f(50), f(7600)], [0, 1, 2, 3, 4]);
  });
});

describe('DFT-17 (axis as an attribute) through the importer', () => {
  it('the attribute (default 1) becomes the axis input', async () => {
    const xIn = randomTensor(rng, 'float32', [2, 5, 6, 1]);
    for (const axis of [undefined, 2, -3]) {
      const { bytes, feeds } = nodeModel({
        op: 'DFT', opset: 17, attrs: axis === undefined ? [] : [int('axis', axis)],
        inputs: [{ name: 'x', value: xIn }],
        outputs: [{ name: 'y' }],
      });
      // Imported (DFT-20 form) and run on the CPU, and exported at opset 21 and run in onnxruntime again.
      const { problems } = await checkAgainstOrt(bytes, feeds, { rtol: 1e-4, atol: 1e-4 });
      expect(problems, `axis ${axis}`).toEqual([]);
    }
  });
});
