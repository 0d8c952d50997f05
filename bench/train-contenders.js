// Runs inside a bench page (bench/page.html, which counts GPU buffer bytes). One contender trains one case
// (bench/train-cases.mjs) for `epochs` epochs in a single fit() call, with the same data, labels, initial trainable
// weights, batch size, batch order (no shuffling) and Adam settings for every contender. Every step reads its loss
// back (EdgeKit's step event, TF.js's onBatchEnd logs), so a step's time is its whole work, finished.
// Returns timestamps turned into plain numbers; the Node side computes medians and ratios.
export async function runTrainContender(name, spec, epochs) {
  const blob = async (key) => (await fetch(`/__bench/${key}`)).arrayBuffer();
  const f32 = async (key) => new Float32Array(await blob(key));
  const labels = new Int32Array(await blob(spec.labels));
  const t0 = performance.now();
  const run = name.startsWith('edgekit-') ? await edgekit(name.slice(8), spec, f32, labels) : await tfjs(name.slice(5), spec, f32, labels);
  const ready = performance.now();
  const steps = []; // [time, loss] at the end of every step
  const epochEnds = [];
  await run.fit(epochs, (loss) => steps.push([performance.now(), loss]), () => epochEnds.push(performance.now()));
  const perEpoch = steps.length / epochs;
  const stepTimes = steps.map(([t], i) => t - (i ? steps[i - 1][0] : ready));
  const epochTimes = epochEnds.map((t, i) => t - (i ? epochEnds[i - 1] : ready));
  await run.dispose?.();
  return {
    setup: ready - t0, firstStep: stepTimes[0], firstEpoch: epochTimes[0],
    steps: stepTimes.slice(perEpoch), epochs: epochTimes.slice(1), // warm: every epoch after the first
    stepsPerEpoch: perEpoch, losses: steps.map(([, l]) => l), peakGpuBytes: globalThis.__gpuMem.peak, backend: run.backend,
  };
}

async function edgekit(backend, spec, f32, labels) {
  const ek = await import('/dist/browser/edgekit.js');
  const e = spec.edgekit;
  const bytes = new Uint8Array(await (await fetch(e.model)).arrayBuffer());
  const session = await ek.InferenceSession.create(bytes, { backend });
  const tuner = await ek.FineTuner.create(session, {
    trainFrom: e.trainFrom, newHead: { classes: spec.classes }, loss: 'cross_entropy',
    optimizer: ek.adam({ lr: spec.lr, betas: spec.betas, eps: spec.eps }),
  });
  const weights = {};
  for (const [k, w] of Object.entries(e.weights)) weights[k] = new ek.Tensor('float32', await f32(w.blob), w.dims);
  await tuner.setWeights(weights);
  const inputs = new ek.Tensor('float32', await f32(e.data), e.dims);
  const y = new ek.Tensor('int64', BigInt64Array.from(labels, BigInt), [labels.length]);
  return {
    backend,
    fit: (epochs, onStep, onEpoch) => tuner.fit({ inputs, labels: y }, {
      epochs, batchSize: spec.batchSize, shuffle: false,
      onProgress: (p) => (p.type === 'step' ? onStep(p.loss) : onEpoch()),
    }),
    dispose: async () => { tuner.dispose(); await session.release(); },
  };
}

async function tfjs(backend, spec, f32, labels) {
  await script('/node_modules/@tensorflow/tfjs/dist/tf.min.js');
  if (backend === 'webgpu') await script('/node_modules/@tensorflow/tfjs-backend-webgpu/dist/tf-backend-webgpu.min.js');
  const tf = globalThis.tf;
  if (!(await tf.setBackend(backend))) throw new Error(`TF.js backend '${backend}' did not initialize`);
  await tf.ready();
  const t = spec.tfjs;
  const model = tf.sequential();
  for (const l of t.layers) {
    const { type, weights, ...config } = l;
    model.add(tf.layers[type](config));
  }
  const set = [];
  for (const [i, l] of t.layers.entries()) {
    if (!l.weights) continue;
    const ws = await Promise.all(l.weights.map(async (w) => tf.tensor(await f32(w.blob), w.dims)));
    model.layers[i].setWeights(ws);
    set.push(...ws);
  }
  set.forEach((w) => w.dispose());
  const classes = spec.classes;
  // Categorical cross-entropy on logits, mean over the batch (EdgeKit's / PyTorch's 'cross_entropy'). The layers
  // API's own sparse loss takes probabilities, and fit() accepts class-id targets only for that loss, so the labels
  // are one-hot encoded once, here, before any timing.
  const loss = (yTrue, yPred) => tf.losses.softmaxCrossEntropy(yTrue, yPred);
  model.compile({ optimizer: tf.train.adam(spec.lr, spec.betas[0], spec.betas[1], spec.eps), loss });
  const x = tf.tensor(await f32(t.data), t.dims);
  const y = tf.tidy(() => tf.oneHot(tf.tensor1d(labels, 'int32'), classes).toFloat());
  return {
    backend: tf.getBackend(),
    fit: (epochs, onStep, onEpoch) => model.fit(x, y, {
      epochs, batchSize: spec.batchSize, shuffle: false, yieldEvery: 'never', verbose: 0,
      // A custom callback's logs are resolved (the loss read back) before it is called.
      callbacks: { onBatchEnd: (_, logs) => onStep(logs.loss), onEpochEnd: () => onEpoch() },
    }),
    dispose: () => { x.dispose(); y.dispose(); model.dispose(); },
  };
}

function script(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error(`failed to load ${src}`));
    document.head.append(s);
  });
}
