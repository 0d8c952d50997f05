/**
 * `edgekit finetune <model.onnx> <out.onnx> --inputs x.f32 --labels y.u8 [--classes N] ...`: FineTuner from the
 * command line, with progress bars for loading and for each epoch's steps, a line of metrics per epoch, and the
 * tuned model exported as ONNX.
 *
 * Data, raw little-endian files in example order: `--inputs` float32 values of the model's (single) input, batch
 * first; the example count is the file's size over one example's elements (the input's other dims must be fixed).
 * `--labels`: `.u8` one byte per example, otherwise int64 class indices. `--classes N` replaces the classifier head
 * by a fresh N-class one; `--train-from <node>` trains from that node on instead.
 */
import { readFile, writeFile } from 'node:fs/promises';
import cliProgress from 'cli-progress';
import { loadBar } from './cli-progress.js';
import { adam, FineTuner, InferenceSession, InvalidArgumentError, Tensor, type FitProgress } from './node.js';

export const FINETUNE_USAGE = `  edgekit finetune <model.onnx> <out.onnx> --inputs <x.f32> --labels <y.u8|y.i64> [--classes N] [--train-from node]
      [--epochs 3] [--batch 32] [--lr 0.001] [--validation 0.2] [--backend cpu|webgpu]`;

export async function finetuneCommand(argv: string[]): Promise<number> {
  const pos: string[] = [];
  const o: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    if (!k.startsWith('--')) pos.push(k);
    else {
      const v = argv[++i];
      if (v === undefined) throw new InvalidArgumentError(`${k} needs a value`);
      o[k.slice(2)] = v;
    }
  }
  const [model, out] = pos;
  if (!model || !out || !o.inputs || !o.labels) {
    console.log(`usage:\n${FINETUNE_USAGE}`);
    return 2;
  }
  const backend = (o.backend ?? 'cpu') as 'cpu' | 'webgpu';
  const loading = loadBar(model);
  const session = await InferenceSession.create(model, { backend, onProgress: loading.onProgress }).finally(loading.stop);
  const meta = session.inputMetadata[0]!;
  if (session.inputNames.length !== 1 || meta.type !== 'float32') throw new InvalidArgumentError('edgekit finetune takes models with one float32 input; use the SDK for others.');
  const rest = meta.shape.slice(1);
  if (rest.some((d) => typeof d !== 'number')) throw new InvalidArgumentError(`The input's dims after the batch must be fixed, got [${meta.shape.join(', ')}].`);
  const per = (rest as number[]).reduce((a, b) => a * b, 1);
  const raw = await readFile(o.inputs);
  const x = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const n = x.length / per;
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`${o.inputs} holds ${x.length} floats, not a whole number of ${per}-float examples.`);
  const lraw = await readFile(o.labels);
  const labels = o.labels.endsWith('.u8') ? BigInt64Array.from(lraw, (v) => BigInt(v)) : new BigInt64Array(lraw.buffer.slice(lraw.byteOffset, lraw.byteOffset + lraw.byteLength));
  if (labels.length !== n) throw new InvalidArgumentError(`${o.labels} has ${labels.length} labels for ${n} examples.`);
  // The last `--validation` fraction of the examples (in file order) is held out.
  const nVal = Math.floor(n * Number(o.validation ?? 0));
  const part = (a: number, b: number) => ({ inputs: new Tensor('float32', x.slice(a * per, b * per), [b - a, ...(rest as number[])]), labels: new Tensor('int64', labels.slice(a, b), [b - a]) });
  const tuner = await FineTuner.create(session, {
    ...(o.classes ? { newHead: { classes: Number(o.classes) } } : {}),
    ...(o['train-from'] ? { trainFrom: o['train-from'] } : {}),
    optimizer: adam({ lr: Number(o.lr ?? 1e-3) }),
  });
  const bars = new cliProgress.MultiBar({ format: ' epoch {epoch} [{bar}] {value}/{total} steps, loss {loss}', hideCursor: true, clearOnComplete: false, stream: process.stderr }, cliProgress.Presets.shades_classic);
  let bar: cliProgress.SingleBar | undefined;
  // Printed once the bars are gone (bars draw only on a terminal; these lines always print).
  const epochs: string[] = [];
  const onProgress = (e: FitProgress) => {
    if (e.type === 'step') {
      if (!process.stderr.isTTY) return;
      bar ??= bars.create(e.batches, 0, { epoch: e.epoch + 1, loss: '-' });
      bar.update(e.batch + 1, { loss: e.loss.toFixed(4) });
    } else {
      bar?.stop();
      bar = undefined;
      const val = e.valLoss !== undefined ? `, val loss ${e.valLoss.toFixed(4)}${e.valAccuracy !== undefined ? `, val accuracy ${(100 * e.valAccuracy).toFixed(1)}%` : ''}` : '';
      epochs.push(`epoch ${e.epoch + 1}/${e.epochs}: loss ${e.loss.toFixed(4)}${val}`);
    }
  };
  const t0 = performance.now();
  try {
    await tuner.fit(part(0, n - nVal), { epochs: Number(o.epochs ?? 3), batchSize: Number(o.batch ?? 32), ...(nVal ? { validation: part(n - nVal, n) } : {}), onProgress });
  } finally {
    if (process.stderr.isTTY) bars.stop();
    for (const line of epochs) console.log(line);
  }
  await writeFile(out, await tuner.exportOnnx());
  console.log(`trained ${n - nVal} examples on ${backend} in ${((performance.now() - t0) / 1000).toFixed(1)} s; wrote ${out}`);
  tuner.dispose();
  await session.release();
  return 0;
}
