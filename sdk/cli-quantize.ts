/**
 * `edgekit quantize in.onnx out.onnx --mode int8 --calibration <dir | file.npy | file.json> [--samples N] ...`:
 * the quantizer (sdk/quantize.ts) from the command line, with a progress bar per phase and the report printed.
 *
 * Calibration data, for a model's inputs (all formats give examples in file order):
 *  - `.npy` (float32/float64/uint8/int64 little-endian, C order): one array for a single-input model. Its first
 *    axis counts examples; each example is fed with a batch of 1 when the array's rank equals the input's rank
 *    (`[N, 1, 28, 28]` for an input `[batch, 1, 28, 28]`), or as a whole when the rank is one more.
 *  - `.json`: an array of examples, each `{ "<input>": { "dims": [...], "data": [...] } }` or with a nested array.
 *  - a directory: its `.npy` and `.json` files in name order, each read as above and concatenated.
 */
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import cliProgress from 'cli-progress';
import type { HostTensor } from '../runtime/ir/tensor.js';
import { formatReport, InferenceSession, InvalidArgumentError, quantize, type QuantizeMode } from './node.js';

export const QUANTIZE_USAGE = `  edgekit quantize <in.onnx> <out.onnx> --mode int8|int8-dynamic|int4-weights|float16
      [--calibration <dir|file.npy|file.json>] [--samples N] [--backend webgpu|cpu] [--method minmax|percentile|entropy]
      [--activations uint8|int8] [--symmetric] [--per-tensor] [--exclude name,OpType,...] [--keep-first-last]
      [--block-size 32] [--keep-io-types false] [--report report.json]`;

type Feeds = Record<string, HostTensor>;

export async function quantizeCommand(argv: string[]): Promise<number> {
  const pos: string[] = [];
  const o: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    if (!k.startsWith('--')) pos.push(k);
    else if (['--symmetric', '--per-tensor', '--keep-first-last'].includes(k)) o[k.slice(2)] = true;
    else {
      const v = argv[++i];
      if (v === undefined) throw new InvalidArgumentError(`${k} needs a value`);
      o[k.slice(2)] = v;
    }
  }
  const [input, output] = pos;
  if (!input || !output || typeof o.mode !== 'string') {
    console.log(`usage:\n${QUANTIZE_USAGE}`);
    return 2;
  }
  const backend = (o.backend ?? 'webgpu') as 'cpu' | 'webgpu';
  const samples = o.samples ? Number(o.samples) : undefined;
  let calibration: Feeds[] | undefined;
  if (typeof o.calibration === 'string') {
    const meta = await InferenceSession.create(input, { backend: 'cpu' });
    calibration = await readCalibration(o.calibration, meta.inputMetadata.map((m) => ({ name: m.name, rank: m.shape.length, dtype: m.type })));
    await meta.release();
    if (samples !== undefined) calibration = calibration.slice(0, samples);
  }
  // noTTYOutput: without it a bar created while output is piped is never started and prints its template.
  const bars = new cliProgress.MultiBar({ format: ' {phase} [{bar}] {value}/{total}', hideCursor: true, clearOnComplete: false, noTTYOutput: true }, cliProgress.Presets.shades_classic);
  const phases = new Map<string, cliProgress.SingleBar>();
  const t0 = performance.now();
  let result;
  try {
    result = await quantize(input, {
      mode: o.mode as QuantizeMode,
      backend,
      calibration,
      samples,
      method: o.method as 'minmax' | undefined,
      activations: o.activations as 'uint8' | undefined,
      symmetric: o.symmetric === true,
      perChannel: o['per-tensor'] !== true,
      exclude: typeof o.exclude === 'string' ? o.exclude.split(',').filter(Boolean) : undefined,
      keepFirstLast: o['keep-first-last'] === true,
      blockSize: o['block-size'] ? Number(o['block-size']) : undefined,
      keepIoTypes: o['keep-io-types'] !== 'false',
      onProgress: (phase, done, total) => {
        let bar = phases.get(phase);
        if (!bar) phases.set(phase, (bar = bars.create(total ?? 0, 0, { phase: phase.padEnd(9) })));
        bar.update(done);
      },
    });
  } finally {
    bars.stop();
  }
  await writeFile(output, result.model);
  console.log(formatReport(result.report));
  if (typeof o.report === 'string') await writeFile(o.report, JSON.stringify(result.report, null, 1));
  console.log(`wrote ${output} (${(result.model.length / 1024).toFixed(1)} KiB) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return 0;
}

interface InputInfo {
  name: string;
  rank: number;
  dtype: string;
}

async function readCalibration(path: string, inputs: InputInfo[]): Promise<Feeds[]> {
  if ((await stat(path)).isDirectory()) {
    const files = (await readdir(path)).filter((f) => ['.npy', '.json'].includes(extname(f))).sort();
    if (!files.length) throw new InvalidArgumentError(`--calibration ${path}: the directory has no .npy or .json files.`);
    const all: Feeds[] = [];
    for (const f of files) all.push(...(await readCalibration(join(path, f), inputs)));
    return all;
  }
  const bytes = new Uint8Array(await readFile(path));
  if (extname(path) === '.json') return fromJson(JSON.parse(new TextDecoder().decode(bytes)), inputs, path);
  if (extname(path) !== '.npy') throw new InvalidArgumentError(`--calibration ${path}: expected a directory, a .npy or a .json file.`);
  if (inputs.length !== 1) throw new InvalidArgumentError(`--calibration ${path}: a .npy file feeds a single-input model; this one has ${inputs.length} inputs (use .json).`);
  const t = readNpy(bytes, path);
  const input = inputs[0]!;
  const per = t.shape.length === input.rank ? [1, ...t.shape.slice(1)] : t.shape.slice(1);
  if (per.length !== input.rank) throw new InvalidArgumentError(`--calibration ${path}: array of shape [${t.shape.join(', ')}] does not fit input '${input.name}' of rank ${input.rank}.`);
  const size = per.reduce((a, b) => a * b, 1);
  const count = t.data.length / size;
  return Array.from({ length: count }, (_, k) => ({ [input.name]: { dtype: 'float32', shape: per, data: t.data.slice(k * size, (k + 1) * size) } }));
}

function fromJson(j: unknown, inputs: InputInfo[], path: string): Feeds[] {
  if (!Array.isArray(j)) throw new InvalidArgumentError(`--calibration ${path}: expected a JSON array of examples.`);
  return j.map((ex: Record<string, unknown>, k) => {
    const feeds: Feeds = {};
    for (const { name } of inputs) {
      const v = ex?.[name] as { dims?: number[]; data?: number[] } | unknown[] | undefined;
      if (!v) throw new InvalidArgumentError(`--calibration ${path}: example ${k} has no '${name}'.`);
      let dims: number[];
      let flat: number[];
      if (Array.isArray(v)) {
        dims = [];
        for (let a: unknown = v; Array.isArray(a); a = a[0]) dims.push(a.length);
        flat = (v as unknown[]).flat(Infinity) as number[];
      } else {
        dims = v.dims ?? [];
        flat = v.data ?? [];
      }
      feeds[name] = { dtype: 'float32', shape: dims, data: Float32Array.from(flat) };
    }
    return feeds;
  });
}

/** NumPy's .npy format (version 1-3): magic, header dict (descr, fortran_order, shape), raw data. */
export function readNpy(b: Uint8Array, path = 'npy'): { shape: number[]; data: Float32Array } {
  if (b[0] !== 0x93 || String.fromCharCode(...b.subarray(1, 6)) !== 'NUMPY') throw new InvalidArgumentError(`${path}: not a .npy file.`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const v1 = b[6] === 1;
  const hlen = v1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const start = (v1 ? 10 : 12) + hlen;
  const header = new TextDecoder().decode(b.subarray(v1 ? 10 : 12, start));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  if (/'fortran_order':\s*True/.test(header)) throw new InvalidArgumentError(`${path}: Fortran-order arrays are not read; save with np.ascontiguousarray.`);
  const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? '').split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const n = shape.reduce((a, c) => a * c, 1);
  const raw = b.slice(start, start + n * ({ '<f4': 4, '<f8': 8, '|u1': 1, '<i8': 8 } as Record<string, number>)[descr ?? '']!).buffer;
  const read: Record<string, () => ArrayLike<number>> = {
    '<f4': () => new Float32Array(raw),
    '<f8': () => new Float64Array(raw),
    '|u1': () => new Uint8Array(raw),
    '<i8': () => Array.from(new BigInt64Array(raw), Number),
  };
  if (!descr || !read[descr]) throw new InvalidArgumentError(`${path}: dtype ${descr} is not read (float32, float64, uint8, int64 are).`);
  return { shape, data: Float32Array.from(read[descr]()) };
}
