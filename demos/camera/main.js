// The camera classification demo: imports only the built bundle (npm run build → dist/browser/edgekit.js).
//
// Pipeline per camera frame: the camera's VideoFrame (or an ImageBitmap of the <video>; see startLoop) →
// Tensor.fromImage(frame, { crop: 'center', size, mean, std }) → WorkerSession.run in the worker, where the frame
// is copied into a texture and cropped, resized and normalized in one WGSL dispatch before the model runs. The
// session's queue is 'latest-only': every new frame replaces the one waiting, so the label follows the newest frame
// and slow devices drop frames instead of falling behind. Only the logits come back; softmax and the top 5 are a few
// dozen operations here.
//
// window.demo is the page's state for tests (tests/browser/camera-demo.test.ts): { ready, error, model, camera,
// results: [{ t0, t1, top1, top5 }] (t0 = when the frame was taken, t1 = when its label was shown; page clock),
// stats: { fps, latencyMs }, superseded }.
const $ = (id) => document.getElementById(id);
const status = (s) => { $('status').textContent = s; };
const progress = (v) => { $('progress').hidden = v === null; if (v !== null) $('progress').value = v; };
const base = new URL('../../tests/fixtures/camera/', import.meta.url);
const params = new URLSearchParams(location.search);
const MAX_RESULTS = 500;

const demo = { ready: false, error: null, model: null, camera: null, results: [], stats: { fps: 0, latencyMs: 0 }, superseded: 0 };
window.demo = demo;

function fail(code, message) {
  demo.error = code;
  $('error').textContent = message;
  progress(null);
}

let ek, worker, session, model, stream, loopGeneration = 0;

/** "0.485, 0.456, 0.406" → [0.485, 0.456, 0.406]; one number is used for all three channels. */
function parseTriple(text, name) {
  const v = String(text).split(/[\s,]+/).filter(Boolean).map(Number);
  const t = v.length === 1 ? [v[0], v[0], v[0]] : v;
  if (t.length !== 3 || t.some((x) => !Number.isFinite(x))) throw new Error(`${name} must be one number or three (R, G, B), got "${text}".`);
  return t;
}

async function readLabels(source) {
  const text = source instanceof Blob ? await source.text() : await (await fetch(source)).text();
  return text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
}

/**
 * Input layout and size from the model's input shape when it says them ([N, 3, H, W] → NCHW, [N, H, W, 3] → NHWC);
 * the form's size wins when given, and is required when the shape has no numbers.
 */
function inputGeometry(meta, formSize) {
  const shape = meta.shape;
  if (shape.length !== 4) throw new Error(`The model's input '${meta.name}' has shape [${shape.join(', ')}]; an image classifier takes [N, 3, H, W] or [N, H, W, 3].`);
  const layout = shape[3] === 3 && shape[1] !== 3 ? 'NHWC' : 'NCHW';
  const [h, w] = layout === 'NCHW' ? [shape[2], shape[3]] : [shape[1], shape[2]];
  if (formSize) return { layout, size: [formSize, formSize] };
  if (typeof h === 'number' && typeof w === 'number') return { layout, size: [h, w] };
  throw new Error(`The model's input '${meta.name}' has no fixed size ([${shape.join(', ')}]): enter the input size.`);
}

/** Loads (or replaces) the classifier; `src` is a URL or an ArrayBuffer, `labels` a URL or a File. */
async function loadModel(src, labelsSrc, { size, mean, std, name }) {
  stopLoop();
  $('controls').disabled = true;
  demo.ready = false;
  $('error').textContent = '';
  const old = session;
  session = undefined;
  if (old) await old.release();
  status(`Loading ${name}…`);
  progress(0);
  const s = await worker.createSession(src, {
    backend: 'webgpu', queue: 'latest-only', priority: 'user-blocking',
    onProgress: (p) => {
      if (p.phase === 'fetch') {
        status(`Loading ${name}… ${(p.loaded / 1024).toFixed(0)}${p.total ? ` / ${(p.total / 1024).toFixed(0)}` : ''} KB`);
        if (p.total) progress(p.loaded / p.total / 2);
      } else {
        status(`Compiling GPU pipelines… ${p.done} / ${p.total}`);
        progress(0.5 + p.done / Math.max(1, p.total) / 2);
      }
    },
  });
  let geo, labels, out;
  try {
    geo = inputGeometry(s.inputMetadata[0], size);
    labels = await readLabels(labelsSrc);
    // The first run specializes the graph and builds its GPU plan in the worker; done here so the first camera
    // frame is not the slow one. A blank bitmap of the input's size is enough.
    status('Warming up…');
    const blank = await createImageBitmap(new ImageData(geo.size[1], geo.size[0]));
    out = (await s.run({ [s.inputNames[0]]: ek.Tensor.fromImage(blank, { size: geo.size, mean, std, layout: geo.layout, crop: 'center' }) }, { outputs: [s.outputNames[0]] }))[s.outputNames[0]];
  } catch (e) {
    await s.release();
    throw e;
  }
  model = { name, input: s.inputNames[0], output: s.outputNames[0], ...geo, mean, std, labels, classes: out.dims[out.dims.length - 1] };
  session = s;
  demo.model = { name, size: geo.size, layout: geo.layout, mean, std, labels: labels.length, classes: model.classes };
  progress(null);
  const note = labels.length === model.classes ? '' : ` (the labels file has ${labels.length} names for ${model.classes} classes: unnamed classes show as their index)`;
  status(`${name}: ${geo.size[0]}×${geo.size[1]} ${geo.layout}, ${model.classes} classes${note}.`);
  $('controls').disabled = false;
  demo.ready = true;
  if (stream) startLoop();
}

/** Starts the camera (the rear one on phones) and the frame loop; a clear message when there is none or it is refused. */
async function startCamera() {
  $('camera').disabled = true;
  if (!navigator.mediaDevices?.getUserMedia) {
    fail('no-camera-api', 'This browser gives this page no camera: camera access needs a secure page (https:// or http://localhost) in a browser that supports it.');
    return;
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: false, video: { facingMode: { ideal: 'environment' }, width: { ideal: 640 }, height: { ideal: 480 } } });
  } catch (e) {
    $('camera').disabled = false;
    if (e.name === 'NotAllowedError' || e.name === 'SecurityError') {
      fail('camera-denied', 'Camera access was denied. Allow the camera for this site (the camera icon in the address bar, or the browser\'s site settings), then press "Start the camera".');
    } else if (e.name === 'NotFoundError' || e.name === 'OverconstrainedError') {
      fail('no-camera', 'No camera was found. Connect one, then press "Start the camera".');
    } else if (e.name === 'NotReadableError') {
      fail('camera-busy', 'The camera is in use by another application, or the system refused it. Close the other application, then press "Start the camera".');
    } else {
      fail('camera-failed', `The camera could not start (${e.name}: ${e.message}).`);
    }
    return;
  }
  stream.getVideoTracks()[0].addEventListener('ended', () => {
    stopLoop();
    stream = undefined;
    $('camera').disabled = false;
    fail('camera-ended', 'The camera stopped (it was unplugged, or another application took it). Press "Start the camera" to start it again.');
  });
  const video = $('video');
  video.srcObject = stream;
  await video.play();
  const settings = stream.getVideoTracks()[0].getSettings();
  demo.camera = { width: video.videoWidth, height: video.videoHeight, facingMode: settings.facingMode ?? null };
  $('error').textContent = '';
  if (demo.error?.startsWith('camera') || demo.error === 'no-camera') demo.error = null;
  placeSquare();
  if (session) startLoop();
}

/** Outlines the centre square the classifier sees over the displayed video. */
function placeSquare() {
  const video = $('video'), sq = $('square');
  const w = video.clientWidth, h = video.clientHeight;
  if (!video.videoWidth || !w || !h) return;
  const side = Math.min(w, h);
  Object.assign(sq.style, { display: 'block', width: `${side}px`, height: `${side}px`, left: `${(w - side) / 2}px`, top: `${(h - side) / 2}px` });
}

function stopLoop() { loopGeneration++; }

/**
 * Hands camera frames to the worker. Where the browser has MediaStreamTrackProcessor (Chromium), the camera's own
 * VideoFrames are read from the track and transferred as they are: the main thread does no per-frame work but a
 * stream read and a postMessage. Elsewhere, once per new video frame (requestVideoFrameCallback, else animation
 * frames), `new VideoFrame(video)` wraps the frame the <video> shows (Safari 16.4+, Firefox 130+: no pixel copy on
 * this thread; the worker converts it), and only a browser without VideoFrame gets createImageBitmap(video).
 *
 * Decision: the first version used requestVideoFrameCallback + createImageBitmap(video) everywhere, and while it
 * classified, main-thread tasks of 55-95 ms showed up on a busy machine (Chromium on SwiftShader, the test's
 * PerformanceObserver). A devtools trace put them in that video-frame callback (up to 58 ms a call, createImageBitmap
 * started inside it), with the overlay's layout next. Reading VideoFrames from the track instead moves the frame's
 * copy off the main thread (when the GPU refuses a VideoFrame as it is, the worker makes the bitmap:
 * sdk/vision/image.ts); in the same trace setup the main thread's busy time over 4 s fell from 1.9 s to 1.3 s and
 * labels per second rose from 5 to 9, and the test sees no task of 50 ms. The overlay has `contain: content` so its
 * text updates lay out only itself.
 */
function startLoop() {
  const generation = ++loopGeneration;
  if (typeof MediaStreamTrackProcessor === 'function') {
    void readTrack(generation);
    return;
  }
  const video = $('video');
  let lastTime = -1;
  const tick = () => {
    if (generation !== loopGeneration) return;
    if (video.readyState >= 2 && video.currentTime !== lastTime) {
      lastTime = video.currentTime;
      const t0 = performance.now();
      let frame = null;
      if (typeof VideoFrame === 'function') {
        try { frame = new VideoFrame(video, { timestamp: Math.round(t0 * 1000) }); } catch { frame = null; }
      }
      if (frame) void classify(frame, t0);
      else createImageBitmap(video).then((bitmap) => classify(bitmap, t0), () => undefined); // no frame right now: the next one will do
    }
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(tick);
    else requestAnimationFrame(tick);
  };
  tick();
}

async function readTrack(generation) {
  // A clone, so stopping this reader never stops the <video>'s track.
  const track = stream.getVideoTracks()[0].clone();
  const reader = new MediaStreamTrackProcessor({ track, maxBufferSize: 1 }).readable.getReader();
  try {
    while (generation === loopGeneration) {
      const { value: frame, done } = await reader.read();
      if (done) break;
      if (generation !== loopGeneration) { frame.close(); break; }
      void classify(frame, performance.now());
    }
  } finally {
    reader.cancel().catch(() => undefined);
    track.stop();
  }
}

/** Runs the classifier on one frame (an ImageBitmap or a VideoFrame, transferred to the worker, which closes it). */
async function classify(frame, t0) {
  const s = session, m = model;
  if (!s || s !== session) { frame.close(); return; }
  let out;
  try {
    out = await s.run({ [m.input]: ek.Tensor.fromImage(frame, { size: m.size, mean: m.mean, std: m.std, layout: m.layout, crop: 'center' }) }, { outputs: [m.output] });
  } catch (e) {
    if (e instanceof ek.CancelledError) { demo.superseded++; return; } // a newer frame replaced this one
    if (s !== session) return; // the model was replaced while this frame waited
    stopLoop();
    fail('run-failed', `Classification failed: ${e.name}: ${e.message}`);
    return;
  }
  if (s !== session) return;
  show(out[m.output].data, t0, m);
}

/** Softmax unless the model already gives probabilities; the five best with their labels. */
function top5(values, labels) {
  let sum = 0, probs = true;
  for (const v of values) { sum += v; if (v < 0 || v > 1) probs = false; }
  let p = values;
  if (!probs || Math.abs(sum - 1) > 1e-3) {
    const max = Math.max(...values);
    const e = Array.from(values, (v) => Math.exp(v - max));
    const z = e.reduce((a, b) => a + b, 0);
    p = e.map((v) => v / z);
  }
  return Array.from(p, (prob, index) => ({ index, prob })).sort((a, b) => b.prob - a.prob).slice(0, 5)
    .map(({ index, prob }) => ({ index, label: labels[index] ?? `class ${index}`, prob }));
}

function show(values, t0, m) {
  const best = top5(values, m.labels);
  const list = $('top5');
  while (list.children.length < best.length) list.append(Object.assign(document.createElement('li'), { innerHTML: '<span class="name"></span><span class="p"></span><span class="track"><span class="bar"></span></span>' }));
  best.forEach((b, i) => {
    const li = list.children[i];
    li.querySelector('.name').textContent = b.label;
    li.querySelector('.bar').style.width = `${(b.prob * 100).toFixed(1)}%`;
    li.querySelector('.p').textContent = `${(b.prob * 100).toFixed(1)} %`;
  });
  const t1 = performance.now();
  demo.results.push({ t0, t1, top1: best[0].index, top5: best });
  if (demo.results.length > MAX_RESULTS) demo.results.splice(0, demo.results.length - MAX_RESULTS);
  // Labels per second over the last two seconds; latency from taking the frame to showing its label, last 10.
  const recent = demo.results.filter((r) => r.t1 >= t1 - 2000);
  demo.stats.fps = recent.length > 1 ? ((recent.length - 1) * 1000) / (t1 - recent[0].t1) : 0;
  const last = demo.results.slice(-10);
  demo.stats.latencyMs = last.reduce((a, r) => a + r.t1 - r.t0, 0) / last.length;
  $('stats').textContent = `${demo.stats.fps.toFixed(1)} labels/s · ${demo.stats.latencyMs.toFixed(0)} ms frame → label`;
}

/** The form's (or dropped files') model: a file or a URL, with a labels file or URL. */
async function loadFromForm(files = {}) {
  try {
    const modelFile = files.model ?? $('model-file').files[0];
    const labelsFile = files.labels ?? $('labels-file').files[0];
    const modelUrl = $('model-url').value.trim(), labelsUrl = $('labels-url').value.trim();
    if (!modelFile && !modelUrl) throw new Error('Choose a model file or enter its URL.');
    if (!labelsFile && !labelsUrl) throw new Error('Choose a labels file (one class name per line) or enter its URL.');
    const size = $('size').value ? Number($('size').value) : undefined;
    if (size !== undefined && !(Number.isInteger(size) && size >= 8)) throw new Error('The input size must be a whole number of pixels (8 or more).');
    const options = { size, mean: parseTriple($('mean').value, 'Mean'), std: parseTriple($('std').value, 'Std'), name: modelFile?.name ?? modelUrl };
    if (options.std.some((x) => x === 0)) throw new Error('Std must not be 0.');
    const src = modelFile ? new Uint8Array(await modelFile.arrayBuffer()) : new URL(modelUrl, location.href).href;
    await loadModel(src, labelsFile ?? new URL(labelsUrl, location.href).href, options);
  } catch (e) {
    $('controls').disabled = false;
    fail('model-failed', `This model could not be used: ${e.name && e.name !== 'Error' ? `${e.name}: ` : ''}${e.message}`);
  }
}

async function main() {
  if (!navigator.gpu || !(await navigator.gpu.requestAdapter())) {
    fail('no-webgpu', 'WebGPU is not available in this browser. Use a recent Chrome or Edge (or Safari Technology Preview / Firefox Nightly with WebGPU enabled), on a device with WebGPU support, and reload.');
    status('Stopped.');
    return;
  }
  ek = await import(new URL('../../dist/browser/edgekit.js', import.meta.url).href);
  status('Starting the worker…');
  worker = await ek.createWorker();
  // ?model=URL&labels=URL&size=224&mean=…&std=… picks a model without the form.
  const modelUrl = params.get('model') ? new URL(params.get('model'), location.href).href : new URL('camera-cnn.onnx', base).href;
  const labelsUrl = params.get('labels') ? new URL(params.get('labels'), location.href).href : new URL('labels.txt', base).href;
  await loadModel(modelUrl, labelsUrl, {
    size: params.get('size') ? Number(params.get('size')) : undefined,
    mean: parseTriple(params.get('mean') ?? '0.485, 0.456, 0.406', 'mean'),
    std: parseTriple(params.get('std') ?? '0.229, 0.224, 0.225', 'std'),
    name: params.get('model') ?? 'the bundled Fashion-MNIST model',
  });
  $('camera').onclick = () => void startCamera();
  $('load').onclick = () => void loadFromForm();
  addEventListener('resize', placeSquare);
  $('video').addEventListener('resize', placeSquare);
  // Files dropped anywhere on the page: an .onnx model and a labels .txt.
  addEventListener('dragover', (e) => e.preventDefault());
  addEventListener('drop', (e) => {
    e.preventDefault();
    const files = [...(e.dataTransfer?.files ?? [])];
    const model = files.find((f) => f.name.endsWith('.onnx')), labels = files.find((f) => !f.name.endsWith('.onnx'));
    if (model || labels) void loadFromForm({ model, labels });
  });
  await startCamera();
}

main().catch((e) => {
  fail(demo.error ?? 'failed', `${e.name}: ${e.message}`);
  status('Stopped.');
});
