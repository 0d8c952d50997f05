import { describe, expect, it } from 'vitest';
import { DisposedTensorError, DTypeError, ShapeError, Tensor } from '../../sdk/node.js';

describe('Tensor', () => {
  it('accepts onnxruntime-web constructor forms', () => {
    const a = new Tensor('float32', new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    expect(a.type).toBe('float32');
    expect(a.dims).toEqual([2, 3]);
    expect(a.size).toBe(6);
    const b = new Tensor(new Int32Array([1, 2, 3]));
    expect(b.type).toBe('int32');
    expect(b.dims).toEqual([3]);
    const c = new Tensor('int64', [1, 2], [2]);
    expect(c.data).toEqual(new BigInt64Array([1n, 2n]));
    const d = new Tensor('bool', [true, false]);
    expect(d.data).toEqual(new Uint8Array([1, 0]));
    expect(new Tensor(new BigInt64Array(2), [1, 2]).type).toBe('int64');
  });

  it('rejects mismatched data and dims with typed errors', () => {
    expect(() => new Tensor('float32', new Float32Array(5), [2, 3])).toThrow(ShapeError);
    expect(() => new Tensor('float32', new Int32Array(6), [2, 3])).toThrow(DTypeError);
    expect(() => new Tensor('float16', [1, 2])).toThrow(DTypeError);
    expect(() => new Tensor('nope' as never, new Float32Array(1))).toThrow(DTypeError);
    expect(() => new Tensor('float32', new Float32Array(1), [-1])).toThrow(ShapeError);
  });

  it('dispose is idempotent, data access after it throws, and `using` disposes', () => {
    const t = new Tensor('float32', new Float32Array(4));
    t.dispose();
    t.dispose();
    expect(t.disposed).toBe(true);
    expect(() => t.data).toThrow(DisposedTensorError);
    let escaped: Tensor;
    {
      using u = new Tensor('float32', new Float32Array(1));
      escaped = u;
    }
    expect(escaped.disposed).toBe(true);
  });
});

describe('errors', () => {
  it('every error class names itself explicitly (minifiers rename classes) and crosses a worker boundary intact', async () => {
    const errors = await import('../../runtime/errors.js');
    const samples = [
      new errors.ModelFormatError('m'), new errors.InvalidGraphError('g'), new errors.UnsupportedOpError([{ op: 'X', domain: '', opset: 13, node: 'n' }]),
      new errors.ShapeError('s'), new errors.DTypeError('d'), new errors.InvalidArgumentError('a'), new errors.AllocationLimitError('l'),
      new errors.OutOfMemoryError('o'), new errors.DisposedTensorError(), new errors.SessionReleasedError(),
      new errors.DeviceError('DEVICE_LOST', 'lost'), new errors.InternalError('i'),
    ];
    for (const e of samples) {
      expect(e.name).toBe(e.constructor.name);
      const back = errors.errorFromPlain(JSON.parse(JSON.stringify(errors.errorToPlain(e))));
      expect(back).toBeInstanceOf(e.constructor);
      expect(back).toBeInstanceOf(errors.EdgeKitError);
      expect((back as errors.EdgeKitError).code).toBe(e.code);
      expect(back.message).toBe(e.message);
    }
  });
});
