import type { ExternalDataResolver } from '../importers/onnx/index.js';
import { memoryExternalDataResolver } from '../importers/onnx/index.js';
import { InvalidArgumentError, ModelFormatError } from '../runtime/errors.js';
import { fetchModelBytes, integrityMismatch } from './loading/fetch.js';
import type { LoadOptions } from './loading/options.js';
import { getNodePlatform } from './platform.js';

export type ModelSource = string | URL | Uint8Array | ArrayBuffer;

export interface LoadedBytes {
  bytes: Uint8Array;
  externalData?: ExternalDataResolver;
}

/**
 * Turns what the user passed into model bytes: bytes as-is; a URL fetched (streamed into one buffer, with progress,
 * through the model cache: sdk/loading/fetch.ts); in Node a plain string is a file path (http(s) strings are
 * fetched; see sdk/node.ts). External data resolves beside a file path in Node, from `externalData` files when
 * given, and beside the URL when fetched: each external file is fetched once, when the importer first needs it,
 * separately from the model (and cached like it), so the .onnx stays small and its weights stream in after.
 */
export async function loadModelSource(src: ModelSource, externalData?: Record<string, Uint8Array>, load: LoadOptions = {}): Promise<LoadedBytes> {
  const memory = externalData ? memoryExternalDataResolver(externalData) : undefined;
  const checked = async (bytes: Uint8Array, where: string) => {
    const got = load.integrity ? await integrityMismatch(bytes, load.integrity) : undefined;
    if (got !== undefined) throw new ModelFormatError(`The model ${where} does not match its integrity '${load.integrity}' (its digest is ${got}).`, { integrity: load.integrity, got });
    return bytes;
  };
  if (src instanceof Uint8Array) return { bytes: await checked(src, 'bytes'), externalData: memory };
  if (src instanceof ArrayBuffer) return { bytes: await checked(new Uint8Array(src), 'bytes'), externalData: memory };
  if (typeof src !== 'string' && !(src instanceof URL)) {
    throw new InvalidArgumentError('InferenceSession.create expects a path, a URL, a Uint8Array or an ArrayBuffer.');
  }
  const text = String(src);
  const node = getNodePlatform();
  if (node && !/^(https?|blob|data):/i.test(text)) {
    const loaded = await node.readModelFile(text, load.onProgress);
    return { bytes: await checked(loaded.bytes, `file '${loaded.path}'`), externalData: memory ?? loaded.externalData };
  }
  const url = new URL(text, globalThis.location?.href).href;
  const bytes = await fetchModelBytes(url, load);
  const base = new URL('.', url);
  // One fetch per external file, shared by the tensors that live in it.
  const files = new Map<string, Promise<Uint8Array>>();
  const fetchResolver: ExternalDataResolver = async (location, offset, length) => {
    const fileUrl = new URL(location, base);
    if (!fileUrl.href.startsWith(base.href)) throw new ModelFormatError(`External data location '${location}' escapes the model's folder.`);
    let file = files.get(fileUrl.href);
    if (!file) {
      file = fetchModelBytes(fileUrl.href, { cache: load.cache, onProgress: load.onProgress, what: `external data file '${location}'` });
      files.set(fileUrl.href, file);
    }
    const all = await file;
    const end = length === undefined ? all.length : offset + length;
    if (offset > all.length || end > all.length) {
      throw new ModelFormatError(`External data file '${location}' is shorter than the model says (${all.length} < ${end} bytes).`, { location });
    }
    return all.subarray(offset, end);
  };
  return { bytes, externalData: memory ?? fetchResolver };
}
