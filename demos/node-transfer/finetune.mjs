// Transfer learning on the device, with only the built SDK (`import ... from 'edgekit'`), as a user would:
// a digits CNN trained on digits 0-4 (tests/fixtures/transfer/digits04-cnn.onnx) learns digits 5-9 — its frozen
// convolutions feed a fresh 5-class head trained with Adam — then is evaluated on held-out digits and exported as ONNX.
// Usage: node demos/node-transfer/finetune.mjs [--backend auto|cpu|webgpu] [--epochs N] [--out model.onnx]
// --backend auto (the default) asks for WebGPU and, when this machine has none, says why and trains on the CPU.
import { readFile, writeFile } from 'node:fs/promises';
import { adam, FineTuner, InferenceSession, Tensor } from 'edgekit';

const here = new URL('../../tests/fixtures/transfer/', import.meta.url);
const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const wanted = opt('--backend', 'auto');
const epochs = Number(opt('--epochs', '3'));
const out = opt('--out', undefined);

const f32 = async (file) => {
  const b = await readFile(new URL(file, here));
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};
const labelsOf = async (file) => {
  const u8 = new Uint8Array(await readFile(new URL(file, here)));
  return new Tensor('int64', BigInt64Array.from(u8, (v) => BigInt(v)), [u8.length]);
};
const trainLabels = await labelsOf('train-labels.u8');
const heldLabels = await labelsOf('heldout-labels.u8');
const train = { inputs: new Tensor('float32', await f32('train-images.f32'), [trainLabels.size, 1, 8, 8]), labels: trainLabels };
const held = { inputs: new Tensor('float32', await f32('heldout-images.f32'), [heldLabels.size, 1, 8, 8]), labels: heldLabels };

const model = new URL('digits04-cnn.onnx', here).pathname;
let backend = wanted === 'auto' ? 'webgpu' : wanted;
let session;
try {
  session = await InferenceSession.create(model, { backend });
} catch (e) {
  if (wanted !== 'auto' || e.name !== 'DeviceError') throw e;
  console.log(`WebGPU is not available here (${e.code}); training on the CPU backend.`);
  backend = 'cpu';
  session = await InferenceSession.create(model, { backend });
}

// A new 5-class head replaces the 0-4 classifier; everything before it stays frozen (its features are cached).
const tuner = await FineTuner.create(session, { newHead: { classes: 5, seed: 1 }, loss: 'cross_entropy', optimizer: adam({ lr: 1e-2 }), seed: 7 });
console.log(`EdgeKit transfer-learning demo — backend ${backend}; trains ${tuner.trainable.join(', ')} from '${tuner.trainFrom}'`);
const before = await tuner.evaluate(held);
console.log(`held-out digits 5-9 before training: accuracy ${(100 * before.accuracy).toFixed(1)}% (${before.count} images)`);

const t0 = performance.now();
const result = await tuner.fit(train, {
  epochs,
  batchSize: 32,
  validation: held,
  onProgress: (e) => {
    if (e.type === 'epoch') console.log(`epoch ${e.epoch + 1}: loss ${e.loss.toFixed(4)}, held-out accuracy ${(100 * e.valAccuracy).toFixed(1)}%`);
  },
});
const ms = performance.now() - t0;
const after = await tuner.evaluate(held);
console.log(`trained ${result.steps} steps in ${ms.toFixed(0)} ms (${(ms / result.steps).toFixed(1)} ms per step incl. the one-time feature pass); ` +
  `held-out accuracy ${(100 * after.accuracy).toFixed(1)}%; PyTorch's recorded run (another initial head and batch order): 90.6%`);

const bytes = await tuner.exportOnnx();
if (out) {
  await writeFile(out, bytes);
  console.log(`exported the fine-tuned model to ${out} (${(bytes.length / 1024).toFixed(1)} KiB)`);
}
// The exported file is a plain ONNX model: load it again and check it classifies like the tuner.
const reloaded = await InferenceSession.create(bytes, { backend });
const { logits } = await reloaded.run({ input: held.inputs });
const l = await logits.getData();
let correct = 0;
for (let i = 0; i < held.labels.size; i++) {
  const row = Array.from(l.subarray(i * 5, i * 5 + 5));
  if (row.indexOf(Math.max(...row)) === Number(held.labels.data[i])) correct++;
}
console.log(`exported model reloaded: held-out accuracy ${(100 * correct / held.labels.size).toFixed(1)}%`);
tuner.dispose();
await reloaded.release();
await session.release();
