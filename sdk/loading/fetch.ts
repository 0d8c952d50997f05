import { InvalidArgumentError, ModelFormatError } from '../../runtime/errors.js';
import { getNodePlatform } from '../platform.js';
import type { LoadOptions, LoadProgress } from './options.js';

/**
 * Fetching model bytes: streamed into one buffer of the announced size (no second full copy, progress as chunks
 * arrive), checked against `integrity`, and kept in a model cache keyed by URL (Cache Storage in browsers, a folder
 * in Node through the platform hooks).
 */

/** A cache of model files by URL. */
export interface ModelStore {
  get(url: string, onProgress?: (p: LoadProgress) => void): Promise<Uint8Array | undefined>;
  put(url: string, bytes: Uint8Array): Promise<void>;
  delete(url: string): Promise<void>;
}

function report(onProgress: LoadOptions['onProgress'], p: LoadProgress): void {
  try {
    onProgress?.(p);
  } catch {
    // A failing progress callback must not fail the load (documented on LoadOptions.onProgress).
  }
}

/**
 * Reads a response body. With a Content-Length (and no content encoding, which makes it the compressed size) the
 * bytes go straight into one buffer of that size; without one, chunks are joined at the end (briefly two copies).
 */
export async function readBody(res: Response, url: string, fromCache: boolean, onProgress?: LoadOptions['onProgress']): Promise<Uint8Array> {
  const length = Number(res.headers.get('content-length') ?? NaN);
  const encoded = (res.headers.get('content-encoding') ?? 'identity') !== 'identity';
  const total = Number.isSafeInteger(length) && length >= 0 && !encoded ? length : undefined;
  report(onProgress, { phase: 'fetch', url, loaded: 0, total, fromCache });
  if (!res.body) {
    const bytes = new Uint8Array(await res.arrayBuffer());
    report(onProgress, { phase: 'fetch', url, loaded: bytes.length, total: bytes.length, fromCache });
    return bytes;
  }
  const reader = res.body.getReader();
  let buffer = total !== undefined ? new Uint8Array(total) : undefined;
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (buffer && loaded + value.length <= buffer.length) buffer.set(value, loaded);
    else {
      // More than announced (a wrong header): keep what came so far as a chunk and go on collecting.
      if (buffer) chunks.push(buffer.subarray(0, loaded));
      buffer = undefined;
      chunks.push(value);
    }
    loaded += value.length;
    report(onProgress, { phase: 'fetch', url, loaded, total, fromCache });
  }
  if (buffer) return loaded === buffer.length ? buffer : buffer.subarray(0, loaded);
  const out = new Uint8Array(loaded);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

const ALGORITHMS: Record<string, string> = { sha256: 'SHA-256', sha384: 'SHA-384', sha512: 'SHA-512' };

function base64(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

/**
 * Checks bytes against an SRI string ('sha256-<base64>', several separated by whitespace). Returns the digest found
 * (in the first listed algorithm) when nothing matched, undefined when one did.
 */
export async function integrityMismatch(bytes: Uint8Array, integrity: string): Promise<string | undefined> {
  const wanted = integrity
    .trim()
    .split(/\s+/)
    .map((t) => /^(sha256|sha384|sha512)-([A-Za-z0-9+/_-]+={0,2})(\?.*)?$/.exec(t))
    .filter((m): m is RegExpExecArray => m !== null);
  if (!wanted.length) {
    throw new InvalidArgumentError(`integrity must be in Subresource Integrity form, e.g. 'sha256-<base64 digest>', got ${JSON.stringify(integrity)}.`);
  }
  if (!globalThis.crypto?.subtle) throw new InvalidArgumentError('Checking integrity needs crypto.subtle (a secure context: https or localhost).');
  const digests = new Map<string, string>();
  for (const [, algo, digest] of wanted) {
    if (!digests.has(algo!)) digests.set(algo!, base64(new Uint8Array(await crypto.subtle.digest(ALGORITHMS[algo!]!, bytes as Uint8Array<ArrayBuffer>))));
    // base64url digests are accepted too.
    if (digests.get(algo!) === digest!.replace(/-/g, '+').replace(/_/g, '/')) return undefined;
  }
  const [first] = digests;
  return `${first![0]}-${first![1]}`;
}

const DEFAULT_CACHE = 'edgekit-models';

/** Cache Storage, where the page or worker has it. */
function cacheStorageStore(name: string): ModelStore | undefined {
  const storage = (globalThis as { caches?: CacheStorage }).caches;
  if (!storage) return undefined;
  const open = () => storage.open(name);
  return {
    async get(url, onProgress) {
      const hit = await (await open()).match(url);
      return hit ? readBody(hit, url, true, onProgress) : undefined;
    },
    async put(url, bytes) {
      const headers = { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) };
      await (await open()).put(url, new Response(bytes as Uint8Array<ArrayBuffer>, { headers }));
    },
    async delete(url) {
      await (await open()).delete(url);
    },
  };
}

/** The model cache `cache` asks for: Node's disk cache only when asked; Cache Storage unless turned off. */
export function modelStore(cache: LoadOptions['cache']): ModelStore | undefined {
  if (cache === false) return undefined;
  const node = getNodePlatform();
  const o = typeof cache === 'object' && cache !== null ? cache : {};
  if (node) return cache === undefined ? undefined : node.modelCache?.(o.dir);
  return cacheStorageStore(o.name ?? DEFAULT_CACHE);
}

/**
 * A model file by URL: from the cache when there (and matching `integrity`), else fetched, checked and cached.
 * A cache that cannot store (quota, private mode) only costs the next load a fetch.
 */
export async function fetchModelBytes(url: string, o: LoadOptions & { what?: string; location?: string } = {}): Promise<Uint8Array> {
  const what = o.what ?? 'the model';
  const cacheable = /^https?:/i.test(url);
  const store = cacheable ? modelStore(o.cache) : undefined;
  if (store) {
    const cached = await store.get(url, o.onProgress).catch(() => undefined);
    if (cached && (!o.integrity || (await integrityMismatch(cached, o.integrity)) === undefined)) return cached;
    if (cached) await store.delete(url).catch(() => undefined);
  }
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new InvalidArgumentError(`Cannot fetch ${what} from ${url}: ${(e as Error).message}`, { url });
  }
  if (!res.ok) throw new ModelFormatError(`Fetching ${what} from ${url} failed with HTTP ${res.status}.`, { url, status: res.status });
  const bytes = await readBody(res, url, false, o.onProgress);
  if (o.integrity) {
    const got = await integrityMismatch(bytes, o.integrity);
    if (got !== undefined) {
      const What = what[0]!.toUpperCase() + what.slice(1);
      const details = { url, integrity: o.integrity, got, ...(o.location === undefined ? {} : { location: o.location }) };
      throw new ModelFormatError(`${What} at ${url} does not match its integrity '${o.integrity}' (its digest is ${got}); it was not loaded or cached.`, details);
    }
  }
  if (store) await store.put(url, bytes).catch(() => undefined);
  return bytes;
}
