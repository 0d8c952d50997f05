/**
 * Tap tables for sliding-window kernels (Conv, ConvTranspose, pools) of any spatial rank. One table answers,
 * for every source position p (flat over the source spatial shape) and every kernel tap t (flat over the kernel),
 * which destination element the tap touches:
 *
 *   dst[axis] = src[axis] * stride - padBegin + k[axis] * dilation
 *
 * For Conv and the pools the source is the output and the destination the input it reads; for ConvTranspose the
 * source is the input and the destination the output it scatters to. Entries are the flat destination offset,
 * PAD where the tap falls in the declared padding, or OUTSIDE where it falls beyond it (only ceil_mode windows
 * reach there). Layout: [p][t], so a window's taps are contiguous.
 */
export const PAD = -1;
export const OUTSIDE = -2;

export interface TapGeometry {
  src: readonly number[];
  dst: readonly number[];
  kernel: readonly number[];
  strides: readonly number[];
  dilations: readonly number[];
  padsBegin: readonly number[];
  padsEnd: readonly number[];
}

export function tapTable(g: TapGeometry): Int32Array {
  const rank = g.src.length;
  const nSrc = g.src.reduce((a, b) => a * b, 1);
  const nTap = g.kernel.reduce((a, b) => a * b, 1);
  // Per axis: for each (source index, kernel index) the destination index, or PAD/OUTSIDE.
  const axisTables = g.src.map((n, a) => {
    const k = g.kernel[a]!;
    const t = new Int32Array(n * k);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < k; j++) {
        const d = i * g.strides[a]! - g.padsBegin[a]! + j * g.dilations[a]!;
        t[i * k + j] = d >= 0 && d < g.dst[a]! ? d : d >= -g.padsBegin[a]! && d < g.dst[a]! + g.padsEnd[a]! ? PAD : OUTSIDE;
      }
    }
    return t;
  });
  const dstStrides = new Array<number>(rank);
  for (let a = rank - 1, acc = 1; a >= 0; a--) {
    dstStrides[a] = acc;
    acc *= g.dst[a]!;
  }
  const out = new Int32Array(nSrc * nTap);
  const si = new Array<number>(rank).fill(0);
  const ki = new Array<number>(rank).fill(0);
  for (let p = 0; p < nSrc; p++) {
    ki.fill(0);
    for (let t = 0; t < nTap; t++) {
      let off = 0;
      let cls = 0; // 0 inside, PAD, or OUTSIDE (OUTSIDE wins over PAD)
      for (let a = 0; a < rank; a++) {
        const d = axisTables[a]![si[a]! * g.kernel[a]! + ki[a]!]!;
        if (d < 0) cls = cls === OUTSIDE || d === OUTSIDE ? OUTSIDE : PAD;
        else off += d * dstStrides[a]!;
      }
      out[p * nTap + t] = cls < 0 ? cls : off;
      for (let a = rank - 1; a >= 0; a--) {
        if (++ki[a]! < g.kernel[a]!) break;
        ki[a] = 0;
      }
    }
    for (let a = rank - 1; a >= 0; a--) {
      if (++si[a]! < g.src[a]!) break;
      si[a] = 0;
    }
  }
  return out;
}
