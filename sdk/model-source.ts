import type { ExternalDataResolver } from '../importers/onnx/index.js';
import { memoryExternalDataResolver } from '../importers/onnx/index.js';
import { checkLocation } from '../importers/onnx/external-data.js';
import { InvalidArgumentError, ModelFormatError } from '../runtime/errors.js';
import { fetchModelBytes, integrityMismatch } from './loading/fetch.js';
import type { LoadOptions } from './loading/options.js';
import { getNodePlatform } from './platform.js';

export type ModelSource = string | URL | Uint8Array | ArrayBuffer;

export interface LoadedBytes {
  bytes: Uint8Array;
  externalData?: ExternalDataResolver;
  /**
   * Call after the import: throws when `externalDataIntegrity` names a file the model never read (a misspelt key
   * would otherwise leave that file unchecked without a word).
   */
  checkIntegrityUsed(): void;
}

/**
 * Turns what the user passed into model bytes: bytes as-is; a URL fetched (streamed into one buffer, with progress,
 * through the model cache: sdk/loading/fetch.ts); in Node a plain string is a file path (http(s) strings are
 * fetched; see sdk/node.ts). External data resolves beside a file path in Node, from `externalData` files when
 * given, and beside the URL when fetched: each external file is fetched once, when the importer first needs it,
 * separately from the model (and cached like it), so the .onnx stays small and its weights stream in after.
 */
export async function loadModelSource(src: ModelSource, externalData?: Record<string, Uint8Array>, load: LoadOptions = {}): Promise<LoadedBytes> {
  const wanted = integrityByLocation(load.externalDataIntegrity);
  const used = new Set<string>();
  const checkIntegrityUsed = () => {
    const unused = [...(wanted?.keys() ?? [])].filter((k) => !used.has(k));
    if (unused.length) {
      const read = used.size ? `it reads ${[...used].map((k) => `'${k}'`).join(', ')}` : 'it has no external data';
      throw new InvalidArgumentError(`externalDataIntegrity names ${unused.map((k) => `'${k}'`).join(', ')}, which this model does not read (${read}).`, { unused, read: [...used] });
    }
  };
  const verify = (r: ExternalDataResolver | undefined, where: string) => (r && wanted ? verifiedResolver(r, wanted, used, where) : r);
  const memory = verify(externalData ? memoryExternalDataResolver(externalData) : undefined, 'given in externalData');
  const checked = async (bytes: Uint8Array, where: string) => {
    const got = load.integrity ? await integrityMismatch(bytes, load.integrity) : undefined;
    if (got !== undefined) throw new ModelFormatError(`The model ${where} does not match its integrity '${load.integrity}' (its digest is ${got}).`, { integrity: load.integrity, got });
    return bytes;
  };
  if (src instanceof Uint8Array) return { bytes: await checked(src, 'bytes'), externalData: memory, checkIntegrityUsed };
  if (src instanceof ArrayBuffer) return { bytes: await checked(new Uint8Array(src), 'bytes'), externalData: memory, checkIntegrityUsed };
  if (typeof src !== 'string' && !(src instanceof URL)) {
    throw new InvalidArgumentError('InferenceSession.create expects a path, a URL, a Uint8Array or an ArrayBuffer.');
  }
  const text = String(src);
  const node = getNodePlatform();
  if (node && !/^(https?|blob|data):/i.test(text)) {
    const loaded = await node.readModelFile(text, load.onProgress);
    return { bytes: await checked(loaded.bytes, `file '${loaded.path}'`), externalData: memory ?? verify(loaded.externalData, 'beside the model'), checkIntegrityUsed };
  }
  const url = new URL(text, globalThis.location?.href).href;
  const bytes = await fetchModelBytes(url, load);
  const base = new URL('.', url);
  // One fetch per external file, shared by the tensors that live in it.
  const files = new Map<string, Promise<Uint8Array>>();
  const fetchResolver: ExternalDataResolver = async (location, offset, length) => {
    const fileUrl = new URL(location, base);
    if (!fileUrl.href.startsWith(base.href)) throw new ModelFormatError(`External data location '${location}' escapes the model's folder.`);
    const key = checkLocation(location);
    used.add(key);
    let file = files.get(fileUrl.href);
    if (!file) {
      // Checked by fetchModelBytes on the network copy and on the cached one; a mismatch is never cached.
      file = fetchModelBytes(fileUrl.href, { cache: load.cache, onProgress: load.onProgress, integrity: wanted?.get(key), what: `external data file '${location}'`, location });
      files.set(fileUrl.href, file);
    }
    const all = await file;
    const end = length === undefined ? all.length : offset + length;
    if (offset > all.length || end > all.length) {
      throw new ModelFormatError(`External data file '${location}' is shorter than the model says (${all.length} < ${end} bytes).`, { location });
    }
    return all.subarray(offset, end);
  };
  return { bytes, externalData: memory ?? fetchResolver, checkIntegrityUsed };
}

/** LoadOptions.externalDataIntegrity by normalized location ('./w.bin' and 'w.bin' are one file), checked. */
function integrityByLocation(map: LoadOptions['externalDataIntegrity']): Map<string, string> | undefined {
  if (map === undefined) return undefined;
  if (map === null || typeof map !== 'object' || Array.isArray(map)) {
    throw new InvalidArgumentError("externalDataIntegrity must map external data file names to digests, e.g. { 'model.onnx.data': 'sha256-…' }.");
  }
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(map)) {
    if (typeof v !== 'string') throw new InvalidArgumentError(`externalDataIntegrity['${k}'] must be an SRI string such as 'sha256-<base64>'.`, { location: k });
    let key: string;
    try {
      key = checkLocation(k);
    } catch {
      throw new InvalidArgumentError(`externalDataIntegrity names '${k}', which cannot be an external data location (a relative path inside the model's folder).`, { location: k });
    }
    out.set(key, v);
  }
  return out;
}

/**
 * A resolver over `inner` (files beside a model path, or given in memory) that reads each file named in `wanted`
 * whole, once, checks its digest before any tensor uses it, and serves the tensors' slices from that one copy.
 */
function verifiedResolver(inner: ExternalDataResolver, wanted: Map<string, string>, used: Set<string>, where: string): ExternalDataResolver {
  const files = new Map<string, Promise<Uint8Array>>();
  return async (location, offset, length) => {
    const key = checkLocation(location);
    used.add(key);
    const integrity = wanted.get(key);
    if (integrity === undefined) return inner(location, offset, length);
    let file = files.get(key);
    if (!file) {
      file = (async () => {
        const all = await inner(location, 0, undefined);
        const got = await integrityMismatch(all, integrity);
        if (got !== undefined) {
          throw new ModelFormatError(`External data file '${location}' ${where} does not match its integrity '${integrity}' (its digest is ${got}); the model was not loaded.`, { location, integrity, got });
        }
        return all;
      })();
      files.set(key, file);
    }
    const all = await file;
    const end = length === undefined ? all.length : offset + length;
    if (offset > all.length || end > all.length) {
      throw new ModelFormatError(`External data file '${location}' is shorter than the model says (${all.length} < ${end} bytes).`, { location });
    }
    return all.subarray(offset, end);
  };
}
