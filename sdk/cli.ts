/**
 * `edgekit` command line (Node): inspect a model, or run it on given or seeded-random inputs.
 *   edgekit inspect model.onnx [--backend cpu]
 *   edgekit run model.onnx [--backend cpu] [--input name=file.f32] [--dim sym=value] [--runs N]
 *   edgekit profile model.onnx [--input ...] [--dim ...] [--runs N]   (WebGPU: GPU time per dispatch and per op)
 *   edgekit quantize in.onnx out.onnx --mode int8 --calibration data.npy   (sdk/cli-quantize.ts)
 *   edgekit finetune model.onnx out.onnx --inputs x.f32 --labels y.u8 --classes 5   (sdk/cli-finetune.ts)
 */
import { readFile } from 'node:fs/promises';
import { EdgeKitError, InferenceSession, Tensor, type Backend, type SessionValue } from './node.js';
import { QUANTIZE_USAGE, quantizeCommand } from './cli-quantize.js';
import { loadBar, runsBar } from './cli-progress.js';
import { FINETUNE_USAGE, finetuneCommand } from './cli-finetune.js';

const USAGE = `usage:
  edgekit inspect <model.onnx> [--backend cpu|webgpu]
  edgekit run <model.onnx> [--backend cpu|webgpu] [--input name=file.bin]... [--dim symbol=value]... [--runs N] [--weights float16]
  edgekit profile <model.onnx> [--input name=file.bin]... [--dim symbol=value]... [--runs N] [--weights float16]
    (WebGPU with timestamp queries: GPU time per dispatch, the median of N profiled runs, and totals per op)
${QUANTIZE_USAGE}
${FINETUNE_USAGE}
Raw input files hold the input's dtype little-endian; inputs not given get seeded random values.
--weights float16 keeps large matrix weights in half precision on the GPU (SessionOptions.weightPrecision).`;

interface Args { cmd?: string; model?: string; backend: Backend; inputs: Record<string, string>; dims: Record<string, number>; runs: number; weights?: 'float32' | 'float16' }

function parse(argv: string[]): Args {
  const a: Args = { backend: 'cpu', inputs: {}, dims: {}, runs: 1 };
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value`);
      return x;
    };
    if (k === '--backend') a.backend = v() as Backend;
    else if (k === '--runs') a.runs = Math.max(1, Number(v()));
    else if (k === '--weights') a.weights = v() as Args['weights'];
    else if (k === '--input') { const [n, f] = v().split('='); a.inputs[n!] = f!; }
    else if (k === '--dim') { const [n, d] = v().split('='); a.dims[n!] = Number(d); }
    else if (k === '-h' || k === '--help') a.cmd = 'help';
    else rest.push(k);
  }
  a.cmd ??= rest[0];
  a.model = rest[1];
  return a;
}

function mulberry32(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function makeInput(session: InferenceSession, i: number, a: Args): Promise<Tensor> {
  const meta = session.inputMetadata[i]!;
  if (!meta.isTensor) throw new Error(`input '${meta.name}' is a ${meta.kind} value; the CLI feeds tensors only (the SDK takes arrays of Tensors and null)`);
  const dims = meta.shape.map((d) => (typeof d === 'number' ? d : a.dims[d] ?? 1));
  const n = dims.reduce((x, y) => x * y, 1);
  const file = a.inputs[meta.name];
  if (file) {
    const buf = await readFile(file);
    const ctor = { float32: Float32Array, int32: Int32Array, int64: BigInt64Array, uint8: Uint8Array, int8: Int8Array, bool: Uint8Array } as const;
    const C = ctor[meta.type as keyof typeof ctor];
    if (!C) throw new Error(`--input for ${meta.type} inputs is not supported by the CLI`);
    const copy = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
    return new Tensor(meta.type, new C(copy), dims);
  }
  const rnd = mulberry32(1234 + i);
  if (meta.type === 'float32') return new Tensor('float32', Float32Array.from({ length: n }, () => rnd() * 2 - 1), dims);
  if (meta.type === 'int64') return new Tensor('int64', BigInt64Array.from({ length: n }, () => BigInt(Math.floor(rnd() * 10))), dims);
  if (meta.type === 'int32') return new Tensor('int32', Int32Array.from({ length: n }, () => Math.floor(rnd() * 10)), dims);
  throw new Error(`cannot make a random ${meta.type} input; pass --input ${meta.name}=file`);
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'quantize') return quantizeCommand(argv.slice(1));
  if (argv[0] === 'finetune') return finetuneCommand(argv.slice(1));
  const a = parse(argv);
  if (!a.cmd || a.cmd === 'help' || !a.model || !['inspect', 'run', 'profile'].includes(a.cmd)) {
    console.log(USAGE);
    return a.cmd === 'help' ? 0 : 2;
  }
  if (a.cmd === 'profile') a.backend = 'webgpu';
  const t0 = performance.now();
  const loading = loadBar(a.model);
  const session = await InferenceSession.create(a.model, { backend: a.backend, onProgress: loading.onProgress, ...(a.weights ? { weightPrecision: a.weights } : {}) }).finally(loading.stop);
  const tLoad = performance.now() - t0;
  if (a.cmd === 'inspect') {
    const r = session.report();
    console.log(`model ${a.model}: opset ${r.opset}, producer '${r.producer}', ${r.nodes.length} nodes after optimization ` +
      `(${r.optimizations.nodesBefore} before; ${r.optimizations.folded} folded, ${r.optimizations.convBn} Conv+BN fused), weights ${(r.weightBytes / 1024).toFixed(1)} KiB`);
    // Sequences and optionals show their kind around the element type (sdk/values.ts).
    const fmt = (m: (typeof session.inputMetadata)[number]) => (m.isTensor ? `${m.type}[${m.shape.join(', ')}]` : `${m.kind}(${m.type}[${m.shape.join(', ')}])`);
    for (const m of session.inputMetadata) console.log(`  input  ${m.name}: ${fmt(m)}`);
    for (const m of session.outputMetadata) console.log(`  output ${m.name}: ${fmt(m)}`);
    for (const n of r.nodes) {
      const kernels = n.kernels ? `  [${n.kernels.join(' ')}]` : '';
      console.log(`  ${n.backend.padEnd(6)} ${n.op.padEnd(22)} ${n.name}  -> ${n.outputs.map((o) => `${o.dtype}[${o.shape?.join(',') ?? '?'}]`).join(', ')}${kernels}`);
    }
    if (r.gpu) {
      const g = r.gpu;
      const mib = (b: number) => (b < 2 ** 20 ? `${(b / 1024).toFixed(1)} KiB` : `${(b / 2 ** 20).toFixed(2)} MiB`);
      console.log(`webgpu plan for ${g.signature}: ${g.dispatches} dispatches, ${g.pipelines} pipelines; activations ${mib(g.activationBytes)} ` +
        `(liveness lower bound ${mib(g.activationLowerBound)}); needs ${Object.entries(g.requiredLimits).map(([k, v]) => `${k} >= ${v}`).join(', ')}` +
        `${g.features.length ? `, features ${g.features.join(', ')}` : ''}; adapter ${g.adapter.vendor} ${g.adapter.architecture}${g.adapter.f16 ? ' (shader-f16)' : ''}`);
    }
    return 0;
  }
  const feeds: Record<string, Tensor> = {};
  for (let i = 0; i < session.inputNames.length; i++) feeds[session.inputNames[i]!] = await makeInput(session, i, a);
  if (a.cmd === 'profile') {
    const runs: Awaited<ReturnType<InferenceSession['profile']>>[] = [];
    const bar = runsBar(a.runs, 'profile');
    for (let r = 0; r < a.runs; r++) {
      runs.push(await session.profile(feeds));
      bar.tick();
    }
    bar.stop();
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;
    const rows = runs[0]!.map((d, i) => ({ ...d, ms: median(runs.map((r) => r[i]!.ms)) }));
    const total = rows.reduce((s, r) => s + r.ms, 0);
    for (const r of rows) {
      console.log(`${r.ms.toFixed(3).padStart(9)} ms ${((100 * r.ms) / total).toFixed(1).padStart(5)}%  ${r.op.padEnd(18)} ${r.node}  [${r.workgroups.join('x')}] ${r.kernel}`);
    }
    const byOp = new Map<string, { ms: number; n: number }>();
    for (const r of rows) {
      const o = byOp.get(r.op) ?? { ms: 0, n: 0 };
      byOp.set(r.op, { ms: o.ms + r.ms, n: o.n + 1 });
    }
    console.log(`\nper op (median of ${a.runs} profiled run${a.runs > 1 ? 's' : ''}, ${rows.length} dispatches, ${total.toFixed(2)} ms GPU in all):`);
    for (const [op, o] of [...byOp].sort((x, y) => y[1].ms - x[1].ms)) {
      console.log(`${o.ms.toFixed(2).padStart(10)} ms ${((100 * o.ms) / total).toFixed(1).padStart(5)}%  ${op} x${o.n}`);
    }
    return 0;
  }
  const times: number[] = [];
  let out: Record<string, SessionValue> = {};
  const bar = runsBar(a.runs, 'run');
  for (let r = 0; r < a.runs; r++) {
    const t = performance.now();
    out = await session.run<Record<string, SessionValue>>(feeds);
    times.push(performance.now() - t);
    bar.tick();
  }
  bar.stop();
  // A sequence output prints one line per element, an empty optional as null.
  const lines = Object.entries(out).flatMap(([name, v]): [string, Tensor | null][] => (Array.isArray(v) ? v.map((t, k): [string, Tensor] => [`${name}[${k}]`, t]) : [[name, v]]));
  for (const [name, t] of lines) {
    if (!t) {
      console.log(`${name}: null (empty optional)`);
      continue;
    }
    const head = Array.from(t.data as ArrayLike<number | bigint>).slice(0, 8).map((v) => (typeof v === 'number' ? +v.toPrecision(5) : String(v)));
    console.log(`${name}: ${t.type}[${t.dims.join(', ')}] ${JSON.stringify(head)}${t.size > 8 ? ' ...' : ''}`);
  }
  times.sort((x, y) => x - y);
  console.log(`load ${tLoad.toFixed(1)} ms, first run ${times.length === 1 ? times[0]!.toFixed(2) : '-'} ms, median of ${a.runs}: ${times[times.length >> 1]!.toFixed(2)} ms (${a.backend})`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof EdgeKitError) console.error(`edgekit: ${e.name} [${e.code}]: ${e.message}`);
    else console.error(`edgekit: ${(e as Error)?.message ?? e}`);
    process.exit(1);
  },
);
