import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import onnx from 'onnx-proto';
import { decodeTensorProtoBytes, importOnnx } from '../../importers/onnx/index.js';
import type { HostTensor } from '../../runtime/ir/tensor.js';
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

/** Executes a model on some backend: ONNX bytes and named feeds in, named outputs out. */
export type ModelRunner = (bytes: Uint8Array, feeds: Record<string, HostTensor>) => Promise<Record<string, HostTensor>>;

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
  /** Why the harness itself cannot express this case (sequence/optional/map values), or undefined. */
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
  if (t.sequenceType) return 'sequence';
  if (t.optionalType) return 'optional';
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
  const odd = [...inputs, ...outputs].filter((v) => ioKind(v) !== 'tensor');
  return {
    id: `${group}/${name}`,
    group,
    dir,
    ops: [...ops].sort(),
    opset: opset === undefined || opset === null ? 0 : Number(opset),
    inputNames: inputs.map((v) => v.name ?? ''),
    outputNames: outputs.map((v) => v.name ?? ''),
    inputTypes: inputs.map((v) => v.type?.tensorType?.elemType ?? 0),
    outputTypes: outputs.map((v) => v.type?.tensorType?.elemType ?? 0),
    notTensorIo: odd.length
      ? `graph ${odd.map((v) => `'${v.name}' is a ${ioKind(v)}`).join(', ')}; EdgeKit's IR has tensors only`
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
function readTensors(dir: string, prefix: 'input' | 'output', declared: number[]): HostTensor[] {
  const out: HostTensor[] = [];
  for (let i = 0; i < declared.length; i++) {
    const t = decodeTensorProtoBytes(new Uint8Array(readFileSync(join(dir, `${prefix}_${i}.pb`))));
    out.push(declared[i] === ONNX_BFLOAT16 && t.dtype === 'uint16' ? { ...t, dtype: 'bfloat16' } : t);
  }
  return out;
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
    let inputs: HostTensor[];
    let expected: HostTensor[];
    try {
      inputs = readTensors(dir, 'input', meta.inputTypes);
      expected = readTensors(dir, 'output', meta.outputTypes);
    } catch (e) {
      failures.push(`${set}: could not decode test data: ${errorText(e)}`);
      continue;
    }
    const feeds: Record<string, HostTensor> = {};
    meta.inputNames.forEach((name, i) => (feeds[name] = inputs[i]!));

    let actual: Record<string, HostTensor>;
    try {
      actual = await runner(bytes, feeds);
    } catch (e) {
      if (isUnsupported(e)) return unsupportedResult(meta.id, e);
      failures.push(`${set}: ${errorText(e)}`);
      continue;
    }
    meta.outputNames.forEach((name, i) => {
      const got = actual[name];
      if (!got) {
        failures.push(`${set}: output '${name}' missing (got ${Object.keys(actual).join(', ') || 'nothing'})`);
        return;
      }
      const r = allClose(got, expected[i]!, { rtol: ONNX_RTOL, atol: ONNX_ATOL });
      if (!r.ok) failures.push(`${set}: output '${name}': ${r.message}`);
    });
  }
  return failures.length ? { id: meta.id, status: 'failed', message: failures.join('\n') } : { id: meta.id, status: 'passed' };
}
