import { ModelFormatError } from '../../runtime/errors.js';
import type { PGraph, PTensor } from './proto.js';

/** Fetches `length` bytes (all to the end when undefined) at `offset` of the external file `location`. */
export type ExternalDataResolver = (location: string, offset: number, length: number | undefined) => Promise<Uint8Array>;

/** Rejects locations that are absolute or climb out of the model's folder (spec: paths are relative to the model). */
export function checkLocation(location: string): string {
  const parts = location.replace(/\\/g, '/').split('/');
  if (!location || location.startsWith('/') || /^[a-zA-Z]:/.test(location) || parts.includes('..')) {
    throw new ModelFormatError(`External data location '${location}' is absolute or leaves the model's folder; EdgeKit refuses it.`, { location });
  }
  return parts.filter((p) => p && p !== '.').join('/');
}

/** External data from files already in memory (browsers, tests), keyed by location. */
export function memoryExternalDataResolver(files: Record<string, Uint8Array>): ExternalDataResolver {
  return async (location, offset, length) => {
    const key = checkLocation(location);
    const file = files[key] ?? files[location];
    if (!file) throw new ModelFormatError(`External data file '${location}' was not provided.`, { location });
    if (offset + (length ?? 0) > file.length) throw new ModelFormatError(`External data '${location}' is shorter than the model says.`, { location });
    return file.subarray(offset, length === undefined ? undefined : offset + length);
  };
}

/** Every tensor in the graph (initializers, Constant/attribute tensors, subgraphs) stored externally. */
export function externalTensors(g: PGraph, out: PTensor[] = []): PTensor[] {
  for (const t of g.initializer ?? []) if (t.dataLocation === 1) out.push(t);
  for (const n of g.node ?? []) {
    for (const a of n.attribute ?? []) {
      for (const t of [a.t, ...(a.tensors ?? [])]) if (t && t.dataLocation === 1) out.push(t);
      for (const sg of [a.g, ...(a.graphs ?? [])]) if (sg) externalTensors(sg, out);
    }
  }
  return out;
}

export async function fetchExternal(t: PTensor, resolver: ExternalDataResolver | undefined): Promise<Uint8Array> {
  const entries = Object.fromEntries((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const location = entries.location;
  if (!location) throw new ModelFormatError(`Tensor '${t.name}' is marked external but names no location.`);
  if (!resolver) {
    throw new ModelFormatError(`Tensor '${t.name}' lives in the external file '${location}'; load the model from its path or URL, or pass externalData.`, { location });
  }
  checkLocation(location);
  const offset = entries.offset ? Number(entries.offset) : 0;
  const length = entries.length ? Number(entries.length) : undefined;
  if (!Number.isSafeInteger(offset) || offset < 0 || (length !== undefined && (!Number.isSafeInteger(length) || length < 0))) {
    throw new ModelFormatError(`Tensor '${t.name}' has an invalid external offset/length.`);
  }
  return resolver(location, offset, length);
}
