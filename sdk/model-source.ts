import type { ExternalDataResolver } from '../importers/onnx/index.js';
import { memoryExternalDataResolver } from '../importers/onnx/index.js';
import { InvalidArgumentError, ModelFormatError } from '../runtime/errors.js';
import { getNodePlatform } from './platform.js';

export type ModelSource = string | URL | Uint8Array | ArrayBuffer;

export interface LoadedBytes {
  bytes: Uint8Array;
  externalData?: ExternalDataResolver;
}

/**
 * Turns what the user passed into model bytes: bytes as-is; a URL fetched; in Node a plain string is a file path
 * (http(s) strings are fetched; see sdk/node.ts). External data resolves beside a file path in Node, from
 * `externalData` files when given, and beside the URL when fetched.
 */
export async function loadModelSource(src: ModelSource, externalData?: Record<string, Uint8Array>): Promise<LoadedBytes> {
  const memory = externalData ? memoryExternalDataResolver(externalData) : undefined;
  if (src instanceof Uint8Array) return { bytes: src, externalData: memory };
  if (src instanceof ArrayBuffer) return { bytes: new Uint8Array(src), externalData: memory };
  if (typeof src !== 'string' && !(src instanceof URL)) {
    throw new InvalidArgumentError('InferenceSession.create expects a path, a URL, a Uint8Array or an ArrayBuffer.');
  }
  const text = String(src);
  const node = getNodePlatform();
  if (node && !/^(https?|blob|data):/i.test(text)) {
    const loaded = await node.readModelFile(text);
    return { bytes: loaded.bytes, externalData: memory ?? loaded.externalData };
  }
  let res: Response;
  try {
    res = await fetch(text);
  } catch (e) {
    throw new InvalidArgumentError(`Cannot fetch the model from ${text}: ${(e as Error).message}`, { url: text });
  }
  if (!res.ok) throw new ModelFormatError(`Fetching the model from ${text} failed with HTTP ${res.status}.`, { url: text });
  const bytes = new Uint8Array(await res.arrayBuffer());
  const base = new URL('.', new URL(text, globalThis.location?.href));
  const fetchResolver: ExternalDataResolver = async (location, offset, length) => {
    const url = new URL(location, base);
    if (!url.href.startsWith(base.href)) throw new ModelFormatError(`External data location '${location}' escapes the model's folder.`);
    const r = await fetch(url);
    if (!r.ok) throw new ModelFormatError(`Fetching external data ${url} failed with HTTP ${r.status}.`);
    const all = new Uint8Array(await r.arrayBuffer());
    return all.subarray(offset, length === undefined ? undefined : offset + length);
  };
  return { bytes, externalData: memory ?? fetchResolver };
}
