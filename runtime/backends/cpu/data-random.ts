/**
 * The seeded generator behind Dropout's training mask. mulberry32 (a 32-bit state advanced by a Weyl sequence and
 * mixed by two multiply-xorshift rounds): small, fast, and the same on every platform, so a given `seed` always
 * gives the same mask in EdgeKit. It is not onnxruntime's generator, so masks differ from onnxruntime's for the
 * same seed; the keep probability (1 - ratio) is what the spec fixes.
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A bool mask of n elements, each 1 with probability 1 - ratio. Without a seed (the spec: "If not specified, we
 * will pick one seed") every call draws a fresh one, as training wants.
 */
export function dropoutMask(n: number, ratio: number, seed?: number): Uint8Array {
  const next = mulberry32(seed ?? Math.floor(Math.random() * 2 ** 32));
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) mask[i] = next() >= ratio ? 1 : 0;
  return mask;
}
