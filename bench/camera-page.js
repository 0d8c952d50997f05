// Runs in a headless Chromium page (bench/page.html) for bench/camera.mjs: one contender's camera pipeline, frames
// from getUserMedia (Chromium's fake camera) -> an ImageNet-style classifier -> top-1 label, for a fixed time.
//   edgekit-worker: new VideoFrame(video) -> Tensor.fromImage (resize + normalize in one WGSL dispatch, no
//     per-pixel JavaScript) -> a worker session with queue 'latest-only', as the camera demo runs it: every camera
//     frame is submitted, a frame that arrives while one is computed replaces the waiting one (CancelledError
//     'superseded'), so the newest frame runs next;
//   edgekit-page: the same on a main-thread session (also latest-only);
//   ort-webgpu (ort.webgpu bundle), ort-jsep (default bundle, webgpu EP), ort-wasm: onnxruntime-web with the CPU-side
//     preprocessing its docs show: drawImage of the frame to a 224x224 canvas, getImageData, a JavaScript loop to
//     NCHW float32 normalized by the ImageNet mean and std; a frame is taken when the previous one is done (a busy
//     flag: onnxruntime-web has no run queue), the others are dropped.
// Both resize the whole frame to 224x224 (no crop). Measured over the window, after a warm-up: labels per second,
// frame-to-label latency (from the frame's requestVideoFrameCallback to its top-1 being known), main-thread long
// tasks (PerformanceObserver 'longtask') and the frames a requestAnimationFrame loop got (what a UI could paint).
// Before the camera, each contender classifies one fixed synthetic 224x224 image through its own preprocessing (no
// resize, so both paths compute the same input): its logits let the runner check that the pipelines agree.

const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];
const SIZE = 224;

const argmax = (a) => {
  let b = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[b]) b = i;
  return b;
};
const quantile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN;
};

/** A fixed 224x224 test image (smooth gradients and rings), the same in every page. */
function referenceImage() {
  const d = new ImageData(SIZE, SIZE);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const i = (y * SIZE + x) * 4;
      const r = Math.hypot(x - 112, y - 90);
      d.data[i] = (x * 255) / SIZE;
      d.data[i + 1] = 128 + 127 * Math.sin(r / 9);
      d.data[i + 2] = (y * 255) / SIZE;
      d.data[i + 3] = 255;
    }
  }
  return d;
}

async function camera() {
  const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480, frameRate: 30 }, audio: false });
  const video = document.createElement('video');
  video.muted = true;
  video.playsInline = true;
  video.srcObject = stream;
  document.body.append(video);
  await video.play();
  return { video, stop: () => stream.getTracks().forEach((t) => t.stop()) };
}

/** EdgeKit: `classify(bitmap)` resolves to the top-1 index, or rejects with CancelledError when superseded. */
async function edgekit(origin, modelUrl, where) {
  const ek = await import(`${origin}/dist/browser/edgekit.js`);
  const worker = where === 'worker' ? await ek.createWorker() : undefined;
  const options = { backend: 'webgpu', queue: 'latest-only', cache: false };
  const session = worker ? await worker.createSession(modelUrl, options) : await ek.InferenceSession.create(modelUrl, options);
  const input = session.inputNames[0];
  const output = session.outputNames[0];
  const logits = async (source) => (await session.run({ [input]: ek.Tensor.fromImage(source, { size: SIZE, mean: MEAN, std: STD }) }))[output].data;
  return {
    queued: true,
    isSuperseded: (e) => e instanceof ek.CancelledError,
    logits,
    // A VideoFrame of the current frame (fromImage reads a <video> only when the run takes it): cheap to make and
    // transferred to the worker; a superseded frame is closed without its pixels being touched.
    // createImageBitmap(video) instead converts every camera frame on this thread (measured: 0.1-0.5 s tasks).
    // On the page EdgeKit never closes a source: the frame is closed here once its run settles (an unclosed frame
    // holds a buffer of the camera's pool, and the camera stalls when the pool runs dry).
    classify: async (video) => {
      const frame = new VideoFrame(video);
      try {
        return argmax(await logits(frame));
      } finally {
        frame.close();
      }
    },
    release: async () => { await session.release(); await worker?.terminate(); },
  };
}

/** onnxruntime-web with CPU-side preprocessing (canvas resize, getImageData, a JavaScript loop to NCHW float32). */
async function ort(origin, modelUrl, contender) {
  const file = contender === 'ort-webgpu' ? 'ort.webgpu.min.mjs' : 'ort.min.mjs';
  const ort = await import(`${origin}/node_modules/onnxruntime-web/dist/${file}`);
  ort.env.wasm.wasmPaths = `${origin}/node_modules/onnxruntime-web/dist/`;
  ort.env.wasm.numThreads = 1;
  const bytes = new Uint8Array(await (await fetch(modelUrl)).arrayBuffer());
  const session = await ort.InferenceSession.create(bytes, { executionProviders: [contender === 'ort-wasm' ? 'wasm' : 'webgpu'] });
  const canvas = new OffscreenCanvas(SIZE, SIZE);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const plane = SIZE * SIZE;
  const toTensor = (rgba) => {
    const data = new Float32Array(3 * plane);
    for (let i = 0; i < plane; i++) {
      data[i] = (rgba[i * 4] / 255 - MEAN[0]) / STD[0];
      data[plane + i] = (rgba[i * 4 + 1] / 255 - MEAN[1]) / STD[1];
      data[2 * plane + i] = (rgba[i * 4 + 2] / 255 - MEAN[2]) / STD[2];
    }
    return new ort.Tensor('float32', data, [1, 3, SIZE, SIZE]);
  };
  const logits = async (image) => {
    let rgba;
    if (image instanceof ImageData) rgba = image.data;
    else {
      ctx.drawImage(image, 0, 0, SIZE, SIZE);
      rgba = ctx.getImageData(0, 0, SIZE, SIZE).data;
    }
    const out = await session.run({ [session.inputNames[0]]: toTensor(rgba) });
    return await out[session.outputNames[0]].getData();
  };
  return { queued: false, logits, classify: async (video) => argmax(await logits(video)), release: () => session.release() };
}

/**
 * One contender: load, classify the reference image, warm up on `warm` camera frames, then run the camera pipeline
 * for `seconds`. Frames whose label arrives after the window still count (the window's frames are drained).
 */
export async function run(origin, contender, o) {
  const modelUrl = `${origin}/${o.model}`;
  const t = performance.now();
  const c = contender.startsWith('edgekit') ? await edgekit(origin, modelUrl, contender === 'edgekit-worker' ? 'worker' : 'page') : await ort(origin, modelUrl, contender);
  const loadMs = performance.now() - t;
  const ref = Array.from(await c.logits(c.queued ? await createImageBitmap(referenceImage()) : referenceImage()));
  const cam = await camera();
  for (let i = 0; i < o.warm; i++) await c.classify(cam.video);

  const tasks = [];
  const observer = new PerformanceObserver((list) => tasks.push(...list.getEntries().map((e) => e.duration)));
  observer.observe({ type: 'longtask' });
  let paints = 0;
  const t0 = performance.now();
  const end = t0 + o.seconds * 1000;
  const paint = () => {
    if (performance.now() < end) {
      paints++;
      requestAnimationFrame(paint);
    }
  };
  requestAnimationFrame(paint);

  const latencies = [];
  const labels = {};
  const pending = new Set();
  let frames = 0, dropped = 0, superseded = 0, busy = false, error;
  await new Promise((resolve) => {
    const onFrame = () => {
      const now = performance.now();
      if (now >= end) return resolve();
      cam.video.requestVideoFrameCallback(onFrame);
      frames++;
      if (!c.queued && busy) { dropped++; return; }
      busy = true;
      const p = c.classify(cam.video).then(
        (label) => { latencies.push(performance.now() - now); labels[label] = (labels[label] ?? 0) + 1; },
        (e) => { if (c.isSuperseded?.(e)) superseded++; else error ??= e; },
      ).finally(() => { busy = false; pending.delete(p); });
      pending.add(p);
    };
    cam.video.requestVideoFrameCallback(onFrame);
  });
  const windowMs = performance.now() - t0;
  await Promise.all(pending);
  await new Promise((r) => setTimeout(r, 100)); // the observer delivers after a task ends
  observer.disconnect();
  cam.stop();
  await c.release();
  if (error) throw error;
  const top = Object.entries(labels).sort((a, b) => b[1] - a[1])[0];
  return {
    contender, loadMs, windowMs, cameraFrames: frames, labelled: latencies.length, dropped, superseded,
    labelsPerSecond: (latencies.length * 1000) / windowMs,
    latencyMedianMs: quantile(latencies, 0.5), latencyP95Ms: quantile(latencies, 0.95), latencyMaxMs: Math.max(...latencies),
    longTasks: tasks.length, longestTaskMs: tasks.length ? Math.max(...tasks) : 0, paintsPerSecond: (paints * 1000) / windowMs,
    topLabel: top ? Number(top[0]) : undefined, topLabelShare: top ? top[1] / latencies.length : 0,
    reference: ref, peakGpuBytes: globalThis.__gpuMem.peak,
  };
}
