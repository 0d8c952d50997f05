import { describe, expect, it } from 'vitest';
import { DisposedTensorError, InvalidArgumentError } from '../../runtime/errors.js';
import { InferenceSession, Tensor } from '../../sdk/node.js';
import { encodeModel } from '../helpers/onnx-model.js';
import { gpuForTests } from '../helpers/webgpu-env.js';

// Tensor.fromImage's options and errors through the public API, in Node (the conversion itself needs a browser's
// image sources and is tested in headless Chromium: tests/worker/browser-image.test.ts).
const frame = (width: number, height: number) => ({ width, height }) as unknown as ImageBitmap;

describe('Tensor.fromImage (options and errors)', () => {
  it('describes the tensor it will be: float32, NCHW or NHWC, at the given or the source size', () => {
    expect(Tensor.fromImage(frame(640, 480), { size: 224 }).dims).toEqual([1, 3, 224, 224]);
    expect(Tensor.fromImage(frame(640, 480), { size: [120, 160], layout: 'NHWC' }).dims).toEqual([1, 120, 160, 3]);
    const t = Tensor.fromImage(frame(640, 480));
    expect([t.type, t.location, [...t.dims], t.size]).toEqual(['float32', 'image', [1, 3, 480, 640], 3 * 480 * 640]);
    // A VideoFrame's display size is what WebGPU copies.
    expect(Tensor.fromImage({ displayWidth: 32, displayHeight: 16, codedWidth: 48, codedHeight: 16 } as unknown as VideoFrame).dims).toEqual([1, 3, 16, 32]);
  });

  it('refuses bad options, empty sources, and reading data before a run', () => {
    const bad = [{ size: 0 }, { size: [2.5, 3] }, { layout: 'CHW' }, { mean: [1, 2] }, { std: 0 }, { std: [1, Number.NaN, 1] }];
    for (const o of bad) expect(() => Tensor.fromImage(frame(8, 8), o as never), JSON.stringify(o)).toThrow(InvalidArgumentError);
    expect(() => Tensor.fromImage(frame(0, 0))).toThrow(InvalidArgumentError);
    expect(() => Tensor.fromImage(null as never)).toThrow(InvalidArgumentError);
    const t = Tensor.fromImage(frame(8, 8));
    expect(() => t.data).toThrow(InvalidArgumentError);
    t.dispose();
    expect(t.disposed).toBe(true);
    expect(() => t.data).toThrow(DisposedTensorError);
  });

  it('a source WebGPU cannot read is a typed error from run, and the session stays usable', async () => {
    await gpuForTests();
    const x = { dtype: 'float32' as const, shape: [1, 3, 4, 4], data: new Float32Array(48) };
    const s = await InferenceSession.create(encodeModel({ nodes: [{ op: 'Neg', inputs: ['x'], outputs: ['y'] }], inputs: { x }, outputs: ['y'] }), { backend: 'webgpu' });
    await expect(s.run({ x: Tensor.fromImage(frame(4, 4)) })).rejects.toBeInstanceOf(InvalidArgumentError);
    const y = (await s.run({ x: new Tensor('float32', new Float32Array(48).fill(2), [1, 3, 4, 4]) })).y!;
    expect((y.data as Float32Array)[0]).toBe(-2);
    await s.release();
  });
});
