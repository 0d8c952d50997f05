// The transfer-learning demo: imports only the built bundle (npm run build → dist/browser/edgekit.js).
//
// Everything that computes runs in one EdgeKit worker, so the page stays responsive while a head trains:
// - `backbone`: the camera demo's CNN (tests/fixtures/camera), a WebGPU session; WorkerFineTuner replaces its Gemm
//   classifier with a fresh head (`newHead`) and trains only that, on the frozen features (computed once per fit
//   on the GPU, then cached);
// - `pixels`: demos/transfer/pixels.onnx (one Identity node), fed Tensor.fromImage(frame): the frame is resized and
//   normalized by EdgeKit's WGSL kernel and read back as the float32 example FineTuner.fit takes. No JavaScript
//   touches a pixel; a capture costs one GPU conversion and one 48 KiB read-back;
// - `classifier`: the tuned model (tuner.exportOnnx(), or a file the user loads), a latest-only WebGPU session fed
//   camera frames: frames that arrive while one is classified replace each other, only the newest runs.
// Frames are centre-cropped to a square by Tensor.fromImage's `crop: 'center'`, as the camera demo crops.
const $ = (id) => document.getElementById(id);
const status = (s) => { $('status').textContent = s; };
const fail = (s) => { $('error').textContent = s; };
const fixtures = new URL('../../tests/fixtures/camera/', import.meta.url);
// ?model=URL: another backbone (an ImageNet-style classifier ending in a Gemm, input [N, 3, S, S]).
const modelParam = new URLSearchParams(location.search).get('model');
const RECENT = 16; // predictions (with their frames) kept in window.demo.predictions
const CAPTURE_MS = 100; // at most 10 frames a second while a record button is held
const IMAGENET = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

const demo = {
  ready: false,
  camera: false,
  phase: 'loading', // 'loading' | 'collect' | 'training' | 'classifying'
  classes: [],       // [{ name, examples: [{ frame: ImageBitmap, input: Float32Array, thumb }] }]
  training: null,    // { steps: [{ step, loss }], epochs: [{ epoch, loss, accuracy }], done, stopped, error }
  trainings: 0,
  model: null,       // { source: 'trained' | 'file', classes: [names], bytes? }
  predictions: [],   // newest last: { id, frame: ImageBitmap, probs: number[], top: number, label, model }
  capturing: 0,      // captures still being converted
  classified: 0,
  superseded: 0,
  error: null,
};
window.demo = demo;

let ek;
let worker;
let backbone;
let pixels;
let classifier;
let prep; // Tensor.fromImage options: { size, mean, std }
let tunedBytes;
let video;

/** A frame as the float32 [1, 3, size, size] tensor the backbone reads, converted on the worker's GPU. */
async function toInput(frame) {
  // A clone of `frame` crosses (the page keeps its bitmap for the thumbnail).
  const out = await pixels.run({ image: ek.Tensor.fromImage(frame, prep) }, { copy: true });
  return out.pixels.data;
}

function softmax(logits) {
  const m = Math.max(...logits);
  const e = logits.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

// ---- classes and examples ----------------------------------------------------------------------------------

function addClass(name) {
  const cls = { name, examples: [], pending: Promise.resolve() };
  demo.classes.push(cls);
  const card = document.createElement('div');
  card.className = 'class';
  card.innerHTML = `
    <div class="row"><input class="name" aria-label="class name"><span class="count">0 examples</span></div>
    <div class="row"><button class="record">Hold to record</button>
      <label class="files-label">Add images<input class="files" type="file" accept="image/*" multiple></label></div>
    <div class="thumbs"></div>`;
  cls.card = card;
  const nameInput = card.querySelector('.name');
  nameInput.value = name;
  nameInput.addEventListener('input', () => { cls.name = nameInput.value.trim() || `Class ${demo.classes.indexOf(cls) + 1}`; });
  const record = card.querySelector('.record');
  if (!demo.camera) record.disabled = true;
  let recording = false;
  const start = (e) => {
    e.preventDefault();
    if (recording || !demo.camera) return;
    recording = true;
    record.classList.add('active');
    record.setPointerCapture?.(e.pointerId);
    let last = -Infinity;
    const tick = (now) => {
      if (!recording) return;
      if (now - last >= CAPTURE_MS) {
        last = now;
        capture(cls);
      }
      video.requestVideoFrameCallback(tick);
    };
    // The frame on screen now, then one per new video frame (at most every CAPTURE_MS) while held.
    tick(performance.now());
  };
  const stop = () => {
    recording = false;
    record.classList.remove('active');
  };
  record.addEventListener('pointerdown', start);
  for (const ev of ['pointerup', 'pointercancel', 'lostpointercapture']) record.addEventListener(ev, stop);
  record.addEventListener('contextmenu', (e) => e.preventDefault()); // a long press on a phone is a hold, not a menu
  card.querySelector('.files').addEventListener('change', (e) => { addFiles(cls, e.target.files); e.target.value = ''; });
  card.addEventListener('dragover', (e) => { e.preventDefault(); card.classList.add('drop'); });
  card.addEventListener('dragleave', () => card.classList.remove('drop'));
  card.addEventListener('drop', (e) => {
    e.preventDefault();
    card.classList.remove('drop');
    addFiles(cls, e.dataTransfer.files);
  });
  $('classes').append(card);
  return cls;
}

/** Adds one example: `frame` (a full frame, kept for the thumbnail) and its converted tensor. In capture order. */
function addExample(cls, framePromise) {
  demo.capturing++;
  cls.pending = cls.pending.then(async () => {
    let frame;
    try {
      frame = await framePromise;
      const input = await toInput(frame);
      const thumb = document.createElement('canvas');
      thumb.width = 32;
      thumb.height = 32;
      const s = Math.min(frame.width, frame.height);
      thumb.getContext('2d').drawImage(frame, (frame.width - s) / 2, (frame.height - s) / 2, s, s, 0, 0, 32, 32);
      const ex = { frame, input, thumb };
      thumb.title = 'Remove this example';
      thumb.addEventListener('click', () => removeExample(cls, ex));
      cls.examples.push(ex);
      cls.card.querySelector('.thumbs').append(thumb);
      updateCounts();
    } catch (e) {
      frame?.close();
      showError(e);
    } finally {
      demo.capturing--;
    }
  });
  return cls.pending;
}

function capture(cls) {
  if (video.readyState < 2) return;
  addExample(cls, createImageBitmap(video));
}

function addFiles(cls, files) {
  for (const f of files) {
    if (!f.type.startsWith('image/')) {
      fail(`${f.name} is not an image; drop PNG, JPEG, WebP or GIF files.`);
      continue;
    }
    addExample(cls, createImageBitmap(f).catch(() => {
      throw new Error(`${f.name} could not be decoded as an image.`);
    }));
  }
}

function removeExample(cls, ex) {
  const i = cls.examples.indexOf(ex);
  if (i < 0) return;
  cls.examples.splice(i, 1);
  ex.thumb.remove();
  ex.frame.close();
  updateCounts();
}

function updateCounts() {
  for (const c of demo.classes) c.card.querySelector('.count').textContent = `${c.examples.length} example${c.examples.length === 1 ? '' : 's'}`;
  const ready = demo.classes.filter((c) => c.examples.length > 0).length >= 2 && demo.classes.every((c) => c.examples.length > 0);
  $('train').disabled = !ready || demo.phase === 'training';
  $('train').title = ready ? '' : 'Every class needs at least one example, and there must be two classes or more.';
}

// ---- training ----------------------------------------------------------------------------------------------

const chart = { steps: [], epochs: [], scheduled: false };

function drawChart() {
  chart.scheduled = false;
  const c = $('chart');
  // Drawn at the size it is shown (a phone's narrow canvas is not a squeezed desktop one), in CSS pixels.
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(200, c.clientWidth), h = Math.max(100, c.clientHeight), pad = 28;
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) [c.width, c.height] = [Math.round(w * dpr), Math.round(h * dpr)];
  const ctx = c.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.font = '12px system-ui, sans-serif';
  ctx.strokeStyle = '#ccc';
  ctx.strokeRect(pad, 8, w - 2 * pad, h - pad - 8);
  const steps = chart.steps;
  if (!steps.length) return;
  const maxStep = Math.max(steps[steps.length - 1].step, 1);
  const maxLoss = Math.max(...steps.map((s) => s.loss).filter(Number.isFinite), 1e-6);
  const x = (step) => pad + ((w - 2 * pad) * step) / maxStep;
  const yLoss = (v) => 8 + (h - pad - 8) * (1 - v / maxLoss);
  const yAcc = (v) => 8 + (h - pad - 8) * (1 - v);
  ctx.strokeStyle = '#c62828';
  ctx.lineWidth = 2;
  ctx.beginPath();
  steps.forEach((s, i) => (i ? ctx.lineTo(x(s.step), yLoss(s.loss)) : ctx.moveTo(x(s.step), yLoss(s.loss))));
  ctx.stroke();
  ctx.strokeStyle = '#3367d6';
  ctx.fillStyle = '#3367d6';
  ctx.beginPath();
  chart.epochs.forEach((e, i) => (i ? ctx.lineTo(x(e.step), yAcc(e.accuracy)) : ctx.moveTo(x(e.step), yAcc(e.accuracy))));
  ctx.stroke();
  for (const e of chart.epochs) ctx.fillRect(x(e.step) - 2, yAcc(e.accuracy) - 2, 4, 4);
  ctx.fillStyle = '#c62828';
  ctx.fillText(`loss (max ${maxLoss.toFixed(2)})`, pad + 4, h - 10);
  ctx.fillStyle = '#3367d6';
  ctx.fillText('accuracy (0–1)', pad + Math.min(150, w / 3), h - 10);
  ctx.fillStyle = '#333';
  ctx.fillText(`step ${maxStep}`, w - pad - 60, h - 10);
}

function scheduleChart() {
  if (chart.scheduled) return;
  chart.scheduled = true;
  requestAnimationFrame(drawChart);
}

let stopTraining;

async function train() {
  const classes = demo.classes.filter((c) => c.examples.length > 0);
  if (classes.length < 2 || classes.length !== demo.classes.length) return;
  await Promise.all(classes.map((c) => c.pending));
  const names = classes.map((c) => c.name);
  const per = classes[0].examples[0].input.length;
  const n = classes.reduce((a, c) => a + c.examples.length, 0);
  const x = new Float32Array(n * per);
  const y = new Int32Array(n);
  let k = 0;
  classes.forEach((c, label) => {
    for (const ex of c.examples) {
      x.set(ex.input, k * per);
      y[k++] = label;
    }
  });
  const size = prep.size;
  const data = { inputs: new ek.Tensor('float32', x, [n, 3, size, size]), labels: new ek.Tensor('int32', y, [n]) };
  const epochs = Math.max(1, Math.floor(Number($('epochs').value) || 30));
  const batchSize = Math.max(1, Math.floor(Number($('batch').value) || 16));
  const lr = Number($('lr').value) || 0.05;
  const record = { examples: n, classes: names, epochs: [], steps: [], done: false, stopped: false, error: null };
  demo.training = record;
  demo.trainings++;
  demo.phase = 'training';
  chart.steps = record.steps;
  chart.epochs = record.epochs;
  scheduleChart();
  const abort = new AbortController();
  stopTraining = () => abort.abort();
  $('train').disabled = true;
  $('stop').disabled = false;
  $('collect').disabled = true;
  $('train-status').textContent = `Training a ${names.length}-class head on ${n} examples…`;
  status('Training in the worker…');
  let tuner;
  const t0 = performance.now();
  try {
    // A fresh head for these classes every time: the classes or their examples may have changed since the last run.
    tuner = await ek.WorkerFineTuner.create(backbone, { newHead: { classes: names.length, seed: 1 }, optimizer: ek.adam({ lr }), seed: 1 });
    try {
      await tuner.fit(data, {
        epochs,
        batchSize,
        // The accuracy plotted is on the captured examples themselves: with a few dozen of them there is no set to
        // spare for validation. Held-out frames are what the live view (and the browser test) judge.
        validation: data,
        signal: abort.signal,
        onProgress: (e) => {
          if (e.type === 'step' && !e.skipped) record.steps.push({ step: e.step, loss: e.loss });
          if (e.type === 'epoch') {
            record.epochs.push({ epoch: record.epochs.length, step: record.steps.at(-1)?.step ?? 0, loss: e.loss, accuracy: e.valAccuracy });
            $('train-status').textContent = `Epoch ${record.epochs.length}/${epochs}: loss ${e.loss.toFixed(3)}, accuracy on the examples ${(100 * e.valAccuracy).toFixed(0)} %`;
          }
          scheduleChart();
        },
      });
    } catch (e) {
      if (!(e instanceof ek.CancelledError)) throw e;
      record.stopped = true; // the steps taken so far count: the head is used as it is
    }
    if (!record.steps.length) throw new Error('Training stopped before its first step; nothing to classify with.');
    const bytes = await tuner.exportOnnx();
    tunedBytes = bytes.slice();
    record.ms = performance.now() - t0;
    await useClassifier(bytes, names, 'trained');
    record.done = true;
    const last = record.epochs.at(-1);
    $('train-status').textContent = `${record.stopped ? 'Stopped' : 'Trained'}: ${record.steps.length} steps in ${(record.ms / 1000).toFixed(1)} s` +
      (last ? `, loss ${last.loss.toFixed(3)}, accuracy on the examples ${(100 * last.accuracy).toFixed(0)} %.` : '.');
  } catch (e) {
    record.error = String(e);
    showError(e);
    status(classifier ? 'Classifying the camera live (with the previous model).' : 'Training failed.');
    demo.phase = classifier ? 'classifying' : 'collect';
  } finally {
    await tuner?.dispose().catch(() => undefined);
    $('stop').disabled = true;
    $('collect').disabled = false;
    updateCounts();
  }
}

// ---- classifying -------------------------------------------------------------------------------------------

/** Makes `bytes` the live classifier (replacing the previous one) and starts the live loop. */
async function useClassifier(bytes, names, source) {
  const next = await worker.createSession(bytes, { backend: 'webgpu', queue: 'latest-only', priority: 'user-blocking' });
  const input = next.inputMetadata[0];
  const dims = input?.shape ?? [];
  const classes = next.outputMetadata[0]?.shape?.[1];
  if (next.inputNames.length !== 1 || dims.length !== 4 || dims[1] !== 3 || (typeof dims[2] === 'number' && dims[2] !== prep.size) || typeof classes !== 'number') {
    await next.release();
    throw new ek.InvalidArgumentError(
      `This model is not a classifier for this demo: it needs one float32 image input [N, 3, ${prep.size}, ${prep.size}] and one output [N, classes]; ` +
      `it has inputs ${next.inputNames.join(', ')} ${JSON.stringify(dims)} and output ${JSON.stringify(next.outputMetadata[0]?.shape)}.`,
    );
  }
  const labels = names && names.length === classes ? names : Array.from({ length: classes }, (_, i) => demo.classes[i]?.name ?? `Class ${i + 1}`);
  const old = classifier;
  classifier = next;
  demo.model = { source, classes: labels };
  demo.phase = 'classifying';
  $('download').disabled = source !== 'trained';
  $('model-status').textContent = source === 'trained'
    ? `Classifying with the head just trained (${labels.length} classes).`
    : `Classifying with the loaded model (${labels.length} classes: ${labels.join(', ')}).`;
  await old?.release().catch(() => undefined);
  status(demo.camera ? 'Classifying the camera live.' : 'Model ready (no camera to classify).');
  startLoop();
}

let looping = false;
let inFlight = 0;
let nextId = 0;

function startLoop() {
  if (looping || !demo.camera) return;
  looping = true;
  const tick = () => {
    // Two at most: the one running and the newest waiting (latest-only replaces a waiting one anyway).
    if (classifier && inFlight < 2 && video.readyState >= 2) {
      inFlight++;
      classifyFrame().finally(() => { inFlight--; });
    }
    video.requestVideoFrameCallback(tick);
  };
  video.requestVideoFrameCallback(tick);
}

async function classifyFrame() {
  const session = classifier;
  const labels = demo.model.classes;
  const model = demo.model.source;
  const frame = await createImageBitmap(video);
  try {
    const t0 = performance.now();
    // A clone crosses to the worker; the page keeps `frame` in demo.predictions (what was classified).
    const out = await session.run({ image: ek.Tensor.fromImage(frame, prep) }, { priority: 'user-blocking', copy: true });
    const logits = Array.from(out[session.outputNames[0]].data);
    const probs = softmax(logits);
    const top = probs.indexOf(Math.max(...probs));
    demo.classified++;
    demo.predictions.push({ id: nextId++, frame, probs, logits, top, label: labels[top], model, ms: performance.now() - t0 });
    while (demo.predictions.length > RECENT) demo.predictions.shift().frame.close();
    showPrediction(labels, probs, top, performance.now() - t0);
  } catch (e) {
    frame.close();
    if (e instanceof ek.CancelledError) demo.superseded++;
    else if (!(e instanceof ek.SessionReleasedError)) showError(e); // a released session: replaced by a new model
  }
}

function showPrediction(labels, probs, top, ms) {
  $('prediction').textContent = `${labels[top]} ${(100 * probs[top]).toFixed(0)} % · ${ms.toFixed(0)} ms`;
  const list = $('probs');
  if (list.children.length !== labels.length) {
    list.replaceChildren(...labels.map(() => {
      const li = document.createElement('li');
      li.innerHTML = '<span class="name"></span><div><div class="bar"></div></div><span class="pct"></span>';
      return li;
    }));
  }
  labels.forEach((name, i) => {
    const li = list.children[i];
    li.querySelector('.name').textContent = name;
    li.querySelector('.bar').style.width = `${(100 * probs[i]).toFixed(1)}%`;
    li.querySelector('.pct').textContent = `${(100 * probs[i]).toFixed(0)} %`;
  });
}

function download() {
  if (!tunedBytes) return;
  const url = URL.createObjectURL(new Blob([tunedBytes], { type: 'application/octet-stream' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = 'edgekit-transfer.onnx';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function loadFile(file) {
  $('error').textContent = '';
  try {
    const bytes = new Uint8Array(await file.arrayBuffer());
    await useClassifier(bytes, demo.classes.map((c) => c.name), 'file');
    demo.model.file = file.name;
  } catch (e) {
    showError(e);
  }
}

// ---- start -------------------------------------------------------------------------------------------------

function showError(e) {
  const msg = `${e?.name ?? 'Error'}: ${e?.message ?? e}`;
  demo.error = msg;
  fail(msg);
}

async function startCamera() {
  video = $('camera');
  if (!navigator.mediaDevices?.getUserMedia) throw new Error('no getUserMedia');
  // The rear camera on phones; any camera elsewhere.
  const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: { ideal: 'environment' } }, audio: false });
  video.srcObject = stream;
  await new Promise((resolve) => (video.readyState >= 2 ? resolve() : video.addEventListener('loadeddata', resolve, { once: true })));
  await video.play().catch(() => undefined);
}

async function main() {
  if (!navigator.gpu || !(await navigator.gpu.requestAdapter())) {
    fail('WebGPU is not available in this browser. Use a recent Chrome or Edge (or Safari Technology Preview / Firefox Nightly with WebGPU enabled), on a device with WebGPU support, and reload.');
    status('Stopped.');
    demo.error = 'no-webgpu';
    return;
  }
  const progress = $('progress');
  ek = await import(new URL('../../dist/browser/edgekit.js', import.meta.url).href);
  // The backbone's preprocessing (tests/fixtures/camera/meta.json); another backbone (?model=) gets ImageNet's at 224.
  const meta = modelParam ? { size: 224 } : await (await fetch(new URL('meta.json', fixtures))).json();
  // The centre square, as the camera demo crops: resized and normalized in the same WGSL dispatch.
  prep = { crop: 'center', size: meta.size, mean: meta.mean ?? IMAGENET.mean, std: meta.std ?? IMAGENET.std };
  status('Starting the worker…');
  worker = await ek.createWorker();
  status('Loading the backbone…');
  backbone = await worker.createSession(modelParam ? new URL(modelParam, location.href).href : new URL('camera-cnn.onnx', fixtures).href, {
    backend: 'webgpu',
    onProgress: (p) => {
      if (p.phase === 'fetch') {
        status(`Loading the backbone… ${(p.loaded / 1024).toFixed(0)} / ${p.total ? (p.total / 1024).toFixed(0) : '?'} KiB`);
        if (p.total) progress.value = 0.5 * (p.loaded / p.total);
      } else {
        status(`Compiling GPU pipelines… ${p.done} / ${p.total}`);
        progress.value = 0.5 + 0.4 * (p.done / Math.max(1, p.total));
      }
    },
  });
  pixels = await worker.createSession(new URL('pixels.onnx', import.meta.url).href, { backend: 'cpu' });
  progress.value = 0.9;
  status('Starting the camera…');
  try {
    await startCamera();
    demo.camera = true;
  } catch (e) {
    video = $('camera');
    fail(`No camera is available (${e?.name === 'NotAllowedError' ? 'access was refused' : e?.message ?? e}). Allow camera access and reload, or drop images on a class (or pick them with "Images…") to train and try the model.`);
  }
  progress.value = 1;
  for (const name of ['Class 1', 'Class 2', 'Class 3']) addClass(name);
  $('add-class').onclick = () => addClass(`Class ${demo.classes.length + 1}`);
  $('train').onclick = () => void train();
  $('stop').onclick = () => stopTraining?.();
  $('download').onclick = download;
  $('load-onnx').onchange = (e) => { const f = e.target.files[0]; if (f) void loadFile(f); e.target.value = ''; };
  $('collect').disabled = false;
  $('train-controls').disabled = false;
  $('load-onnx').disabled = false;
  updateCounts();
  drawChart();
  window.addEventListener('resize', scheduleChart);
  demo.phase = 'collect';
  demo.ready = true;
  // Debugging and tests: the float32 input a frame becomes (the same conversion the classifier's runs do).
  demo.inputOf = async (frame) => Array.from(await toInput(frame));
  status(demo.camera ? 'Ready: record examples for each class.' : 'Ready (no camera): drop images on each class.');
}

main().catch((e) => {
  showError(e);
  status('Stopped.');
});
