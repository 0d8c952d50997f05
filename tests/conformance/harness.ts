import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import onnx from 'onnx-proto';
import { decodeTensorProtoBytes, importOnnx } from '../../importers/onnx/index.js';
import type { ValueKind } from '../../runtime/ir/graph.js';
import type { HostValue } from '../../runtime/ir/value.js';
import { decodeValueProto } from './value-protos.js';
import { allClose, ONNX_ATOL, ONNX_RTOL } from '../helpers/compare.js';

/**
 * The ONNX backend conformance cases shipped by Debian's libonnx-testdata, run the way ONNX's own backend test
 * runner does (onnx/backend/test/runner): inputs are fed positionally to the graph inputs that are not
 * initializers, outputs are compared positionally with the graph outputs, floats with rtol 1e-3 / atol 1e-7,
 * everything else exactly. Backend-agnostic: a `ModelRunner` executes a model (CPU today, WebGPU later).
 */

export const CONFORMANCE_ROOT = '/usr/lib/python3/dist-packages/onnx/backend/test/data';
export const GROUPS = ['node', 'pytorch-converted', 'pytorch-operator', 'simple'] as const;
export type CaseGroup = (typeof GROUPS)[number];

/** Executes a model on some backend: ONNX bytes and named feeds in, named outputs out (sequences as arrays, empty optionals null). */
export type ModelRunner = (bytes: Uint8Array, feeds: Record<string, HostValue>) => Promise<Record<string, HostValue>>;

export interface CaseInfo {
  /** `<group>/<case dir>`, e.g. `node/test_abs`: the key used in known-failures.json and expected-pass.txt. */
  id: string;
  group: CaseGroup;
  dir: string;
  /** Op types of the top-level graph, `domain::Op` outside the default domain; sorted, unique. */
  ops: string[];
  /** Default-domain opset the model imports. */
  opset: number;
  inputNames: string[];
  outputNames: string[];
  /** Declared ONNX element type (TensorProto.DataType) of each input / output, 0 when not declared. */
  inputTypes: number[];
  outputTypes: number[];
  /** What each input / output holds: a tensor, a sequence of tensors, an optional (value-protos.ts decodes their data). */
  inputKinds: ValueKind[];
  outputKinds: ValueKind[];
  /** Why the harness itself cannot express this case (map or sparse values), or undefined. */
  notTensorIo?: string;
}

export type CaseStatus = 'passed' | 'failed' | 'unsupported';

export interface CaseResult {
  id: string;
  status: CaseStatus;
  /** Why it failed or is unsupported. */
  message?: string;
  /** For unsupported cases: the `Op (opset N)` entries the error named. */
  unsupportedOps?: string[];
}

type ValueInfo = onnx.onnx.IValueInfoProto;

function ioKind(v: ValueInfo): string {
  const t = v.type;
  if (!t || t.tensorType) return 'tensor';
  if (t.sequenceType) return t.sequenceType.elemType?.tensorType ? 'sequence' : 'sequence of non-tensors';
  if (t.optionalType) {
    const e = t.optionalType.elemType;
    return e?.tensorType ? 'optional-tensor' : e?.sequenceType?.elemType?.tensorType ? 'optional-sequence' : 'optional of a map';
  }
  if (t.mapType) return 'map';
  if (t.sparseTensorType) return 'sparse tensor';
  return 'tensor';
}

/** Reads one case's model header (no weights interpreted) into a CaseInfo. */
export function readCaseInfo(group: CaseGroup, name: string, root = CONFORMANCE_ROOT): CaseInfo {
  const dir = join(root, group, name);
  const model = onnx.onnx.ModelProto.decode(readFileSync(join(dir, 'model.onnx')));
  const graph = model.graph ?? {};
  const inits = new Set((graph.initializer ?? []).map((t) => t.name ?? ''));
  const inputs = (graph.input ?? []).filter((v) => !inits.has(v.name ?? ''));
  const outputs = graph.output ?? [];
  const ops = new Set<string>();
  for (const n of graph.node ?? []) {
    const domain = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}::` : '';
    ops.add(`${domain}${n.opType ?? ''}`);
  }
  const opset = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx')?.version;
  const expressible = new Set(['tensor', 'sequence', 'optional-tensor', 'optional-sequence']);
  const odd = [...inputs, ...outputs].filter((v) => !expressible.has(ioKind(v)));
  const elemType = (v: ValueInfo) => {
    const t = v.type;
    const inner = t?.optionalType?.elemType ?? t;
    return (inner?.sequenceType?.elemType ?? inner)?.tensorType?.elemType ?? 0;
  };
  return {
    id: `${group}/${name}`,
    group,
    dir,
    ops: [...ops].sort(),
    opset: opset === undefined || opset === null ? 0 : Number(opset),
    inputNames: inputs.map((v) => v.name ?? ''),
    outputNames: outputs.map((v) => v.name ?? ''),
    inputTypes: inputs.map(elemType),
    outputTypes: outputs.map(elemType),
    inputKinds: inputs.map((v) => (odd.includes(v) ? 'tensor' : (ioKind(v) as ValueKind))),
    outputKinds: outputs.map((v) => (odd.includes(v) ? 'tensor' : (ioKind(v) as ValueKind))),
    notTensorIo: odd.length
      ? `graph ${odd.map((v) => `'${v.name}' is a ${ioKind(v)}`).join(', ')}; EdgeKit's IR has tensors, sequences of tensors and optionals of those only`
      : undefined,
  };
}

/** Every case directory of a group, sorted by name. Empty when the test data is not installed. */
export function listCases(group: CaseGroup, root = CONFORMANCE_ROOT): CaseInfo[] {
  const base = join(root, group);
  if (!existsSync(base)) return [];
  return readdirSync(base, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(base, e.name, 'model.onnx')))
    .map((e) => e.name)
    .sort()
    .map((name) => readCaseInfo(group, name, root));
}

function isUnsupported(e: unknown): e is { code: string; message: string; nodes?: { op: string; domain: string; opset: number }[] } {
  // Duck-typed so errors re-created across a worker boundary (same code, different class identity) count too.
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'UNSUPPORTED_OP';
}

function unsupportedResult(id: string, e: { message: string; nodes?: { op: string; domain: string; opset: number }[] }): CaseResult {
  const ops = [...new Set((e.nodes ?? []).map((n) => `${n.domain && n.domain !== 'ai.onnx' ? n.domain + '::' : ''}${n.op} (opset ${n.opset})`))];
  return { id, status: 'unsupported', message: ops.length ? `unsupported: ${ops.join(', ')}` : e.message, unsupportedOps: ops };
}

function errorText(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}

/**
 * Whether EdgeKit can load the case at all (the importer accepts every node), without running it: used to decide
 * which cases get a test. Import errors other than UnsupportedOpError are not "unsupported": they make the case
 * supported-but-failing, so runCase reports them.
 */
export async function probeCase(info: CaseInfo): Promise<CaseResult | undefined> {
  if (info.notTensorIo) return { id: info.id, status: 'unsupported', message: info.notTensorIo, unsupportedOps: [] };
  try {
    await importOnnx(new Uint8Array(readFileSync(join(info.dir, 'model.onnx'))));
    return undefined;
  } catch (e) {
    if (isUnsupported(e)) return unsupportedResult(info.id, e);
    return undefined;
  }
}

function dataSets(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && /^test_data_set_\d+$/.test(e.name))
    .map((e) => e.name)
    .sort((a, b) => Number(a.slice(14)) - Number(b.slice(14)));
}

const ONNX_BFLOAT16 = 16;

/**
 * Decodes input_N.pb / output_N.pb. numpy has no bfloat16, so onnx 1.12 stores bfloat16 test values as UINT16
 * tensors holding the bfloat16 bits; where the model declares bfloat16 those bits are relabelled as bfloat16
 * (HostTensor keeps bfloat16 as raw bits in a Uint16Array, so only the dtype changes).
 */
function readTensors(dir: string, prefix: 'input' | 'output', declared: number[], kinds: ValueKind[]): HostValue[] {
  const out: HostValue[] = [];
  for (let i = 0; i < declared.length; i++) {
    const bytes = new Uint8Array(readFileSync(join(dir, `${prefix}_${i}.pb`)));
    const kind = kinds[i] ?? 'tensor';
    // Sequences and optionals: SequenceProto / OptionalProto (value-protos.ts).
    if (kind !== 'tensor') {
      out.push(decodeValueProto(bytes, kind));
      continue;
    }
    const t = decodeTensorProtoBytes(bytes);
    out.push(declared[i] === ONNX_BFLOAT16 && t.dtype === 'uint16' ? { ...t, dtype: 'bfloat16' } : t);
  }
  return out;
}

/** allClose over values: sequences element by element (same length), empty optionals equal only to empty ones. */
function compareValues(got: HostValue, want: HostValue): { ok: boolean; message?: string } {
  if (want === null || got === null) return got === want ? { ok: true } : { ok: false, message: `expected ${want === null ? 'an empty optional' : 'a value'}, got ${got === null ? 'an empty optional' : 'a value'}` };
  if (Array.isArray(want) || Array.isArray(got)) {
    if (!Array.isArray(want) || !Array.isArray(got)) return { ok: false, message: `expected ${Array.isArray(want) ? 'a sequence' : 'a tensor'}, got ${Array.isArray(got) ? 'a sequence' : 'a tensor'}` };
    if (want.length !== got.length) return { ok: false, message: `sequence of ${got.length} element(s), expected ${want.length}` };
    for (let i = 0; i < want.length; i++) {
      const r = allClose(got[i]!, want[i]!, { rtol: ONNX_RTOL, atol: ONNX_ATOL });
      if (!r.ok) return { ok: false, message: `element ${i}: ${r.message}` };
    }
    return { ok: true };
  }
  return allClose(got, want, { rtol: ONNX_RTOL, atol: ONNX_ATOL });
}

/**
 * Runs one conformance case (every test_data_set_N in it) through `runner` and compares like ONNX's backend test.
 * Never throws for a model problem: the outcome is in the result.
 */
export async function runCase(caseDir: string, runner: ModelRunner, info?: CaseInfo): Promise<CaseResult> {
  const abs = resolve(caseDir);
  const meta = info ?? readCaseInfo(basename(dirname(abs)) as CaseGroup, basename(abs), dirname(dirname(abs)));
  if (meta.notTensorIo) return { id: meta.id, status: 'unsupported', message: meta.notTensorIo, unsupportedOps: [] };
  const bytes = new Uint8Array(readFileSync(join(meta.dir, 'model.onnx')));
  const failures: string[] = [];
  const sets = dataSets(meta.dir);
  if (sets.length === 0) return { id: meta.id, status: 'failed', message: 'case has no test_data_set_N directory' };

  for (const set of sets) {
    const dir = join(meta.dir, set);
    let inputs: HostValue[];
    let expected: HostValue[];
    try {
      inputs = readTensors(dir, 'input', meta.inputTypes, meta.inputKinds);
      expected = readTensors(dir, 'output', meta.outputTypes, meta.outputKinds);
    } catch (e) {
      failures.push(`${set}: could not decode test data: ${errorText(e)}`);
      continue;
    }
    const feeds: Record<string, HostValue> = {};
    meta.inputNames.forEach((name, i) => (feeds[name] = inputs[i]!));

    let actual: Record<string, HostValue>;
    try {
      actual = await runner(bytes, feeds);
    } catch (e) {
      if (isUnsupported(e)) return unsupportedResult(meta.id, e);
      failures.push(`${set}: ${errorText(e)}`);
      continue;
    }
    meta.outputNames.forEach((name, i) => {
      const got = actual[name];
      if (got === undefined) {
        failures.push(`${set}: output '${name}' missing (got ${Object.keys(actual).join(', ') || 'nothing'})`);
        return;
      }
      const r = compareValues(got, expected[i]!);
      if (!r.ok) failures.push(`${set}: output '${name}': ${r.message}`);
    });
  }
  return failures.length ? { id: meta.id, status: 'failed', message: failures.join('\n') } : { id: meta.id, status: 'passed' };
}
