import { open, realpath } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { ModelFormatError } from '../../runtime/errors.js';
import { checkLocation, type ExternalDataResolver } from './external-data.js';

/**
 * Node only (the one importer file that may import node:*): reads external data from files beside the model.
 * Locations that are absolute or climb out of the model's folder are refused by checkLocation; a location that
 * stays inside textually but resolves outside through a symlink is refused after realpath.
 */
export function nodeExternalDataResolver(modelPath: string): ExternalDataResolver {
  const dir = dirname(modelPath);
  return async (location, offset, length) => {
    const rel = checkLocation(location);
    const fail = (why: string, cause?: unknown): never => {
      throw new ModelFormatError(`External data file '${location}' beside the model ${why}.`, { location }, cause ? { cause } : undefined);
    };
    let root = '';
    let file = '';
    try {
      root = await realpath(dir);
      file = await realpath(join(dir, rel));
    } catch (e) {
      fail(`cannot be read (${(e as Error).message})`, e);
    }
    if (!file.startsWith(root.endsWith(sep) ? root : root + sep)) {
      throw new ModelFormatError(`External data location '${location}' resolves outside the model's folder (through a link); EdgeKit refuses it.`, { location });
    }
    let fh;
    try {
      fh = await open(file, 'r');
    } catch (e) {
      return fail(`cannot be opened (${(e as Error).message})`, e);
    }
    try {
      const stat = await fh.stat();
      if (!stat.isFile()) fail('is not a regular file');
      const n = length ?? stat.size - offset;
      if (offset < 0 || n < 0 || offset + n > stat.size) fail(`is shorter than the model says (${stat.size} < ${offset + Math.max(n, 0)} bytes)`);
      const buf = new Uint8Array(n);
      let done = 0;
      while (done < n) {
        const { bytesRead } = await fh.read(buf, done, n - done, offset + done);
        if (bytesRead === 0) fail('ended early');
        done += bytesRead;
      }
      return buf;
    } catch (e) {
      if (e instanceof ModelFormatError) throw e;
      return fail(`cannot be read (${(e as Error).message})`, e);
    } finally {
      await fh.close();
    }
  };
}
