import { DTypeError, InvalidArgumentError, ShapeError } from '../../runtime/errors.js';
import { allocStorage, type DType, type TypedArray } from '../../runtime/ir/dtype.js';
import type { Dim, ValueInfo } from '../../runtime/ir/graph.js';
import { hostTensor, type HostTensor } from '../../runtime/ir/tensor.js';
import { Tensor } from '../tensor.js';
import type { ExampleInputs, ExampleLabels } from './options.js';

/**
 * Dataset normalization: every input and the labels become one batch-first column [N, ...], validated against
 * the model (dtype, rank, fixed dims, one example count), so batches are row gathers.
 *
 * Accepted forms, per model input: a Tensor [N, ...] (the model input's shape with N examples), or an array of N
 * per-example Tensors shaped like one row ([...] without the batch axis, or [1, ...]), stacked here (one copy).
 * A model with one needed input takes either form directly; several inputs take { [inputName]: form }.
 */
export interface Columns {
  count: number;
  data: Record<string, HostTensor>;
}

const fmt = (s: readonly Dim[]) => `[${s.join(', ')}]`;

function host(t: unknown, what: string): HostTensor {
  if (!(t instanceof Tensor)) throw new InvalidArgumentError(`${what} must be an EdgeKit Tensor, got ${t === null ? 'null' : typeof t === 'object' ? (t as object).constructor?.name : typeof t}.`);
  const h = t.toHost(); // DisposedTensorError for a disposed tensor
  if (h.dtype === 'string') throw new DTypeError(`${what} holds strings; only numeric tensors train.`);
  return h;
}

/** Checks dims after the batch axis against `want` (fixed dims only) and returns the example count. */
function checkRows(t: HostTensor, want: readonly Dim[] | undefined, what: string): number {
  if (!t.shape.length) throw new ShapeError(`${what} must be batch-first [N, ...]; got a scalar.`);
  if (want) {
    if (t.shape.length !== want.length) throw new ShapeError(`${what} must have rank ${want.length} ${fmt(want)} (batch first), got dims ${fmt(t.shape)}.`, { expected: [...want], got: [...t.shape] });
    want.forEach((d, i) => {
      if (i > 0 && typeof d === 'number' && d !== t.shape[i]) {
        throw new ShapeError(`${what} dimension ${i} must be ${d} ${fmt(want)}, got dims ${fmt(t.shape)}.`, { expected: [...want], got: [...t.shape] });
      }
    });
  }
  return t.shape[0]!;
}

/** Stacks per-example tensors (each [...rest] or [1, ...rest]) into [N, ...rest]. */
function stack(items: readonly unknown[], want: readonly Dim[] | undefined, dtype: DType | readonly DType[], what: string): HostTensor {
  if (!items.length) throw new InvalidArgumentError(`${what} is an empty array; pass at least one example.`);
  const rows = items.map((t, i) => host(t, `${what}[${i}]`));
  const first = rows[0]!;
  const batched = want ? first.shape.length === want.length : false;
  const rest = batched ? first.shape.slice(1) : first.shape;
  if (batched && first.shape[0] !== 1) throw new ShapeError(`${what}[0] has dims ${fmt(first.shape)}: a per-example tensor is one row, shaped ${fmt(want!.slice(1))} or ${fmt([1, ...want!.slice(1)])}.`);
  const size = rest.reduce((a, b) => a * b, 1);
  const out = allocStorage(first.dtype, rows.length * size) as TypedArray;
  rows.forEach((r, i) => {
    const shape = batched ? r.shape.slice(1) : r.shape;
    if ((batched && r.shape[0] !== 1) || shape.length !== rest.length || shape.some((d, k) => d !== rest[k])) {
      throw new ShapeError(`${what}[${i}] has dims ${fmt(r.shape)}, but ${what}[0] has ${fmt(first.shape)}; every example must have the same shape.`);
    }
    if (r.dtype !== first.dtype) throw new DTypeError(`${what}[${i}] is ${r.dtype}, but ${what}[0] is ${first.dtype}.`);
    (out as Float32Array).set(r.data as Float32Array, i * size);
  });
  const t = hostTensor(first.dtype, [rows.length, ...rest], out);
  checkDType(t, dtype, what);
  return t;
}

function checkDType(t: HostTensor, want: DType | readonly DType[], what: string): void {
  const ok = typeof want === 'string' ? [want] : want;
  if (!ok.includes(t.dtype)) throw new DTypeError(`${what} must be ${ok.join(' or ')}, got ${t.dtype}.`, { expected: ok, got: t.dtype });
}

function column(v: unknown, info: ValueInfo, what: string): HostTensor {
  if (Array.isArray(v)) return stack(v, info.shape, info.dtype, what);
  const t = host(v, what);
  checkDType(t, info.dtype, what);
  checkRows(t, info.shape, what);
  return t;
}

/** The model inputs a dataset must provide, validated and batch-first. */
export function inputColumns(inputs: ExampleInputs, needed: readonly ValueInfo[], what = 'inputs'): Columns {
  if (inputs === undefined || inputs === null) throw new InvalidArgumentError(`${what} are missing: pass { inputs, labels }.`);
  const names = needed.map((i) => `'${i.name}'`).join(', ');
  let byName: Record<string, unknown>;
  if (inputs instanceof Tensor || Array.isArray(inputs)) {
    if (needed.length !== 1) throw new InvalidArgumentError(`This model needs ${needed.length} inputs (${names}); pass ${what} as { name: tensor }.`);
    byName = { [needed[0]!.name]: inputs };
  } else if (typeof inputs === 'object') {
    byName = inputs as Record<string, unknown>;
    for (const k of Object.keys(byName)) {
      if (!needed.some((i) => i.name === k)) throw new InvalidArgumentError(`Unknown input '${k}' in ${what}. Training needs ${names}.`, { input: k });
    }
  } else throw new InvalidArgumentError(`${what} must be a Tensor, an array of Tensors, or { name: tensor }.`);
  const data: Record<string, HostTensor> = {};
  let count: number | undefined;
  let countFrom = '';
  for (const info of needed) {
    const v = byName[info.name];
    const label = needed.length === 1 ? what : `${what}.${info.name}`;
    if (v === undefined) throw new InvalidArgumentError(`Missing input '${info.name}' in ${what}. Training needs ${names}.`, { input: info.name });
    const t = column(v, info, label);
    if (count !== undefined && t.shape[0] !== count) {
      throw new ShapeError(`${label} holds ${t.shape[0]} examples but ${countFrom} holds ${count}.`);
    }
    count = t.shape[0]!;
    countFrom = label;
    data[info.name] = t;
  }
  if (!count) throw new InvalidArgumentError(`${what} hold no examples.`);
  return { count, data };
}

/**
 * The training target for `count` examples, in the program's target dtype. Class ids (int64 target): an int64 or
 * int32 Tensor [N, ...] or a number array, each id in [0, classes). Float targets: a float32 Tensor [N, ...], an
 * array of per-example Tensors, or a number array when one example is one number.
 */
export function labelColumn(labels: ExampleLabels, target: ValueInfo, count: number, classes: number | undefined, what = 'labels'): HostTensor {
  if (labels === undefined || labels === null) throw new InvalidArgumentError(`${what} are missing: pass { inputs, labels }.`);
  const want = target.shape;
  const indices = target.dtype === 'int64';
  let t: HostTensor;
  if (Array.isArray(labels) && labels.every((v) => typeof v === 'number')) {
    const rest = (want ?? []).slice(1);
    if (rest.some((d) => d !== 1)) throw new InvalidArgumentError(`${what} as a number array works when one example is one number; here each is ${fmt(rest)}: pass a Tensor.`);
    const nums = labels as readonly number[];
    if (indices && nums.some((v) => !Number.isInteger(v))) throw new DTypeError(`${what} must be integer class ids; found ${nums.find((v) => !Number.isInteger(v))}.`);
    t = indices
      ? hostTensor('int64', [nums.length], BigInt64Array.from(nums, (v) => BigInt(v)))
      : hostTensor(target.dtype, [nums.length, ...rest.map(() => 1)], Float32Array.from(nums));
  } else if (Array.isArray(labels)) {
    t = stack(labels, want, indices ? ['int64', 'int32'] : target.dtype, what);
  } else {
    t = host(labels, what);
    if (indices && !['int64', 'int32'].includes(t.dtype)) {
      throw new DTypeError(`${what} for cross_entropy must be int64 or int32 class ids, got ${t.dtype}; for soft targets use loss { type: 'cross_entropy', targets: 'probabilities' }.`, { got: t.dtype });
    }
    if (!indices) checkDType(t, target.dtype, what);
  }
  checkRows(t, want, what);
  if (t.shape[0] !== count) throw new ShapeError(`${what} hold ${t.shape[0]} examples but the inputs hold ${count}; give one label per example.`, { labels: t.shape[0], inputs: count });
  if (indices) {
    const ids = t.dtype === 'int64' ? (t.data as BigInt64Array) : BigInt64Array.from(t.data as Int32Array, (v) => BigInt(v));
    if (classes !== undefined) {
      const k = ids.findIndex((v) => v < 0n || v >= BigInt(classes));
      if (k >= 0) throw new InvalidArgumentError(`${what}[${k}] is class ${ids[k]}, outside [0, ${classes}): the model has ${classes} classes.`, { index: k, classes });
    }
    t = hostTensor('int64', t.shape, ids);
  }
  return t;
}

/** Rows `idx` of a batch-first tensor, as a new [idx.length, ...] tensor. */
export function gatherRows(t: HostTensor, idx: readonly number[]): HostTensor {
  const n = t.shape[0]!;
  const size = n ? t.data.length / n : 0;
  const src = t.data as Float32Array;
  const out = allocStorage(t.dtype, idx.length * size) as Float32Array;
  idx.forEach((r, k) => out.set(src.subarray(r * size, (r + 1) * size), k * size));
  return hostTensor(t.dtype, [idx.length, ...t.shape.slice(1)], out);
}

/** Rows [start, end) of a batch-first tensor, as a view (no copy). */
export function sliceRows(t: HostTensor, start: number, end: number): HostTensor {
  const size = t.shape[0] ? t.data.length / t.shape[0] : 0;
  return hostTensor(t.dtype, [end - start, ...t.shape.slice(1)], (t.data as Float32Array).subarray(start * size, end * size));
}

/** Concatenates batch-first tensors along the batch axis. */
export function concatRows(parts: readonly HostTensor[]): HostTensor {
  const first = parts[0]!;
  if (parts.length === 1) return first;
  const out = allocStorage(first.dtype, parts.reduce((a, p) => a + p.data.length, 0)) as Float32Array;
  let at = 0;
  for (const p of parts) {
    out.set(p.data as Float32Array, at);
    at += p.data.length;
  }
  return hostTensor(first.dtype, [parts.reduce((a, p) => a + p.shape[0]!, 0), ...first.shape.slice(1)], out);
}

/** Bytes held by a set of host tensors. */
export function byteSize(ts: Iterable<HostTensor>): number {
  let b = 0;
  for (const t of ts) b += (t.data as TypedArray).byteLength ?? 0;
  return b;
}

/**
 * The dataset with every GPU-resident tensor ('gpu-buffer', e.g. another WebGPU session's outputs) downloaded into
 * a CPU tensor; CPU tensors and numbers pass through uncopied. Batches are gathered on the host either way.
 */
export async function onCpu<T>(v: T): Promise<T> {
  if (v instanceof Tensor) return (v.location === 'gpu-buffer' ? new Tensor(v.type, await v.getData(), v.dims) : v) as T;
  if (Array.isArray(v)) return (v.some((x) => x instanceof Tensor && x.location === 'gpu-buffer') ? await Promise.all(v.map((x) => onCpu(x))) : v) as T;
  if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    const entries = await Promise.all(Object.entries(v).map(async ([k, x]) => [k, await onCpu(x)] as const));
    return Object.fromEntries(entries) as T;
  }
  return v;
}
