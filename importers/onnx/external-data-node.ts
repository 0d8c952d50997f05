import { open, realpath } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { ModelFormatError } from '../../runtime/errors.js';
import { checkLocation, type ExternalDataResolver } from './external-data.js';

/**
 * Node only: reads external data beside the model file. Locations that are absolute or escape the model's folder
 * (after resolving symlinks) are refused with ModelFormatError.
 */
export function nodeExternalDataResolver(modelPath: string): ExternalDataResolver {
  const dir = dirname(modelPath);
  return async (location, offset, length) => {
    const rel = checkLocation(location);
    let root: string;
    let file: string;
    try {
      root = await realpath(dir);
      file = await realpath(join(dir, rel));
    } catch (e) {
      throw new ModelFormatError(`External data file '${location}' beside the model cannot be read: ${(e as Error).message}`, { location });
    }
    if (!file.startsWith(root.endsWith(sep) ? root : root + sep)) {
      throw new ModelFormatError(`External data location '${location}' resolves outside the model's folder; EdgeKit refuses it.`, { location });
    }
    const fh = await open(file, 'r');
    try {
      const size = (await fh.stat()).size;
      const n = length ?? size - offset;
      if (offset + n > size) throw new ModelFormatError(`External data file '${location}' is shorter than the model says (${size} < ${offset + n} bytes).`, { location });
      const buf = new Uint8Array(n);
      await fh.read(buf, 0, n, offset);
      return buf;
    } finally {
      await fh.close();
    }
  };
}
