import { describe, expect, it } from 'vitest';
import { useBrowserPage } from '../helpers/browser-page.js';
import { encodeModel } from '../helpers/onnx-model.js';

// Tensor.fromImage in headless Chromium (WebGPU on SwiftShader), from the built bundle: ImageBitmaps and VideoFrames
// converted on the GPU on the page and in the module worker (transferred), against a JavaScript reference of the
// documented crop, resize and normalization (tests/browser/worker-image-page.js). Needs `npm run build`.
describe('image and video frame inputs (Tensor.fromImage)', () => {
  const b = useBrowserPage();
  const neg = (shape: number[]) =>
    Array.from(encodeModel({ nodes: [{ op: 'Neg', inputs: ['x'], outputs: ['y'] }], inputs: { x: { dtype: 'float32', shape, data: new Float32Array(shape.reduce((a, c) => a * c, 1)) } }, outputs: ['y'] }));

  it('resizes and normalizes frames on the GPU, on the page and in the worker, as the reference does', async () => {
    const r = (await b.page.evaluate(
      `import('${b.origin}/tests/browser/worker-image-page.js').then((m) => m.run('${b.origin}', ${JSON.stringify(neg([1, 3, 16, 20]))}, ${JSON.stringify(neg([1, 23, 37, 3]))}))`,
    )) as Record<string, unknown>;
    expect(r, `${JSON.stringify(r)}\n${b.log.join('\n')}`).toMatchObject({
      tensor: { type: 'float32', dims: [1, 3, 16, 20], location: 'image' },
      pageKeepsSource: 37,
      dataError: 'true:INVALID_ARGUMENT',
      closedError: 'true:INVALID_ARGUMENT',
      workerDetached: 0,
      workerCopyKeeps: 37,
      frameClosedHere: true,
      canvasError: 'true:INVALID_ARGUMENT',
      centreDims: [1, 3, 23, 23],
    });
    // Crops (a rectangle, the centre square; on the page and in the worker) against crop-then-resize in JavaScript;
    // the centre crop differs from the uncropped frame by far more than the tolerance.
    for (const k of ['pageCrop', 'pageCentre', 'videoFrameCentre']) expect(r[k], k).toBeLessThan(1e-4);
    expect(r.pageCropNhwc).toBeLessThan(1e-6);
    expect(r.centreVsWhole).toBeGreaterThan(0.5);
    // Normalized by std ~0.22, so float32 rounding of the texels and weights shows up around 1e-6.
    // Each frame's tensor is 3*16*20 floats (3840 bytes) on the worker's GPU: a leak adds 76,800 bytes over the 20
    // frames. Freed buffers reach the pool after the GPU work that used them, so a frame may now and then get a new
    // one while the last is still in flight: allow a few such buffers, a quarter of what a leak costs.
    expect(r.liveBytesGrowth as number).toBeLessThanOrEqual(5 * 3840);
    for (const k of ['page', 'pageCpu', 'worker', 'workerCopy', 'videoFrame', 'workerCpu']) expect(r[k], k).toBeLessThan(1e-4);
    expect(r.pageNhwc).toBeLessThan(1e-6);
    // Five frames sent at once to a latest-only session: the newest is always computed; every other one is either
    // computed (it started before a newer frame reached the worker) or superseded, never another error; and at least
    // one waited and was replaced. How many arrive while another runs depends on the machine's load (a CI run saw
    // frames 1 and 3 superseded and 2 computed, since frame 2 started before frame 3 arrived), so the test checks
    // these rules rather than one interleaving.
    const outcomes = r.latestOnly as (number | string)[];
    expect(outcomes).toHaveLength(5);
    expect(outcomes[4]).toBeLessThan(1e-4);
    for (const o of outcomes) expect(o === 'superseded' || (typeof o === 'number' && o < 1e-4), String(o)).toBe(true);
    expect(outcomes.slice(0, 4)).toContain('superseded');
  }, 180_000);
});
