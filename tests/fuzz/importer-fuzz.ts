import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { EdgeKitError, InferenceSession, Tensor } from '../../sdk/node.js';
import { CONFORMANCE_ROOT } from '../conformance/harness.js';
import { Rng } from '../helpers/random.js';

/**
 * The importer fuzzer (issue #14): mutates real ONNX models and checks that loading and running each mutant ends,
 * within a time limit, either in a session that runs or in a typed EdgeKitError. Anything else (a TypeError or
 * RangeError from deep inside, an out-of-memory, a hang) is a finding.
 *
 * Two mutators, both driven by one seeded PRNG so a case is reproducible from (seed, index) alone:
 * - structure-aware: the model is decoded with the protobufjs ONNX schema (onnx-proto, as importers/onnx/proto.ts)
 *   into plain objects, edited where the importer makes decisions (fields deleted or set to edge values, tensor
 *   dtypes swapped, dims set to 0/1/negative/huge, raw_data truncated, dangling inputs, cycles, duplicate names,
 *   deeply nested If bodies, absurd attributes, external-data locations outside the folder: '..', absolute paths,
 *   URLs, a symlink out of the folder), then encoded again;
 * - byte-level: bit flips, byte overwrites with edge values, insertions, deletions, truncation and splices of
 *   another seed model, on the encoded bytes.
 * Each case loads from a file in a scratch folder (so external data resolves through the Node resolver, with the
 * symlink planted beside it) with a small maxTensorElements, so an allocation the importer makes before its size
 * check shows up as a RangeError or an out-of-memory rather than passing quietly.
 */

const P = onnxProto.onnx;
type Obj = Record<string, unknown>;

/**
 * 'slow': past the time limit but settled within the grace period after it (four times the limit) — on a loaded
 * machine (CI, SwiftShader) a big seed model can take that long; counted, not a failure. 'hang': not even then.
 */
export type Outcome = 'ran' | 'typed-error' | 'crash' | 'slow' | 'hang';

export interface CaseResult {
  index: number;
  outcome: Outcome;
  /** What the mutator did, for the report and the corpus file name. */
  mutations: string[];
  /** The error's name and message (crash / typed-error). */
  error?: string;
  ms: number;
}

/** Small real models to mutate: repo fixtures under 2 MB and ONNX node conformance models. */
export function seedModels(opts: { conformance?: number } = {}): { name: string; bytes: Uint8Array }[] {
  const root = new URL('../fixtures/', import.meta.url).pathname;
  const out: { name: string; bytes: Uint8Array }[] = [];
  for (const dir of readdirSync(root).sort()) {
    const d = join(root, dir);
    if (!statSync(d).isDirectory()) continue;
    for (const f of readdirSync(d).sort()) {
      if (!f.endsWith('.onnx')) continue;
      const p = join(d, f);
      if (statSync(p).size > 2_000_000) continue; // mobilenet, resnet: seconds per load, the soak covers them
      out.push({ name: `${dir}/${f}`, bytes: new Uint8Array(readFileSync(p)) });
    }
  }
  const want = opts.conformance ?? 120;
  const nodeDir = join(CONFORMANCE_ROOT, 'node');
  let cases: string[] = [];
  try {
    cases = readdirSync(nodeDir).sort();
  } catch {
    cases = []; // the conformance data is a Debian package (scripts/setup-test-env.mjs); fixtures alone still fuzz
  }
  // An even spread over the alphabet (every op family), not the first N.
  const step = Math.max(1, Math.floor(cases.length / Math.max(1, want)));
  for (let i = 0; i < cases.length && out.length < want + 50; i += step) {
    const p = join(nodeDir, cases[i]!, 'model.onnx');
    try {
      out.push({ name: `node/${cases[i]}`, bytes: new Uint8Array(readFileSync(p)) });
    } catch {
      /* a case without a model file */
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Structure-aware mutations on the decoded model (plain objects from P.ModelProto.toObject).

const EDGE_INTS = [0, 1, -1, 2, -2, 3, 255, 65535, 2 ** 31 - 1, -(2 ** 31), 2 ** 32, 2 ** 40, 2 ** 53 - 1, -(2 ** 53 - 1), 1e15];
const EDGE_DIMS = [0, 1, -1, -7, 2 ** 31 - 1, 2 ** 32 + 3, 2 ** 40, 2 ** 53 - 1];
const EDGE_FLOATS = [0, -0, 1, -1, NaN, Infinity, -Infinity, 1e38, -1e38, 1e-45, 0.5];
const EVIL_LOCATIONS = [
  '../outside.bin', '../../../../../../etc/passwd', '/etc/passwd', 'C:\\Windows\\win.ini', 'http://example.com/w.bin',
  'file:///etc/passwd', 'link/passwd', 'sub/../../outside.bin', '', '.', 'inside.bin\u0000.txt', 'inside.bin',
];

interface Site {
  obj: Obj;
  kind: 'model' | 'graph' | 'node' | 'tensor' | 'attr' | 'valueinfo' | 'dim' | 'opset' | 'other';
}

/** Every message object in the tree, with a guess of its kind from its fields. */
function sites(root: Obj): Site[] {
  const out: Site[] = [];
  const seen = new Set<unknown>();
  const walk = (o: unknown, hint: Site['kind']) => {
    if (!o || typeof o !== 'object' || seen.has(o) || ArrayBuffer.isView(o)) return;
    seen.add(o);
    if (Array.isArray(o)) {
      for (const x of o) walk(x, hint);
      return;
    }
    const obj = o as Obj;
    out.push({ obj, kind: hint });
    for (const [k, v] of Object.entries(obj)) {
      const kind: Site['kind'] =
        k === 'graph' || k === 'g' || k === 'graphs' ? 'graph'
          : k === 'node' ? 'node'
            : k === 'initializer' || k === 't' || k === 'tensors' || k === 'values' || k === 'indices' ? 'tensor'
              : k === 'attribute' ? 'attr'
                : k === 'input' || k === 'output' || k === 'valueInfo' ? (Array.isArray(v) && typeof v[0] === 'string' ? 'other' : 'valueinfo')
                  : k === 'dim' ? 'dim'
                    : k === 'opsetImport' ? 'opset'
                      : 'other';
      walk(v, kind);
    }
  };
  walk(root, 'model');
  return out;
}

function graphsOf(m: Obj): Obj[] {
  return sites(m).filter((s) => s.kind === 'graph').map((s) => s.obj);
}

function nodesOf(m: Obj): Obj[] {
  return sites(m).filter((s) => s.kind === 'node').map((s) => s.obj);
}

type Mutator = (m: Obj, r: Rng, other: Obj) => string | undefined;

const pickSite = (m: Obj, r: Rng, kind: Site['kind']) => {
  const s = sites(m).filter((x) => x.kind === kind);
  return s.length ? r.pick(s).obj : undefined;
};

const MUTATORS: Record<string, Mutator> = {
  deleteField(m, r) {
    const s = r.pick(sites(m));
    const keys = Object.keys(s.obj);
    if (!keys.length) return undefined;
    const k = r.pick(keys);
    delete s.obj[k];
    return `delete ${s.kind}.${k}`;
  },
  flipField(m, r) {
    const s = r.pick(sites(m));
    const keys = Object.keys(s.obj);
    if (!keys.length) return undefined;
    const k = r.pick(keys);
    const v = s.obj[k];
    if (typeof v === 'number' || typeof v === 'bigint' || (typeof v === 'object' && v && 'low' in v)) s.obj[k] = r.pick(EDGE_INTS);
    else if (typeof v === 'string') s.obj[k] = r.pick(['', 'x', v + v, '\u0000', 'a'.repeat(r.int(1, 5000)), '../../etc']);
    else if (Array.isArray(v) && v.length && typeof v[0] === 'string') v[r.int(0, v.length - 1)] = r.pick(['', 'missing_value', v[0]]);
    else if (Array.isArray(v) && v.length) v.splice(r.int(0, v.length - 1), 1);
    else if (Array.isArray(v)) return undefined;
    else s.obj[k] = r.pick([0, -1, 'x', []]);
    return `flip ${s.kind}.${k}`;
  },
  swapDtype(m, r) {
    const t = pickSite(m, r, r.next() < 0.6 ? 'tensor' : 'valueinfo');
    if (!t) return undefined;
    const dt = r.int(-1, 24);
    if ('dims' in t || 'dataType' in t) t.dataType = dt;
    else {
      const tt = (t.type as Obj | undefined)?.tensorType as Obj | undefined;
      if (!tt) return undefined;
      tt.elemType = dt;
    }
    return `dtype ${dt}`;
  },
  resizeDims(m, r) {
    const t = pickSite(m, r, 'tensor');
    if (t && Array.isArray(t.dims) && t.dims.length && r.next() < 0.6) {
      const i = r.int(0, t.dims.length - 1);
      t.dims[i] = r.pick(EDGE_DIMS);
      return `tensor dim ${i} = ${String(t.dims[i])}`;
    }
    const d = pickSite(m, r, 'dim');
    if (!d) return undefined;
    d.dimValue = r.pick(EDGE_DIMS);
    delete d.dimParam;
    return `value dim = ${String(d.dimValue)}`;
  },
  truncateRaw(m, r) {
    const ts = sites(m).filter((s) => s.kind === 'tensor' && s.obj.rawData instanceof Uint8Array && (s.obj.rawData as Uint8Array).length > 0);
    if (!ts.length) return undefined;
    const t = r.pick(ts).obj;
    const raw = t.rawData as Uint8Array;
    const n = r.pick([0, 1, raw.length - 1, r.int(0, raw.length)]);
    t.rawData = raw.slice(0, Math.max(0, n));
    return `raw_data ${raw.length} -> ${n}`;
  },
  danglingInput(m, r) {
    const n = nodesOf(m);
    if (!n.length) return undefined;
    const node = r.pick(n);
    const ins = (node.input as string[] | undefined) ?? [];
    node.input = ins;
    if (ins.length && r.next() < 0.7) ins[r.int(0, ins.length - 1)] = `dangling_${r.int(0, 99)}`;
    else ins.push('dangling_extra');
    return 'dangling input';
  },
  cycle(m, r) {
    const g = r.pick(graphsOf(m));
    const nodes = (g?.node as Obj[] | undefined) ?? [];
    if (nodes.length < 1) return undefined;
    const a = r.int(0, nodes.length - 1);
    const b = r.int(a, nodes.length - 1);
    const outs = (nodes[b]!.output as string[] | undefined) ?? [];
    if (!outs.length) return undefined;
    const ins = ((nodes[a]!.input as string[] | undefined) ??= []);
    if (ins.length) ins[r.int(0, ins.length - 1)] = outs[0]!;
    else ins.push(outs[0]!);
    nodes[a]!.input = ins;
    return `cycle ${a} <- ${b}`;
  },
  duplicateNames(m, r) {
    const g = r.pick(graphsOf(m));
    if (!g) return undefined;
    const nodes = (g.node as Obj[] | undefined) ?? [];
    const choice = r.int(0, 3);
    if (choice === 0 && nodes.length >= 2) {
      const a = r.pick(nodes);
      const b = r.pick(nodes);
      b.output = [...((a.output as string[]) ?? [])];
      return 'duplicate producer';
    }
    if (choice === 1 && Array.isArray(g.initializer) && g.initializer.length) {
      g.initializer.push({ ...(r.pick(g.initializer) as Obj) });
      return 'duplicate initializer';
    }
    if (choice === 2 && Array.isArray(g.input) && g.input.length) {
      g.input.push({ ...(r.pick(g.input) as Obj) });
      return 'duplicate graph input';
    }
    if (Array.isArray(g.output) && g.output.length && Array.isArray(g.input) && g.input.length) {
      (g.output[0] as Obj).name = (r.pick(g.input) as Obj).name;
      return 'output named as an input';
    }
    return undefined;
  },
  deepNesting(m, r) {
    const g = m.graph as Obj | undefined;
    if (!g) return undefined;
    const depth = r.pick([8, 64, 400, 3000]);
    const leaf = (): Obj => ({ name: 'leaf', node: [{ opType: 'Identity', input: ['nest_x'], output: ['nest_y'] }], output: [{ name: 'nest_y' }] });
    let inner = leaf();
    // Only then_branch nests (else_branch is a fresh leaf): sharing one body in both would double the encoding per level.
    for (let d = 0; d < depth; d++) {
      inner = {
        name: `lvl${d}`,
        node: [{
          opType: 'If', name: `if${d}`, input: ['nest_c'], output: ['nest_y'],
          attribute: [{ name: 'then_branch', type: 5, g: inner }, { name: 'else_branch', type: 5, g: leaf() }],
        }],
        output: [{ name: 'nest_y' }],
      };
    }
    ((g.node as Obj[] | undefined) ?? (g.node = [])) && (g.node as Obj[]).push(...(inner.node as Obj[]));
    ((g.input as Obj[] | undefined) ?? (g.input = [])) && (g.input as Obj[]).push(
      { name: 'nest_c', type: { tensorType: { elemType: 9, shape: { dim: [] } } } },
      { name: 'nest_x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }] } } } },
    );
    return `nest If x${depth}`;
  },
  absurdAttribute(m, r) {
    const a = pickSite(m, r, 'attr');
    if (!a) return undefined;
    const c = r.int(0, 5);
    if (c === 0) {
      a.i = r.pick(EDGE_INTS);
      a.type = 2;
    } else if (c === 1) {
      a.ints = Array.from({ length: r.pick([0, 1, 3, 9, 100]) }, () => r.pick(EDGE_INTS));
      a.type = 7;
    } else if (c === 2) {
      a.f = r.pick(EDGE_FLOATS);
      a.type = 1;
    } else if (c === 3) a.type = r.int(-2, 30);
    else if (c === 4) {
      a.s = new Uint8Array(r.int(0, 40)).map(() => r.int(0, 255));
      a.type = 3;
    } else {
      a.floats = Array.from({ length: r.int(0, 7) }, () => r.pick(EDGE_FLOATS));
      a.type = 6;
    }
    return `attr ${String(a.name)} c${c}`;
  },
  externalData(m, r) {
    const ts = sites(m).filter((s) => s.kind === 'tensor' && Array.isArray(s.obj.dims));
    if (!ts.length) return undefined;
    const t = r.pick(ts).obj;
    const loc = r.pick(EVIL_LOCATIONS);
    t.dataLocation = 1;
    delete t.rawData;
    delete t.floatData;
    const entries: Obj[] = [{ key: 'location', value: loc }];
    if (r.next() < 0.5) entries.push({ key: 'offset', value: String(r.pick([0, 4, -4, 2 ** 40, 'x'])) });
    if (r.next() < 0.5) entries.push({ key: 'length', value: String(r.pick([0, 4, 16, -1, 2 ** 40, 'nope'])) });
    t.externalData = entries;
    return `external '${loc}'`;
  },
  opsetAndIr(m, r) {
    if (r.next() < 0.5) {
      m.irVersion = r.pick([0, 1, 2, 3, 7, 11, 99, -1]);
      return `ir ${String(m.irVersion)}`;
    }
    const o = pickSite(m, r, 'opset');
    if (!o) return undefined;
    if (r.next() < 0.5) o.version = r.pick([0, -1, 1, 6, 25, 1000, 2 ** 40]);
    else o.domain = r.pick(['ai.onnx.ml', 'com.microsoft', 'x', '', 'ai.onnx']);
    return `opset ${String(o.domain)}:${String(o.version)}`;
  },
  swapNodeOp(m, r, other) {
    const n = nodesOf(m);
    const o = nodesOf(other);
    if (!n.length || !o.length) return undefined;
    const a = r.pick(n);
    const b = r.pick(o);
    a.opType = b.opType;
    if (r.next() < 0.5) a.attribute = b.attribute;
    return `op -> ${String(b.opType)}`;
  },
};

const MUTATOR_NAMES = Object.keys(MUTATORS);

function decodeObj(bytes: Uint8Array): Obj | undefined {
  try {
    return P.ModelProto.toObject(P.ModelProto.decode(bytes), { longs: Number, bytes: Uint8Array as unknown as typeof String, defaults: false }) as Obj;
  } catch {
    return undefined;
  }
}

function encodeObj(m: Obj): Uint8Array {
  return P.ModelProto.encode(P.ModelProto.fromObject(m)).finish();
}

/** Byte-level mutation of an encoded model. */
function mutateBytes(bytes: Uint8Array, r: Rng, other: Uint8Array): { bytes: Uint8Array; what: string } {
  let b = Uint8Array.from(bytes);
  const steps: string[] = [];
  for (let k = r.int(1, 4); k > 0; k--) {
    const c = r.int(0, 6);
    const at = b.length ? r.int(0, b.length - 1) : 0;
    if (c === 0 && b.length) {
      b[at] = b[at]! ^ (1 << r.int(0, 7));
      steps.push(`bitflip@${at}`);
    } else if (c === 1 && b.length) {
      b[at] = r.pick([0x00, 0xff, 0x7f, 0x80, 0x08, 0x12, 0x0a]);
      steps.push(`byte@${at}`);
    } else if (c === 2) {
      const ins = Uint8Array.from({ length: r.int(1, 16) }, () => r.int(0, 255));
      b = concat(b.subarray(0, at), ins, b.subarray(at));
      steps.push(`insert@${at}`);
    } else if (c === 3 && b.length) {
      const n = r.int(1, Math.min(64, b.length - at));
      b = concat(b.subarray(0, at), b.subarray(at + n));
      steps.push(`delete@${at}+${n}`);
    } else if (c === 4) {
      b = b.slice(0, at);
      steps.push(`truncate@${at}`);
    } else if (c === 5 && other.length) {
      const from = r.int(0, other.length - 1);
      const n = r.int(1, Math.min(256, other.length - from));
      b = concat(b.subarray(0, at), other.subarray(from, from + n), b.subarray(at));
      steps.push(`splice@${at}`);
    } else if (b.length >= 2) {
      // A varint length prefix made huge: the classic protobuf over-read.
      b[at] = 0xff;
      if (at + 1 < b.length) b[at + 1] = 0xff;
      steps.push(`varint@${at}`);
    }
  }
  return { bytes: b, what: `bytes ${steps.join(',')}` };
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Case `index` of the stream seeded by `seed`: deterministic from (seed, index, seeds) alone. */
export function makeCase(seeds: readonly { name: string; bytes: Uint8Array }[], seed: number, index: number): { bytes: Uint8Array; mutations: string[]; seedName: string } {
  const r = new Rng((seed * 0x9e3779b1 + index * 0x85ebca6b) >>> 0);
  const base = seeds[r.int(0, seeds.length - 1)]!;
  const other = seeds[r.int(0, seeds.length - 1)]!;
  if (r.next() < 0.25) {
    const { bytes, what } = mutateBytes(base.bytes, r, other.bytes);
    return { bytes, mutations: [what], seedName: base.name };
  }
  const m = decodeObj(base.bytes);
  const o = decodeObj(other.bytes) ?? {};
  if (!m) return { bytes: base.bytes, mutations: ['(seed did not decode)'], seedName: base.name };
  const done: string[] = [];
  for (let k = r.int(1, 3); k > 0; k--) {
    const name = r.pick(MUTATOR_NAMES);
    try {
      const what = MUTATORS[name]!(m, r, o);
      if (what) done.push(what);
    } catch (e) {
      done.push(`${name} failed: ${(e as Error).message}`);
    }
  }
  let bytes: Uint8Array;
  try {
    bytes = encodeObj(m);
  } catch {
    // fromObject refuses some edits (a string where a number goes): fall back to bytes of the unedited model,
    // mutated at the byte level, so the case still tests something.
    const b = mutateBytes(base.bytes, r, other.bytes);
    return { bytes: b.bytes, mutations: [...done, '(re-encode refused)', b.what], seedName: base.name };
  }
  return { bytes, mutations: done, seedName: base.name };
}

// ---------------------------------------------------------------------------------------------------------------
// Running a case.

let scratch: string | undefined;

/** A scratch folder with a file inside, one outside, and a symlink that leaves the folder (external-data cases). */
export function scratchDir(): string {
  if (scratch) return scratch;
  const root = mkdtempSync(join(tmpdir(), 'edgekit-fuzz-'));
  const dir = join(root, 'model');
  mkdirSync(dir);
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'inside.bin'), new Uint8Array(64).fill(1));
  writeFileSync(join(root, 'outside.bin'), new Uint8Array(64).fill(2));
  symlinkSync('/etc', join(dir, 'link'));
  scratch = dir;
  return dir;
}

function feedFor(meta: InferenceSession['inputMetadata'][number], r: Rng): Tensor | undefined {
  if (meta.kind !== 'tensor' && meta.kind !== undefined) return undefined;
  const dims = meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : 1));
  const n = dims.reduce((a, b) => a * b, 1);
  if (!(n <= 4096)) return undefined;
  const vals = Array.from({ length: n }, () => r.int(-2, 3));
  switch (meta.type) {
    case 'float32': return new Tensor('float32', Float32Array.from(vals), dims);
    case 'float16': return undefined;
    case 'float64': return new Tensor('float64', Float64Array.from(vals), dims);
    case 'int32': return new Tensor('int32', Int32Array.from(vals), dims);
    case 'int64': return new Tensor('int64', BigInt64Array.from(vals, (v) => BigInt(v)), dims);
    case 'int8': return new Tensor('int8', Int8Array.from(vals), dims);
    case 'uint8': return new Tensor('uint8', Uint8Array.from(vals, (v) => v & 0xff), dims);
    case 'bool': return new Tensor('bool', Uint8Array.from(vals, (v) => (v > 0 ? 1 : 0)), dims);
    case 'string': return new Tensor('string', vals.map(String), dims);
    default: return undefined;
  }
}

export interface RunOptions {
  backend: 'cpu' | 'webgpu';
  /** Per case, load and run together. */
  timeoutMs: number;
  /** Passed as maxTensorElements: small, so oversize allocations hit the check. */
  maxTensorElements?: number;
}

/** Loads `bytes` (from a file in the scratch folder) and runs it once with small synthesized feeds. */
export async function runCase(bytes: Uint8Array, index: number, mutations: string[], opts: RunOptions): Promise<CaseResult> {
  const dir = scratchDir();
  const path = join(dir, 'model.onnx');
  writeFileSync(path, bytes);
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  let session: InferenceSession | undefined;
  const work = (async (): Promise<Outcome> => {
    session = await InferenceSession.create(path, { backend: opts.backend, maxTensorElements: opts.maxTensorElements ?? 1 << 22, maxLoopIterations: 1000 });
    const r = new Rng(index);
    const feeds: Record<string, Tensor> = {};
    for (const m of session.inputMetadata) {
      const t = feedFor(m, r);
      if (!t) return 'ran'; // loaded; inputs we cannot make up (sequences, huge) are not run
      feeds[m.name] = t;
    }
    await session.run(feeds);
    return 'ran';
  })();
  const timeout = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => resolve('hang'), opts.timeoutMs);
  });
  let outcome: Outcome;
  let error: string | undefined;
  try {
    outcome = await Promise.race([work, timeout]);
  } catch (e) {
    outcome = e instanceof EdgeKitError && e.code !== 'INTERNAL' ? 'typed-error' : 'crash';
    error = `${(e as Error)?.name}: ${(e as Error)?.message}`.slice(0, 500);
    if (outcome === 'crash' && (e as Error)?.stack) error += `\n${(e as Error).stack!.split('\n').slice(1, 6).join('\n')}`;
  } finally {
    clearTimeout(timer);
  }
  if (outcome === 'hang') {
    // Wait out the grace period: abandoned work would keep the device busy and make the next cases time out too.
    let graceTimer: NodeJS.Timeout | undefined;
    const settled = await Promise.race([
      work.then(() => true, () => true),
      new Promise<boolean>((resolve) => {
        graceTimer = setTimeout(() => resolve(false), 4 * opts.timeoutMs);
      }),
    ]);
    clearTimeout(graceTimer);
    if (settled) outcome = 'slow';
  }
  // Memory still held by array buffers when the case ends: with maxTensorElements at 2^22 (16 MiB of float32)
  // nothing legitimate comes near 512 MiB; more means something was allocated past the size check.
  const held = process.memoryUsage().arrayBuffers;
  if (held > 512 * 2 ** 20 && outcome !== 'crash') {
    outcome = 'crash';
    error = `${(held / 2 ** 20).toFixed(0)} MiB of array buffers held after the case (allocated past maxTensorElements?)`;
  }
  await (session as InferenceSession | undefined)?.release().catch(() => {});
  return { index, outcome, mutations, error, ms: performance.now() - t0 };
}

/** A short stable id for a failing input (corpus file name). */
export function caseId(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

export interface FuzzSummary {
  backend: 'cpu' | 'webgpu';
  cases: number;
  counts: Record<Outcome, number>;
  failures: (CaseResult & { seedName: string; file?: string })[];
  /** Each case's outcome, in order. */
  outcomes: Outcome[];
  ms: number;
}

/** Fuzz settings from the environment (scripts/fuzz.mjs sets them; npm test uses the defaults). */
export function fuzzEnv(defaults: { cases: number }): { cases: number; seed: number; writeCorpus: boolean } {
  const cases = Number(process.env.EDGEKIT_FUZZ_CASES ?? defaults.cases);
  const seed = Number(process.env.EDGEKIT_FUZZ_SEED ?? 20261207);
  return { cases, seed, writeCorpus: process.env.EDGEKIT_FUZZ_WRITE_CORPUS === '1' };
}

export const CORPUS_DIR = new URL('./corpus/', import.meta.url).pathname;

/** Saves a failing case's input as `<dir>/<id>.onnx` with a `.txt` saying what made it; returns the .onnx path. */
export function saveFailure(dir: string, c: { bytes: Uint8Array; mutations: string[]; seedName: string }, r: CaseResult, seed: number, backend: string): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${caseId(c.bytes)}.onnx`);
  writeFileSync(file, c.bytes);
  writeFileSync(file.replace(/\.onnx$/, '.txt'), `seed ${seed} case ${r.index} (${backend}) from ${c.seedName}\nmutations: ${c.mutations.join('; ')}\n${r.outcome}: ${r.error ?? ''}\n`);
  return file;
}

/**
 * Runs cases [0, cases) of the stream `seed` on `backend`. Every crash or hang is collected (and, with
 * writeCorpus, its input saved as tests/fuzz/corpus/<id>.onnx with a .txt saying what made it).
 */
export async function fuzz(opts: { backend: 'cpu' | 'webgpu'; cases: number; seed: number; writeCorpus?: boolean; timeoutMs?: number; stride?: number; onProgress?: (done: number) => void }): Promise<FuzzSummary> {
  const seeds = seedModels();
  const counts: Record<Outcome, number> = { ran: 0, 'typed-error': 0, crash: 0, slow: 0, hang: 0 };
  const failures: FuzzSummary['failures'] = [];
  const outcomes: Outcome[] = [];
  const t0 = performance.now();
  const stride = opts.stride ?? 1;
  for (let k = 0; k < opts.cases; k++) {
    const i = k * stride;
    const c = makeCase(seeds, opts.seed, i);
    const r = await runCase(c.bytes, i, c.mutations, { backend: opts.backend, timeoutMs: opts.timeoutMs ?? 10_000 });
    counts[r.outcome]++;
    outcomes.push(r.outcome);
    if (r.outcome === 'crash' || r.outcome === 'hang') {
      const file = opts.writeCorpus ? saveFailure(CORPUS_DIR, c, r, opts.seed, opts.backend) : undefined;
      failures.push({ ...r, seedName: c.seedName, file });
    }
    if (opts.onProgress && k % 1000 === 999) opts.onProgress(k + 1);
  }
  return { backend: opts.backend, cases: opts.cases, counts, failures, outcomes, ms: performance.now() - t0 };
}

/** The committed corpus: inputs that once crashed or hung, replayed on every run. */
export function corpusFiles(): string[] {
  try {
    return readdirSync(CORPUS_DIR).filter((f) => f.endsWith('.onnx')).sort().map((f) => join(CORPUS_DIR, f));
  } catch {
    return [];
  }
}

export function describeFailures(s: FuzzSummary): string {
  return s.failures.map((f) => `case ${f.index} (${f.seedName}; ${f.mutations.join('; ')}): ${f.outcome} ${f.error ?? ''}${f.file ? ` -> ${f.file}` : ''}`).join('\n');
}
