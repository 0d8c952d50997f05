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
    // Without a size, a crop keeps its own size: the centre square of a landscape or portrait frame, or a rectangle.
    expect(Tensor.fromImage(frame(640, 480), { crop: 'center' }).dims).toEqual([1, 3, 480, 480]);
    expect(Tensor.fromImage(frame(480, 640), { crop: 'center', layout: 'NHWC' }).dims).toEqual([1, 480, 480, 3]);
    expect(Tensor.fromImage(frame(640, 480), { crop: { x: 600, y: 0, width: 40, height: 10 } }).dims).toEqual([1, 3, 10, 40]);
    expect(Tensor.fromImage(frame(640, 480), { crop: 'center', size: 64 }).dims).toEqual([1, 3, 64, 64]);
  });

  it('resolves the centre crop to whole pixels, and refuses crops outside the source or not in whole pixels', () => {
    const crop = (w: number, h: number, c: unknown) => Tensor.fromImage(frame(w, h), { crop: c as never }).pendingImage()!.params.crop;
    expect(crop(641, 480, 'center')).toEqual({ x: 80, y: 0, width: 480, height: 480 });
    expect(crop(480, 643, 'center')).toEqual({ x: 0, y: 81, width: 480, height: 480 });
    expect(crop(20, 10, undefined)).toEqual({ x: 0, y: 0, width: 20, height: 10 });
    const bad = ['centre', null, {}, { x: 0, y: 0, width: 0, height: 4 }, { x: -1, y: 0, width: 4, height: 4 }, { x: 0.5, y: 0, width: 4, height: 4 },
      { x: 17, y: 0, width: 4, height: 4 }, { x: 0, y: 7, width: 4, height: 4 }, { x: 0, y: 0, width: 4, height: Number.NaN }];
    for (const c of bad) expect(() => crop(20, 10, c), JSON.stringify(c)).toThrow(/crop must be 'center' or \{ x, y, width, height \}/);
    expect(() => crop(20, 10, { x: 16, y: 6, width: 4, height: 4 })).not.toThrow();
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
