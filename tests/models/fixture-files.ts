import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HostTensor } from '../../runtime/ir/tensor.js';

/** Paths and readers for the fixtures scripts/fixtures/make_fixtures.py writes (see scripts/fixtures/README.md). */

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
export const GENERATED = join(FIXTURES, 'generated');

export function readBytes(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}

/** A raw little-endian float32 file as a tensor of `shape`; the element count must match exactly. */
export function readF32(path: string, shape: number[]): HostTensor {
  const buf = readFileSync(path);
  const n = shape.reduce((a, b) => a * b, 1);
  if (buf.byteLength !== n * 4) throw new Error(`${path}: ${buf.byteLength} bytes, expected ${n * 4} for [${shape.join(', ')}]`);
  const data = new Float32Array(n);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (let i = 0; i < n; i++) data[i] = view.getFloat32(i * 4, true);
  return { dtype: 'float32', shape: [...shape], data };
}

export function readU8(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}

export function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

/** Throws the message the test should fail with when a regenerated model is absent (never skip quietly). */
export function requireGenerated(name: string): string {
  const path = join(GENERATED, `${name}.onnx`);
  if (!existsSync(path)) {
    throw new Error(
      `${path} is missing. The random-weight torchvision models are generated, not committed: ` +
        'run `node scripts/setup-test-env.mjs` (or `/usr/bin/python3 scripts/fixtures/make_fixtures.py --models-only`).',
    );
  }
  return path;
}

/** Deterministic standard-normal samples (mulberry32 + Box-Muller), so the inputs are the same on every run. */
export function seededNormal(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = 1 - uniform(); // (0, 1]: log is finite
    const v = uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}
