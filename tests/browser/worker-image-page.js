// Runs in headless Chromium (tests/worker/browser-image.test.ts): camera-style frames (ImageBitmap, VideoFrame) as
// model inputs through Tensor.fromImage, converted on the GPU, on the page and in the module worker, against a
// plain-JavaScript reference of the same crop, bilinear resize and normalization.
const W = 37;
const H = 23;

function pixels() {
  const rgba = new Uint8ClampedArray(W * H * 4);
  for (let i = 0; i < W * H; i++) {
    rgba[i * 4] = (i * 37) % 256;
    rgba[i * 4 + 1] = (i * 11 + 50) % 256;
    rgba[i * 4 + 2] = (i * i) % 251;
    rgba[i * 4 + 3] = 255;
  }
  return rgba;
}

// The documented conversion: crop (default the whole frame), half-pixel-centre bilinear over the crop with its
// edges clamped, v / 255, (v - mean) / std; NCHW or NHWC. Written as "crop first, then resize the crop".
function reference(rgba, h, w, mean, std, layout, crop = { x: 0, y: 0, width: W, height: H }) {
  const out = new Float64Array(3 * h * w);
  const CW = crop.width, CH = crop.height;
  const at = (x, y, c) => rgba[((y + crop.y) * W + x + crop.x) * 4 + c] / 255;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const sx = Math.max((x + 0.5) * (CW / w) - 0.5, 0);
      const sy = Math.max((y + 0.5) * (CH / h) - 0.5, 0);
      const x0 = Math.min(Math.floor(sx), CW - 1), y0 = Math.min(Math.floor(sy), CH - 1);
      const x1 = Math.min(x0 + 1, CW - 1), y1 = Math.min(y0 + 1, CH - 1);
      const fx = sx - Math.floor(sx), fy = sy - Math.floor(sy);
      for (let c = 0; c < 3; c++) {
        const top = at(x0, y0, c) * (1 - fx) + at(x1, y0, c) * fx;
        const bottom = at(x0, y1, c) * (1 - fx) + at(x1, y1, c) * fx;
        const v = ((top * (1 - fy) + bottom * fy) - mean[c]) / std[c];
        out[layout === 'NHWC' ? (y * w + x) * 3 + c : c * h * w + y * w + x] = v;
      }
    }
  }
  return out;
}

const maxDiff = (a, b) => {
  let m = a.length === b.length ? 0 : Infinity;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

// models: Identity-like models (y = -x) for [1, 3, 16, 20] and [1, 23, 37, 3].
export async function run(origin, nchwModel, nhwcModel) {
  const r = {};
  try {
    return await steps(origin, nchwModel, nhwcModel, r);
  } catch (e) {
    return { ...r, failed: `${e.name}: ${e.message}` };
  }
}

async function steps(origin, nchwModel, nhwcModel, r) {
  const { InferenceSession, Tensor, InvalidArgumentError, CancelledError, createWorker } = await import(`${origin}/dist/browser/edgekit.js`);
  const rgba = pixels();
  const bitmap = () => createImageBitmap(new ImageData(rgba.slice(), W, H), { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const resized = { size: [16, 20], mean, std };
  const refNchw = reference(rgba, 16, 20, mean, std, 'NCHW').map((v) => -v);
  const refNhwc = reference(rgba, H, W, [0, 0, 0], [1, 1, 1], 'NHWC').map((v) => -v);

  const nchw = new Uint8Array(nchwModel);
  const nhwc = new Uint8Array(nhwcModel);
  const gpu = await InferenceSession.create(nchw, { backend: 'webgpu' });
  const cpu = await InferenceSession.create(nchw, { backend: 'cpu' });
  const gpuNhwc = await InferenceSession.create(nhwc, { backend: 'webgpu' });
  const b0 = await bitmap();
  const t = Tensor.fromImage(b0, resized);
  r.tensor = { type: t.type, dims: [...t.dims], location: t.location };
  r.page = maxDiff((await gpu.run({ x: t })).y.data, refNchw);
  r.pageCpu = maxDiff((await cpu.run({ x: t })).y.data, refNchw);
  r.pageNhwc = maxDiff((await gpuNhwc.run({ x: Tensor.fromImage(b0, { layout: 'NHWC' }) })).y.data, refNhwc);
  // Crops, in the same dispatch: a rectangle (resized up and down), and the centre square (23x23 at x = 7).
  const rect = { x: 5, y: 3, width: 20, height: 17 };
  r.pageCrop = maxDiff((await gpu.run({ x: Tensor.fromImage(b0, { ...resized, crop: rect }) })).y.data, reference(rgba, 16, 20, mean, std, 'NCHW', rect).map((v) => -v));
  r.pageCropNhwc = maxDiff((await gpuNhwc.run({ x: Tensor.fromImage(b0, { layout: 'NHWC', size: [H, W], crop: { x: 30, y: 20, width: 7, height: 3 } }) })).y.data,
    reference(rgba, H, W, [0, 0, 0], [1, 1, 1], 'NHWC', { x: 30, y: 20, width: 7, height: 3 }).map((v) => -v));
  const centre = { x: 7, y: 0, width: 23, height: 23 };
  r.centreDims = [...Tensor.fromImage(b0, { crop: 'center' }).dims];
  r.pageCentre = maxDiff((await gpu.run({ x: Tensor.fromImage(b0, { ...resized, crop: 'center' }) })).y.data, reference(rgba, 16, 20, mean, std, 'NCHW', centre).map((v) => -v));
  // The crop is not the whole frame: the same frame uncropped differs (the test can fail).
  r.centreVsWhole = maxDiff(reference(rgba, 16, 20, mean, std, 'NCHW', centre), reference(rgba, 16, 20, mean, std, 'NCHW'));
  r.pageKeepsSource = b0.width; // the page's own bitmap: EdgeKit does not close it
  r.dataError = (() => { try { return t.data; } catch (e) { return `${e instanceof InvalidArgumentError}:${e.code}`; } })();
  b0.close();
  r.closedError = (() => { try { Tensor.fromImage(b0); return 'no error'; } catch (e) { return `${e instanceof InvalidArgumentError}:${e.code}`; } })();

  // In the worker: the bitmap is transferred (detached here) and converted on the worker's GPU.
  const worker = await createWorker();
  const ws = await worker.createSession(nchw.slice(), { backend: 'webgpu' });
  const b1 = await bitmap();
  r.worker = maxDiff((await ws.run({ x: Tensor.fromImage(b1, resized) })).y.data, refNchw);
  r.workerDetached = b1.width;
  const b2 = await bitmap();
  r.workerCopy = maxDiff((await ws.run({ x: Tensor.fromImage(b2, resized) }, { copy: true })).y.data, refNchw);
  r.workerCopyKeeps = b2.width;
  b2.close();
  // A VideoFrame, as a camera's MediaStreamTrackProcessor gives them.
  const frame = new VideoFrame(await bitmap(), { timestamp: 0 });
  r.videoFrame = maxDiff((await ws.run({ x: Tensor.fromImage(frame, resized) })).y.data, refNchw);
  // A centre crop of a VideoFrame, in the worker (the crop travels with the frame's options).
  const frame2 = new VideoFrame(await bitmap(), { timestamp: 1 });
  r.videoFrameCentre = maxDiff((await ws.run({ x: Tensor.fromImage(frame2, { ...resized, crop: 'center' }) })).y.data, reference(rgba, 16, 20, mean, std, 'NCHW', centre).map((v) => -v));
  r.frameClosedHere = frame.format === null && frame.displayWidth === 0;
  // The worker's CPU session converts on its GPU and reads back.
  const wcpu = await worker.createSession(nchw.slice(), { backend: 'cpu' });
  r.workerCpu = maxDiff((await wcpu.run({ x: Tensor.fromImage(await bitmap(), resized) })).y.data, refNchw);
  // A camera loop: a latest-only session computes only the newest waiting frame.
  const cam = await worker.createSession(nchw.slice(), { backend: 'webgpu', queue: 'latest-only' });
  const frames = await Promise.all([0, 1, 2, 3, 4].map(() => bitmap()));
  const outcomes = await Promise.all(frames.map((b) => cam.run({ x: Tensor.fromImage(b, resized) }).then((o) => maxDiff(o.y.data, refNchw), (e) => (e instanceof CancelledError ? e.reason : String(e)))));
  r.latestOnly = outcomes;
  // A canvas cannot cross to a worker: a typed error says what to pass.
  const canvas = new OffscreenCanvas(4, 4);
  canvas.getContext('2d');
  r.canvasError = await ws.run({ x: Tensor.fromImage(canvas, resized) }).then(() => 'no error', (e) => `${e instanceof InvalidArgumentError}:${e.code}`);
  // Live GPU bytes in the worker come back to where they were after 20 frames (the converted tensors are freed).
  const before = (await ws.report()).gpu.liveBytes;
  for (let i = 0; i < 20; i++) await ws.run({ x: Tensor.fromImage(await bitmap(), resized) });
  await new Promise((res) => setTimeout(res, 100));
  r.liveBytesGrowth = (await ws.report()).gpu.liveBytes - before;
  await Promise.all([gpu.release(), cpu.release(), gpuNhwc.release(), ws.release(), wcpu.release(), cam.release()]);
  await worker.terminate();
  return r;
}
