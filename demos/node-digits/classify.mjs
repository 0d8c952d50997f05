// Classifies the repo's bundled handwritten digits (sklearn's load_digits test split) with the bundled digits CNN,
// using only the built SDK, as a user would: `import { InferenceSession, Tensor } from 'edgekit'`.
// Usage: node demos/node-digits/classify.mjs [--backend auto|cpu|webgpu] [--batch N]
// --backend auto (the default) asks for WebGPU and, when this machine has none, says why and uses the CPU backend:
// the demo's choice, made out loud. The SDK itself never falls back.
import { readFile } from 'node:fs/promises';
import { InferenceSession, Tensor } from 'edgekit';

const here = new URL('../../tests/fixtures/digits/', import.meta.url);
const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const wanted = opt('--backend', 'auto');
const batch = Number(opt('--batch', '64'));

const meta = JSON.parse(await readFile(new URL('meta.json', here), 'utf8'));
const imagesBuf = await readFile(new URL('test-images.f32', here));
const images = new Float32Array(imagesBuf.buffer, imagesBuf.byteOffset, imagesBuf.byteLength / 4);
const labels = new Uint8Array(await readFile(new URL('test-labels.u8', here)));
const n = labels.length;

const modelPath = new URL('digits-cnn.onnx', here).pathname;
let backend = wanted === 'auto' ? 'webgpu' : wanted;
let t0 = performance.now();
let session;
try {
  session = await InferenceSession.create(modelPath, { backend });
} catch (e) {
  if (wanted !== 'auto' || e.name !== 'DeviceError') throw e;
  console.log(`WebGPU is not available here (${e.code}: ${e.message.split('. ')[0]}); using the CPU backend.`);
  backend = 'cpu';
  t0 = performance.now();
  session = await InferenceSession.create(modelPath, { backend });
}
const tLoad = performance.now() - t0;

const predictions = new Uint8Array(n);
const batchTimes = [];
for (let start = 0; start < n; start += batch) {
  const count = Math.min(batch, n - start);
  const input = new Tensor('float32', images.subarray(start * 64, (start + count) * 64), [count, 1, 8, 8]);
  const t = performance.now();
  const { logits } = await session.run({ input });
  batchTimes.push((performance.now() - t) / count);
  for (let i = 0; i < count; i++) {
    const row = logits.data.subarray(i * 10, i * 10 + 10);
    predictions[start + i] = row.indexOf(Math.max(...row));
  }
}
let correct = 0;
for (let i = 0; i < n; i++) correct += predictions[i] === labels[i] ? 1 : 0;

const show = 16;
console.log(`EdgeKit digits demo — backend ${backend}, ${n} test digits from sklearn's load_digits`);
console.log(`first ${show}: predicted ${[...predictions.subarray(0, show)].join(' ')}`);
console.log(`          actual    ${[...labels.subarray(0, show)].join(' ')}`);
console.log(`accuracy ${(100 * correct / n).toFixed(2)}% (${correct}/${n}); recorded at training time in PyTorch: ${(100 * meta.test_accuracy).toFixed(2)}%`);
batchTimes.sort((a, b) => a - b);
console.log(`load ${tLoad.toFixed(1)} ms; median ${(batchTimes[batchTimes.length >> 1] * 1000).toFixed(1)} µs per image (batches of ${batch})`);
await session.release();
