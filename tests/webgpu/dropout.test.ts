import { beforeAll, describe, expect, it } from 'vitest';
import { exportOnnx } from '../../importers/onnx/index.js';
import { tensorFromNumbers } from '../../runtime/ir/tensor.js';
import { InferenceSession, Tensor, UnsupportedOpError } from '../../sdk/node.js';
import { buildGraph, f32, node } from '../helpers/ir-builder.js';
import { gpuForTests } from '../helpers/webgpu-env.js';

/** Dropout's mask output on WebGPU: all true where nothing is dropped; random training-mode masks are refused at load. */

const model = (ratio: number, training: boolean) =>
  exportOnnx(
    buildGraph({
      inputs: [['x', 'float32', ['n', 5]]],
      initializers: { ratio: f32([ratio], []), training: tensorFromNumbers('bool', [], [training ? 1 : 0]) },
      nodes: [node('Dropout', ['x', 'ratio', 'training'], ['y', 'mask'])],
      outputs: ['y', 'mask'],
    }),
  );

beforeAll(async () => {
  await gpuForTests();
});

describe('Dropout on webgpu', () => {
  it.each([[0.4, false], [0, true]] as const)('ratio %s, training %s: data unchanged, mask all true, as on the CPU', async (ratio, training) => {
    const bytes = model(ratio, training);
    const x = new Tensor('float32', Float32Array.from({ length: 15 }, (_, i) => i - 7.5), [3, 5]);
    const [gpu, cpu] = await Promise.all([InferenceSession.create(bytes, { backend: 'webgpu' }), InferenceSession.create(bytes, { backend: 'cpu' })]);
    try {
      const a = await gpu.run({ x });
      const b = await cpu.run({ x });
      expect(Array.from(a.y!.data as Float32Array)).toEqual(Array.from(b.y!.data as Float32Array));
      expect(Array.from(a.mask!.data as Uint8Array)).toEqual(Array.from(b.mask!.data as Uint8Array));
      expect(Array.from(a.mask!.data as Uint8Array).every((v) => v === 1)).toBe(true);
    } finally {
      await Promise.all([gpu.release(), cpu.release()]);
    }
  });

  it('training mode with a ratio above 0 is refused at load, with the reason', async () => {
    const err = await InferenceSession.create(model(0.3, true), { backend: 'webgpu' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedOpError);
    expect((err as UnsupportedOpError).nodes[0]!.reason).toMatch(/training_mode=true and a ratio above 0/);
  });
});
