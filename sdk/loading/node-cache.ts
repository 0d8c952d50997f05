import { createHash } from 'node:crypto';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ModelStore } from './fetch.js';
import type { LoadProgress } from './options.js';

/**
 * Node only (imported by sdk/node.ts): reading model files with progress, and the opt-in disk cache for models
 * fetched by URL (LoadOptions.cache). Each entry is `<sha256 of the URL>.onnx` in the cache folder, written to a
 * temporary name and renamed, so a crash never leaves a half file under the real name.
 */

const CHUNK = 4 * 2 ** 20;

/** Reads a whole file into one buffer of its size, reporting progress per 4 MiB. */
export async function readFileWithProgress(path: string, url: string, fromCache: boolean, onProgress?: (p: LoadProgress) => void): Promise<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const total = (await fh.stat()).size;
    const bytes = new Uint8Array(total);
    const tell = (loaded: number) => {
      try {
        onProgress?.({ phase: 'fetch', url, loaded, total, fromCache });
      } catch {
        // progress callbacks never fail a load
      }
    };
    tell(0);
    let loaded = 0;
    while (loaded < total) {
      const { bytesRead } = await fh.read(bytes, loaded, Math.min(CHUNK, total - loaded), loaded);
      if (bytesRead === 0) return bytes.subarray(0, loaded); // the file shrank while being read
      loaded += bytesRead;
      tell(loaded);
    }
    return bytes;
  } finally {
    await fh.close();
  }
}

export function defaultCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'edgekit');
}

export function nodeModelCache(dir = defaultCacheDir()): ModelStore {
  const file = (url: string) => join(dir, `${createHash('sha256').update(url).digest('hex')}.onnx`);
  return {
    async get(url, onProgress) {
      const path = file(url);
      const exists = await stat(path).then((s) => s.isFile(), () => false);
      return exists ? readFileWithProgress(path, url, true, onProgress) : undefined;
    },
    async put(url, bytes) {
      await mkdir(dir, { recursive: true });
      const path = file(url);
      const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(bytes);
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
    },
    async delete(url) {
      await rm(file(url), { force: true });
    },
  };
}
