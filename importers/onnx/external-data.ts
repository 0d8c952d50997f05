import { ModelFormatError } from '../../runtime/errors.js';
import { bytesPerElement } from '../../runtime/ir/dtype.js';
import type { PGraph, PSparseTensor, PTensor } from './proto.js';
import { dtypeFromOnnx, protoDims } from './tensor.js';

/**
 * External data (ONNX IR "External Tensor Data"): a tensor with data_location = EXTERNAL keeps its bytes in a file
 * named by the `location` entry, relative to the model's folder, at `offset` for `length` bytes.
 */

/** Fetches `length` bytes (all to the end when undefined) at `offset` of the external file `location`. */
export type ExternalDataResolver = (location: string, offset: number, length: number | undefined) => Promise<Uint8Array>;

/**
 * Normalizes a location to a relative path inside the model's folder ('a/./b/../w.bin' → 'a/w.bin'). Refuses
 * absolute paths (POSIX, drive letters, UNC), NUL bytes, and anything that climbs above the folder.
 */
export function checkLocation(location: string): string {
  const refuse = (why: string) => {
    throw new ModelFormatError(`External data location '${location}' ${why}; EdgeKit refuses it. Keep external data files beside the model.`, { location });
  };
  if (!location) refuse('is empty');
  if (location.includes('\0')) refuse('contains a NUL byte');
  const path = location.replace(/\\/g, '/');
  if (path.startsWith('/') || /^[a-zA-Z]:/.test(path)) refuse('is absolute');
  const parts: string[] = [];
  for (const p of path.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') {
      if (!parts.length) refuse("leaves the model's folder");
      parts.pop();
    } else parts.push(p);
  }
  if (!parts.length) refuse('names no file');
  return parts.join('/');
}

/** External data from files already in memory (browsers, tests), keyed by location relative to the model. */
export function memoryExternalDataResolver(files: Record<string, Uint8Array>): ExternalDataResolver {
  const key = (k: string) => {
    try {
      return checkLocation(k);
    } catch {
      return k; // a key no model location can name; kept only so lookups stay total
    }
  };
  const byPath = new Map(Object.entries(files).map(([k, v]) => [key(k), v]));
  return async (location, offset, length) => {
    const file = byPath.get(checkLocation(location));
    if (!file) throw new ModelFormatError(`External data file '${location}' was not provided.`, { location });
    const end = length === undefined ? file.length : offset + length;
    if (offset > file.length || end > file.length) {
      throw new ModelFormatError(`External data file '${location}' is shorter than the model says (${file.length} < ${end} bytes).`, { location });
    }
    return file.subarray(offset, end);
  };
}

/** Every tensor in the graph (initializers, Constant/attribute tensors, subgraphs) stored externally. */
export function externalTensors(g: PGraph, out: PTensor[] = []): PTensor[] {
  const sparse = (s: PSparseTensor | null | undefined) => (s ? [s.values, s.indices] : []);
  for (const t of [...(g.initializer ?? []), ...(g.sparseInitializer ?? []).flatMap(sparse)]) if (t && t.dataLocation === 1) out.push(t);
  for (const n of g.node ?? []) {
    for (const a of n.attribute ?? []) {
      for (const t of [a.t, ...(a.tensors ?? []), ...sparse(a.sparseTensor), ...(a.sparseTensors ?? []).flatMap(sparse)]) if (t && t.dataLocation === 1) out.push(t);
      for (const sg of [a.g, ...(a.graphs ?? [])]) if (sg) externalTensors(sg, out);
    }
  }
  return out;
}

/**
 * Reads one external tensor's bytes. The dims are checked against the element limit and the declared length
 * against the dims before anything is read, so a hostile header cannot make us allocate or read gigabytes.
 */
export async function fetchExternal(t: PTensor, resolver: ExternalDataResolver | undefined, maxElements: number): Promise<Uint8Array> {
  const where = `Tensor '${t.name ?? ''}'`;
  const entries = Object.fromEntries((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const location = entries.location;
  if (!location) throw new ModelFormatError(`${where} is marked external but names no location.`);
  checkLocation(location);
  const dtype = dtypeFromOnnx(t.dataType, where);
  if (dtype === 'string') throw new ModelFormatError(`${where} is a string tensor stored externally, which ONNX does not allow.`);
  const count = protoDims(t, maxElements, where).reduce((a, b) => a * b, 1);
  // 4-bit types (UINT4 21, INT4 22) pack two values per byte (tensor.ts unpacks them).
  const expected = t.dataType === 21 || t.dataType === 22 ? Math.ceil(count / 2) : count * bytesPerElement(dtype);
  const offset = entries.offset ? Number(entries.offset) : 0;
  const length = entries.length ? Number(entries.length) : expected;
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new ModelFormatError(`${where} has an invalid external offset/length ('${entries.offset}', '${entries.length}').`);
  }
  if (length !== expected) throw new ModelFormatError(`${where} declares ${length} external bytes but its dims need ${expected}.`, { name: t.name });
  if (!resolver) {
    throw new ModelFormatError(`${where} lives in the external file '${location}'; load the model from its path or URL, or pass externalData.`, { location });
  }
  const bytes = await resolver(location, offset, length);
  if (bytes.length !== length) throw new ModelFormatError(`External data file '${location}' gave ${bytes.length} bytes for ${where}; expected ${length}.`, { location });
  return bytes;
}
