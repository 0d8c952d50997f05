import { describe, expect, it } from 'vitest';
import { useBrowserPage } from '../helpers/browser-page.js';
import { encodeModel } from '../helpers/onnx-model.js';
import { exportOnnx } from '../../importers/onnx/index.js';
import { attr, buildGraph, f32, node } from '../helpers/ir-builder.js';

// The built bundle's createWorker() in headless Chromium: a module Worker (dist/browser/worker.js) with WebGPU
// (SwiftShader), against a main-thread session on the same page. Needs `npm run build` (the test script's pretest).
describe('worker sessions in a browser module Worker', () => {
  const b = useBrowserPage();

  it('runs on WebGPU in the worker with the main thread’s results; transfer, errors, cancellation and kept GPU outputs', async () => {
    // A string, so vitest does not rewrite the page's dynamic import().
    const x = { dtype: 'float32' as const, shape: [65536], data: new Float32Array(65536) };
    const square = encodeModel({ nodes: [{ op: 'Mul', inputs: ['x', 'x'], outputs: ['y'] }], inputs: { x }, outputs: ['y'] });
    const rand = (shape: number[], seed: number) => f32(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(seed + i * 1.3) * 0.5), shape);
    const lstm = exportOnnx(
      buildGraph({
        inputs: [['audio', 'float32', ['time', 1, 3]], ['h0', 'float32', [1, 1, 4]], ['c0', 'float32', [1, 1, 4]]],
        initializers: { W: rand([1, 16, 3], 1), R: rand([1, 16, 4], 2), B: rand([1, 32], 3) },
        nodes: [node('LSTM', ['audio', 'W', 'R', 'B', '', 'h0', 'c0'], ['Y', 'hn', 'cn'], { hidden_size: attr(4) })],
        outputs: ['Y', 'hn', 'cn'],
      }),
    );
    const r = (await b.page.evaluate(
      `import('${b.origin}/tests/worker/browser-worker-page.js').then((m) => m.run('${b.origin}', ${JSON.stringify(Array.from(square))}, ${JSON.stringify(Array.from(lstm))}))`,
    )) as Record<string, unknown>;
    expect(r, b.log.join('\n')).toMatchObject({
      backend: 'webgpu',
      length: 3600,
      detached: true,
      err: 'true:ShapeError:SHAPE_MISMATCH',
      cancelled: true,
      kept: {
        remote: true,
        location: 'gpu-buffer',
        dims: [65536],
        x4: [1, 16, 81, 0.0625],
        afterDispose: 'true:TENSOR_DISPOSED',
        cpuOut: 'true:1,256,6561,0.00390625',
        streamLength: 4 * 2 * 4,
      },
    });
    expect((r.kept as { streamDiff: number }).streamDiff).toBeLessThan(1e-5);
    // Each round keeps two 256 KB outputs, so a leak adds 2 MB over rounds 1 to 5. Released buffers reach the pool
    // after the GPU work that used them, so a round may now and then allocate one more while one is still in
    // flight: allow at most one such buffer per round (1 MB), half of what a leak costs.
    const bytes = (r.kept as { liveBytes: number[] }).liveBytes;
    expect(bytes[4]! - bytes[0]!, `live GPU bytes after each load/keep/dispose/release round: ${bytes.join(', ')}`).toBeLessThan(4 * 65536 * 4);
    expect(r.maxDiff as number).toBeLessThan(1e-5);
    expect(r.gpuDispatches as number).toBeGreaterThan(0);
    const [pageProfile, workerProfile] = r.profiles as string[];
    expect(workerProfile).toBe(pageProfile);
  }, 180_000);
});
