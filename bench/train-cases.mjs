// Node side of the training benchmark (bench/train.mjs): builds each case's data once, outside every timed region,
// so that every contender trains on the same bytes. Models are cut with onnx-proto; the cut features that the
// TF.js contenders train on are computed by onnxruntime-node on the frozen trunk. Returns a spec the pages read
// (bench/train-contenders.js) and the binary blobs the harness serves to them under /__bench/.
import { existsSync, readFileSync } from 'node:fs';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';

const P = onnxProto.onnx;
const FLOAT = 1;
const TRANSFER = 'tests/fixtures/transfer/';
const MOBILENET = 'tests/fixtures/generated/mobilenet_v2.onnx';

export const CASES = {
  /** Issue #4 (a): a new 64 -> 5 head on frozen digits04-cnn features, as in the recorded PyTorch run. */
  transfer: () => transferCase(),
  /** Issue #4 (b): the last conv block of mobilenet_v2 (features.18) + a new 1280 -> 5 head. */
  mobilenet: () => mobilenetCase(),
};

/** Why a case cannot run here, or undefined. */
export function missing(name) {
  if (name === 'mobilenet' && !existsSync(MOBILENET)) return `${MOBILENET} is missing (run npm test once to generate it)`;
  return CASES[name] ? undefined : `unknown case (known: ${Object.keys(CASES).join(', ')})`;
}

async function transferCase() {
  const meta = JSON.parse(readFileSync(TRANSFER + 'head-training.json', 'utf8'));
  const ht = meta.head_training;
  const n = meta.data.train_size;
  const images = f32(readFileSync(TRANSFER + 'train-images.f32')); // [640, 1, 8, 8]
  const labels = Int32Array.from(readFileSync(TRANSFER + 'train-labels.u8')); // [640], 0..4
  const model = readFileSync(TRANSFER + meta.trunk.file);
  const feature = meta.trunk.feature_value;
  // [640, 64]: the trunk (input -> Flatten) run once by onnxruntime-node.
  const features = await runTrunk(model, meta.trunk.input, [n, 1, 8, 8], images, feature);
  const w = Float32Array.from(meta.initial.weight.flat()); // [5, 64] (out, in), PyTorch's initial head
  const b = Float32Array.from(meta.initial.bias);
  return {
    spec: {
      classes: 5, batchSize: ht.batch_size, lr: ht.optimizer.lr, betas: ht.optimizer.betas, eps: ht.optimizer.eps, count: n,
      work: `${n} examples, batch ${ht.batch_size} (${n / ht.batch_size} steps/epoch): Gemm 64->5 + softmax cross-entropy + Adam on 325 parameters`,
      // EdgeKit trains the full model from the 64-d cut: fit() runs the frozen trunk once per call (cached), then
      // every step is the tail alone, which is the TF.js model below.
      edgekit: {
        model: `/${TRANSFER}${meta.trunk.file}`, trainFrom: feature, input: meta.trunk.input, dims: [n, 1, 8, 8], data: 'transfer-images',
        weights: { 'fc.weight': { blob: 'transfer-w', dims: [5, 64] }, 'fc.bias': { blob: 'transfer-b', dims: [5] } },
      },
      tfjs: {
        dims: [n, 64], data: 'transfer-features',
        layers: [{ type: 'dense', units: 5, inputShape: [64], weights: [{ blob: 'transfer-wT', dims: [64, 5] }, { blob: 'transfer-b', dims: [5] }] }],
      },
      labels: 'transfer-labels',
    },
    blobs: {
      'transfer-images': images, 'transfer-features': features, 'transfer-labels': labels,
      'transfer-w': w, 'transfer-wT': transpose2d(w, 5, 64), 'transfer-b': b,
    },
  };
}

async function mobilenetCase() {
  const n = 32, batch = 8, classes = 5;
  const bytes = readFileSync(MOBILENET);
  const model = P.ModelProto.decode(bytes);
  const conv = model.graph.node.find((k) => k.name === '/features/features.18/features.18.0/Conv');
  const cut = conv.input[0]; // [N, 320, 7, 7]: the output of features.17
  const images = seeded(n * 3 * 224 * 224, 42, -1, 1);
  const features = await runTrunk(bytes, 'input', [n, 3, 224, 224], images, cut); // NCHW [32, 320, 7, 7]
  // The tail as its own model, input = the cut value with a free batch dim; ReLU6 stays the file's Clip(x, 0, 6).
  const tail = subModel(model, [{ name: cut, dims: ['N', 320, 7, 7] }], ['output']);
  const init = (name) => model.graph.initializer.find((t) => t.name === name);
  const cw = tensorData(init(conv.input[1])); // [1280, 320, 1, 1] (out, in, kh, kw), BatchNorm already folded
  const cb = tensorData(init(conv.input[2])); // [1280]
  // The new head, as EdgeKit's newHead draws it (PyTorch's Linear init, U(-1/sqrt(fan_in), 1/sqrt(fan_in))), but
  // from our own seed and set on both contenders so they start from the same weights.
  const bound = 1 / Math.sqrt(1280);
  const hw = seeded(classes * 1280, 7, -bound, bound); // [5, 1280]
  const hb = seeded(classes, 8, -bound, bound);
  const labels = learnableLabels(features, n, 320, 49, classes);
  return {
    spec: {
      classes, batchSize: batch, lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, count: n,
      work: `${n} examples [320, 7, 7], batch ${batch} (${n / batch} steps/epoch): Conv 1x1 320->1280 + ReLU6 + GlobalAveragePool + Gemm 1280->5, ` +
        'all trainable (416,645 parameters), softmax cross-entropy + Adam',
      edgekit: {
        model: '/__bench/mobilenet-tail.onnx', trainFrom: cut, input: cut, dims: [n, 320, 7, 7], data: 'mobilenet-features',
        weights: { 'classifier.1.weight': { blob: 'mobilenet-hw', dims: [classes, 1280] }, 'classifier.1.bias': { blob: 'mobilenet-hb', dims: [classes] } },
      },
      tfjs: {
        dims: [n, 7, 7, 320], data: 'mobilenet-features-nhwc',
        layers: [
          { type: 'conv2d', filters: 1280, kernelSize: 1, activation: 'relu6', inputShape: [7, 7, 320],
            weights: [{ blob: 'mobilenet-cw-hwio', dims: [1, 1, 320, 1280] }, { blob: 'mobilenet-cb', dims: [1280] }] },
          { type: 'globalAveragePooling2d' },
          { type: 'dense', units: classes, weights: [{ blob: 'mobilenet-hwT', dims: [1280, classes] }, { blob: 'mobilenet-hb', dims: [classes] }] },
        ],
      },
      labels: 'mobilenet-labels',
    },
    blobs: {
      'mobilenet-tail.onnx': P.ModelProto.encode(tail).finish(),
      'mobilenet-features': features, 'mobilenet-features-nhwc': nchwToNhwc(features, n, 320, 7, 7), 'mobilenet-labels': labels,
      'mobilenet-cw-hwio': transpose2d(cw, 1280, 320), 'mobilenet-cb': cb,
      'mobilenet-hw': hw, 'mobilenet-hwT': transpose2d(hw, classes, 1280), 'mobilenet-hb': hb,
    },
  };
}

/** Runs `bytes` cut down to `input` -> `output` (batch dim freed) on onnxruntime-node; returns the output data. */
async function runTrunk(bytes, input, dims, data, output) {
  const trunk = subModel(P.ModelProto.decode(bytes), [{ name: input, dims: ['N', ...dims.slice(1)] }], [output]);
  const session = await ort.InferenceSession.create(P.ModelProto.encode(trunk).finish());
  const out = await session.run({ [input]: new ort.Tensor('float32', data, dims) });
  const result = Float32Array.from(out[output].data);
  await session.release();
  return result;
}

/**
 * The part of `model` that computes `outputs` from `inputs` (everything else pruned), with the given input shapes
 * ('N' for a free dim) and free-shaped outputs; value_info is dropped (it records the file's batch of 1).
 */
function subModel(model, inputs, outputs) {
  const g = model.graph;
  const stop = new Set(inputs.map((i) => i.name));
  const inits = new Map(g.initializer.map((t) => [t.name, t]));
  const producer = new Map();
  g.node.forEach((k, i) => k.output.forEach((o) => producer.set(o, i)));
  const keep = new Set();
  const todo = [...outputs];
  while (todo.length) {
    const v = todo.pop();
    if (!v || stop.has(v) || inits.has(v)) continue;
    const i = producer.get(v);
    if (i === undefined) throw new Error(`subModel: '${v}' has no producer and is not an input`);
    if (keep.has(i)) continue;
    keep.add(i);
    todo.push(...g.node[i].input);
  }
  const nodes = g.node.filter((_, i) => keep.has(i));
  const used = new Set(nodes.flatMap((k) => k.input));
  const dim = (d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d });
  const info = (name, dims) => ({ name, type: { tensorType: { elemType: FLOAT, ...(dims ? { shape: { dim: dims.map(dim) } } : {}) } } });
  return P.ModelProto.create({
    irVersion: model.irVersion, opsetImport: model.opsetImport, producerName: 'edgekit-bench',
    graph: P.GraphProto.create({
      name: 'cut', node: nodes, initializer: g.initializer.filter((t) => used.has(t.name)),
      input: inputs.map((i) => info(i.name, i.dims)), output: outputs.map((o) => info(o)),
    }),
  });
}

function tensorData(t) {
  if (t.dataType !== FLOAT) throw new Error(`${t.name}: expected float32`);
  return t.rawData?.length ? f32(t.rawData) : Float32Array.from(t.floatData);
}

function f32(buf) {
  const copy = new Uint8Array(buf); // aligned copy
  return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
}

/** [rows, cols] -> [cols, rows]. A 1x1 conv weight [out, in, 1, 1] transposes to HWIO [1, 1, in, out] this way. */
function transpose2d(a, rows, cols) {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

function nchwToNhwc(a, n, c, h, w) {
  const out = new Float32Array(a.length);
  for (let i = 0; i < n; i++) for (let ch = 0; ch < c; ch++) for (let p = 0; p < h * w; p++) out[(i * h * w + p) * c + ch] = a[(i * c + ch) * h * w + p];
  return out;
}

/**
 * Class ids that the tail can learn from these features (random labels would leave the loss flat): the argmax over
 * `classes` interleaved channel groups of the spatially summed features, centred. [n, c, p] -> [n].
 */
function learnableLabels(features, n, c, p, classes) {
  const sums = Array.from({ length: n }, () => new Float64Array(classes));
  for (let i = 0; i < n; i++) for (let ch = 0; ch < c; ch++) for (let q = 0; q < p; q++) sums[i][ch % classes] += features[(i * c + ch) * p + q];
  // Centred per group over the examples, so that every class occurs.
  const mean = Array.from({ length: classes }, (_, k) => sums.reduce((a, r) => a + r[k], 0) / n);
  return Int32Array.from(sums, (r) => { const d = Array.from(r, (v, k) => v - mean[k]); return d.indexOf(Math.max(...d)); });
}

/** Park-Miller (as bench/contenders.js), uniform in [lo, hi). */
function seeded(count, seed, lo, hi) {
  const out = new Float32Array(count);
  let s = seed;
  for (let i = 0; i < count; i++) { s = (s * 16807) % 2147483647; out[i] = lo + (s / 2147483647) * (hi - lo); }
  return out;
}
