/**
 * Multidirectional broadcasting ("Broadcasting in ONNX"), planned once on the host for every elementwise kernel.
 * Each operand is aligned to the output's rank; output dims of size 1 are dropped, and neighbouring dims are merged
 * wherever every operand either spans both fully or broadcasts over both. The result is the smallest rank that
 * describes the access pattern, so [8, 16, 32] + [8, 16, 32] is rank 1 and [N, C, H, W] + [1, C, 1, 1] is rank 3
 * ([N, C, H*W]); shaders only see that rank, and strides (0 on broadcast dims) travel as uniforms.
 */
export interface BroadcastPlan {
  /** Collapsed output shape (rank >= 1). */
  shape: number[];
  /** Per operand: element strides over the collapsed output coordinates (0 = broadcast). */
  strides: number[][];
  /** Per operand: whether it spans the last collapsed dim (stride 1) rather than broadcasting over it. */
  fullLast: boolean[];
}

export function planBroadcast(out: readonly number[], operands: readonly (readonly number[])[]): BroadcastPlan {
  const rank = out.length;
  const aligned = operands.map((s) => [...new Array<number>(rank - s.length).fill(1), ...s]);
  const dims: { size: number; full: boolean[] }[] = [];
  for (let k = 0; k < rank; k++) {
    if (out[k] === 1) continue;
    const full = aligned.map((s) => s[k] !== 1);
    const prev = dims[dims.length - 1];
    if (prev && prev.full.every((f, i) => f === full[i])) prev.size *= out[k]!;
    else dims.push({ size: out[k]!, full });
  }
  if (!dims.length) dims.push({ size: out.length ? out.reduce((a, b) => a * b, 1) : 1, full: operands.map(() => true) });
  const strides = operands.map((_, i) => {
    const st = new Array<number>(dims.length);
    let acc = 1;
    for (let k = dims.length - 1; k >= 0; k--) {
      st[k] = dims[k]!.full[i] ? acc : 0;
      if (dims[k]!.full[i]) acc *= dims[k]!.size;
    }
    return st;
  });
  return { shape: dims.map((d) => d.size), strides, fullLast: operands.map((_, i) => dims[dims.length - 1]!.full[i]!) };
}
